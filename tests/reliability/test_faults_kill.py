"""SIGKILL of the process applying a recall snapshot or an MOT delta, at several points.

The apply runs in a child process that pauses at a named point (a hook on its DuckDB
connection writes a marker file, then waits); the test SIGKILLs it there, looks at the
warehouse, reruns the apply and compares every table with a fault-free run on a fresh warehouse.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from include.landing.archive import Archive
from include.mot import apply_delta, delta_file_name, stage_delta
from include.recalls.intake import check_file, outcome_to_json, record_day
from include.recalls.state import MassFixGuard
from include.warehouse import connect
from tests.reliability.faults import ACME, HEADER, OPS, archive_upload, run_and_kill, warehouse_tables
from tools import mot_samples as samples

DAY1, DAY2 = date(2026, 11, 2), date(2026, 11, 3)
RECALLS = {
    DAY1: HEADER + b"LH7PRODCJEE012345,ABCCARS123,R/2026/123,2026-10-01\nABCCCX5RZUDE1234,ABCTRUCKS125,,2026-10-03\n",
    # Day 2: one recall fixed (gone), one changed, one new.
    DAY2: HEADER + b"LH7PRODCJEE012345,ABCCARS123,R/2026/999,2026-10-01\nWBA00000000000003,ABCCARS124,,2026-10-05\n",
}

# Where the child is killed: inside the transaction after a given statement, just before COMMIT,
# and just after COMMIT (before the task could report success or move on).
RECALL_POINTS = ["mid:INSERT INTO recall_snapshots", "mid:INSERT INTO recall_files", "before_commit", "after_commit"]
MOT_POINTS = ["mid:INSERT INTO vehicles", "mid:mot_delta_files", "before_commit", "after_commit"]


@pytest.fixture(scope="module")
def recall_outcomes(clamd_service, tmp_path_factory) -> dict[date, list]:
    """Scanned, validated and staged outcomes of both days (computed once, shared by every run)."""
    archive = Archive(tmp_path_factory.mktemp("recall-archive"))
    outcomes = {}
    for day, data in RECALLS.items():
        outcome = check_file(
            archive,
            archive_upload(archive, day, data),
            first_of_day=True,
            clamd_host=clamd_service.host,
            clamd_port=clamd_service.port,
        )
        assert outcome.status == "ACCEPTED", outcome.problems
        outcome.validation_seconds = 0.0
        outcomes[day] = [outcome]
    return outcomes


def _apply_recall_day(warehouse: Path, day: date, outcomes) -> None:
    with connect(warehouse) as con:
        record_day(con, ACME, day, outcomes[day], guard=MassFixGuard(), ops_email=OPS)


@pytest.fixture(scope="module")
def recall_reference(recall_outcomes, tmp_path_factory) -> dict[str, list]:
    warehouse = tmp_path_factory.mktemp("recall-ref") / "warehouse.duckdb"
    for day in (DAY1, DAY2):
        _apply_recall_day(warehouse, day, recall_outcomes)
    return warehouse_tables(warehouse)


@pytest.mark.parametrize("point", RECALL_POINTS)
@pytest.mark.reliability(
    "Faults",
    "The process applying a recall snapshot is killed with SIGKILL mid-transaction, just before COMMIT, "
    "or just after COMMIT",
    "Nothing half-applied is visible after the kill (the warehouse shows the previous day's state, or the "
    "whole committed day); the rerun leaves every table identical to a fault-free run on a fresh warehouse",
)
def test_recall_apply_killed(point, recall_outcomes, recall_reference, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    _apply_recall_day(warehouse, DAY1, recall_outcomes)
    before = warehouse_tables(warehouse)
    job = {
        "kind": "recall_apply",
        "warehouse": str(warehouse),
        "point": point,
        "manufacturer": ACME.__dict__,
        "day": DAY2.isoformat(),
        "outcomes": [outcome_to_json(o) for o in recall_outcomes[DAY2]],
        "ops_email": OPS,
    }
    run_and_kill(job, tmp_path, "recall")

    after_kill = warehouse_tables(warehouse)
    assert after_kill == (recall_reference if point == "after_commit" else before)

    _apply_recall_day(warehouse, DAY2, recall_outcomes)  # the retry
    assert warehouse_tables(warehouse) == recall_reference


def _mot_records(day: date) -> list:
    first = samples.mot_test(1, defects=[samples.defect("worn", "ADVISORY")])
    second = samples.mot_test(2, completed="2025-03-01 09:00:00", result="FAILED")
    if day == DAY1:
        return [
            samples.vehicle_record("AB12CDE", "CREATED", [first]),
            samples.vehicle_record("XY34ZZZ", "CREATED", [samples.mot_test(7)]),
        ]
    return [
        samples.vehicle_record("AB12CDE", "UPDATED", [first, second], primary_colour="Red"),
        samples.vehicle_record("XY34ZZZ", "DELETED", [samples.mot_test(7)]),
        samples.vehicle_record("NEW1", "CREATED", [samples.mot_test(9)]),
    ]


@pytest.fixture(scope="module")
def mot_staged(tmp_path_factory) -> dict[date, object]:
    base = tmp_path_factory.mktemp("mot")
    staged = {}
    for day in (DAY1, DAY2):
        path = samples.write_delta_zip(base / "landing" / delta_file_name(day), _mot_records(day))
        staged[day] = stage_delta(path, day, base / "staging")
    return staged


def _apply_mot_day(warehouse: Path, staged) -> None:
    with connect(warehouse) as con:
        result = apply_delta(con, staged, sha256=staged.sha256, file_name=staged.file_name)
    assert result.status == "APPLIED"


@pytest.fixture(scope="module")
def mot_reference(mot_staged, tmp_path_factory) -> dict[str, list]:
    warehouse = tmp_path_factory.mktemp("mot-ref") / "warehouse.duckdb"
    for day in (DAY1, DAY2):
        _apply_mot_day(warehouse, mot_staged[day])
    return warehouse_tables(warehouse)


@pytest.mark.parametrize("point", MOT_POINTS)
@pytest.mark.reliability(
    "Faults",
    "The process applying an MOT delta is killed with SIGKILL mid-transaction (after the vehicles rewrite, "
    "after the audit row), just before COMMIT, or just after COMMIT",
    "Nothing half-applied is visible after the kill; the rerun applies the delta once (or sees it already "
    "applied) and every table is identical to a fault-free run on a fresh warehouse",
)
def test_mot_apply_killed(point, mot_staged, mot_reference, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    _apply_mot_day(warehouse, mot_staged[DAY1])
    before = warehouse_tables(warehouse)
    staged = mot_staged[DAY2]
    job = {
        "kind": "mot_apply",
        "warehouse": str(warehouse),
        "point": point,
        "staged": staged.to_dict(),
        "sha256": staged.sha256,
        "file_name": staged.file_name,
    }
    run_and_kill(job, tmp_path, "mot")

    after_kill = warehouse_tables(warehouse)
    assert after_kill == (mot_reference if point == "after_commit" else before)

    _apply_mot_day(warehouse, staged)  # the retry
    assert warehouse_tables(warehouse) == mot_reference
