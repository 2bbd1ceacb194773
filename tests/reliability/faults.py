"""Shared tools of the fault tests: full warehouse dumps and a child process killed on cue."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[2]

# Columns stamped with the wall clock (DEFAULT now(), durations): a rerun cannot reproduce them, so
# the dump keeps only whether they are set.
VOLATILE_SUFFIXES = ("_at", "_seconds")
KEPT_TIMES = {"received_at", "released_at"}  # copied from the manifest / operator, not the clock


def warehouse_state(path: Path) -> dict[str, list[tuple]]:
    """Every table of the warehouse, all rows, ordered: what 'identical' means in these tests."""
    from include.warehouse import read_only

    state: dict[str, list[tuple]] = {}
    with read_only(path) as con:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = 'main' AND table_type = 'BASE TABLE' ORDER BY 1"
            ).fetchall()
        ]
        for table in tables:
            columns = [r[0] for r in con.execute(f'DESCRIBE "{table}"').fetchall()]
            select = ", ".join(
                f'"{c}" IS NULL' if c.endswith(VOLATILE_SUFFIXES) and c not in KEPT_TIMES else f'CAST("{c}" AS VARCHAR)'
                for c in columns
            )
            state[table] = con.execute(f'SELECT {select} FROM "{table}" ORDER BY ALL').fetchall()
    return state


def child_env() -> dict[str, str]:
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")]))
    return env


def start_child(job: dict[str, Any], workdir: Path, name: str) -> tuple[subprocess.Popen, Path]:
    """Start ``tests.reliability.child`` on a job; returns the process and its marker path."""
    marker = workdir / f"{name}.marker"
    job = {**job, "marker": str(marker)}
    job_file = workdir / f"{name}.json"
    job_file.write_text(json.dumps(job, default=str))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.child", str(job_file)],
        cwd=PROJECT,
        env=child_env(),
        stderr=subprocess.PIPE,
    )
    return proc, marker


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until the child wrote ``path`` (it reached its pause point); fail if it died first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"child exited ({proc.returncode}) before {path.name}: {proc.stderr.read().decode()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"child never reached {path.name}")
        time.sleep(0.01)


def run_and_kill(job: dict[str, Any], workdir: Path, name: str) -> None:
    """Run the job in a child, SIGKILL it at its pause point, reap it."""
    proc, marker = start_child(job, workdir, name)
    try:
        wait_for(marker, proc)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not Path(f"{marker}.done").exists()
