"""Opening the DuckDB warehouse.

DuckDB lets one process hold the file for writing and blocks every other process, readers
included. Writers are serialised by the Airflow pool ``warehouse``; this module adds a bounded
retry for the moments something else (an operator's shell, a reader) holds the file, so a writer
waits instead of failing, and never corrupts anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 120.0


def _is_lock_conflict(exc: duckdb.Error) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set lock" in text)


def open_database(
    path: str | Path, *, read_only: bool = False, wait_seconds: float = LOCK_WAIT_SECONDS
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, retrying while another process holds its lock."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if not _is_lock_conflict(exc) or time.monotonic() >= deadline:
                raise
            log.info("warehouse %s is locked by another process; retrying in %.2fs", path, delay)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


@contextmanager
def connect(path: str | Path, *, wait_seconds: float = LOCK_WAIT_SECONDS) -> Iterator[duckdb.DuckDBPyConnection]:
    """A migrated read-write connection, closed (and the file lock released) on exit."""
    from include.warehouse.migrate import migrate

    con = open_database(path, wait_seconds=wait_seconds)
    try:
        migrate(con)
        yield con
    finally:
        con.close()


@contextmanager
def read_only(path: str | Path, *, wait_seconds: float = LOCK_WAIT_SECONDS) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection; the warehouse must already exist."""
    con = open_database(path, read_only=True, wait_seconds=wait_seconds)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All or nothing: commit on success, roll back on any error (or interrupt)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
