"""Shared tools of the fault tests: full warehouse dumps and a child process killed on cue."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import signal
import time as clock
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from include.landing.archive import Archive, ReceivedFile
from include.recalls.notify import Manufacturer
from include.recalls.spec import HEADERS

ACME = Manufacturer("ACME", "Acme Motors", "recalls-team@acme.example")
OPS = "data-ops@dvsa.example"
HEADER = (",".join(HEADERS) + "\n").encode()  # the spec's header line

# Columns stamped with the wall clock (DEFAULT now(), durations): a rerun cannot reproduce them, so
# the dump keeps only whether they are set.
VOLATILE_SUFFIXES = ("_at", "_seconds")
KEPT_TIMES = {"received_at", "released_at"}  # copied from the manifest / operator, not the clock


def warehouse_tables(path: Path, keep: set[str] = KEPT_TIMES) -> dict[str, list[tuple]]:
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
                f'"{c}" IS NULL' if c.endswith(VOLATILE_SUFFIXES) and c not in keep else f'CAST("{c}" AS VARCHAR)'
                for c in columns
            )
            state[table] = con.execute(f'SELECT {select} FROM "{table}" ORDER BY ALL').fetchall()
    return state


_context = None


def _children():
    """A forkserver that imported the pipeline once: each child then starts in milliseconds.

    Forked from a clean server process (never from pytest, whose DuckDB threads must not be
    forked), so every child is a real, separate process that can be SIGKILLed.
    """
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(["tests.reliability.child", "paramiko"])
    return _context


def start_child(job: dict[str, Any], workdir: Path, name: str):
    """Start ``tests.reliability.child.main`` on a job; returns the process and its marker path."""
    from tests.reliability import child

    marker = workdir / f"{name}.marker"
    job = {**job, "marker": str(marker)}
    job_file = workdir / f"{name}.json"
    job_file.write_text(json.dumps(job, default=str))
    proc = _children().Process(target=child.main, args=(str(job_file),), name=f"fault-{name}")
    proc.start()
    return proc, marker


def wait_for(path: Path, proc, timeout: float = 60) -> None:
    """Wait until the child wrote ``path`` (it reached its pause point); fail if it died first."""
    deadline = clock.monotonic() + timeout
    while not path.exists():
        if not proc.is_alive():
            error = Path(f"{path}.error")
            detail = error.read_text() if error.exists() else ""
            raise AssertionError(f"child exited ({proc.exitcode}) before reaching {path.name}\n{detail}")
        if clock.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"child never reached {path.name}")
        clock.sleep(0.01)


def run_and_kill(job: dict[str, Any], workdir: Path, name: str) -> None:
    """Run the job in a child, SIGKILL it at its pause point, reap it."""
    proc, marker = start_child(job, workdir, name)
    try:
        wait_for(marker, proc)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.join(timeout=30)
    assert proc.exitcode == -signal.SIGKILL
    assert not Path(f"{marker}.done").exists()


def archive_upload(archive: Archive, day: date, data: bytes) -> ReceivedFile:
    """Put a recall upload of ACME for ``day`` in the archive, as ``receive_day`` would."""
    sha256, size = archive.store_stream(io.BytesIO(data), expected_size=len(data))
    received = ReceivedFile(
        feed="recalls",
        source="ACME",
        business_date=day.isoformat(),
        original_name=f"acme-{day}.csv",
        remote_path=f"/recalls/ACME/acme-{day}.csv",
        size=size,
        remote_mtime=datetime.combine(day, time(9), tzinfo=UTC).timestamp(),
        sha256=sha256,
        received_at=datetime.combine(day, time(23), tzinfo=UTC).isoformat(timespec="seconds"),
    )
    archive.record(received)
    return received
