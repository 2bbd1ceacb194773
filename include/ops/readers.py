"""Reading the warehouse from the operations page without ever getting in a writer's way.

DuckDB lets one process write the file and blocks every other process, readers included. Writers
retry opening for two minutes (``include.warehouse.connection``), polling with a growing delay of
up to two seconds; a reader that held the file all the time could starve them. So page reads:

* go through one gate per warehouse (an ``flock`` on ``.<warehouse>.ops-readers.lock`` next to
  it), so the API server's workers never hold the warehouse at the same time,
* leave the file free afterwards for at least as long as they held it (recorded in the gate file,
  so the next reader waits): readers hold the warehouse at most half of the time, and a writer's
  retry finds it free,
* give up after a short wait (:class:`WarehouseBusy`) instead of queueing behind a writer;
* are cached per warehouse state (size and mtime of the file and its WAL, which change with every
  commit), so repeated lookups do not open the file at all.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import struct
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from include.ops.publish import warehouse_state

T = TypeVar("T")

MIN_PAUSE_SECONDS = 0.05  # the warehouse stays free at least this long after a page read
MAX_PAUSE_SECONDS = 1.0


class WarehouseBusy(Exception):
    """A writer holds the warehouse; retry in a few seconds."""


class WarehouseMissing(Exception):
    """The warehouse file does not exist yet (no DAG has written it)."""


def _open_gate(warehouse_path: Path) -> int:
    """The gate file next to the warehouse (or in the temp folder if that folder is read-only)."""
    flags = os.O_RDWR | os.O_CREAT
    try:
        return os.open(warehouse_path.with_name(f".{warehouse_path.stem}.ops-readers.lock"), flags, 0o666)
    except OSError:
        digest = hashlib.sha256(str(warehouse_path.resolve()).encode()).hexdigest()[:16]
        return os.open(Path(tempfile.gettempdir()) / f"ops-page-readers-{digest}.lock", flags, 0o666)


def _is_lock_conflict(exc: duckdb.Error) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set lock" in text)


@contextmanager
def gentle_reader(warehouse_path: str | Path, *, wait_seconds: float = 1.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short read-only connection for a page request; :class:`WarehouseBusy` after ``wait_seconds``."""
    path = Path(warehouse_path)
    if not path.exists():
        raise WarehouseMissing(f"no warehouse at {path}")
    deadline = time.monotonic() + wait_seconds
    fd = _open_gate(path)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WarehouseBusy("another page read is using the warehouse") from None
                time.sleep(0.01)
        try:
            raw = os.pread(fd, 8, 0)
            not_before = struct.unpack("<d", raw)[0] if len(raw) == 8 else 0.0
            pause = not_before - time.time()
            if pause > 0:
                if time.monotonic() + pause >= deadline:
                    raise WarehouseBusy("page reads are pausing to let writers in")
                time.sleep(pause)
            con = _open_read_only(path, deadline)
            opened = time.monotonic()
            try:
                yield con
            finally:
                con.close()
                held = time.monotonic() - opened
                pause = min(max(held, MIN_PAUSE_SECONDS), MAX_PAUSE_SECONDS)
                os.pwrite(fd, struct.pack("<d", time.time() + pause), 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _open_read_only(path: Path, deadline: float) -> duckdb.DuckDBPyConnection:
    delay = 0.02
    while True:
        try:
            return duckdb.connect(str(path), read_only=True)
        except duckdb.IOException as exc:
            if not _is_lock_conflict(exc):
                raise
            if time.monotonic() + delay >= deadline:
                raise WarehouseBusy("a DAG task is writing the warehouse") from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


class StateCache:
    """Results of warehouse reads keyed by what was asked, valid while the warehouse is unchanged.

    When the warehouse is busy, the last result for the same question is returned marked stale.
    """

    def __init__(self, max_entries: int = 5000) -> None:
        self._entries: OrderedDict[tuple, tuple[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    def read(
        self, warehouse_path: str | Path, key: tuple, query: Callable[[duckdb.DuckDBPyConnection], T], *, wait: float
    ) -> tuple[T, bool]:
        """``(result, stale)``; raises :class:`WarehouseBusy` if busy and nothing is cached."""
        state = warehouse_state(warehouse_path)
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
        if cached is not None and cached[0] == state:
            return cached[1], False
        try:
            with gentle_reader(warehouse_path, wait_seconds=wait) as con:
                result = query(con)
        except WarehouseBusy:
            if cached is not None:
                return cached[1], True
            raise
        with self._lock:
            self._entries[key] = (state, result)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return result, False
