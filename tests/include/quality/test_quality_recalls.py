"""The recall-state GX checkpoint over a small real warehouse (snapshots applied with state.py).

One clean warehouse is built per module; every corruption test works on its own copy of the
file, so the tests are independent. The Data Docs folder is shared by the module, which also
shows that repeated runs accumulate history in one site.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from include.quality.recalls import recall_metrics, run_recall_checkpoint
from include.recalls.state import apply_snapshot
from include.warehouse import connect, read_only, transaction

D1 = date(2024, 3, 4)
D2 = date(2024, 3, 5)
D3 = date(2024, 3, 6)
START = date(2024, 1, 15)
SCHEMA = pa.schema(
    [
        ("vin", pa.string()),
        ("manufacturer_campaign_reference", pa.string()),
        ("dvsa_campaign_reference", pa.string()),
        ("recall_campaign_start_date", pa.date32()),
    ]
)


def _vin(n: int) -> str:
    return f"WVWZZZ1JZXW{n:06d}"


def apply_day(con, archive: Path, manufacturer: str, day: date, keys: list[tuple[int, str]]) -> None:
    """Write the snapshot Parquet, apply it and record its ACCEPTED file, in one transaction."""
    path = archive / f"{manufacturer}-{day.isoformat()}.parquet"
    pq.write_table(
        pa.table(
            {
                "vin": [_vin(n) for n, _ in keys],
                "manufacturer_campaign_reference": [ref for _, ref in keys],
                "dvsa_campaign_reference": [f"R/2024/{ref}" for _, ref in keys],
                "recall_campaign_start_date": [START] * len(keys),
            },
            schema=SCHEMA,
        ),
        path,
    )
    sha = f"{manufacturer}-{day.isoformat()}-sha"
    with transaction(con):
        change = apply_snapshot(con, manufacturer, day, sha, str(path), len(keys))
        con.execute("DELETE FROM recall_files WHERE manufacturer = ? AND business_date = ?", [manufacturer, day])
        con.execute(
            "INSERT INTO recall_files (manufacturer, business_date, sha256, file_name, status, row_count,"
            " snapshot_path, added_count, fixed_count, changed_count, outstanding_count)"
            " VALUES (?, ?, ?, ?, 'ACCEPTED', ?, ?, ?, ?, ?, ?)",
            [
                manufacturer,
                day,
                sha,
                f"{manufacturer}_{day:%Y%m%d}.csv",
                len(keys),
                str(path),
                change.added,
                change.fixed,
                change.changed,
                change.outstanding,
            ],
        )


@pytest.fixture(scope="module")
def docs_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("quality") / "data_docs")


@pytest.fixture(scope="module")
def clean_warehouse(tmp_path_factory) -> Path:
    """ACME: D1 {1..4}, D2 {1,2,3,5} (4 fixed, 5 new); BOLT: D1 {10, 11}, D2 {10}; one REJECTED file."""
    root = tmp_path_factory.mktemp("recall-warehouse")
    archive = root / "archive"
    archive.mkdir()
    db = root / "warehouse.duckdb"
    with connect(db) as con:
        apply_day(con, archive, "ACME", D1, [(1, "A1"), (2, "A1"), (3, "A2"), (4, "A2")])
        apply_day(con, archive, "ACME", D2, [(1, "A1"), (2, "A1"), (3, "A2"), (5, "A3")])
        apply_day(con, archive, "BOLT", D1, [(10, "B1"), (11, "B1")])
        apply_day(con, archive, "BOLT", D2, [(10, "B1")])
        con.execute(
            "INSERT INTO recall_files (manufacturer, business_date, sha256, file_name, status, error_codes)"
            " VALUES ('CRUX', ?, 'crux-bad', 'CRUX_bad.csv', 'REJECTED', ['E01'])",
            [D2],
        )
    return db


@pytest.fixture
def warehouse(clean_warehouse: Path, tmp_path: Path) -> Path:
    """A private copy of the clean warehouse (its snapshot paths still point at the shared archive)."""
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(clean_warehouse, copy)
    return copy


def failed_metrics(result: dict) -> set[str]:
    """The metric columns named by the failed expectations."""
    names = set()
    for line in result["failed"]:
        for metric in (
            "duplicate_outstanding_keys",
            "duplicate_recall_keys",
            "fixed_before_first_seen",
            "invalid_status",
            "malformed_intervals",
            "keys_with_multiple_open_intervals",
            "overlapping_intervals",
            "missing_from_snapshot",
            "extra_in_snapshot",
            "snapshot_unreadable",
            "changes_added",
            "changes_fixed",
            "changes_changed",
        ):
            if f"({metric} " in line:
                names.add(metric)
    return names


def test_clean_warehouse_passes_and_writes_data_docs(clean_warehouse: Path, docs_dir: str) -> None:
    result = run_recall_checkpoint(str(clean_warehouse), D2, docs_dir)

    assert result["success"], result["failed"]
    assert result["failed"] == []
    assert Path(result["docs_index"]) == Path(docs_dir).resolve() / "index.html"
    assert Path(result["docs_index"]).is_file()
    stats = result["statistics"]
    assert stats["evaluated_expectations"] == stats["successful_expectations"] >= 13
    assert stats["rows"] == 2  # ACME, BOLT; CRUX has only a REJECTED file, which nothing compares
    by_maker = {row["manufacturer"]: row for row in result["metrics"]}
    assert by_maker["ACME"]["changes_added"] == by_maker["ACME"]["file_added_count"] == 1
    assert by_maker["ACME"]["changes_fixed"] == by_maker["ACME"]["file_fixed_count"] == 1
    assert by_maker["BOLT"]["changes_fixed"] == by_maker["BOLT"]["file_fixed_count"] == 1


def test_repeated_runs_are_idempotent_and_accumulate_history(clean_warehouse: Path, docs_dir: str) -> None:
    first = run_recall_checkpoint(str(clean_warehouse), D1, docs_dir)
    second = run_recall_checkpoint(str(clean_warehouse), D1, docs_dir)

    assert first["success"] and second["success"]
    gx_dir = Path(docs_dir).resolve().parent / "gx"
    assert [p.name for p in (gx_dir / "checkpoints").iterdir()] == ["recall_state.json"]
    results = list((gx_dir / "uncommitted" / "validations").rglob("*.json"))
    assert len(results) >= 2
    index = Path(first["docs_index"]).read_text()
    assert D1.isoformat() in index
    assert second["statistics"]["seconds"] < 30


def test_empty_warehouse_succeeds(tmp_path: Path, docs_dir: str) -> None:
    db = tmp_path / "empty.duckdb"
    with connect(db):
        pass

    result = run_recall_checkpoint(str(db), D1, docs_dir)

    assert result["success"], result["failed"]
    assert [row["manufacturer"] for row in result["metrics"]] == ["ALL"]


def test_duplicate_outstanding_key_fails(warehouse: Path, docs_dir: str) -> None:
    with connect(warehouse) as con:
        con.execute("INSERT INTO recalls SELECT * FROM recalls WHERE manufacturer = 'ACME' AND vin = ?", [_vin(1)])

    result = run_recall_checkpoint(str(warehouse), D2, docs_dir)

    assert not result["success"]
    assert failed_metrics(result) == {"duplicate_outstanding_keys", "duplicate_recall_keys"}
    line = next(f for f in result["failed"] if "(duplicate_outstanding_keys " in f)
    assert "unique among outstanding_recalls" in line
    assert "ACME: duplicate_outstanding_keys=1" in line


def test_fixed_before_first_seen_fails(warehouse: Path, docs_dir: str) -> None:
    with connect(warehouse) as con:
        con.execute(
            "UPDATE recalls SET fixed_on = first_seen_on - INTERVAL 1 DAY WHERE manufacturer = 'ACME' AND vin = ?",
            [_vin(4)],
        )

    result = run_recall_checkpoint(str(warehouse), D2, docs_dir)

    assert not result["success"]
    assert failed_metrics(result) == {"fixed_before_first_seen"}
    assert any("fixed_on is never before first_seen_on" in f and "ACME" in f for f in result["failed"])


def test_malformed_and_overlapping_history_fail(warehouse: Path, docs_dir: str) -> None:
    with connect(warehouse) as con:
        # ACME vin 4 was open D1..D2: make it end on the day it started.
        con.execute(
            "UPDATE recall_history SET valid_to = valid_from WHERE manufacturer = 'ACME' AND vin = ?", [_vin(4)]
        )
        # BOLT vin 10: a second open interval overlapping the first.
        con.execute(
            "INSERT INTO recall_history SELECT manufacturer, vin, manufacturer_campaign_reference,"
            " dvsa_campaign_reference, recall_campaign_start_date, valid_from + INTERVAL 1 DAY, NULL, 'CHANGED', NULL"
            " FROM recall_history WHERE manufacturer = 'BOLT' AND vin = ?",
            [_vin(10)],
        )

    result = run_recall_checkpoint(str(warehouse), D2, docs_dir)

    assert not result["success"]
    assert {"malformed_intervals", "keys_with_multiple_open_intervals", "overlapping_intervals"} <= failed_metrics(
        result
    )
    assert any("(malformed_intervals " in f and "ACME" in f for f in result["failed"])
    assert any("(overlapping_intervals " in f and "BOLT" in f for f in result["failed"])


def test_outstanding_not_matching_latest_snapshot_fails(warehouse: Path, docs_dir: str) -> None:
    with connect(warehouse) as con:
        con.execute("DELETE FROM recalls WHERE manufacturer = 'BOLT' AND vin = ?", [_vin(10)])
        con.execute(
            "INSERT INTO recalls SELECT manufacturer, ?, manufacturer_campaign_reference, dvsa_campaign_reference,"
            " recall_campaign_start_date, status, first_seen_on, fixed_on, last_changed_on"
            " FROM recalls WHERE manufacturer = 'ACME' AND vin = ?",
            [_vin(99), _vin(1)],
        )

    result = run_recall_checkpoint(str(warehouse), D2, docs_dir)

    assert not result["success"]
    assert failed_metrics(result) == {"missing_from_snapshot", "extra_in_snapshot"}
    assert any("(extra_in_snapshot " in f and "BOLT: extra_in_snapshot=1" in f for f in result["failed"])
    assert any("(missing_from_snapshot " in f and "ACME: missing_from_snapshot=1" in f for f in result["failed"])


def test_unreadable_snapshot_fails(warehouse: Path, docs_dir: str, tmp_path: Path) -> None:
    with connect(warehouse) as con:
        con.execute(
            "UPDATE recall_snapshots SET snapshot_path = ? WHERE manufacturer = 'BOLT' AND business_date = ?",
            [str(tmp_path / "gone.parquet"), D2],
        )

    result = run_recall_checkpoint(str(warehouse), D2, docs_dir)

    assert failed_metrics(result) == {"snapshot_unreadable"}


def test_day_counts_differing_from_recall_files_fail(warehouse: Path, docs_dir: str) -> None:
    with connect(warehouse) as con:
        con.execute(
            "UPDATE recall_files SET added_count = added_count + 2 WHERE manufacturer = 'ACME' AND business_date = ?",
            [D2],
        )

    assert run_recall_checkpoint(str(warehouse), D1, docs_dir)["success"]  # only the validated day counts
    result = run_recall_checkpoint(str(warehouse), D2, docs_dir)

    assert not result["success"]
    assert failed_metrics(result) == {"changes_added"}
    line = result["failed"][0]
    assert "recall_daily_changes" in line
    assert "ACME: changes_added=1, file_added_count=3" in line


def test_accepted_file_without_applied_snapshot_fails(warehouse: Path, docs_dir: str) -> None:
    with connect(warehouse) as con:
        con.execute("DELETE FROM recall_snapshots WHERE manufacturer = 'BOLT' AND business_date = ?", [D2])

    result = run_recall_checkpoint(str(warehouse), D2, docs_dir)

    assert not result["success"]
    assert "changes_fixed" in failed_metrics(result)
    assert any("BOLT: changes_fixed=None, file_fixed_count=1" in f for f in result["failed"])


def test_late_backfill_refreshes_later_days_counts(tmp_path: Path, docs_dir: str) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    db = tmp_path / "warehouse.duckdb"
    with connect(db) as con:
        apply_day(con, archive, "ACME", D1, [(1, "A1"), (2, "A1")])
        apply_day(con, archive, "ACME", D3, [(1, "A1"), (3, "A1")])  # D3 recorded: added 1, fixed 1
        apply_day(con, archive, "ACME", D2, [(1, "A1"), (2, "A1"), (3, "A1")])  # late: 3 now arrives on D2

    backfilled = run_recall_checkpoint(str(db), D2, docs_dir)
    assert backfilled["success"], backfilled["failed"]
    # The replay of D3 after the late D2 refreshed D3's recorded counts: nothing added on D3 now.
    later = run_recall_checkpoint(str(db), D3, docs_dir)
    assert later["success"], later["failed"]
    with connect(db) as con:
        assert con.execute(
            "SELECT added_count, fixed_count FROM recall_files WHERE manufacturer = 'ACME' AND business_date = ?", [D3]
        ).fetchone() == (0, 1)


def test_metrics_are_computed_in_duckdb_one_row_per_manufacturer(clean_warehouse: Path) -> None:
    with read_only(clean_warehouse) as con:
        frame = recall_metrics(con, D2 + timedelta(days=30))  # a day without files

    assert list(frame["manufacturer"]) == ["ACME", "BOLT"]
    assert frame["changes_added"].isna().all() and frame["file_added_count"].isna().all()
    assert int(frame.drop(columns=["manufacturer"]).select_dtypes("int64").to_numpy().sum()) == 0
