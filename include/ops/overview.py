"""The page's overview, read from the published snapshot (never from the warehouse while it is busy).

:class:`OverviewSource` attaches each published snapshot read-only to a private in-memory DuckDB
(so a replaced file is never confused with the one before it) and answers the page's questions
with small SQL queries over it. On every request it checks whether the warehouse changed since
the snapshot was published; if it did and the warehouse is free (a commit by something that did
not publish), it republishes it itself through the gentle reader; if a writer holds the warehouse
it serves the last snapshot and says how old it is.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from include.ops.publish import publish_from, snapshot_path, warehouse_state
from include.ops.readers import WarehouseBusy, WarehouseMissing, gentle_reader

log = logging.getLogger(__name__)

RETRY_AFTER_BUSY_SECONDS = 5.0
REFRESH_WAIT_SECONDS = 0.3

_HOLD_NUMBERS = re.compile(r"mark ([\d,]+) of ([\d,]+) outstanding recalls fixed \(([\d.]+)%\)")


class Snapshot:
    """One published snapshot file, attached read-only; :meth:`rows` runs a query on a fresh cursor."""

    def __init__(self, path: Path | None) -> None:
        self._con = duckdb.connect(":memory:")
        self._cursor_lock = threading.Lock()
        self.tables: set[str] = set()
        self.published_at: datetime | None = None
        self.source_state = ""
        self.publisher = ""
        if path is None:
            return
        quoted = str(path).replace("'", "''")
        self._con.execute(f"ATTACH '{quoted}' AS snap (READ_ONLY)")
        self.tables = {
            r[0]
            for r in self._con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'snap'"
            ).fetchall()
        }
        if "meta" in self.tables:
            meta = self.rows("SELECT published_at, source_state, publisher FROM snap.meta")[0]
            self.published_at, self.source_state, self.publisher = (
                meta["published_at"],
                meta["source_state"],
                meta["publisher"],
            )

    def has(self, *tables: str) -> bool:
        return all(t in self.tables for t in tables)

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with self._cursor_lock:
            cursor = self._con.cursor()
        try:
            result = cursor.execute(sql, params) if params else cursor.execute(sql)
            names = [d[0] for d in result.description]
            return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
        finally:
            cursor.close()


EMPTY = Snapshot(None)


@dataclass(frozen=True)
class Freshness:
    """How current the overview is: ``fresh`` (matches the warehouse), ``refreshed`` (republished now),
    ``busy`` (a writer holds the warehouse; older data shown), ``error``, ``no_warehouse``."""

    status: str
    message: str = ""

    @property
    def current(self) -> bool:
        return self.status in {"fresh", "refreshed"}


class OverviewSource:
    """Per process: the attached snapshot of each warehouse, republished when the warehouse changed."""

    def __init__(self) -> None:
        self._loaded: dict[Path, tuple[tuple, Snapshot]] = {}
        self._load_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._busy_until: dict[Path, float] = {}

    def _load(self, snap: Path) -> Snapshot | None:
        with self._load_lock:
            try:
                stat = snap.stat()
            except FileNotFoundError:
                return None
            identity = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            cached = self._loaded.get(snap)
            if cached and cached[0] == identity:
                return cached[1]
            snapshot = Snapshot(snap)
            self._loaded[snap] = (identity, snapshot)
            return snapshot

    def get(self, warehouse_path: str | Path) -> tuple[Snapshot, Freshness]:
        warehouse = Path(warehouse_path)
        snap = snapshot_path(warehouse)
        snapshot = self._load(snap)
        if not warehouse.exists():
            return snapshot or EMPTY, Freshness("no_warehouse", f"No warehouse at {warehouse} yet: no DAG has run.")
        if snapshot is not None and snapshot.source_state == warehouse_state(warehouse):
            return snapshot, Freshness("fresh")
        if time.monotonic() < self._busy_until.get(warehouse, 0.0):
            return snapshot or EMPTY, self._busy(snapshot)
        if not self._refresh_lock.acquire(timeout=REFRESH_WAIT_SECONDS):
            return snapshot or EMPTY, self._busy(snapshot)
        try:
            snapshot = self._load(snap)
            state = warehouse_state(warehouse)
            if snapshot is not None and snapshot.source_state == state:
                return snapshot, Freshness("fresh")
            try:
                with gentle_reader(warehouse, wait_seconds=REFRESH_WAIT_SECONDS) as con:
                    publish_from(con, warehouse, source_state=state, publisher="page")
            except (WarehouseBusy, WarehouseMissing):
                self._busy_until[warehouse] = time.monotonic() + RETRY_AFTER_BUSY_SECONDS
                return snapshot or EMPTY, self._busy(snapshot)
            except Exception as exc:  # the page must still render: show what was published
                log.warning("could not refresh the operations snapshot of %s", warehouse, exc_info=True)
                return snapshot or EMPTY, Freshness("error", f"Could not refresh the overview: {exc}")
            return self._load(snap) or EMPTY, Freshness("refreshed")
        finally:
            self._refresh_lock.release()

    @staticmethod
    def _busy(snapshot: Snapshot | None) -> Freshness:
        if snapshot is None or snapshot.published_at is None:
            return Freshness("busy", "A DAG task is writing the warehouse and nothing has been published yet; retry.")
        return Freshness(
            "busy",
            "A DAG task is writing the warehouse: showing what was published at "
            f"{snapshot.published_at:%Y-%m-%d %H:%M:%S} UTC.",
        )


# ------------------------------------------------------------------------------------ the views


# The files of the days in [$first, $last], each with its place among its day's files (the day's
# status is its first file's: later files of a day are rejected as MULTIPLE_FILES) and its day's totals.
_RANKED = """
SELECT *,
       row_number() OVER (PARTITION BY manufacturer, business_date
                          ORDER BY status = 'MISSING', remote_mtime NULLS LAST, recorded_at, upload_id) AS file_rank,
       count(*) OVER day AS files_that_day,
       sum(emails) OVER day AS day_emails,
       sum(emails_queued) OVER day AS day_emails_queued
FROM snap.recall_files
WHERE business_date BETWEEN $first AND $last
WINDOW day AS (PARTITION BY manufacturer, business_date)
"""


@dataclass
class Cell:
    """A manufacturer's business day: its first file (the day's status) and what else happened."""

    manufacturer: str
    day: date
    first: dict[str, Any] | None

    @property
    def status(self) -> str | None:
        return self.first["status"] if self.first else None

    @property
    def codes(self) -> list[str]:
        return list(self.first["error_codes"] or []) if self.first else []

    @property
    def later_files(self) -> int:
        return int(self.first["files_that_day"]) - 1 if self.first else 0

    @property
    def email_state(self) -> str | None:
        if not self.first or not self.first["day_emails"]:
            return None
        return "queued" if self.first["day_emails_queued"] else "sent"

    @property
    def released(self) -> bool:
        return bool(self.first and self.first["released_at"])


@dataclass
class GridRow:
    code: str
    name: str
    cells: list[Cell]
    outstanding: int | None


def outstanding(snapshot: Snapshot) -> dict[str, int]:
    if not snapshot.has("outstanding"):
        return {}
    return {r["manufacturer"]: int(r["outstanding"]) for r in snapshot.rows("SELECT * FROM snap.outstanding")}


def grid(snapshot: Snapshot, names: dict[str, str], end: date, days: int = 30) -> tuple[list[date], list[GridRow]]:
    """One row per manufacturer (the configured ones plus any with data), one cell per business day."""
    first_day = end - timedelta(days=days - 1)
    columns = [first_day + timedelta(days=i) for i in range(days)]
    firsts: dict[tuple[str, date], dict[str, Any]] = {}
    codes = set(names)
    if snapshot.has("recall_files"):
        for row in snapshot.rows(f"SELECT * FROM ({_RANKED}) WHERE file_rank = 1", {"first": first_day, "last": end}):
            firsts[(row["manufacturer"], row["business_date"])] = row
        codes |= {r["manufacturer"] for r in snapshot.rows("SELECT DISTINCT manufacturer FROM snap.recall_files")}
    counts = outstanding(snapshot)
    codes |= set(counts)
    rows = [
        GridRow(
            code,
            names.get(code, code),
            [Cell(code, day, firsts.get((code, day))) for day in columns],
            counts.get(code),
        )
        for code in sorted(codes)
    ]
    return columns, rows


def day_files(snapshot: Snapshot, manufacturer: str, day: date) -> list[dict[str, Any]]:
    if not snapshot.has("recall_files"):
        return []
    params = {"m": manufacturer, "first": day, "last": day}
    rows = snapshot.rows(f"SELECT * FROM ({_RANKED}) WHERE manufacturer = $m", params)
    return sorted(rows, key=lambda r: r["file_rank"])


def emails_for(snapshot: Snapshot, manufacturer: str, upload_id: str | None) -> list[dict[str, Any]]:
    if not upload_id or not snapshot.has("emails"):
        return []
    return snapshot.rows(
        "SELECT * FROM snap.emails WHERE feed = 'recall' AND manufacturer = $m AND upload_id = $u ORDER BY created_at",
        {"m": manufacturer, "u": upload_id},
    )


def daily_changes(snapshot: Snapshot, start: date, end: date, manufacturer: str | None = None) -> list[tuple]:
    """``(day, added, fixed, changed)`` from the applied files (their counts are kept true by replays)."""
    totals = {start + timedelta(days=i): (0, 0, 0) for i in range((end - start).days + 1)}
    if snapshot.has("recall_files"):
        for r in snapshot.rows(
            "SELECT business_date, sum(added_count) AS a, sum(fixed_count) AS f, sum(changed_count) AS c"
            " FROM snap.recall_files WHERE status = 'ACCEPTED' AND business_date BETWEEN $first AND $last"
            " AND ($m IS NULL OR manufacturer = $m) GROUP BY business_date",
            {"first": start, "last": end, "m": manufacturer},
        ):
            totals[r["business_date"]] = (int(r["a"] or 0), int(r["f"] or 0), int(r["c"] or 0))
    return [(day, *values) for day, values in sorted(totals.items())]


@dataclass
class Held:
    row: dict[str, Any]
    would_fix: int | None
    outstanding_before: int | None
    share: float | None
    emails: list[dict[str, Any]] = field(default_factory=list)


def held(snapshot: Snapshot) -> list[Held]:
    if not snapshot.has("recall_files"):
        return []
    emails: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if snapshot.has("emails"):
        for email in snapshot.rows(
            "SELECT e.* FROM snap.emails e JOIN snap.recall_files f"
            " ON e.feed = 'recall' AND e.manufacturer = f.manufacturer AND e.upload_id = f.upload_id"
            " WHERE f.status = 'HELD' ORDER BY e.created_at"
        ):
            emails.setdefault((email["manufacturer"], email["upload_id"]), []).append(email)
    found = []
    for row in snapshot.rows(
        "SELECT * FROM snap.recall_files WHERE status = 'HELD' ORDER BY business_date, manufacturer"
    ):
        match = _HOLD_NUMBERS.search(row["hold_reason"] or "")
        numbers = (
            (int(match[1].replace(",", "")), int(match[2].replace(",", "")), float(match[3]) / 100)
            if match
            else (None, None, None)
        )
        found.append(Held(row, *numbers, emails.get((row["manufacturer"], row["upload_id"]), [])))
    return found


def mot_files(snapshot: Snapshot, start: date, end: date) -> list[dict[str, Any]]:
    if not snapshot.has("mot_files"):
        return []
    return snapshot.rows(
        "SELECT * FROM snap.mot_files WHERE business_date BETWEEN $first AND $last"
        " ORDER BY business_date DESC, recorded_at DESC",
        {"first": start, "last": end},
    )


def mot_days(snapshot: Snapshot, start: date, end: date) -> list[tuple]:
    """``(day, created, updated, deleted, quarantined)`` per business day, from the deliveries."""
    totals = {start + timedelta(days=i): (0, 0, 0, 0) for i in range((end - start).days + 1)}
    if snapshot.has("mot_files"):
        for r in snapshot.rows(
            "SELECT business_date,"
            " sum(created) FILTER (WHERE status = 'APPLIED') AS c, sum(updated) FILTER (WHERE status = 'APPLIED') AS u,"
            " sum(deleted) FILTER (WHERE status = 'APPLIED') AS d,"
            " sum(quarantined) FILTER (WHERE status IN ('APPLIED', 'HELD')) AS q"
            " FROM snap.mot_files WHERE business_date BETWEEN $first AND $last GROUP BY business_date",
            {"first": start, "last": end},
        ):
            totals[r["business_date"]] = tuple(int(r[k] or 0) for k in "cudq")
    return [(day, *values) for day, values in sorted(totals.items())]


def quarantine(snapshot: Snapshot, day: date | None = None, limit: int = 500) -> list[dict[str, Any]]:
    if not snapshot.has("mot_quarantine"):
        return []
    return snapshot.rows(
        "SELECT * FROM snap.mot_quarantine WHERE $d IS NULL OR business_date = $d"
        " ORDER BY recorded_at DESC, business_date DESC, part, line LIMIT $limit",
        {"d": day, "limit": limit},
    )


def quarantine_days(snapshot: Snapshot) -> list[tuple[date, int]]:
    if not snapshot.has("mot_quarantine_days"):
        return []
    rows = snapshot.rows("SELECT business_date, records FROM snap.mot_quarantine_days ORDER BY business_date DESC")
    return [(r["business_date"], int(r["records"])) for r in rows]


@dataclass
class Attention:
    """One thing that needs an engineer: ``level`` is ``bad`` or ``warn``; ``anchor`` where to look."""

    level: str
    text: str
    anchor: str


def needs_attention(snapshot: Snapshot, today: date) -> list[Attention]:
    items: list[Attention] = []
    week_ago = today - timedelta(days=7)
    if snapshot.has("recall_files"):
        for row in snapshot.rows(
            "SELECT manufacturer, business_date FROM snap.recall_files WHERE status = 'HELD'"
            " ORDER BY business_date, manufacturer"
        ):
            text = f"{row['manufacturer']} {row['business_date']}: snapshot HELD, check it and release"
            items.append(Attention("bad", text, "held"))
        for status, level in (("REJECTED", "warn"), ("MISSING", "warn")):
            found = snapshot.rows(
                "SELECT count(*) AS n, list(DISTINCT manufacturer ORDER BY manufacturer) AS makers"
                " FROM snap.recall_files WHERE status = $s AND business_date >= $since",
                {"s": status, "since": week_ago},
            )[0]
            if found["n"]:
                text = f"{found['n']} {status.lower()} recall file(s) in the last 7 days: {', '.join(found['makers'])}"
                items.append(Attention(level, text, "grid"))
    if snapshot.has("emails"):
        queued = snapshot.rows(
            "SELECT count(*) AS n, min(created_at) AS oldest FROM snap.emails WHERE sent_at IS NULL"
        )[0]
        if queued["n"]:
            text = f"{queued['n']} email(s) still queued (SMTP down?), oldest {queued['oldest']:%Y-%m-%d %H:%M} UTC"
            items.append(Attention("bad", text, "grid"))
    if snapshot.has("mot_files"):
        for row in snapshot.rows(
            "SELECT business_date, status, message FROM snap.mot_files WHERE status <> 'APPLIED'"
            " AND business_date >= $since ORDER BY business_date",
            {"since": week_ago},
        ):
            text = f"MOT delta {row['business_date']}: {row['status']}"
            if row["message"]:
                text += f" ({row['message']})"
            items.append(Attention("bad" if row["status"] in {"REJECTED", "HELD"} else "warn", text, "mot"))
    return items
