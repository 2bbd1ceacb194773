"""Recall state: order-independent replay against a plain-Python model, the mass-fix guard, and
atomicity of an apply inside ``warehouse.transaction``."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import include.recalls.state as state
from include.recalls.state import DayChange, MassFixGuard, apply_snapshot, check_mass_fix
from include.recalls.validation import SNAPSHOT_SCHEMA
from include.warehouse import migrate, transaction

Key = tuple[str, str]  # (vin, manufacturer reference)
Attrs = tuple[str | None, date]  # (dvsa reference, start date)

D1, D2, D3, D4, D5 = date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 8), date(2026, 1, 9), date(2026, 1, 12)
S1, S2, S3 = date(2025, 12, 1), date(2025, 12, 2), date(2025, 11, 1)

# ACME over five (not contiguous) days: deletions, reappearances, DVSA reference and start date
# changes (including a DVSA reference going back to blank), a same VIN under a new reference.
ACME: dict[date, dict[Key, Attrs]] = {
    D1: {("V1", "R1"): ("R/1", S1), ("V2", "R1"): ("R/1", S1), ("V3", "R2"): (None, S3), ("V4", "R3"): ("R/3", S3)},
    D2: {("V1", "R1"): ("R/1", S1), ("V3", "R2"): ("R/2", S3), ("V4", "R3"): ("R/3", S3), ("V5", "R1"): ("R/1", S1)},
    D3: {("V1", "R1"): ("R/1", S2), ("V2", "R1"): ("R/1", S1), ("V3", "R2"): ("R/2", S3), ("V5", "R1"): ("R/1", S1)},
    D4: {("V1", "R1"): ("R/1", S2), ("V2", "R1"): ("R/1", S1), ("V3", "R2"): (None, S3), ("V4", "R3"): ("R/X", S3)},
    D5: {("V2", "R1"): ("R/1", S1), ("V1", "R9"): (None, S2), ("V4", "R3"): ("R/X", S3)},
}
# BOLT shares VINs and even a (VIN, reference) key with ACME: its snapshots must never touch ACME's rows.
BOLT: dict[date, dict[Key, Attrs]] = {
    D1: {("V1", "R1"): ("B/1", S3), ("V9", "R9"): (None, S3)},
    D3: {("V1", "R1"): ("B/1", S3)},
}
SNAPSHOTS = {"ACME": ACME, "BOLT": BOLT}
ALL_DAYS = [D1 + timedelta(days=n) for n in range(-1, (D5 - D1).days + 3)]


def sha(manufacturer: str, day: date) -> str:
    return f"{manufacturer}-{day.isoformat()}"


def write_snapshot(folder: Path, name: str, rows: dict[Key, Attrs]) -> str:
    path = folder / f"{name}.parquet"
    table = pa.table(
        {
            "vin": [k[0] for k in rows],
            "manufacturer_campaign_reference": [k[1] for k in rows],
            "dvsa_campaign_reference": [a[0] for a in rows.values()],
            "recall_campaign_start_date": pa.array([a[1] for a in rows.values()], pa.date32()),
        },
        schema=SNAPSHOT_SCHEMA,
    )
    pq.write_table(table, path)
    return str(path)


@pytest.fixture(scope="module")
def snapshot_paths(tmp_path_factory) -> dict[tuple[str, date], str]:
    folder = tmp_path_factory.mktemp("snapshots")
    return {
        (code, day): write_snapshot(folder, sha(code, day), rows)
        for code, days in SNAPSHOTS.items()
        for day, rows in days.items()
    }


@pytest.fixture
def con():
    connection = duckdb.connect(config={"threads": 1})  # tiny tables: threads only add overhead
    migrate(connection)
    yield connection
    connection.close()


def apply(con, paths, code: str, day: date) -> DayChange:
    rows = SNAPSHOTS[code][day]
    with transaction(con):
        return apply_snapshot(con, code, day, sha(code, day), paths[(code, day)], len(rows))


# -- the model: what the tables must hold, computed the obvious way ----------------------------
@dataclass
class Model:
    history: list[tuple]
    recalls: list[tuple]
    changes: list[tuple]

    def outstanding_as_of(self, day: date) -> list[tuple]:
        first_seen: dict[tuple, date] = {}
        for h in self.history:
            key = h[:3]
            first_seen[key] = min(first_seen.get(key, h[5]), h[5])
        return ordered(
            (*h[:5], first_seen[h[:3]]) for h in self.history if h[5] <= day and (h[6] is None or h[6] > day)
        )


def model(applied: dict[str, list[date]]) -> Model:
    history: list[list] = []
    changes: list[tuple] = []
    for code, days in applied.items():
        open_: dict[Key, list] = {}
        seen: set[Key] = set()
        for day in sorted(days):
            snap = SNAPSHOTS[code][day]
            added = fixed = changed = 0
            for key in [k for k in open_ if k not in snap]:
                row = open_.pop(key)
                row[6], row[8] = day, "FIXED"
                fixed += 1
            for key, (dvsa, start) in snap.items():
                if key in open_:
                    row = open_[key]
                    if (row[3], row[4]) == (dvsa, start):
                        continue
                    row[6], row[8] = day, "CHANGED"
                    opened_by = "CHANGED"
                    changed += 1
                else:
                    opened_by = "REAPPEARED" if key in seen else "NEW"
                    added += 1
                new = [code, key[0], key[1], dvsa, start, day, None, opened_by, None]
                history.append(new)
                open_[key] = new
                seen.add(key)
            changes.append((code, day, sha(code, day), added, fixed, changed, len(snap)))
    recalls = []
    for key, group in itertools.groupby(sorted(history, key=lambda h: h[:3]), key=lambda h: tuple(h[:3])):
        rows = list(group)
        latest = max(rows, key=lambda h: h[5])
        outstanding = any(h[6] is None for h in rows)
        recalls.append(
            (
                *key,
                latest[3],
                latest[4],
                "OUTSTANDING" if outstanding else "FIXED",
                min(h[5] for h in rows),
                None if outstanding else max(h[6] for h in rows),
                max(max(h[5] for h in rows), max(h[6] or h[5] for h in rows)),
            )
        )
    return Model(ordered(tuple(h) for h in history), ordered(recalls), ordered(changes))


def ordered(rows) -> list[tuple]:
    """Sorted like DuckDB's ORDER BY ALL (NULLS LAST)."""
    return sorted(rows, key=lambda row: tuple((v is None, 0 if v is None else v) for v in row))


def tables(con) -> dict[str, list[tuple]]:
    return {
        "history": con.execute("SELECT * FROM recall_history ORDER BY ALL").fetchall(),
        "recalls": con.execute("SELECT * FROM recalls ORDER BY ALL").fetchall(),
        "changes": con.execute("SELECT * FROM recall_daily_changes ORDER BY ALL").fetchall(),
        "snapshots": con.execute(
            "SELECT manufacturer, business_date, sha256, snapshot_path, row_count FROM recall_snapshots ORDER BY ALL"
        ).fetchall(),
    }


def outstanding_as_of(con, day: date) -> list[tuple]:
    return con.execute("SELECT * FROM outstanding_recalls_as_of(?) ORDER BY ALL", [day]).fetchall()


def assert_matches(con, expected: Model) -> None:
    got = tables(con)
    assert got["history"] == expected.history
    assert got["recalls"] == expected.recalls
    assert got["changes"] == expected.changes
    for day in ALL_DAYS:
        assert outstanding_as_of(con, day) == expected.outstanding_as_of(day), day


def test_model_sanity():
    """The scenario really exercises what it claims to."""
    m = model({"ACME": list(ACME)})
    opened = {h[7] for h in m.history}
    closed = {h[8] for h in m.history}
    assert opened == {"NEW", "REAPPEARED", "CHANGED"}
    assert closed == {"FIXED", "CHANGED", None}
    assert ("ACME", D1, "ACME-2026-01-05", 4, 0, 0, 4) in m.changes


def test_one_pass_in_date_order_matches_the_model(con, snapshot_paths):
    for code, days in SNAPSHOTS.items():
        for day in sorted(days):
            change = apply(con, snapshot_paths, code, day)
            expected = next(c for c in model({code: list(days)}).changes if c[1] == day)
            assert change == DayChange(*expected[3:])
    assert_matches(con, model({code: list(days) for code, days in SNAPSHOTS.items()}))
    # The current view agrees with the as-of macro for the latest day.
    current = con.execute("SELECT * FROM outstanding_recalls ORDER BY ALL").fetchall()
    assert current == outstanding_as_of(con, D5 + timedelta(days=30))


STATE_TABLES = ("recall_snapshots", "recall_history", "recalls")


def save_state(con, name: str) -> None:
    for table in STATE_TABLES:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name}_{table} AS SELECT * FROM {table}")


def restore_state(con, name: str) -> None:
    for table in STATE_TABLES:
        con.execute(f"DELETE FROM {table}")
        con.execute(f"INSERT INTO {table} SELECT * FROM {name}_{table}")


def check_against_model(con, applied: dict[str, list[date]], *, as_of: bool = True, context=None) -> None:
    expected = model(applied)
    got = tables(con)
    assert got["history"] == expected.history, context
    assert got["recalls"] == expected.recalls, context
    assert got["changes"] == expected.changes, context
    if as_of:
        for day in ALL_DAYS:
            assert outstanding_as_of(con, day) == expected.outstanding_as_of(day), (context, day)


def test_every_order_of_five_days_gives_the_same_tables(con, snapshot_paths):
    """Every order, by induction over the tree of orders.

    Applying a day only reads the tables, so the state after any order is reached by a chain of
    steps "state of the set S, then day d". Each of the 80 steps (S, d not in S) is checked here from
    S's exact tables to the model of S + {d}; so every one of the 120 orders (and every prefix of
    one) ends in the model's tables. Applying each day of a set again must change nothing (repeats).
    BOLT's snapshots are applied first: ACME's applies must never touch its rows.
    """
    for day in BOLT:
        apply(con, snapshot_paths, "BOLT", day)
    bolt = list(BOLT)
    days = sorted(ACME)
    saved = {frozenset(): "s0"}
    save_state(con, "s0")
    steps = 0
    for size in range(len(days)):
        for subset in [s for s in list(saved) if len(s) == size]:
            for day in (d for d in days if d not in subset):
                restore_state(con, saved[subset])
                apply(con, snapshot_paths, "ACME", day)
                steps += 1
                after = subset | {day}
                check_against_model(
                    con, {"ACME": sorted(after), "BOLT": bolt}, as_of=after not in saved, context=(sorted(subset), day)
                )
                if after not in saved:
                    saved[after] = f"s{len(saved)}"
                    save_state(con, saved[after])
    assert steps == 80
    assert len(saved) == 32
    # Repeats: on the full set, applying any day again (in any order) changes nothing.
    for day in [D3, D1, D5, D3, D2, D4]:
        apply(con, snapshot_paths, "ACME", day)
        check_against_model(con, {"ACME": days, "BOLT": bolt}, as_of=False, context=("repeat", day))
    check_against_model(con, {"ACME": days, "BOLT": bolt})


@pytest.mark.parametrize(
    "order",
    [
        (D1, D2, D3, D4, D5),
        (D5, D4, D3, D2, D1),
        (D3, D5, D1, D4, D2),
        (D2, D2, D4, D1, D1, D5, D3, D5),
        (D4, D1, D5, D3, D1, D2, D4),
    ],
    ids=lambda order: ",".join(d.strftime("%d") for d in order),
)
def test_whole_orders_with_repeats_end_to_end(con, snapshot_paths, order):
    """A few whole orders applied literally, BOLT interleaved, with repeated days."""
    apply(con, snapshot_paths, "BOLT", D3)
    for i, day in enumerate(order):
        apply(con, snapshot_paths, "ACME", day)
        if i == 1:
            apply(con, snapshot_paths, "BOLT", D1)
    check_against_model(con, {"ACME": list(ACME), "BOLT": list(BOLT)})


def test_late_snapshot_slots_in(con, snapshot_paths):
    for day in (D1, D2, D4, D5):
        apply(con, snapshot_paths, "ACME", day)
    assert_matches(con, model({"ACME": [D1, D2, D4, D5]}))
    change = apply(con, snapshot_paths, "ACME", D3)
    expected = model({"ACME": list(ACME)})
    assert_matches(con, expected)
    assert change == DayChange(*next(c for c in expected.changes if c[1] == D3)[3:])
    # V4/R3 was outstanding on D2, fixed by the late D3 file and reappeared (changed) on D4.
    v4 = [h for h in tables(con)["history"] if h[1] == "V4"]
    assert [(h[5], h[6], h[7], h[8]) for h in v4] == [(D1, D3, "NEW", "FIXED"), (D4, None, "REAPPEARED", None)]


def test_reapplying_a_day_with_different_content_replaces_it(con, snapshot_paths, tmp_path):
    for day in sorted(ACME):
        apply(con, snapshot_paths, "ACME", day)
    # A corrected D3 file (e.g. released after a hold) without V5: V5 is now fixed on D3.
    corrected = dict(ACME[D3])
    del corrected[("V5", "R1")]
    path = write_snapshot(tmp_path, "corrected", corrected)
    with transaction(con):
        apply_snapshot(con, "ACME", D3, "corrected", path, len(corrected))
    v5 = con.execute("SELECT valid_from, valid_to, closed_by FROM recall_history WHERE vin = 'V5'").fetchall()
    assert v5 == [(D2, D3, "FIXED")]
    assert con.execute("SELECT count(*) FROM recall_snapshots WHERE business_date = ?", [D3]).fetchone() == (1,)


# -- the mass-fix guard ------------------------------------------------------------------------
def many(n: int, prefix: str = "V") -> dict[Key, Attrs]:
    return {(f"{prefix}{i:05d}", "R1"): ("R/1", S1) for i in range(n)}


def apply_rows(con, tmp_path, code: str, day: date, rows: dict[Key, Attrs]) -> None:
    path = write_snapshot(tmp_path, f"{code}-{day}", rows)
    with transaction(con):
        apply_snapshot(con, code, day, f"{code}-{day}", path, len(rows))


def guard_check(con, tmp_path, code: str, day: date, rows: dict[Key, Attrs], guard: MassFixGuard):
    path = write_snapshot(tmp_path, f"check-{code}-{day}-{len(rows)}", rows)
    return check_mass_fix(con, code, day, path, guard)


@pytest.mark.parametrize(
    ("outstanding", "kept", "max_share", "max_count", "holds"),
    [
        (10, 4, 0.5, 3, True),  # fixes 6: 60% > 50% and 6 > 3
        (10, 5, 0.5, 3, False),  # fixes 5: exactly 50% is not more than 50%
        (10, 7, 0.5, 2, False),  # fixes 3 > 2 but only 30%
        (100, 90, 0.05, 20, False),  # fixes 10: share exceeded, count not
        (4, 0, 0.5, 5, False),  # fixes all 4: share exceeded, count not
        (10, 0, 0.5, 10, False),  # fixes 10: count equal to the limit is not more
        (10, 0, 0.5, 9, True),
    ],
)
def test_mass_fix_needs_both_share_and_count(con, tmp_path, outstanding, kept, max_share, max_count, holds):
    rows = many(outstanding)
    apply_rows(con, tmp_path, "ACME", D1, rows)
    kept_rows = dict(list(rows.items())[:kept])
    check = guard_check(con, tmp_path, "ACME", D2, kept_rows, MassFixGuard(max_share, max_count))
    assert (check.outstanding, check.would_fix) == (outstanding, outstanding - kept)
    assert check.holds is holds
    assert f"{outstanding - kept:,} of {outstanding:,}" in check.describe()


def test_first_snapshot_never_holds(con, tmp_path):
    check = guard_check(con, tmp_path, "ACME", D1, many(10), MassFixGuard(0.0, 0))
    assert (check.outstanding, check.would_fix, check.holds) == (0, 0, False)


def test_mass_fix_compares_with_the_day_before_and_only_the_same_manufacturer(con, tmp_path):
    apply_rows(con, tmp_path, "ACME", D1, many(10))
    apply_rows(con, tmp_path, "ACME", D3, many(2))  # a later day already applied
    apply_rows(con, tmp_path, "BOLT", D1, many(50))  # same keys, other manufacturer
    guard = MassFixGuard(0.5, 3)
    late = guard_check(con, tmp_path, "ACME", D2, many(1), guard)  # a late D2 is judged against D1
    assert (late.outstanding, late.would_fix, late.holds) == (10, 9, True)
    after = guard_check(con, tmp_path, "ACME", D4, many(1), guard)  # D4 is judged against D3
    assert (after.outstanding, after.would_fix, after.holds) == (2, 1, False)
    bolt = guard_check(con, tmp_path, "BOLT", D2, many(50), guard)
    assert (bolt.outstanding, bolt.would_fix) == (50, 0)


def test_check_mass_fix_changes_nothing(con, tmp_path, snapshot_paths):
    apply(con, snapshot_paths, "ACME", D1)
    before = tables(con)
    check_mass_fix(con, "ACME", D2, snapshot_paths[("ACME", D2)], MassFixGuard())
    assert tables(con) == before


# -- atomicity ---------------------------------------------------------------------------------
@pytest.mark.parametrize("after_running", [False, True], ids=["before", "after"])
@pytest.mark.parametrize(
    "failing_step", ["rewind.sql", "apply_day.sql", "refresh_recalls.sql", "refresh_file_counts.sql"]
)
def test_failure_mid_apply_leaves_the_tables_as_before(con, snapshot_paths, monkeypatch, failing_step, after_running):
    for day in (D1, D2, D4):
        apply(con, snapshot_paths, "ACME", day)
    apply(con, snapshot_paths, "BOLT", D1)
    before = tables(con)
    before_as_of = {day: outstanding_as_of(con, day) for day in ALL_DAYS}
    real_run_sql = state.run_sql
    calls = []

    def failing_run_sql(con_, package, name, **params):
        calls.append(name)
        # apply_day.sql fails on its second call: D3 has been replayed, D4 not yet.
        if name == failing_step and calls.count(name) == (2 if name == "apply_day.sql" else 1):
            if after_running:
                real_run_sql(con_, package, name, **params)
            raise RuntimeError(f"injected failure in {name}")
        return real_run_sql(con_, package, name, **params)

    monkeypatch.setattr(state, "run_sql", failing_run_sql)
    with pytest.raises(RuntimeError, match="injected failure"):
        apply(con, snapshot_paths, "ACME", D3)  # a late day: rewinds and replays D3 and D4
    assert tables(con) == before
    assert {day: outstanding_as_of(con, day) for day in ALL_DAYS} == before_as_of
    monkeypatch.setattr(state, "run_sql", real_run_sql)
    # The rerun completes it.
    apply(con, snapshot_paths, "ACME", D3)
    assert tables(con)["history"] == model({"ACME": [D1, D2, D3, D4], "BOLT": [D1]}).history
