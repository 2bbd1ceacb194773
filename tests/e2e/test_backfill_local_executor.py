"""A real backfill, the way operators run one: scheduler + dag-processor + api-server with the
LocalExecutor (parallel mapped tasks, the `warehouse` pool, the DAG unpaused), created with
`airflow backfill create --run-backwards` so several runs are active at once and the days are
processed out of order. The final recall state must equal processing the same files once, in
date order. This is where DuckDB lock contention and pool mistakes would show up; dag.test()
cannot, as it runs one task at a time in one process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from include.recalls.state import apply_snapshot
from include.recalls.validation import validate_recall_file
from include.warehouse import connect, read_only, transaction
from tests.conftest import MANUFACTURERS
from tests.dags.test_recalls_daily import HEADER, at
from tools.services.net import free_port

DAYS = [date(2026, 11, 13) + timedelta(days=i) for i in range(3)]  # days no other test runs


def _rows(prefix: str, numbers: range, ref: str = "R/2026/1", start: str = "2026-01-01") -> bytes:
    return b"".join(f"{prefix}{n:012d},CAMP-{n % 3},{ref},{start}\n".encode() for n in numbers)


FILES = {
    # day index -> {manufacturer: body}; deletions, reappearances and attribute changes.
    0: {"ACME": _rows("ACMEV", range(0, 40)), "BOLT": _rows("BOLTV", range(0, 20))},
    1: {"ACME": _rows("ACMEV", range(5, 45)), "BOLT": _rows("BOLTV", range(0, 20), ref="R/2026/2")},
    2: {"ACME": _rows("ACMEV", range(0, 30), start="2026-02-02"), "BOLT": _rows("BOLTV", range(10, 30))},
}


def _state(path: Path) -> dict[str, list[tuple]]:
    with read_only(path) as con:
        state = {
            "recalls": con.execute("SELECT * FROM recalls ORDER BY ALL").fetchall(),
            "history": con.execute("SELECT * FROM recall_history ORDER BY ALL").fetchall(),
        }
        for day in DAYS:
            state[f"as_of_{day}"] = con.execute(
                "SELECT * FROM outstanding_recalls_as_of(?) ORDER BY ALL", [day]
            ).fetchall()
    return state


def _in_order_state(tmp_path: Path) -> dict[str, list[tuple]]:
    warehouse = tmp_path / "in-order.duckdb"
    with connect(warehouse) as con:
        for index, day in enumerate(DAYS):
            for code, body in FILES[index].items():
                verdict = validate_recall_file(HEADER + body, f"{code}.csv")
                assert verdict.accepted, verdict.problems
                path = tmp_path / f"{code}-{day}.parquet"
                pq.write_table(verdict.snapshot, path)
                with transaction(con):
                    apply_snapshot(con, code, day, f"sha-{code}-{day}", str(path), verdict.row_count)
    return _state(warehouse)


def _airflow(*args: str, env: dict[str, str], retries_when_locked: int = 0) -> subprocess.CompletedProcess:
    """Run an airflow CLI command and require success.

    ``retries_when_locked`` re-runs the command, as an operator would, when SQLite answers
    "database is locked" and nothing else. The dag-processor keeps writing to the SQLite
    metadata DB. ``backfill create`` reads inside a SAVEPOINT and then inserts. If another
    process commits in between, SQLite fails at once: the WAL snapshot is stale, so the busy
    timeout does not apply. Airflow then deletes the partial backfill so it can be created again
    (``airflow.models.backfill._cleanup_partial_backfill``). Postgres, in docker-compose, does
    not fail this way. Any other error fails at once.
    """
    command = [sys.executable, "-m", "airflow", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    for _ in range(retries_when_locked):
        if done.returncode == 0 or "database is locked" not in done.stdout + done.stderr:
            break
        time.sleep(2)
        done = subprocess.run(command, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"airflow {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _wait_for_backfill(db: Path, dag_id: str, timeout: float) -> list[tuple]:
    """Wait until the scheduler marks the backfill complete; returns (logical_date, state, reason)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(db, timeout=60) as meta:
            done = meta.execute(
                "SELECT id FROM backfill WHERE dag_id = ? AND completed_at IS NOT NULL", [dag_id]
            ).fetchone()
            if done:
                return meta.execute(
                    "SELECT b.logical_date, r.state, b.exception_reason FROM backfill_dag_run b"
                    " LEFT JOIN dag_run r ON r.id = b.dag_run_id WHERE b.backfill_id = ? ORDER BY b.sort_ordinal",
                    [done[0]],
                ).fetchall()
        time.sleep(3)
    raise AssertionError(f"backfill did not finish in {timeout}s")


@pytest.fixture
def airflow_components(pipeline, airflow_db: Path, tmp_path: Path):
    """api-server (execution API) and dag-processor sharing the session's DB; the scheduler is
    started by the test."""
    port = free_port("127.0.0.1")
    env = {
        **os.environ,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": "backfill-test-secret",
        "AIRFLOW__API__SECRET_KEY": "backfill-test-secret",
        "AIRFLOW__CORE__PARALLELISM": "4",
        # Two manufacturers keep the run short; mapping over several is what matters here.
        "AIRFLOW_VAR_MANUFACTURERS": json.dumps([m for m in MANUFACTURERS if m["code"] in {"ACME", "BOLT"}]),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
    }
    logs = tmp_path / "component-logs"
    logs.mkdir()
    processes: list[tuple[subprocess.Popen, object]] = []

    def start(name: str, *args: str) -> None:
        out = open(logs / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            [sys.executable, "-m", "airflow", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        processes.append((process, out))

    start("api-server", "api-server", "--port", str(port), "--host", "127.0.0.1")
    start("dag-processor", "dag-processor")
    try:
        yield env, logs, lambda: start("scheduler", "scheduler")
    finally:
        for process, _ in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process, out in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            out.close()


def test_backfill_out_of_order_with_local_executor_equals_in_order(pipeline, airflow_components, tmp_path):
    env, logs, start_scheduler = airflow_components
    for index, day in enumerate(DAYS):
        for code, body in FILES[index].items():
            pipeline.sftp.upload(code, f"{code.lower()}_{day}.csv", HEADER + body, mtime=at(day))

    # The dag-processor must have parsed the DAG before it can be unpaused and backfilled.
    deadline = time.monotonic() + 180
    while True:
        listed = subprocess.run(
            [sys.executable, "-m", "airflow", "dags", "list", "--output", "plain"],
            env=env,
            capture_output=True,
            text=True,
        )
        if "recalls_daily" in listed.stdout:
            break
        assert time.monotonic() < deadline, f"DAG never parsed; see {logs}"
        time.sleep(3)
    _airflow("dags", "unpause", "recalls_daily", env=env)
    _airflow(
        "backfill",
        "create",
        "--dag-id",
        "recalls_daily",
        "--from-date",
        DAYS[0].isoformat(),
        "--to-date",
        DAYS[-1].isoformat(),
        "--run-backwards",
        "--max-active-runs",
        "3",
        env=env,
        retries_when_locked=4,
    )
    # SQLite has one writer: the backfill is created before the scheduler starts writing.
    start_scheduler()
    runs = _wait_for_backfill(Path(env["AIRFLOW_HOME"]) / "airflow.db", "recalls_daily", timeout=900)
    _airflow("dags", "pause", "recalls_daily", env=env)
    assert len(runs) == len(DAYS)
    assert [(state, reason) for _, state, reason in runs] == [("success", None)] * len(DAYS), (runs, logs)

    with read_only(pipeline.warehouse_path) as con:
        statuses = con.execute(
            "SELECT manufacturer, business_date, status FROM recall_files"
            " WHERE business_date BETWEEN ? AND ? ORDER BY ALL",
            [DAYS[0], DAYS[-1]],
        ).fetchall()
    assert statuses == [(code, day, "ACCEPTED") for code in ("ACME", "BOLT") for day in DAYS]
    assert _state(pipeline.warehouse_path) == _in_order_state(tmp_path)
