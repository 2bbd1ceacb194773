"""The recall intake steps the DAG runs for one manufacturer and one business day.

``check_files`` does the CPU work (scan, validate, stage) outside the warehouse lock and returns
plain dicts (XCom-friendly). ``record_day`` then takes the write lock briefly and, in one
transaction, records every file, queues the emails, and applies (or holds) the accepted snapshot.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from include.atomic import private_temp
from include.landing.archive import Archive, ReceivedFile
from include.mail.outbox import enqueue
from include.recalls.notify import Manufacturer, ops_message, rejection_message, report_csv
from include.recalls.spec import Code
from include.recalls.state import MassFixGuard, apply_snapshot, check_mass_fix
from include.recalls.validation import DEFAULT_MAX_BYTES, DEFAULT_MAX_LINE_BYTES, Finding, validate_recall_file
from include.scanning.clamd import scan_file

log = logging.getLogger(__name__)

FEED = "recalls"


@dataclass
class FileOutcome:
    """What the checks decided for one received file (before anything touches the warehouse)."""

    received: dict[str, Any]
    status: str  # ACCEPTED or REJECTED
    problems: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    row_count: int | None = None
    scanner_verdict: str | None = None
    scanner_name: str | None = None
    report_path: str | None = None
    snapshot_path: str | None = None
    validation_seconds: float | None = None

    @property
    def file(self) -> ReceivedFile:
        return ReceivedFile(**self.received)

    @property
    def codes(self) -> list[str]:
        return [p["code"] for p in self.problems]

    def findings(self) -> list[Finding]:
        return [Finding(p["code"], p["detail"], p["rows"], tuple(p["example_lines"])) for p in self.problems]


def _as_dicts(findings: list[Finding]) -> list[dict[str, Any]]:
    return [
        {"code": str(f.code), "detail": f.detail, "rows": f.rows, "example_lines": list(f.example_lines)}
        for f in findings
    ]


def check_file(
    archive: Archive,
    received: ReceivedFile,
    *,
    first_of_day: bool,
    clamd_host: str,
    clamd_port: int,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> FileOutcome:
    """Scan, then (for the day's first file) validate and stage the accepted snapshot."""
    started = time.monotonic()
    path = archive.object_path(received.sha256)
    if not path.exists() and archive.quarantine_path(received.sha256).exists():
        # Quarantined by an earlier attempt (a rerun, or the same infected file sent again).
        path = archive.quarantine_path(received.sha256)
    scan = scan_file(path, clamd_host, clamd_port)
    outcome = FileOutcome(
        received=asdict(received), status="REJECTED", scanner_verdict=scan.verdict, scanner_name=scan.scanner
    )
    if scan.infected:
        archive.quarantine(received.sha256)
        outcome.problems = _as_dicts([Finding(Code.INFECTED_FILE, f"signature {scan.signature}")])
        return outcome
    if not first_of_day:
        outcome.problems = _as_dicts([Finding(Code.MULTIPLE_FILES, "an earlier file was uploaded the same day")])
        return outcome
    verdict = validate_recall_file(
        archive.read_bytes(received.sha256),
        received.original_name,
        max_bytes=max_bytes,
        max_line_bytes=max_line_bytes,
    )
    outcome.problems = _as_dicts(verdict.problems)
    outcome.warnings = _as_dicts(verdict.warnings)
    outcome.row_count = verdict.row_count
    if len(verdict.report):
        report_path = archive.derived_path(
            "reports", FEED, received.source, received.business_date, f"{received.sha256}.csv"
        )
        report_path.parent.mkdir(parents=True, exist_ok=True)
        # The stored copy is what the email attaches and the operations page serves: formula-safe.
        temp = private_temp(report_path)
        temp.write_bytes(report_csv(verdict.report, max_rows=None))
        temp.replace(report_path)
        outcome.report_path = str(report_path)
    if verdict.accepted:
        import pyarrow.parquet as pq

        snapshot_path = archive.derived_path(
            "snapshots", FEED, received.source, received.business_date, f"{received.sha256}.parquet"
        )
        snapshot_path.parent.mkdir(parents=True, exist_ok=True)
        temp = private_temp(snapshot_path)
        pq.write_table(verdict.snapshot, temp, compression="zstd")
        temp.replace(snapshot_path)
        outcome.snapshot_path = str(snapshot_path)
        outcome.status = "ACCEPTED"
    outcome.validation_seconds = round(time.monotonic() - started, 3)
    return outcome


@dataclass(frozen=True)
class DayResult:
    """What recording a day did, for the task log, the grid and the demo summary."""

    manufacturer: str
    business_date: str
    status: str  # ACCEPTED, REJECTED, HELD, MISSING (of the day's first file)
    files: list[dict[str, Any]]
    queued_messages: list[str]

    @property
    def rejected(self) -> list[dict[str, Any]]:
        return [f for f in self.files if f["status"] == "REJECTED"]


def record_day(
    con: duckdb.DuckDBPyConnection,
    manufacturer: Manufacturer,
    business_date: date,
    outcomes: list[FileOutcome],
    *,
    guard: MassFixGuard,
    ops_email: str,
    dag_run_id: str | None = None,
) -> DayResult:
    """Record the day's files and apply the accepted snapshot, all in one transaction."""
    from include.warehouse import transaction

    queued: list[str] = []
    files: list[dict[str, Any]] = []
    with transaction(con):
        if not outcomes:
            con.execute(
                "DELETE FROM recall_files WHERE manufacturer = ? AND business_date = ? AND status = 'MISSING'",
                [manufacturer.code, business_date],
            )
            if not con.execute(
                "SELECT count(*) FROM recall_files WHERE manufacturer = ? AND business_date = ?",
                [manufacturer.code, business_date],
            ).fetchone()[0]:
                con.execute(
                    "INSERT INTO recall_files (manufacturer, business_date, status, dag_run_id)"
                    " VALUES (?, ?, 'MISSING', ?)",
                    [manufacturer.code, business_date, dag_run_id],
                )
            return DayResult(manufacturer.code, business_date.isoformat(), "MISSING", [], [])
        con.execute(
            "DELETE FROM recall_files WHERE manufacturer = ? AND business_date = ? AND status = 'MISSING'",
            [manufacturer.code, business_date],
        )
        for outcome in outcomes:
            files.append(_record_file(con, manufacturer, business_date, outcome, guard, ops_email, queued, dag_run_id))
    return DayResult(manufacturer.code, business_date.isoformat(), files[0]["status"], files, queued)


def _record_file(
    con: duckdb.DuckDBPyConnection,
    manufacturer: Manufacturer,
    business_date: date,
    outcome: FileOutcome,
    guard: MassFixGuard,
    ops_email: str,
    queued: list[str],
    dag_run_id: str | None,
) -> dict[str, Any]:
    received = outcome.file
    previous = con.execute(
        # released_at as text: fetching a TIMESTAMPTZ needs pytz, which is not installed. It goes back as is.
        "SELECT status, CAST(released_at AS VARCHAR) FROM recall_files"
        " WHERE manufacturer = ? AND business_date = ? AND upload_id = ?",
        [manufacturer.code, business_date, received.upload_id],
    ).fetchone()
    released_at = previous[1] if previous else None
    status, hold_reason, change = outcome.status, None, None
    apply_started = time.monotonic()
    if status == "ACCEPTED":
        check = check_mass_fix(con, manufacturer.code, business_date, outcome.snapshot_path, guard)
        if check.holds and released_at is None:
            status, hold_reason = "HELD", check.describe()
            message = ops_message(
                f"recall:{manufacturer.code}:held:{business_date.isoformat()}:{received.upload_id}",
                ops_email,
                f"Recall snapshot HELD: {manufacturer.name} ({manufacturer.code}), {business_date.isoformat()}",
                [
                    f"The recall file {received.original_name!r} from {manufacturer.name} for "
                    f"{business_date.isoformat()} passed validation but was held: {hold_reason}.",
                    "Nothing was applied. If the file is right, release it with:",
                    f'airflow dags trigger recalls_release_held --conf \'{{"sha256": "{received.sha256}"}}\'',
                ],
            )
            if enqueue(con, message):
                queued.append(message.key)
        else:
            change = apply_snapshot(
                con,
                manufacturer.code,
                business_date,
                received.sha256,
                outcome.snapshot_path,
                _snapshot_rows(outcome.snapshot_path),
            )
    if status == "REJECTED":
        report = _load_report(outcome.report_path)
        message = rejection_message(
            manufacturer,
            received.original_name,
            business_date,
            received.sha256,
            outcome.findings(),
            report,
            upload_id=received.upload_id,
        )
        if enqueue(con, message):
            queued.append(message.key)
        if Code.INFECTED_FILE in outcome.codes:
            alert = ops_message(
                f"recall:{manufacturer.code}:infected:{received.upload_id}",
                ops_email,
                f"Infected recall file quarantined: {manufacturer.code}, {business_date.isoformat()}",
                [
                    f"The file {received.original_name!r} from {manufacturer.name} ({manufacturer.code}) for "
                    f"{business_date.isoformat()} failed the virus scan ({outcome.scanner_verdict}, judged by "
                    f"{outcome.scanner_name}).",
                    f"It was quarantined in the archive (SHA-256 {received.sha256}) and not processed.",
                ],
            )
            if enqueue(con, alert):
                queued.append(alert.key)
    con.execute(
        "DELETE FROM recall_files WHERE manufacturer = ? AND business_date = ? AND upload_id = ?",
        [manufacturer.code, business_date, received.upload_id],
    )
    con.execute(
        """
        INSERT INTO recall_files (manufacturer, business_date, upload_id, sha256, file_name, status, error_codes,
            warning_codes, row_count, warning_count, size_bytes, remote_mtime, received_at, scanner_verdict,
            scanner_name, report_path, snapshot_path, added_count, fixed_count, changed_count,
            outstanding_count, hold_reason, released_at, validation_seconds, apply_seconds, dag_run_id)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, to_timestamp(?), CAST(? AS TIMESTAMPTZ),
                ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [
            manufacturer.code,
            business_date,
            received.upload_id,
            received.sha256,
            received.original_name,
            status,
            outcome.codes,
            [w["code"] for w in outcome.warnings],
            outcome.row_count,
            sum(w["rows"] for w in outcome.warnings),
            received.size,
            received.remote_mtime,
            received.received_at,
            outcome.scanner_verdict,
            outcome.scanner_name,
            outcome.report_path,
            outcome.snapshot_path,
            change.added if change else None,
            change.fixed if change else None,
            change.changed if change else None,
            change.outstanding if change else None,
            hold_reason,
            released_at,
            outcome.validation_seconds,
            round(time.monotonic() - apply_started, 3) if change else None,
            dag_run_id,
        ],
    )
    return {
        "file_name": received.original_name,
        "upload_id": received.upload_id,
        "sha256": received.sha256,
        "status": status,
        "codes": outcome.codes,
        "hold_reason": hold_reason,
        "change": asdict(change) if change else None,
    }


def _load_report(path: str | None):
    if not path or not Path(path).exists():
        return None
    import pandas as pd

    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _snapshot_rows(snapshot_path: str) -> int:
    """Recalls in the snapshot: the file's row count less identical duplicate rows (accepted once)."""
    import pyarrow.parquet as pq

    return pq.read_metadata(snapshot_path).num_rows


def release_held(con: duckdb.DuckDBPyConnection, sha256: str) -> dict[str, Any]:
    """Apply a HELD snapshot an operator has checked, and mark it released."""
    from include.warehouse import transaction

    with transaction(con):
        row = con.execute(
            "SELECT manufacturer, business_date, snapshot_path FROM recall_files WHERE sha256 = ? AND status = 'HELD'",
            [sha256],
        ).fetchone()
        if row is None:
            raise LookupError(f"no HELD recall file with SHA-256 {sha256}")
        code, day, snapshot_path = row
        change = apply_snapshot(con, code, day, sha256, snapshot_path, _snapshot_rows(snapshot_path))
        con.execute(
            "UPDATE recall_files SET status = 'ACCEPTED', released_at = now(), added_count = ?, fixed_count = ?,"
            " changed_count = ?, outstanding_count = ?"
            " WHERE sha256 = ? AND manufacturer = ? AND business_date = ? AND status = 'HELD'",
            [change.added, change.fixed, change.changed, change.outstanding, sha256, code, day],
        )
    return {"manufacturer": code, "business_date": day.isoformat(), "change": asdict(change)}


def outcome_to_json(outcome: FileOutcome) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(outcome)))


def outcome_from_json(data: dict[str, Any]) -> FileOutcome:
    return FileOutcome(**data)
