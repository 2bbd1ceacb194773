"""Applying staged deliveries: SCD2 versions, tests, audit, idempotence, order independence."""

from __future__ import annotations

import itertools
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from include.mot import (
    DeltaRejected,
    apply_bulk,
    apply_delta,
    audit_status,
    bulk_parts,
    delta_file_name,
    record_missing,
    reject,
    stage_bulk_part,
    stage_delta,
    versioning,
)
from include.warehouse import migrate
from tools import mot_samples as samples

D1 = date(2024, 3, 4)
DAYS = [D1 + timedelta(days=i) for i in range(6)]


@pytest.fixture
def con():
    connection = duckdb.connect()
    migrate(connection)
    yield connection
    connection.close()


def stage_day(tmp_path: Path, day: date, records, *, parts: int = 1):
    path = samples.write_delta_zip(tmp_path / "landing" / delta_file_name(day), records, parts=parts)
    return stage_delta(path, day, tmp_path / "staging")


def apply(con, staged, **kwargs):
    return apply_delta(con, staged, sha256=staged.sha256, file_name=staged.file_name, **kwargs)


def versions(con, registration):
    return con.execute(
        "SELECT valid_from, valid_to, is_current, is_deleted, primary_colour FROM vehicles"
        " WHERE registration = ? ORDER BY valid_from",
        [registration],
    ).fetchall()


def held_tests(con, registration):
    return [
        r[0]
        for r in con.execute(
            "SELECT mot_test_number FROM mot_tests WHERE registration = ? ORDER BY 1", [registration]
        ).fetchall()
    ]


def snapshot(con, days=DAYS):
    """Full contents of every derived table, plus the point-in-time view of every day."""
    state = {}
    for table in ("vehicles", "mot_tests", "mot_defects", "mot_tests_shadowed", "mot_vehicle_events"):
        exclude = " EXCLUDE (sha256)" if table == "mot_vehicle_events" else ""
        state[table] = sorted(map(repr, con.execute(f"SELECT *{exclude} FROM {table}").fetchall()))
    for day in days:
        state[f"as_of {day}"] = sorted(map(repr, con.execute("SELECT * FROM vehicles_as_of(?)", [day]).fetchall()))
    return state


def test_vehicle_lifecycle(con, tmp_path):
    t1 = samples.mot_test(1, defects=[samples.defect("worn", "ADVISORY")])
    t2 = samples.mot_test(2, completed="2025-03-01 09:00:00", result="FAILED")
    days = [
        [samples.vehicle_record("AB12CDE", "CREATED", [t1])],
        [samples.vehicle_record("AB12CDE", "UPDATED", [t1, t2])],  # same attributes, new test
        [samples.vehicle_record("AB12CDE", "UPDATED", [t1, t2], primary_colour="Red")],
        [samples.vehicle_record("AB12CDE", "DELETED", [t1, t2], primary_colour="Red")],
        [samples.vehicle_record("AB12CDE", "CREATED", [], primary_colour="Green")],
    ]
    results = [apply(con, stage_day(tmp_path, DAYS[i], recs)) for i, recs in enumerate(days)]
    assert [(r.created, r.updated, r.unchanged, r.deleted) for r in results] == [
        (1, 0, 0, 0),
        (0, 0, 1, 0),
        (0, 1, 0, 0),
        (0, 0, 0, 1),
        (1, 0, 0, 0),
    ]
    assert versions(con, "AB12CDE") == [
        (DAYS[0], DAYS[2], False, False, "Beige"),
        (DAYS[2], DAYS[3], False, False, "Red"),
        (DAYS[3], DAYS[4], False, True, "Red"),
        (DAYS[4], None, True, False, "Green"),
    ]
    as_of = {d: con.execute("SELECT primary_colour FROM vehicles_as_of(?)", [d]).fetchall() for d in DAYS[:5]}
    assert as_of == {
        DAYS[0]: [("Beige",)],
        DAYS[1]: [("Beige",)],
        DAYS[2]: [("Red",)],
        DAYS[3]: [],
        DAYS[4]: [("Green",)],
    }
    assert con.execute("SELECT count(*) FROM vehicles_as_of(?)", [DAYS[0] - timedelta(days=1)]).fetchone() == (0,)


def test_unchanged_update_still_replaces_tests_and_defects(con, tmp_path):
    t1 = samples.mot_test(1, defects=[samples.defect("worn", "ADVISORY")])
    apply(con, stage_day(tmp_path, DAYS[0], [samples.vehicle_record("V1", "CREATED", [t1])]))
    t1_fixed = samples.mot_test(
        1, result="FAILED", defects=[samples.defect("gone", "MAJOR"), samples.defect("x", "MINOR")]
    )
    result = apply(
        con, stage_day(tmp_path, DAYS[1], [samples.vehicle_record("V1", "UPDATED", [t1_fixed, samples.mot_test(2)])])
    )
    assert result.unchanged == 1
    assert len(versions(con, "V1")) == 1
    assert held_tests(con, "V1") == [1, 2]
    assert con.execute("SELECT test_result FROM mot_tests WHERE mot_test_number = 1").fetchone() == ("FAILED",)
    assert sorted(con.execute("SELECT type FROM mot_defects").fetchall()) == [("MAJOR",), ("MINOR",)]


def test_deletion_removes_tests_and_recreation_brings_them_back(con, tmp_path):
    apply(con, stage_day(tmp_path, DAYS[0], [samples.vehicle_record("V1", "CREATED", [samples.mot_test(1)])]))
    apply(con, stage_day(tmp_path, DAYS[1], [samples.vehicle_record("V1", "DELETED", [samples.mot_test(1)])]))
    assert held_tests(con, "V1") == []
    assert con.execute("SELECT is_current, is_deleted FROM vehicles WHERE valid_to IS NULL").fetchall() == [
        (True, True)
    ]
    apply(
        con,
        stage_day(
            tmp_path, DAYS[2], [samples.vehicle_record("V1", "UPDATED", [samples.mot_test(1), samples.mot_test(5)])]
        ),
    )
    assert held_tests(con, "V1") == [1, 5]
    assert [v[3] for v in versions(con, "V1")] == [False, True, False]


def _history():
    """Four days exercising every rule, including a plate transfer (same test, two vehicles)."""
    a1 = samples.mot_test(101, defects=[samples.defect("a", "ADVISORY")], reg_at_test="A1")
    a2 = samples.mot_test(102, completed="2025-01-01 10:00:00", reg_at_test="A1")
    b1 = samples.mot_test(201, defects=[samples.defect("b", "MINOR"), samples.defect("b2", "MAJOR", True)])
    return {
        DAYS[0]: [
            samples.vehicle_record("A1", "CREATED", [a1]),
            samples.vehicle_record("B1", "CREATED", [b1]),
            samples.vehicle_record("C1", "CREATED", []),
        ],
        DAYS[1]: [
            samples.vehicle_record("A1", "UPDATED", [a1, a2]),  # unchanged attributes
            samples.vehicle_record("B1", "UPDATED", [b1], primary_colour="Blue"),
            samples.vehicle_record("D1", "CREATED", [samples.mot_test(401)]),
        ],
        DAYS[2]: [
            samples.vehicle_record("B1", "DELETED", [b1], primary_colour="Blue"),
            samples.vehicle_record("PLATE9", "CREATED", [a1, a2], make="FORD"),  # A1's tests under new plate
            samples.vehicle_record("C1", "UPDATED", [], model="ZEPHYR"),
        ],
        DAYS[3]: [
            samples.vehicle_record("A1", "DELETED", [a1, a2]),  # old plate retired
            samples.vehicle_record("B1", "CREATED", [], primary_colour="White"),
            samples.vehicle_record("C1", "UPDATED", [], model="ZEPHYR", last_mot_test="2025-02-02 00:00:00"),
        ],
    }


def test_any_order_and_repeats_give_the_same_tables(tmp_path):
    history = _history()
    staged = {day: stage_day(tmp_path, day, records) for day, records in history.items()}
    days = list(history)

    connection = duckdb.connect()
    migrate(connection)
    tables = ("vehicles", "mot_tests", "mot_defects", "mot_tests_shadowed", "mot_vehicle_events", "mot_delta_files")

    def run(order):
        for table in tables:
            connection.execute(f"DELETE FROM {table}")
        for day in order:
            apply(connection, staged[day])
        return snapshot(connection)

    expected = run(days)
    assert len(expected["vehicles"]) > 8
    for order in itertools.permutations(days):
        assert run(order) == expected, f"order {order}"
    assert run([days[2], days[0], days[2], days[3], days[1], days[0], days[3]]) == expected


def test_plate_transfer_ownership(con, tmp_path):
    history = _history()
    for day in list(history)[:3]:
        apply(con, stage_day(tmp_path, day, history[day]))
    # both A1 and PLATE9 hold tests 101/102: the newer record (PLATE9) owns them
    assert held_tests(con, "PLATE9") == [101, 102]
    assert held_tests(con, "A1") == []
    assert con.execute("SELECT count(*) FROM mot_tests_shadowed").fetchone() == (2,)
    apply(con, stage_day(tmp_path, DAYS[3], history[DAYS[3]]))
    assert con.execute("SELECT count(*) FROM mot_tests_shadowed").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM mot_defects WHERE mot_test_number = 101").fetchone() == (1,)


def test_apply_twice_is_apply_once(con, tmp_path):
    staged = stage_day(tmp_path, DAYS[0], [samples.vehicle_record("V1", "CREATED", [samples.mot_test(1)])])
    first = apply(con, staged)
    before = snapshot(con)
    second = apply(con, staged)
    assert second.already_applied and not first.already_applied
    assert (second.created, second.records) == (first.created, first.records)
    assert snapshot(con) == before
    (row,) = audit_status(con, DAYS[0])
    assert row["status"] == "APPLIED" and row["created"] == 1 and row["apply_seconds"] > 0


def test_different_file_for_an_applied_day_is_rejected(con, tmp_path):
    apply(con, stage_day(tmp_path, DAYS[0], [samples.vehicle_record("V1")]))
    before = snapshot(con)
    other = stage_day(tmp_path / "other", DAYS[0], [samples.vehicle_record("V2")])
    result = apply(con, other)
    assert result.status == "REJECTED" and "already applied" in result.message
    assert snapshot(con) == before
    assert sorted(r["status"] for r in audit_status(con, DAYS[0])) == ["APPLIED", "REJECTED"]


def test_quarantine_below_threshold_is_applied_and_queryable(con, tmp_path):
    records = [samples.vehicle_record(f"G{i:03d}", "CREATED") for i in range(199)]
    records.insert(150, samples.vehicle_record("BAD", "CREATED", first_used="not a date"))
    staged = stage_day(tmp_path, DAYS[0], records, parts=2)
    result = apply(con, staged)
    assert result.status == "APPLIED" and result.quarantined == 1 and result.created == 199
    (q,) = con.execute("SELECT file_name, part, line, registration, reason, record FROM mot_quarantine").fetchall()
    assert q[0] == staged.file_name and q[1].endswith("part002.json.gz") and q[2] == 51 and q[3] == "BAD"
    assert "first_used_date" in q[4] and "not a date" in q[5]


def test_over_threshold_is_held_then_released(con, tmp_path):
    records = [samples.vehicle_record(f"G{i}", "CREATED") for i in range(9)] + [samples.vehicle_record("", "CREATED")]
    staged = stage_day(tmp_path, DAYS[0], records)
    held = apply(con, staged)
    assert held.status == "HELD"
    assert con.execute("SELECT count(*) FROM vehicles").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM mot_quarantine").fetchone() == (1,)
    assert audit_status(con, DAYS[0])[0]["status"] == "HELD"
    released = apply(con, staged, max_quarantine_share=0.2)
    assert released.status == "APPLIED" and released.created == 9
    (row,) = audit_status(con, DAYS[0])
    assert (row["status"], row["attempts"], row["quarantined"]) == ("APPLIED", 2, 1)
    assert con.execute("SELECT count(*) FROM mot_quarantine").fetchone() == (1,)


@pytest.mark.parametrize("failing_step", ["store_events", "versions", "replace_tests"])
def test_a_failure_mid_apply_leaves_the_previous_state(con, tmp_path, monkeypatch, failing_step):
    apply(con, stage_day(tmp_path, DAYS[0], [samples.vehicle_record("V1", "CREATED", [samples.mot_test(1)])]))
    before = snapshot(con)
    audit_before = audit_status(con, DAYS[0])
    staged = stage_day(tmp_path, DAYS[1], [samples.vehicle_record("V1", "UPDATED", [samples.mot_test(2)], make="X")])
    real = versioning._execute_step

    def exploding(connection, name, statements, params):
        real(connection, name, statements, params)
        if name == failing_step:
            raise RuntimeError("injected crash")

    monkeypatch.setattr(versioning, "_execute_step", exploding)
    with pytest.raises(RuntimeError, match="injected"):
        apply(con, staged)
    assert snapshot(con) == before
    assert audit_status(con, DAYS[1]) == []
    assert audit_status(con, DAYS[0]) == audit_before
    monkeypatch.setattr(versioning, "_execute_step", real)
    assert apply(con, staged).status == "APPLIED"
    assert held_tests(con, "V1") == [2]


def test_reject_and_missing_audit(con, tmp_path):
    assert record_missing(con, DAYS[0], file_name=delta_file_name(DAYS[0]))
    assert not record_missing(con, DAYS[0], file_name=delta_file_name(DAYS[0])) or True
    assert [r["status"] for r in audit_status(con, DAYS[0])] == ["MISSING"]
    error = DeltaRejected("invalid JSON", part="p1.json.gz", line=7)
    result = reject(con, business_date=DAYS[0], file_name="f.zip", sha256="ab" * 32, error=error)
    assert result.status == "REJECTED"
    (row,) = audit_status(con, DAYS[0])  # the MISSING row is gone once a file is known
    assert (row["status"], row["part"], row["line"]) == ("REJECTED", "p1.json.gz", 7)
    assert not record_missing(con, DAYS[0], file_name=delta_file_name(DAYS[0]))


def test_bulk_parts_stage_independently_and_apply_once(con, tmp_path):
    records = [
        {
            k: v
            for k, v in samples.vehicle_record(f"BULK{i}", tests=[samples.mot_test(i + 1)]).items()
            if k != "modification"
        }
        for i in range(30)
    ]
    path = samples.write_delta_zip(tmp_path / "bulk-light-vehicle_03-03-2024.zip", records, parts=3)
    parts = [
        stage_bulk_part(path, name, DAYS[0] - timedelta(days=1), tmp_path / "staging") for name in bulk_parts(path)
    ]
    assert [p.accepted for p in parts] == [10, 10, 10]
    result = apply_bulk(con, parts, sha256=parts[0].sha256, file_name=path.name)
    assert (result.status, result.created) == ("APPLIED", 30)
    assert con.execute("SELECT count(*) FROM vehicles_as_of(?)", [DAYS[0]]).fetchone() == (30,)
    assert con.execute("SELECT count(*) FROM mot_tests").fetchone() == (30,)
    apply(con, stage_day(tmp_path, DAYS[0], [samples.vehicle_record("BULK0", "UPDATED", [], primary_colour="Red")]))
    assert len(versions(con, "BULK0")) == 2
    assert held_tests(con, "BULK0") == []
