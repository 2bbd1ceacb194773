"""Turns the sequence of accepted snapshots into recall state with full history.

The history is a pure function of the set of applied snapshots: applying a snapshot for day D
rewinds the manufacturer's history to just before D and replays every applied snapshot from D on
in date order. So days applied in any order, any number of times, give the same tables as one pass
in date order, and a late snapshot slots into the history where it belongs. Each call is one
transaction: a crash leaves the previous state, and the rerun completes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from include.warehouse.sql import run_sql

_SQL = "include.recalls"


@dataclass(frozen=True)
class MassFixGuard:
    """Hold a snapshot that would fix more than this share AND more than this many recalls."""

    max_share: float = 0.5
    max_count: int = 1000


@dataclass(frozen=True)
class GuardCheck:
    outstanding: int
    would_fix: int
    guard: MassFixGuard

    @property
    def holds(self) -> bool:
        return (
            self.outstanding > 0
            and self.would_fix > self.guard.max_count
            and self.would_fix > self.guard.max_share * self.outstanding
        )

    def describe(self) -> str:
        share = self.would_fix / self.outstanding if self.outstanding else 0.0
        return (
            f"the snapshot would mark {self.would_fix:,} of {self.outstanding:,} outstanding recalls "
            f"fixed ({share:.1%}); the limits are {self.guard.max_share:.0%} and {self.guard.max_count:,}"
        )


@dataclass(frozen=True)
class DayChange:
    added: int
    fixed: int
    changed: int
    outstanding: int


def check_mass_fix(
    con: duckdb.DuckDBPyConnection,
    manufacturer: str,
    business_date: date,
    snapshot_path: str,
    guard: MassFixGuard,
) -> GuardCheck:
    """Compare the snapshot with the state just before its day (right for late days too)."""
    outstanding, would_fix = run_sql(
        con, _SQL, "fixes_if_applied.sql", manufacturer=manufacturer, day=business_date, path=snapshot_path
    )[0]
    return GuardCheck(int(outstanding), int(would_fix), guard)


def apply_snapshot(
    con: duckdb.DuckDBPyConnection,
    manufacturer: str,
    business_date: date,
    sha256: str,
    snapshot_path: str,
    row_count: int,
) -> DayChange:
    """Register the snapshot as the manufacturer's state on its day and recompute from there.

    Call it inside ``warehouse.transaction`` together with the file's record, so both commit or
    neither does.
    """
    con.execute(
        "DELETE FROM recall_snapshots WHERE manufacturer = ? AND business_date = ?",
        [manufacturer, business_date],
    )
    con.execute(
        "INSERT INTO recall_snapshots (manufacturer, business_date, sha256, snapshot_path, row_count)"
        " VALUES (?, ?, ?, ?, ?)",
        [manufacturer, business_date, sha256, snapshot_path, row_count],
    )
    replay_from(con, manufacturer, business_date)
    return day_change(con, manufacturer, business_date)


def replay_from(con: duckdb.DuckDBPyConnection, manufacturer: str, from_date: date) -> None:
    """Rewind to just before ``from_date`` and replay every applied snapshot from there in order."""
    run_sql(con, _SQL, "rewind.sql", manufacturer=manufacturer, from_date=from_date)
    later = con.execute(
        "SELECT business_date, snapshot_path FROM recall_snapshots"
        " WHERE manufacturer = ? AND business_date >= ? ORDER BY business_date",
        [manufacturer, from_date],
    ).fetchall()
    for day, path in later:
        run_sql(con, _SQL, "apply_day.sql", manufacturer=manufacturer, day=day, path=path)
    run_sql(con, _SQL, "refresh_recalls.sql", manufacturer=manufacturer, from_date=from_date)
    run_sql(con, _SQL, "refresh_file_counts.sql", manufacturer=manufacturer, from_date=from_date)
    con.execute("DROP TABLE IF EXISTS recall_diff")


def day_change(con: duckdb.DuckDBPyConnection, manufacturer: str, business_date: date) -> DayChange:
    row = con.execute(
        "SELECT added, fixed, changed, outstanding FROM recall_daily_changes"
        " WHERE manufacturer = ? AND business_date = ?",
        [manufacturer, business_date],
    ).fetchone()
    return DayChange(*(int(x) for x in row)) if row else DayChange(0, 0, 0, 0)
