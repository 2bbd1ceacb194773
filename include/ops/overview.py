"""The page's overview, read from the published snapshot (never from the warehouse while it is busy).

:class:`OverviewSource` loads the snapshot into memory once per published version (a few thousand
rows a year per manufacturer: one per file, email and MOT delivery) and checks on every request
whether the warehouse changed since it was published. If it did and the warehouse is free (a
commit was made by something that did not publish), it republishes it itself, through the
gentle reader; if a writer holds the warehouse it serves the last snapshot and says how old it is.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import defaultdict
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


@dataclass
class Overview:
    published_at: datetime | None
    source_state: str
    publisher: str
    files: list[dict[str, Any]]
    outstanding: dict[str, int]
    emails: list[dict[str, Any]]
    mot_files: list[dict[str, Any]]
    mot_quarantine: list[dict[str, Any]]
    mot_quarantine_days: dict[date, int]
    files_by_cell: dict[tuple[str, date], list[dict[str, Any]]] = field(default_factory=dict)
    emails_by_upload: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        cells: dict[tuple[str, date], list[dict[str, Any]]] = defaultdict(list)
        for row in self.files:
            cells[(row["manufacturer"], row["business_date"])].append(row)
        for rows in cells.values():
            rows.sort(key=_file_order)
        self.files_by_cell = dict(cells)
        by_upload: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for email in self.emails:
            parts = email["message_key"].split(":")
            if len(parts) >= 3 and parts[0] == "recall":
                by_upload[(parts[1], parts[-1])].append(email)
        self.emails_by_upload = dict(by_upload)

    def manufacturers(self) -> list[str]:
        return sorted({row["manufacturer"] for row in self.files} | set(self.outstanding))

    def emails_for(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        if not row.get("upload_id"):
            return []
        return self.emails_by_upload.get((row["manufacturer"], row["upload_id"]), [])


def _file_order(row: dict[str, Any]) -> tuple:
    # The day's status is its first file's (later files of a day are rejected as MULTIPLE_FILES).
    return (row["status"] == "MISSING", row["remote_mtime"] or datetime.max, row["recorded_at"] or datetime.max)


def load_overview(path: Path) -> Overview:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}

        def rows(name: str, order: str = "") -> list[dict[str, Any]]:
            if name not in tables:
                return []
            cursor = con.execute(f'SELECT * FROM "{name}" {order}')
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

        meta = rows("meta")
        return Overview(
            published_at=meta[0]["published_at"] if meta else None,
            source_state=meta[0]["source_state"] if meta else "",
            publisher=meta[0]["publisher"] if meta else "",
            files=rows("recall_files"),
            outstanding={r["manufacturer"]: int(r["outstanding"]) for r in rows("outstanding")},
            emails=rows("emails", "ORDER BY created_at"),
            mot_files=rows("mot_files", "ORDER BY business_date, recorded_at"),
            mot_quarantine=rows("mot_quarantine"),
            mot_quarantine_days={r["business_date"]: int(r["records"]) for r in rows("mot_quarantine_days")},
        )
    finally:
        con.close()


def empty_overview() -> Overview:
    return Overview(None, "", "", [], {}, [], [], [], {})


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
    """Per process: the loaded snapshot of each warehouse, refreshed when the warehouse changed."""

    def __init__(self) -> None:
        self._loaded: dict[Path, tuple[tuple, Overview]] = {}
        self._load_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._busy_until: dict[Path, float] = {}

    def _load(self, snap: Path) -> Overview | None:
        with self._load_lock:
            try:
                stat = snap.stat()
            except FileNotFoundError:
                return None
            identity = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            cached = self._loaded.get(snap)
            if cached and cached[0] == identity:
                return cached[1]
            overview = load_overview(snap)
            self._loaded[snap] = (identity, overview)
            return overview

    def get(self, warehouse_path: str | Path) -> tuple[Overview, Freshness]:
        warehouse = Path(warehouse_path)
        snap = snapshot_path(warehouse)
        overview = self._load(snap)
        if not warehouse.exists():
            return overview or empty_overview(), Freshness("no_warehouse", f"No warehouse at {warehouse} yet.")
        if overview is not None and overview.source_state == warehouse_state(warehouse):
            return overview, Freshness("fresh")
        if time.monotonic() < self._busy_until.get(warehouse, 0.0):
            return overview or empty_overview(), self._busy(overview)
        if not self._refresh_lock.acquire(timeout=REFRESH_WAIT_SECONDS):
            return overview or empty_overview(), self._busy(overview)
        try:
            overview = self._load(snap)
            state = warehouse_state(warehouse)
            if overview is not None and overview.source_state == state:
                return overview, Freshness("fresh")
            try:
                with gentle_reader(warehouse, wait_seconds=REFRESH_WAIT_SECONDS) as con:
                    publish_from(con, warehouse, source_state=state, publisher="page")
            except (WarehouseBusy, WarehouseMissing):
                self._busy_until[warehouse] = time.monotonic() + RETRY_AFTER_BUSY_SECONDS
                return overview or empty_overview(), self._busy(overview)
            except Exception as exc:  # the page must still render: show what was published
                log.warning("could not refresh the operations snapshot of %s", warehouse, exc_info=True)
                return overview or empty_overview(), Freshness("error", f"Could not refresh the overview: {exc}")
            return self._load(snap) or empty_overview(), Freshness("refreshed")
        finally:
            self._refresh_lock.release()

    @staticmethod
    def _busy(overview: Overview | None) -> Freshness:
        if overview is None or overview.published_at is None:
            return Freshness("busy", "A DAG task is writing the warehouse and nothing has been published yet; retry.")
        return Freshness(
            "busy",
            "A DAG task is writing the warehouse: showing what was published at "
            f"{overview.published_at:%Y-%m-%d %H:%M:%S} UTC.",
        )


# ------------------------------------------------------------------------------------ derived views


@dataclass
class Cell:
    manufacturer: str
    day: date
    files: list[dict[str, Any]]
    emails: list[dict[str, Any]]

    @property
    def first(self) -> dict[str, Any] | None:
        return self.files[0] if self.files else None

    @property
    def status(self) -> str | None:
        return self.first["status"] if self.first else None

    @property
    def codes(self) -> list[str]:
        return list(self.first["error_codes"] or []) if self.first else []

    @property
    def later_files(self) -> int:
        return max(len(self.files) - 1, 0)

    @property
    def email_state(self) -> str | None:
        if not self.emails:
            return None
        return "queued" if any(e["sent_at"] is None for e in self.emails) else "sent"

    @property
    def released(self) -> bool:
        return bool(self.first and self.first["released_at"])


@dataclass
class GridRow:
    code: str
    name: str
    cells: list[Cell]
    outstanding: int | None


def grid(overview: Overview, names: dict[str, str], end: date, days: int = 30) -> tuple[list[date], list[GridRow]]:
    """One row per manufacturer (the configured ones plus any with data), one cell per business day."""
    columns = [end - timedelta(days=days - 1 - i) for i in range(days)]
    codes = sorted(set(names) | set(overview.manufacturers()))
    rows = []
    for code in codes:
        cells = []
        for day in columns:
            files = overview.files_by_cell.get((code, day), [])
            emails = [e for f in files for e in overview.emails_for(f)]
            cells.append(Cell(code, day, files, emails))
        rows.append(GridRow(code, names.get(code, code), cells, overview.outstanding.get(code)))
    return columns, rows


def daily_changes(overview: Overview, start: date, end: date, manufacturer: str | None = None) -> list[tuple]:
    """``(day, added, fixed, changed)`` from the applied files (kept true after late days by replays)."""
    totals: dict[date, list[int]] = {start + timedelta(days=i): [0, 0, 0] for i in range((end - start).days + 1)}
    for row in overview.files:
        if row["status"] != "ACCEPTED" or row["business_date"] not in totals:
            continue
        if manufacturer and row["manufacturer"] != manufacturer:
            continue
        bucket = totals[row["business_date"]]
        bucket[0] += row["added_count"] or 0
        bucket[1] += row["fixed_count"] or 0
        bucket[2] += row["changed_count"] or 0
    return [(day, *values) for day, values in sorted(totals.items())]


@dataclass
class Held:
    row: dict[str, Any]
    would_fix: int | None
    outstanding_before: int | None
    share: float | None
    emails: list[dict[str, Any]]


def held(overview: Overview) -> list[Held]:
    found = []
    for row in overview.files:
        if row["status"] != "HELD":
            continue
        match = _HOLD_NUMBERS.search(row["hold_reason"] or "")
        numbers = (
            (int(match[1].replace(",", "")), int(match[2].replace(",", "")), float(match[3]) / 100)
            if match
            else (None, None, None)
        )
        found.append(Held(row, *numbers, overview.emails_for(row)))
    return sorted(found, key=lambda h: (h.row["business_date"], h.row["manufacturer"]))


def mot_days(overview: Overview, start: date, end: date) -> list[tuple]:
    """``(day, created, updated, deleted, quarantined)`` per business day, from the deliveries."""
    totals: dict[date, list[int]] = {start + timedelta(days=i): [0, 0, 0, 0] for i in range((end - start).days + 1)}
    for row in overview.mot_files:
        bucket = totals.get(row["business_date"])
        if bucket is None:
            continue
        if row["status"] == "APPLIED":
            bucket[0] += row["created"] or 0
            bucket[1] += row["updated"] or 0
            bucket[2] += row["deleted"] or 0
        if row["status"] in {"APPLIED", "HELD"}:
            bucket[3] += row["quarantined"] or 0
    return [(day, *values) for day, values in sorted(totals.items())]


@dataclass
class Attention:
    """One thing that needs an engineer: ``level`` is ``bad`` or ``warn``; ``anchor`` where to look."""

    level: str
    text: str
    anchor: str


def needs_attention(overview: Overview, names: dict[str, str], today: date) -> list[Attention]:
    items: list[Attention] = []
    for item in held(overview):
        row = item.row
        text = f"{row['manufacturer']} {row['business_date']}: snapshot HELD, check it and release"
        items.append(Attention("bad", text, "held"))
    week_ago = today - timedelta(days=7)
    rejected = [r for r in overview.files if r["status"] == "REJECTED" and r["business_date"] >= week_ago]
    if rejected:
        makers = sorted({r["manufacturer"] for r in rejected})
        text = f"{len(rejected)} rejected recall file(s) in the last 7 days: {', '.join(makers)}"
        items.append(Attention("warn", text, "grid"))
    missing = [r for r in overview.files if r["status"] == "MISSING" and r["business_date"] >= week_ago]
    if missing:
        makers = sorted({r["manufacturer"] for r in missing})
        text = f"{len(missing)} missing recall file(s) in the last 7 days: {', '.join(makers)}"
        items.append(Attention("warn", text, "grid"))
    queued = [e for e in overview.emails if e["sent_at"] is None]
    if queued:
        oldest = min(e["created_at"] for e in queued)
        text = f"{len(queued)} email(s) still queued (SMTP down?), oldest {oldest:%Y-%m-%d %H:%M} UTC"
        items.append(Attention("bad", text, "grid"))
    for row in overview.mot_files:
        if row["status"] != "APPLIED" and row["business_date"] >= week_ago:
            text = f"MOT delta {row['business_date']}: {row['status']}"
            if row["message"]:
                text += f" ({row['message']})"
            items.append(Attention("bad" if row["status"] in {"REJECTED", "HELD"} else "warn", text, "mot"))
    return items
