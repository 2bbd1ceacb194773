"""The MOT GX checkpoint over a small warehouse whose MOT rows are inserted directly.

One clean warehouse per module; each corruption test works on its own copy of the file.
"""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

from include.quality.mot import ODOMETER_UNITS, TEST_RESULTS, run_mot_checkpoint
from include.warehouse import connect

D1 = date(2024, 3, 4)
D2 = date(2024, 3, 5)
D3 = date(2024, 3, 6)

VEHICLE_COLUMNS = "registration, make, model, valid_from, valid_to, is_current, is_deleted, modification"
TEST_COLUMNS = "mot_test_number, registration, completed_date, test_result, odometer_value, odometer_unit, record_date"
DELTA_COLUMNS = (
    "business_date, kind, file_name, sha256, status, records, created, updated, deleted, unchanged,"
    " quarantined, superseded, quarantine_share"
)


@pytest.fixture(scope="module")
def docs_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("quality") / "data_docs")


@pytest.fixture(scope="module")
def clean_warehouse(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("mot-warehouse") / "warehouse.duckdb"
    with connect(db) as con:
        con.executemany(
            f"INSERT INTO vehicles ({VEHICLE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                ("AB12CDE", "FORD", "FIESTA", D1, D2, False, False, "CREATED"),
                ("AB12CDE", "FORD", "FIESTA ST", D2, None, True, False, "UPDATED"),
                ("XY34ZZZ", "VW", "GOLF", D1, None, True, False, "CREATED"),
                ("GONE123", "FIAT", "PANDA", D1, D2, False, False, "CREATED"),
                ("GONE123", "FIAT", "PANDA", D2, None, True, True, "DELETED"),
            ],
        )
        con.executemany(
            f"INSERT INTO mot_tests ({TEST_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (1001, "AB12CDE", "2024-03-01 10:00:00", "PASSED", 42000, "MI", D2),
                (1002, "AB12CDE", "2023-03-01 10:00:00", "FAILED", 35000, "MI", D2),
                (2001, "XY34ZZZ", "2024-02-01 09:00:00", "PASSED", 61000, "KM", D1),
                (2002, "XY34ZZZ", "2024-02-02 09:00:00", None, None, None, D1),
            ],
        )
        con.executemany(
            f"INSERT INTO mot_delta_files ({DELTA_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (D1, "bulk", "bulk.zip", "s1", "APPLIED", 3, 3, 0, 0, 0, 0, 0, 0.0),
                (D2, "delta", "delta-d2.zip", "s2", "APPLIED", 10, 1, 1, 1, 6, 1, 0, 0.1),
                (D2, "delta", "delta-d2-bad.zip", "s3", "HELD", 4, None, None, None, None, 2, None, 0.5),
                (D2, "bulk", "bulk-d2.zip", None, "MISSING", None, None, None, None, None, None, None, None),
            ],
        )
    return db


@pytest.fixture
def warehouse(clean_warehouse: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(clean_warehouse, copy)
    return copy


def failed_metrics(result: dict) -> set[str]:
    """The metric columns named by the failed expectations."""
    return {re.search(r"'column': '(\w+)'", line).group(1) for line in result["failed"]}


def test_clean_warehouse_passes_and_writes_data_docs(clean_warehouse: Path, docs_dir: str) -> None:
    result = run_mot_checkpoint(str(clean_warehouse), D2, docs_dir)

    assert result["success"], result["failed"]
    assert result["skipped"] == []
    assert Path(result["docs_index"]) == Path(docs_dir).resolve() / "index.html"
    assert Path(result["docs_index"]).is_file()
    assert result["statistics"]["evaluated_expectations"] == 12
    (metrics,) = result["metrics"]
    assert metrics["business_date"] == D2.isoformat()
    assert metrics["day_records"] == 14
    assert metrics["day_quarantined"] == 3
    assert metrics["day_quarantine_share"] == pytest.approx(3 / 14)


def test_day_without_deliveries_passes(clean_warehouse: Path, docs_dir: str) -> None:
    result = run_mot_checkpoint(str(clean_warehouse), D3, docs_dir)

    assert result["success"], result["failed"]
    assert result["metrics"][0]["day_records"] == 0
    assert result["metrics"][0]["day_quarantine_share"] is None


@pytest.mark.parametrize(
    ("corruption", "expected"),
    [
        pytest.param(
            ["UPDATE vehicles SET is_current = true WHERE registration = 'AB12CDE'"],
            {"registrations_with_multiple_current"},
            id="two-current-versions",
        ),
        pytest.param(
            [
                f"INSERT INTO vehicles ({VEHICLE_COLUMNS}) VALUES ('XY34ZZZ', 'VW', 'GOLF', DATE '{D2}', NULL, false,"
                " false, 'UPDATED')"
            ],
            {"overlapping_vehicle_intervals"},
            id="overlapping-versions",
        ),
        pytest.param(
            ["UPDATE vehicles SET valid_to = valid_from WHERE registration = 'AB12CDE' AND NOT is_current"],
            {"malformed_vehicle_intervals"},
            id="empty-interval",
        ),
        pytest.param(
            [
                f"INSERT INTO mot_tests ({TEST_COLUMNS})"
                f" SELECT {TEST_COLUMNS} FROM mot_tests WHERE mot_test_number = 1001"
            ],
            {"duplicate_mot_test_numbers"},
            id="duplicate-test-number",
        ),
        pytest.param(
            [
                "UPDATE mot_tests SET test_result = 'PASS' WHERE mot_test_number = 1001",
                "UPDATE mot_tests SET odometer_unit = 'MILES' WHERE mot_test_number = 1002",
            ],
            {"unknown_test_results", "unknown_odometer_units"},
            id="unknown-enumerations",
        ),
        pytest.param(
            [f"UPDATE mot_delta_files SET created = -1 WHERE business_date = DATE '{D2}' AND status = 'APPLIED'"],
            {"day_negative_counts"},
            id="negative-count",
        ),
        pytest.param(
            [
                f"UPDATE mot_delta_files SET quarantine_share = NULL"
                f" WHERE business_date = DATE '{D2}' AND status = 'HELD'"
            ],
            {"day_files_without_quarantine_share"},
            id="share-not-recorded",
        ),
        pytest.param(
            [f"UPDATE mot_delta_files SET quarantined = 50 WHERE business_date = DATE '{D2}' AND status = 'HELD'"],
            {"day_quarantined_over_records", "day_quarantine_share"},
            id="quarantined-more-than-records",
        ),
    ],
)
def test_corruption_fails_the_named_expectation(
    warehouse: Path, docs_dir: str, corruption: list[str], expected: set[str]
) -> None:
    with connect(warehouse) as con:
        for statement in corruption:
            con.execute(statement)

    result = run_mot_checkpoint(str(warehouse), D2, docs_dir)

    assert not result["success"]
    assert failed_metrics(result) == expected, result["failed"]
    assert all(D2.isoformat() in line for line in result["failed"])


def test_corruption_on_another_day_does_not_fail_this_day(warehouse: Path, docs_dir: str) -> None:
    with connect(warehouse) as con:
        con.execute("UPDATE mot_delta_files SET quarantine_share = NULL WHERE business_date = ?", [D1])

    assert run_mot_checkpoint(str(warehouse), D2, docs_dir)["success"]
    assert failed_metrics(run_mot_checkpoint(str(warehouse), D1, docs_dir)) == {"day_files_without_quarantine_share"}


def test_missing_mot_tables_are_skipped(tmp_path: Path, docs_dir: str) -> None:
    bare = tmp_path / "bare.duckdb"
    duckdb.connect(str(bare)).close()

    result = run_mot_checkpoint(str(bare), D2, docs_dir)

    assert result["success"]
    assert result["statistics"]["evaluated_expectations"] == 0
    assert len(result["skipped"]) == 12
    assert all("does not exist" in reason for reason in result["skipped"])


def test_only_existing_tables_are_checked(tmp_path: Path, docs_dir: str) -> None:
    partial = tmp_path / "partial.duckdb"
    con = duckdb.connect(str(partial))
    con.execute(
        "CREATE TABLE vehicles (registration VARCHAR, valid_from DATE, valid_to DATE, is_current BOOLEAN);"
        "INSERT INTO vehicles VALUES"
        " ('AB12CDE', DATE '2024-03-04', NULL, true), ('AB12CDE', DATE '2024-03-05', NULL, true)"
    )
    con.close()

    result = run_mot_checkpoint(str(partial), D2, docs_dir)

    assert result["statistics"]["evaluated_expectations"] == 3
    assert len(result["skipped"]) == 9
    assert failed_metrics(result) == {"registrations_with_multiple_current", "overlapping_vehicle_intervals"}


def test_enumerations_match_the_mot_parser() -> None:
    try:
        from include.mot import schema
    except Exception as exc:  # the MOT package is optional for this module
        pytest.skip(f"include.mot.schema not importable: {exc}")
    assert set(TEST_RESULTS) == set(schema.TEST_RESULTS)
    assert set(ODOMETER_UNITS) == set(schema.ODOMETER_UNITS)
