"""Applying staged MOT deliveries to the warehouse, and the delivery audit.

``apply_delta`` is the only code that writes the MOT tables. It runs in one transaction (a
crash or error leaves the previous state), is idempotent (the same file again is a no-op), and
is order independent: the tables depend only on the set of applied files, not on the order
they arrived in. How (see ``sql/apply.sql``):

* every applied record is kept in ``mot_vehicle_events`` (vehicle attributes only, compact);
  for each registration in the file, its ``vehicles`` versions are recomputed from all of its
  events, so a late delta for day D slots into history between its neighbours;
* ``mot_tests``/``mot_defects`` hold the tests of each vehicle's latest record (by business
  date): a record replaces a vehicle's tests only if no later record of it was applied before;
* a test number held by two vehicles' latest records (plate transfer) goes to the newest
  record by a fixed rule, and the other copy is kept in ``mot_tests_shadowed`` so the outcome
  never depends on which file came first.

Quarantined records are stored in ``mot_quarantine`` with reason and location; a file whose
quarantined share exceeds the threshold is HELD and nothing of it is applied.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb

from include.mot.files import DeltaRejected
from include.mot.parse import split_statements, sql_literal, sql_text
from include.mot.stage import StagedDelta, combine_staged

DEFAULT_MAX_QUARANTINE_SHARE = 0.01
SOURCE_RANK = {"bulk": 0, "delta": 1}
_STEP = re.compile(r"^-- step: (\w+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class ApplyResult:
    """Outcome of :func:`apply_delta` / :func:`apply_bulk`, also written to ``mot_delta_files``."""

    status: str
    business_date: date
    file_name: str
    sha256: str
    records: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    quarantined: int = 0
    superseded: int = 0
    apply_seconds: float = 0.0
    already_applied: bool = False
    message: str | None = None


def apply_steps() -> list[tuple[str, list[str]]]:
    """(name, statements) of ``sql/apply.sql`` in order."""
    text = sql_text("apply.sql")
    pieces = _STEP.split(text)
    return [(pieces[i], split_statements(pieces[i + 1])) for i in range(1, len(pieces), 2)]


def _execute_step(con: duckdb.DuckDBPyConnection, name: str, statements: list[str], params: dict[str, Any]) -> None:
    """Run one named step (a seam for tests that inject a failure mid-apply)."""
    for statement in statements:
        con.execute(statement, {k: v for k, v in params.items() if f"${k}" in statement})


def _parquet_list(paths: list[str]) -> str:
    return "[" + ", ".join(sql_literal(p) for p in paths) + "]"


_STAGED_VIEWS = ("mot_stg_vehicles", "mot_stg_tests", "mot_stg_defects")


def _load_staged(con: duckdb.DuckDBPyConnection, staged: StagedDelta) -> None:
    """Expose the staged parquet as views: apply.sql reads each of them about once, so copying
    them into temp tables first (a full decode and re-encode of every test and defect) cost
    more than it saved."""
    for table, paths in zip(_STAGED_VIEWS, (staged.vehicles, staged.tests, staged.defects), strict=True):
        if not paths:
            raise ValueError(f"staged delivery {staged.directory} has no {table} files")
        con.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT * FROM read_parquet({_parquet_list(paths)})")


_TEMP_TABLES = (
    "mot_new_events",
    "mot_aff_events",
    "mot_aff_flagged",
    "mot_apply_counts",
    "mot_x",
    "mot_cand_recs",
    "mot_aff_tests",
    "mot_contested",
    "mot_ranked",
    "mot_new_shadows",
    "mot_replace_tests",
)
# views apply.sql defines over the staged ones (dropped first: they read the temp tables)
_TEMP_VIEWS = ("mot_cand_new", *_STAGED_VIEWS)


# ----------------------------------------------------------------------------------- audit


_AUDIT_COLUMNS = (
    "status",
    "records",
    "created",
    "updated",
    "deleted",
    "unchanged",
    "quarantined",
    "superseded",
    "quarantine_share",
    "uncompressed_bytes",
    "message",
    "part",
    "line",
    "staged_directory",
    "stage_seconds",
    "apply_seconds",
)


def audit_status(con: duckdb.DuckDBPyConnection, business_date: date, *, kind: str = "delta") -> list[dict[str, Any]]:
    """Audit rows of one business day (newest first), as dicts (timestamps as UTC strings)."""
    cursor = con.execute(
        "SELECT * REPLACE (strftime(first_seen_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ') AS first_seen_at,"
        " strftime(recorded_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ') AS recorded_at,"
        " strftime(applied_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ') AS applied_at)"
        " FROM mot_delta_files WHERE business_date = ? AND kind = ? ORDER BY mot_delta_files.recorded_at DESC",
        [business_date, kind],
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _record(con: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> None:
    """Upsert one audit row keyed by (business_date, kind, file_name, sha256); caller's transaction.

    Repeated outcomes of the same delivery update one row (``attempts`` counts them); a real
    file for a day removes that day's MISSING row.
    """
    key = [row["business_date"], row["kind"], row["file_name"], row.get("sha256")]
    values = [row.get(column) for column in _AUDIT_COLUMNS]
    where = " WHERE business_date = ? AND kind = ? AND file_name = ? AND sha256 IS NOT DISTINCT FROM ?"
    assignments = ", ".join(f"{column} = ?" for column in _AUDIT_COLUMNS)
    updated = con.execute(
        f"UPDATE mot_delta_files SET {assignments}, attempts = attempts + 1, recorded_at = now(),"
        " applied_at = CASE WHEN status = 'APPLIED' THEN now() END" + where,
        values + key,
    ).fetchone()[0]
    if not updated:
        columns = ("business_date", "kind", "file_name", "sha256", *_AUDIT_COLUMNS)
        con.execute(
            f"INSERT INTO mot_delta_files ({', '.join(columns)}, applied_at)"
            f" SELECT {', '.join('?' for _ in columns)}, CASE WHEN ? = 'APPLIED' THEN now() END",
            key + values + [row["status"]],
        )
    if row["status"] != "MISSING":
        con.execute("DELETE FROM mot_delta_files WHERE business_date = ? AND kind = ? AND status = 'MISSING'", key[:2])


def _in_transaction(con: duckdb.DuckDBPyConnection, work: Any) -> Any:
    con.execute("BEGIN TRANSACTION")
    try:
        result = work()
        con.execute("COMMIT")
        return result
    except BaseException:
        con.execute("ROLLBACK")
        raise


def record_missing(
    con: duckdb.DuckDBPyConnection,
    business_date: date,
    *,
    file_name: str,
    kind: str = "delta",
    message: str | None = None,
) -> bool:
    """Note that no file arrived for ``business_date``; False if a file was already recorded.

    DVSA says a failed export's changes come in a later delta, so a missing day is an audit
    fact, not an error; the row disappears when a file for that day is recorded.
    """

    def work() -> bool:
        known = con.execute(
            "SELECT count(*) FROM mot_delta_files WHERE business_date = ? AND kind = ? AND status <> 'MISSING'",
            [business_date, kind],
        ).fetchone()[0]
        if known:
            return False
        _record(
            con,
            {
                "business_date": business_date,
                "kind": kind,
                "file_name": file_name,
                "sha256": None,
                "status": "MISSING",
                "message": message or "no file delivered for this business date",
            },
        )
        return True

    return _in_transaction(con, work)


def reject(
    con: duckdb.DuckDBPyConnection,
    *,
    business_date: date,
    file_name: str,
    sha256: str,
    error: DeltaRejected | str,
    kind: str = "delta",
    stage_seconds: float | None = None,
) -> ApplyResult:
    """Record a structurally broken file as REJECTED (nothing of it is applied)."""
    part = error.part if isinstance(error, DeltaRejected) else None
    line = error.line if isinstance(error, DeltaRejected) else None
    message = str(error)

    def work() -> None:
        applied = con.execute(
            "SELECT count(*) FROM mot_delta_files"
            " WHERE business_date = ? AND kind = ? AND file_name = ? AND sha256 = ? AND status = 'APPLIED'",
            [business_date, kind, file_name, sha256],
        ).fetchone()[0]
        if applied:
            return  # never downgrade an applied delivery in the audit
        _record(
            con,
            {
                "business_date": business_date,
                "kind": kind,
                "file_name": file_name,
                "sha256": sha256,
                "status": "REJECTED",
                "message": message,
                "part": part,
                "line": line,
                "stage_seconds": stage_seconds,
            },
        )

    _in_transaction(con, work)
    return ApplyResult("REJECTED", business_date, file_name, sha256, message=message)


def _store_quarantine(con: duckdb.DuckDBPyConnection, staged: StagedDelta, *, file_name: str, sha256: str) -> None:
    con.execute("DELETE FROM mot_quarantine WHERE sha256 = ?", [sha256])
    if staged.quarantine:
        source = f"read_parquet({_parquet_list(staged.quarantine)})"
        con.execute(
            "INSERT INTO mot_quarantine (business_date, file_name, sha256, part, line, registration, reason, record)"
            f" SELECT ?, ?, ?, part, line, registration, reason, record FROM {source} ORDER BY part, line",
            [staged.business_date, file_name, sha256],
        )


def _staged_row(staged: StagedDelta, *, file_name: str, sha256: str, status: str, message: str | None) -> dict:
    return {
        "business_date": staged.business_date,
        "kind": staged.kind,
        "file_name": file_name,
        "sha256": sha256,
        "status": status,
        "records": staged.records,
        "quarantined": staged.quarantined,
        "quarantine_share": staged.quarantine_share,
        "uncompressed_bytes": staged.uncompressed_bytes,
        "staged_directory": staged.directory,
        "stage_seconds": staged.stage_seconds,
        "message": message,
    }


def hold(
    con: duckdb.DuckDBPyConnection, staged: StagedDelta, *, sha256: str, file_name: str, message: str | None = None
) -> ApplyResult:
    """Record a file as HELD: its quarantine is stored for review, nothing else is applied."""
    message = message or (
        f"{staged.quarantined} of {staged.records} records quarantined ({staged.quarantine_share:.2%})"
    )

    def work() -> None:
        _store_quarantine(con, staged, file_name=file_name, sha256=sha256)
        _record(con, _staged_row(staged, file_name=file_name, sha256=sha256, status="HELD", message=message))

    _in_transaction(con, work)
    return ApplyResult(
        "HELD",
        staged.business_date,
        file_name,
        sha256,
        records=staged.records,
        quarantined=staged.quarantined,
        message=message,
    )


# ----------------------------------------------------------------------------------- apply


def _applied(con: duckdb.DuckDBPyConnection, business_date: date, kind: str) -> list[tuple]:
    return con.execute(
        "SELECT sha256, file_name, records, created, updated, deleted, unchanged, quarantined, superseded,"
        " apply_seconds FROM mot_delta_files WHERE business_date = ? AND kind = ? AND status = 'APPLIED'",
        [business_date, kind],
    ).fetchall()


def apply_delta(
    con: duckdb.DuckDBPyConnection,
    staged: StagedDelta,
    *,
    sha256: str,
    file_name: str,
    max_quarantine_share: float = DEFAULT_MAX_QUARANTINE_SHARE,
) -> ApplyResult:
    """Apply one staged delivery in one transaction; see the module docstring for the design.

    Returns APPLIED (with counts), HELD (quarantine share above ``max_quarantine_share``;
    pass a higher share after review to apply it anyway), or REJECTED when a *different* file
    for the same business date was already applied (a correction needs an operator). Applying
    the same file again returns the first result with ``already_applied=True``.
    """
    business_date = staged.business_date
    kind = staged.kind
    for row in _applied(con, business_date, kind):
        if row[0] == sha256:
            return ApplyResult(
                "APPLIED",
                business_date,
                row[1],
                sha256,
                records=row[2] or 0,
                created=row[3] or 0,
                updated=row[4] or 0,
                deleted=row[5] or 0,
                unchanged=row[6] or 0,
                quarantined=row[7] or 0,
                superseded=row[8] or 0,
                apply_seconds=row[9] or 0.0,
                already_applied=True,
            )
        if kind == "delta":
            return reject(
                con,
                business_date=business_date,
                file_name=file_name,
                sha256=sha256,
                error=f"a different file ({row[1]}, sha256 {row[0][:12]}...) is already applied for {business_date}",
                kind=kind,
                stage_seconds=staged.stage_seconds,
            )
    if staged.quarantine_share > max_quarantine_share:
        return hold(con, staged, sha256=sha256, file_name=file_name)

    started = time.perf_counter()
    params = {"business_date": business_date, "source_rank": SOURCE_RANK[kind], "sha256": sha256}

    def work() -> ApplyResult:
        _load_staged(con, staged)
        for name, statements in apply_steps():
            _execute_step(con, name, statements, params)
        records, created, updated, deleted, unchanged = con.execute(
            "SELECT records, created, updated, deleted, unchanged FROM mot_apply_counts"
        ).fetchone()
        superseded = staged.accepted - records
        _store_quarantine(con, staged, file_name=file_name, sha256=sha256)
        seconds = time.perf_counter() - started
        row = _staged_row(staged, file_name=file_name, sha256=sha256, status="APPLIED", message=None)
        row.update(
            created=created,
            updated=updated,
            deleted=deleted,
            unchanged=unchanged,
            superseded=superseded,
            apply_seconds=seconds,
        )
        _record(con, row)
        for view in _TEMP_VIEWS:
            con.execute(f"DROP VIEW IF EXISTS {view}")
        for table in _TEMP_TABLES:
            con.execute(f"DROP TABLE IF EXISTS {table}")
        return ApplyResult(
            "APPLIED",
            business_date,
            file_name,
            sha256,
            records=staged.records,
            created=created,
            updated=updated,
            deleted=deleted,
            unchanged=unchanged,
            quarantined=staged.quarantined,
            superseded=superseded,
            apply_seconds=seconds,
        )

    return _in_transaction(con, work)


def apply_bulk(
    con: duckdb.DuckDBPyConnection,
    staged_parts: list[StagedDelta],
    *,
    sha256: str,
    file_name: str,
    max_quarantine_share: float = DEFAULT_MAX_QUARANTINE_SHARE,
) -> ApplyResult:
    """Apply all staged parts of a bulk file at once: the only step holding the write lock.

    The bulk is the state as of its business date; it goes through the same versioned apply
    as a delta (source rank 0, so a delta of the same day counts as later).
    """
    return apply_delta(
        con, combine_staged(staged_parts), sha256=sha256, file_name=file_name, max_quarantine_share=max_quarantine_share
    )
