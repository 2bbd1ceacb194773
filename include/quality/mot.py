"""The MOT checkpoint: are the versioned vehicles, the tests and the day's delivery audit sound?

DuckDB computes one small frame, a single row for the business day with one column per metric;
GX validates it. Every metric is an aggregate, so the cost does not depend on pandas.

Metrics and their expectations (the tables are those of migration ``010_mot.sql``):

* ``vehicles``: ``registrations_with_multiple_current`` (more than one ``is_current`` version),
  ``malformed_vehicle_intervals`` (``valid_to <= valid_from``), ``overlapping_vehicle_intervals``
  (versions of one registration whose validity overlaps); all expected 0.
* ``mot_tests``: ``duplicate_mot_test_numbers``; ``unknown_test_results`` (not NULL and not in
  PASSED/FAILED, the set the parser normalises to); ``unknown_odometer_units`` (not NULL and not
  MI/KM); all expected 0.
* ``mot_delta_files`` rows of the business day (MISSING rows carry no counts and are left out):
  ``day_records``/``day_quarantined`` totals >= 0, ``day_negative_counts`` (rows with a negative
  count) = 0, ``day_quarantined_over_records`` (rows quarantining more records than they hold) = 0,
  ``day_files_without_quarantine_share`` (APPLIED/HELD rows without ``quarantine_share``) = 0 and
  ``day_quarantine_share`` (quarantined / records over APPLIED and HELD rows; NULL when none)
  between 0 and 1.

A check whose table (or column) does not exist yet is skipped and listed under ``skipped``; when
every check is skipped, no checkpoint runs and the result is a success with nothing evaluated.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import pandas as pd

from include.quality.gx_runner import ExpectationSpec, docs_index_path, run_checkpoint, to_plain
from include.warehouse import read_only

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "mot_history"
# The normalised enumerations (mirrors include/mot/schema.py, kept local so that importing this
# module does not pull in the MOT parser and pandera).
TEST_RESULTS = ("PASSED", "FAILED")
ODOMETER_UNITS = ("MI", "KM")
DELTA_COUNT_COLUMNS = ("records", "created", "updated", "deleted", "unchanged", "quarantined", "superseded")


def _in_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


@dataclass(frozen=True)
class MetricGroup:
    """Metrics computed by one query over one table; skipped if the table or a column is absent."""

    table: str
    columns: tuple[str, ...]
    sql: str  # one row, one value per metric, in order; may use $day
    metrics: tuple[tuple[str, ExpectationSpec], ...]


def _zero(column: str, description: str) -> tuple[str, ExpectationSpec]:
    return column, ExpectationSpec(
        "expect_column_values_to_be_between",
        {"column": column, "min_value": 0, "max_value": 0},
        f"{description} ({column} = 0)",
    )


def _non_negative(column: str, description: str) -> tuple[str, ExpectationSpec]:
    return column, ExpectationSpec(
        "expect_column_values_to_be_between", {"column": column, "min_value": 0}, f"{description} ({column} >= 0)"
    )


GROUPS: tuple[MetricGroup, ...] = (
    MetricGroup(
        table="vehicles",
        columns=("registration", "valid_from", "valid_to", "is_current"),
        sql="""
            SELECT
                (SELECT count(*) FROM (
                    SELECT registration FROM vehicles
                    GROUP BY registration HAVING count(*) FILTER (WHERE is_current) > 1
                )),
                (SELECT count(*) FROM vehicles WHERE valid_to IS NOT NULL AND valid_to <= valid_from),
                (SELECT count(*) FILTER (WHERE next_from IS NOT NULL AND (valid_to IS NULL OR next_from < valid_to))
                 FROM (
                    SELECT valid_to, lead(valid_from) OVER (
                        PARTITION BY registration ORDER BY valid_from, valid_to NULLS LAST) AS next_from
                    FROM vehicles
                ))
        """,
        metrics=(
            _zero("registrations_with_multiple_current", "vehicles has at most one current version per registration"),
            _zero("malformed_vehicle_intervals", "vehicles validity intervals have valid_to > valid_from when set"),
            _zero("overlapping_vehicle_intervals", "vehicles validity intervals of a registration never overlap"),
        ),
    ),
    MetricGroup(
        table="mot_tests",
        columns=("mot_test_number", "test_result", "odometer_unit"),
        sql=f"""
            SELECT
                (SELECT count(*) FROM (
                    SELECT mot_test_number FROM mot_tests GROUP BY mot_test_number HAVING count(*) > 1
                )),
                count(*) FILTER (WHERE test_result IS NOT NULL AND test_result NOT IN ({_in_list(TEST_RESULTS)})),
                count(*) FILTER (WHERE odometer_unit IS NOT NULL AND odometer_unit NOT IN ({_in_list(ODOMETER_UNITS)}))
            FROM mot_tests
        """,
        metrics=(
            _zero("duplicate_mot_test_numbers", "mot_test_number is unique in mot_tests"),
            _zero("unknown_test_results", f"mot_tests.test_result is one of {', '.join(TEST_RESULTS)} or null"),
            _zero("unknown_odometer_units", f"mot_tests.odometer_unit is one of {', '.join(ODOMETER_UNITS)} or null"),
        ),
    ),
    MetricGroup(
        table="mot_delta_files",
        columns=("business_date", "status", "quarantine_share", *DELTA_COUNT_COLUMNS),
        sql=f"""
            SELECT
                coalesce(sum(records), 0),
                coalesce(sum(quarantined), 0),
                count(*) FILTER (WHERE least({", ".join(f"coalesce({c}, 0)" for c in DELTA_COUNT_COLUMNS)}) < 0),
                count(*) FILTER (WHERE quarantined > records),
                count(*) FILTER (WHERE status IN ('APPLIED', 'HELD') AND quarantine_share IS NULL),
                sum(quarantined) FILTER (WHERE status IN ('APPLIED', 'HELD'))
                    / nullif(sum(records) FILTER (WHERE status IN ('APPLIED', 'HELD')), 0)
            FROM mot_delta_files
            WHERE business_date = $day AND status <> 'MISSING'
        """,
        metrics=(
            _non_negative("day_records", "The business day's delivered MOT record count is non-negative"),
            _non_negative("day_quarantined", "The business day's quarantined MOT record count is non-negative"),
            _zero("day_negative_counts", "mot_delta_files counts of the business day are non-negative"),
            _zero("day_quarantined_over_records", "No delivery of the business day quarantines more than it holds"),
            _zero(
                "day_files_without_quarantine_share",
                "Every APPLIED/HELD delivery of the business day records its quarantine_share",
            ),
            (
                "day_quarantine_share",
                ExpectationSpec(
                    "expect_column_values_to_be_between",
                    {"column": "day_quarantine_share", "min_value": 0, "max_value": 1},
                    "The business day's quarantined share is between 0 and 1 (day_quarantine_share)",
                ),
            ),
        ),
    ),
)


def _existing_columns(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for table, column in con.execute(
        "SELECT table_name, column_name FROM duckdb_columns()"
        " WHERE database_name = current_database() AND schema_name = 'main'"
    ).fetchall():
        found.setdefault(table, set()).add(column)
    return found


def mot_metrics(
    con: duckdb.DuckDBPyConnection, business_day: date
) -> tuple[pd.DataFrame, list[ExpectationSpec], list[str]]:
    """(one-row metric frame, expectations for its columns, descriptions of skipped checks)."""
    existing = _existing_columns(con)
    row: dict[str, Any] = {"business_date": business_day.isoformat()}
    expectations: list[ExpectationSpec] = []
    skipped: list[str] = []
    for group in GROUPS:
        missing = [c for c in group.columns if c not in existing.get(group.table, set())]
        if missing:
            reason = "table does not exist" if group.table not in existing else f"missing columns {missing}"
            skipped.extend(f"{name}: {group.table} {reason}" for name, _ in group.metrics)
            continue
        params = {"day": business_day} if "$day" in group.sql else {}
        values = con.execute(group.sql, params).fetchone()
        for (name, spec), value in zip(group.metrics, values, strict=True):
            row[name] = None if value is None else value if isinstance(value, int) else float(value)
            expectations.append(spec)
    frame = pd.DataFrame([row])
    if "day_quarantine_share" in frame:
        frame["day_quarantine_share"] = frame["day_quarantine_share"].astype("float64")
    return frame, expectations, skipped


def run_mot_checkpoint(warehouse_path: str, business_day: date, docs_dir: str) -> dict[str, Any]:
    """Validate the MOT tables as of ``business_day`` and update the Data Docs in ``docs_dir``.

    Returns :func:`include.quality.gx_runner.run_checkpoint`'s dict plus ``checkpoint``,
    ``business_day``, ``metrics`` (the one validated row) and ``skipped``.
    """
    with read_only(warehouse_path) as con:
        frame, expectations, skipped = mot_metrics(con, business_day)
    if skipped:
        log.warning("MOT checks skipped: %s", skipped)
    extra = {
        "checkpoint": CHECKPOINT_NAME,
        "business_day": business_day.isoformat(),
        "metrics": to_plain(frame.to_dict("records")),
        "skipped": skipped,
    }
    if not expectations:
        return {
            "success": True,
            "failed": [],
            "docs_index": str(docs_index_path(docs_dir)),
            "statistics": {
                "evaluated_expectations": 0,
                "successful_expectations": 0,
                "unsuccessful_expectations": 0,
                "success_percent": 100.0,
                "rows": len(frame),
                "seconds": 0.0,
            },
            **extra,
        }
    result = run_checkpoint(
        docs_dir,
        CHECKPOINT_NAME,
        frame,
        expectations,
        id_column="business_date",
        run_name=business_day.isoformat(),
    )
    result.update(extra)
    if not result["success"]:
        log.warning("MOT checkpoint failed for %s: %s", business_day, result["failed"])
    return result
