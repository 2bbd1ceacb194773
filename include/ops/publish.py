"""Publishing the operations page's data after each warehouse commit.

:func:`publish_after_commit` is what writers call once their transaction has committed and their
connection is closed. It opens the warehouse read-only (the writer has just released it), copies
small aggregates into a new DuckDB file and renames it over ``<warehouse>.ops.duckdb``; readers of
the page never touch the warehouse for the overview, so they never block a writer and a writer
never blocks them. It costs a few tens of milliseconds: every query reads either a small table
(``recall_files``, ``outbox``, ``mot_delta_files``: one row per file or email) or one column of
``recalls``; nothing is proportional to the history.

Publishing never raises: a failure is logged and the page shows the previous snapshot with its
time (the page also refreshes the snapshot itself when the warehouse is free and has changed).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from include.atomic import private_temp

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT = 2
QUARANTINE_KEPT = 500  # most recent quarantined MOT records copied for the page

# name -> (table it needs, query). Timestamps become UTC TIMESTAMPs (no time zone objects in Python).
QUERIES: dict[str, tuple[str, str]] = {
    # One row per recall file (or MISSING day) with the number of emails it caused, sent or queued.
    "recall_files": (
        "recall_files",
        """
        WITH mail AS (
            SELECT split_part(message_key, ':', 2) AS manufacturer, regexp_extract(message_key, '[^:]*$') AS upload_id,
                   count(*) AS emails, count(*) FILTER (WHERE sent_at IS NULL) AS emails_queued
            FROM outbox WHERE message_key LIKE 'recall:%' GROUP BY ALL
        )
        SELECT f.manufacturer, f.business_date, f.upload_id, f.sha256, f.file_name, f.status, f.error_codes,
               f.warning_codes, f.row_count, f.warning_count, f.size_bytes,
               timezone('UTC', f.remote_mtime) AS remote_mtime, timezone('UTC', f.received_at) AS received_at,
               f.scanner_verdict, f.scanner_name, f.report_path, f.added_count, f.fixed_count, f.changed_count,
               f.outstanding_count, f.hold_reason, timezone('UTC', f.released_at) AS released_at,
               timezone('UTC', f.recorded_at) AS recorded_at, f.dag_run_id,
               coalesce(m.emails, 0) AS emails, coalesce(m.emails_queued, 0) AS emails_queued
        FROM recall_files f
        LEFT JOIN mail m ON m.manufacturer = f.manufacturer AND m.upload_id = f.upload_id
        ORDER BY f.business_date
        """,
    ),
    "outstanding": (
        "recalls",
        "SELECT manufacturer, count(*) AS outstanding FROM recalls WHERE status = 'OUTSTANDING' GROUP BY manufacturer",
    ),
    "emails": (
        "outbox",
        """
        SELECT message_key, split_part(message_key, ':', 1) AS feed, split_part(message_key, ':', 2) AS manufacturer,
               regexp_extract(message_key, '[^:]*$') AS upload_id, recipients, subject, attachment_name,
               timezone('UTC', created_at) AS created_at, timezone('UTC', sent_at) AS sent_at, attempts, last_error
        FROM outbox
        ORDER BY created_at
        """,
    ),
    "mot_files": (
        "mot_delta_files",
        """
        SELECT business_date, kind, file_name, sha256, status, records, created, updated, deleted, unchanged,
               quarantined, superseded, quarantine_share, message, part, line, attempts,
               timezone('UTC', recorded_at) AS recorded_at, timezone('UTC', applied_at) AS applied_at
        FROM mot_delta_files
        ORDER BY business_date, recorded_at
        """,
    ),
    "mot_quarantine": (
        "mot_quarantine",
        f"""
        SELECT business_date, file_name, sha256, part, line, registration, reason, left(record, 2000) AS record,
               timezone('UTC', recorded_at) AS recorded_at
        FROM mot_quarantine
        ORDER BY recorded_at DESC, business_date DESC, sha256, part, line
        LIMIT {QUARANTINE_KEPT}
        """,
    ),
    "mot_quarantine_days": (
        "mot_quarantine",
        "SELECT business_date, count(*) AS records FROM mot_quarantine GROUP BY business_date",
    ),
}


@dataclass(frozen=True)
class Published:
    path: Path
    source_state: str
    seconds: float


def snapshot_path(warehouse_path: str | Path) -> Path:
    """Where the page's snapshot of ``warehouse_path`` lives: ``warehouse.duckdb`` -> ``warehouse.ops.duckdb``."""
    path = Path(warehouse_path)
    return path.with_name(f"{path.stem}.ops.duckdb")


def warehouse_state(warehouse_path: str | Path) -> str:
    """Size and modification time of the warehouse and its WAL: changes with every commit."""
    parts = []
    for candidate in (Path(warehouse_path), Path(f"{warehouse_path}.wal")):
        try:
            stat = candidate.stat()
        except FileNotFoundError:
            parts.append("-")
        else:
            parts.append(f"{stat.st_size}:{stat.st_mtime_ns}")
    return "|".join(parts)


def write_snapshot(con: duckdb.DuckDBPyConnection, target: Path, *, source_state: str, publisher: str) -> None:
    """Copy the page's aggregates from the warehouse connection ``con`` (read-only is enough) into a
    new DuckDB file next to ``target``, then rename it over ``target`` (atomic). The data never
    passes through Python: the new file is attached to ``con`` and filled with CREATE TABLE AS."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = private_temp(target)
    alias = f"ops_snapshot_{uuid.uuid4().hex[:12]}"
    tables = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    attached = False
    try:
        quoted = str(temporary).replace("'", "''")
        con.execute(f"ATTACH '{quoted}' AS {alias} (READ_WRITE)")
        attached = True
        for name, (needs, sql) in QUERIES.items():
            if needs in tables:
                con.execute(f'CREATE TABLE {alias}."{name}" AS {sql}')
        con.execute(
            f"CREATE TABLE {alias}.meta AS SELECT CAST($format AS INTEGER) AS format,"
            " CAST(timezone('UTC', now()) AS TIMESTAMP) AS published_at,"
            " CAST($state AS VARCHAR) AS source_state, CAST($publisher AS VARCHAR) AS publisher",
            {"format": SNAPSHOT_FORMAT, "state": source_state, "publisher": publisher},
        )
        con.execute(f"DETACH {alias}")
        attached = False
        os.replace(temporary, target)
    finally:
        if attached:
            con.execute(f"DETACH {alias}")
        for leftover in (temporary, Path(f"{temporary}.wal")):
            leftover.unlink(missing_ok=True)


def publish_from(
    con: duckdb.DuckDBPyConnection, warehouse_path: str | Path, *, source_state: str, publisher: str
) -> Published:
    """Publish from an open warehouse connection; ``source_state`` must be taken before reading."""
    started = time.monotonic()
    target = snapshot_path(warehouse_path)
    write_snapshot(con, target, source_state=source_state, publisher=publisher)
    return Published(target, source_state, round(time.monotonic() - started, 4))


def publish(warehouse_path: str | Path, *, wait_seconds: float = 30.0, publisher: str = "writer") -> Published:
    """Open the warehouse read-only (waiting up to ``wait_seconds`` for a writer) and publish."""
    from include.warehouse.connection import open_database

    path = Path(warehouse_path)
    if not path.exists():
        raise FileNotFoundError(f"no warehouse at {path}")
    state = warehouse_state(path)  # before reading: a commit after this makes the snapshot look stale
    con = open_database(path, read_only=True, wait_seconds=wait_seconds)
    try:
        return publish_from(con, path, source_state=state, publisher=publisher)
    finally:
        con.close()


def publish_after_commit(warehouse_path: str | Path, *, wait_seconds: float = 30.0) -> Published | None:
    """Refresh the operations page's snapshot; call after a warehouse transaction committed and the
    writing connection is closed. Never raises (a failure is logged; the page shows older data)."""
    try:
        published = publish(warehouse_path, wait_seconds=wait_seconds, publisher="writer")
    except Exception:
        log.warning("could not publish the operations page snapshot of %s", warehouse_path, exc_info=True)
        return None
    log.info("published the operations page snapshot %s in %.3fs", published.path, published.seconds)
    return published
