"""The recall-state checkpoint: is the warehouse's recall state consistent after a day's apply?

DuckDB computes one small frame, one row per manufacturer with one column per metric (counts of
broken things, and the day's change counts from two sources); GX validates it. Nothing reads a
whole table into pandas, so it costs the same on a few rows as on millions.

Metrics and their expectations:

* ``duplicate_outstanding_keys`` / ``duplicate_recall_keys``: keys (vin, manufacturer campaign
  reference) occurring more than once in ``outstanding_recalls`` / ``recalls``; expected 0.
* ``fixed_before_first_seen``: recalls whose ``fixed_on`` is before ``first_seen_on``; expected 0.
* ``invalid_status``: ``recalls.status`` outside {OUTSTANDING, FIXED}; expected 0.
* ``malformed_intervals`` (``valid_to <= valid_from``), ``keys_with_multiple_open_intervals``,
  ``overlapping_intervals`` in ``recall_history``; expected 0.
* ``changes_added``/``changes_fixed``/``changes_changed`` (``recall_daily_changes``, derived from the
  history) equal ``file_added_count``/``file_fixed_count``/``file_changed_count`` recorded for the
  business day's ACCEPTED file (the one whose snapshot was applied). Only the day being validated
  is compared: a late backfill of an earlier day legitimately changes later days' derived counts
  while their recall_files rows keep what was true when they were applied (a re-apply refreshes
  them). Manufacturers with neither an applied snapshot nor an accepted file that day compare
  NULL with NULL and are skipped.
* ``missing_from_snapshot`` / ``extra_in_snapshot``: outstanding keys absent from the
  manufacturer's latest applied snapshot (Parquet), and snapshot keys not outstanding; expected
  0. ``snapshot_unreadable`` is 1 when that Parquet file cannot be read; expected 0.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from include.quality.gx_runner import ExpectationSpec, run_checkpoint, to_plain
from include.warehouse import read_only

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "recall_state"
PLACEHOLDER = "ALL"
STATUSES = ("OUTSTANDING", "FIXED")

_KEY = "manufacturer, vin, manufacturer_campaign_reference"

# metric -> (SQL returning (manufacturer, value), description of the expectation "value is 0")
COUNT_METRICS: dict[str, tuple[str, str]] = {
    "duplicate_outstanding_keys": (
        f"SELECT manufacturer, count(*) FROM ("
        f" SELECT manufacturer FROM outstanding_recalls GROUP BY {_KEY} HAVING count(*) > 1"
        f") GROUP BY manufacturer",
        "Recall keys (manufacturer, vin, manufacturer_campaign_reference) are unique among outstanding_recalls",
    ),
    "duplicate_recall_keys": (
        f"SELECT manufacturer, count(*) FROM ("
        f" SELECT manufacturer FROM recalls GROUP BY {_KEY} HAVING count(*) > 1"
        f") GROUP BY manufacturer",
        "Recall keys (manufacturer, vin, manufacturer_campaign_reference) are unique in recalls",
    ),
    "fixed_before_first_seen": (
        "SELECT manufacturer, count(*) FILTER (WHERE fixed_on < first_seen_on) FROM recalls GROUP BY manufacturer",
        "recalls.fixed_on is never before first_seen_on",
    ),
    "invalid_status": (
        "SELECT manufacturer, count(*) FILTER (WHERE status IS NULL OR status NOT IN ('OUTSTANDING', 'FIXED'))"
        " FROM recalls GROUP BY manufacturer",
        "recalls.status is OUTSTANDING or FIXED",
    ),
    "malformed_intervals": (
        "SELECT manufacturer, count(*) FILTER (WHERE valid_to IS NOT NULL AND valid_to <= valid_from)"
        " FROM recall_history GROUP BY manufacturer",
        "recall_history intervals are well-formed: valid_to > valid_from when set",
    ),
    "keys_with_multiple_open_intervals": (
        f"SELECT manufacturer, count(*) FROM ("
        f" SELECT manufacturer FROM recall_history GROUP BY {_KEY}"
        f" HAVING count(*) FILTER (WHERE valid_to IS NULL) > 1"
        f") GROUP BY manufacturer",
        "recall_history has at most one open interval (valid_to NULL) per recall key",
    ),
    "overlapping_intervals": (
        f"SELECT manufacturer,"
        f" count(*) FILTER (WHERE next_from IS NOT NULL AND (valid_to IS NULL OR next_from < valid_to))"
        f" FROM ("
        f"  SELECT manufacturer, valid_to, lead(valid_from) OVER ("
        f"   PARTITION BY {_KEY} ORDER BY valid_from, valid_to NULLS LAST) AS next_from"
        f"  FROM recall_history"
        f") GROUP BY manufacturer",
        "recall_history intervals of a recall key never overlap",
    ),
}

SNAPSHOT_METRICS: dict[str, str] = {
    "missing_from_snapshot": "Every outstanding recall key is in the manufacturer's latest applied snapshot",
    "extra_in_snapshot": "Every key of the manufacturer's latest applied snapshot is outstanding",
    "snapshot_unreadable": "The manufacturer's latest applied snapshot (Parquet) can be read",
}

# (derived column, recorded column, what)
DAY_PAIRS: tuple[tuple[str, str, str], ...] = (
    ("changes_added", "file_added_count", "added"),
    ("changes_fixed", "file_fixed_count", "fixed"),
    ("changes_changed", "file_changed_count", "changed"),
)

_DAY_SQL = """
WITH snap AS (
    SELECT manufacturer, sha256 FROM recall_snapshots WHERE business_date = $day
), files AS (
    SELECT manufacturer, added_count, fixed_count, changed_count
    FROM (
        SELECT f.manufacturer, f.added_count, f.fixed_count, f.changed_count,
               row_number() OVER (
                   PARTITION BY f.manufacturer
                   ORDER BY (f.sha256 IS NOT DISTINCT FROM s.sha256) DESC, f.recorded_at DESC
               ) AS pick
        FROM recall_files f LEFT JOIN snap s USING (manufacturer)
        WHERE f.business_date = $day AND f.status = 'ACCEPTED'
    )
    WHERE pick = 1
), changes AS (
    SELECT manufacturer, added, fixed, changed FROM recall_daily_changes WHERE business_date = $day
)
SELECT coalesce(c.manufacturer, f.manufacturer) AS manufacturer,
       c.added, f.added_count, c.fixed, f.fixed_count, c.changed, f.changed_count
FROM changes c FULL JOIN files f ON c.manufacturer = f.manufacturer
"""

_SNAPSHOT_DIFF_SQL = """
WITH snap AS (
    SELECT DISTINCT vin, manufacturer_campaign_reference FROM read_parquet($path)
), outs AS (
    SELECT DISTINCT vin, manufacturer_campaign_reference FROM outstanding_recalls WHERE manufacturer = $manufacturer
)
SELECT (SELECT count(*) FROM (SELECT * FROM outs EXCEPT SELECT * FROM snap)),
       (SELECT count(*) FROM (SELECT * FROM snap EXCEPT SELECT * FROM outs))
"""


def _expectations() -> list[ExpectationSpec]:
    specs = [
        ExpectationSpec(
            "expect_column_values_to_be_between",
            {"column": metric, "min_value": 0, "max_value": 0},
            f"{description} ({metric} = 0)",
        )
        for metric, (_, description) in COUNT_METRICS.items()
    ]
    specs += [
        ExpectationSpec(
            "expect_column_values_to_be_between",
            {"column": metric, "min_value": 0, "max_value": 0},
            f"{description} ({metric} = 0)",
        )
        for metric, description in SNAPSHOT_METRICS.items()
    ]
    specs += [
        ExpectationSpec(
            "expect_column_pair_values_to_be_equal",
            {"column_A": derived, "column_B": recorded},
            f"The business day's {what} count in recall_daily_changes equals {recorded.removeprefix('file_')} "
            f"recorded for its ACCEPTED recall file ({derived} = {recorded})",
        )
        for derived, recorded, what in DAY_PAIRS
    ]
    return specs


def _snapshot_metrics(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    """Compare each manufacturer's outstanding keys with its latest applied snapshot."""
    found: dict[str, dict[str, int]] = {}
    latest = con.execute(
        "SELECT manufacturer, arg_max(snapshot_path, business_date) FROM recall_snapshots GROUP BY manufacturer"
    ).fetchall()
    for manufacturer, path in latest:
        metrics = {"missing_from_snapshot": 0, "extra_in_snapshot": 0, "snapshot_unreadable": 0}
        try:
            if not Path(path).is_file():
                raise FileNotFoundError(path)
            missing, extra = con.execute(_SNAPSHOT_DIFF_SQL, {"path": path, "manufacturer": manufacturer}).fetchone()
            metrics.update(missing_from_snapshot=int(missing), extra_in_snapshot=int(extra))
        except (duckdb.Error, OSError) as exc:
            log.warning("recall snapshot %s of %s cannot be read: %s", path, manufacturer, exc)
            metrics["snapshot_unreadable"] = 1
        found[manufacturer] = metrics
    # Without any applied snapshot nothing may be outstanding.
    for manufacturer, outstanding in con.execute(
        "SELECT manufacturer, count(*) FROM outstanding_recalls"
        " WHERE manufacturer NOT IN (SELECT manufacturer FROM recall_snapshots) GROUP BY manufacturer"
    ).fetchall():
        found[manufacturer] = {
            "missing_from_snapshot": int(outstanding),
            "extra_in_snapshot": 0,
            "snapshot_unreadable": 0,
        }
    return found


def recall_metrics(con: duckdb.DuckDBPyConnection, business_day: date) -> pd.DataFrame:
    """The metric frame: one row per manufacturer (or one placeholder row when there is no data)."""
    rows: dict[str, dict[str, Any]] = {}

    def row(manufacturer: str) -> dict[str, Any]:
        return rows.setdefault(manufacturer, {"manufacturer": manufacturer})

    for metric, (sql, _) in COUNT_METRICS.items():
        for manufacturer, value in con.execute(sql).fetchall():
            row(manufacturer)[metric] = int(value)
    for manufacturer, metrics in _snapshot_metrics(con).items():
        row(manufacturer).update(metrics)
    for manufacturer, *values in con.execute(_DAY_SQL, {"day": business_day}).fetchall():
        columns = [c for pair in DAY_PAIRS for c in pair[:2]]
        row(manufacturer).update({c: None if v is None else int(v) for c, v in zip(columns, values, strict=True)})

    if not rows:
        row(PLACEHOLDER)
    counts = [*COUNT_METRICS, *SNAPSHOT_METRICS]
    pairs = [c for pair in DAY_PAIRS for c in pair[:2]]
    records = [rows[m] for m in sorted(rows)]
    frame = pd.DataFrame({"manufacturer": pd.Series([r["manufacturer"] for r in records], dtype=object)})
    for column in counts:
        frame[column] = pd.Series([int(r.get(column, 0)) for r in records], dtype="int64")
    for column in pairs:
        # object dtype keeps integers as integers and a missing side as None (never NaN == NaN).
        frame[column] = pd.Series([r.get(column) for r in records], dtype=object)
    return frame


def run_recall_checkpoint(warehouse_path: str, business_day: date, docs_dir: str) -> dict[str, Any]:
    """Validate the recall state as of ``business_day`` and update the Data Docs in ``docs_dir``.

    Returns :func:`include.quality.gx_runner.run_checkpoint`'s dict plus ``checkpoint``,
    ``business_day`` and ``metrics`` (the validated frame as records, small).
    """
    with read_only(warehouse_path) as con:
        frame = recall_metrics(con, business_day)
    result = run_checkpoint(
        docs_dir,
        CHECKPOINT_NAME,
        frame,
        _expectations(),
        id_column="manufacturer",
        run_name=business_day.isoformat(),
    )
    result.update(
        checkpoint=CHECKPOINT_NAME,
        business_day=business_day.isoformat(),
        metrics=to_plain(frame.to_dict("records")),
    )
    if not result["success"]:
        log.warning("recall checkpoint failed for %s: %s", business_day, result["failed"])
    return result
