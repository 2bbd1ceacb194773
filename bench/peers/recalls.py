"""Recall intake and state, the plain pandas + pandera way.

Intake: ``pd.read_csv`` -> a pandera schema with built-in string checks -> duplicate checks with
``duplicated`` -> a report CSV or a Parquet snapshot. State: the history is a Parquet file; each day
is an outer merge of the open intervals with the snapshot, then the history and the current
``recalls`` table are rewritten. (Unlike ours: no replay of late days, no REAPPEARED marker.)
"""

from __future__ import annotations

import re
import warnings
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

VIN = "VIN"
REF = "ManufacturerRecallCampaignReference"
DVSA = "DVSACampaignReference"
START = "RecallCampaignStartDate"
HEADERS = [VIN, REF, DVSA, START]
REFERENCE = r"^[A-Za-z0-9\-_\\/]*$"
KEYS = ["vin", "ref"]


def warm_up() -> None:
    """Import pandera (slow) before the clock starts, as for ours."""
    _schema()


def _real_date(series: pd.Series) -> pd.Series:
    return (series == "") | pd.to_datetime(series, format="%Y-%m-%d", errors="coerce").notna()


_SCHEMA = None


def _schema():
    global _SCHEMA
    if _SCHEMA is None:
        import pandera.pandas as pa

        _SCHEMA = pa.DataFrameSchema(
            {
                VIN: pa.Column(str, pa.Check.str_length(min_value=1, error="MISSING_REQUIRED_FIELDS")),
                REF: pa.Column(
                    str,
                    [
                        pa.Check.str_length(min_value=1, error="MISSING_REQUIRED_FIELDS"),
                        pa.Check.str_length(max_value=50, error="MANUFACTURER_REF_TOO_LONG"),
                        pa.Check.str_matches(REFERENCE, error="INVALID_MANUFACTURER_REF"),
                    ],
                ),
                DVSA: pa.Column(
                    str,
                    [
                        pa.Check.str_length(max_value=50, error="DVSA_REF_TOO_LONG"),
                        pa.Check.str_matches(REFERENCE, error="INVALID_DVSA_REF"),
                    ],
                ),
                START: pa.Column(
                    str,
                    [
                        pa.Check.str_length(min_value=1, error="MISSING_REQUIRED_FIELDS"),
                        pa.Check(_real_date, name="INCORRECT_DATE_FORMAT"),
                    ],
                ),
            },
            strict=True,
            ordered=True,
        )
    return _SCHEMA


def intake(csv_path: str | Path, out_dir: str | Path) -> dict:
    """Validate one CSV; write report.csv (rejected) or snapshot.parquet (accepted)."""
    from pandera.errors import SchemaErrors

    out_dir = Path(out_dir)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False, encoding="utf-8", on_bad_lines="warn")
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        pd.DataFrame({"reason": [str(exc)]}).to_csv(out_dir / "report.csv", index=False)
        return {"rows": 0, "status": "REJECTED", "problems": {"UNREADABLE": 1}}
    reports = []
    skipped = [int(m) for w in caught for m in re.findall(r"Skipping line (\d+)", str(w.message))]
    if skipped:
        reports.append(pd.DataFrame({"line": skipped, "code": "MALFORMED_ROW", "column": None, "value": None}))
    frame = frame.fillna("")  # a short row's missing fields: blank, caught as missing below
    try:
        _schema().validate(frame, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
        reports.append(
            pd.DataFrame(
                {
                    "line": cases["index"] + 2,
                    "code": cases["check"].astype(str),
                    "column": cases["column"],
                    "value": cases["failure_case"].astype(str),
                }
            )
        )
    repeated = frame[frame.duplicated([VIN, REF], keep=False)]
    conflicting = repeated.drop_duplicates()
    conflicting = conflicting[conflicting.duplicated([VIN, REF], keep=False)]
    if len(conflicting):
        reports.append(
            pd.DataFrame(
                {
                    "line": conflicting.index + 2,
                    "code": "CONFLICTING_DUPLICATE",
                    "column": REF,
                    "value": conflicting[VIN] + " / " + conflicting[REF],
                }
            )
        )
    if reports:
        report = pd.concat(reports, ignore_index=True).sort_values("line")
        report.to_csv(out_dir / "report.csv", index=False)
        return {"rows": len(frame), "status": "REJECTED", "problems": report["code"].value_counts().to_dict()}
    snapshot = frame.drop_duplicates()
    pd.DataFrame(
        {
            "vin": snapshot[VIN],
            "manufacturer_campaign_reference": snapshot[REF],
            "dvsa_campaign_reference": snapshot[DVSA].replace("", None),
            "recall_campaign_start_date": pd.to_datetime(snapshot[START], format="%Y-%m-%d").dt.date,
        }
    ).to_parquet(out_dir / "snapshot.parquet", compression="zstd", index=False)
    return {"rows": len(frame), "status": "ACCEPTED"}


def apply(state_dir: str | Path, day: date, snapshot_path: str | Path) -> dict:
    """Apply one day's snapshot to the Parquet history and rewrite the current recalls table."""
    state_dir = Path(state_dir)
    history_path = state_dir / "recall_history.parquet"
    snapshot = pd.read_parquet(snapshot_path).rename(
        columns={
            "manufacturer_campaign_reference": "ref",
            "dvsa_campaign_reference": "dvsa",
            "recall_campaign_start_date": "start",
        }
    )
    snapshot["start"] = pd.to_datetime(snapshot["start"])
    when = pd.Timestamp(day)
    if history_path.exists():
        history = pd.read_parquet(history_path)
    else:
        history = pd.DataFrame(
            {
                "vin": pd.Series(dtype=str),
                "ref": pd.Series(dtype=str),
                "dvsa": pd.Series(dtype=str),
                "start": pd.Series(dtype="datetime64[us]"),
                "valid_from": pd.Series(dtype="datetime64[us]"),
                "valid_to": pd.Series(dtype="datetime64[us]"),
                "opened_by": pd.Series(dtype=str),
                "closed_by": pd.Series(dtype=str),
            }
        )
    is_open = history["valid_to"].isna()
    current = history.loc[is_open, ["vin", "ref", "dvsa", "start"]]
    merged = current.merge(snapshot, on=KEYS, how="outer", suffixes=("_old", ""), indicator=True)
    gone = merged["_merge"] == "left_only"
    new = merged["_merge"] == "right_only"
    differs = (merged["_merge"] == "both") & (
        (merged["dvsa_old"].fillna("") != merged["dvsa"].fillna("")) | (merged["start_old"] != merged["start"])
    )
    closing = merged.loc[gone | differs, KEYS].assign(closed_by=np.where(gone[gone | differs], "FIXED", "CHANGED"))
    if len(closing):
        open_rows = history.loc[is_open, KEYS].reset_index().merge(closing, on=KEYS)
        history.loc[open_rows["index"], "valid_to"] = when
        history.loc[open_rows["index"], "closed_by"] = open_rows["closed_by"].to_numpy()
    opening = merged.loc[new | differs, ["vin", "ref", "dvsa", "start"]].assign(
        valid_from=when, valid_to=pd.NaT, opened_by=np.where(differs[new | differs], "CHANGED", "NEW"), closed_by=None
    )
    history = pd.concat([history, opening], ignore_index=True)
    history.to_parquet(history_path, index=False)
    latest = history.sort_values("valid_from", kind="stable").drop_duplicates(KEYS, keep="last")
    first_seen = history.groupby(KEYS, sort=False)["valid_from"].min().rename("first_seen_on")
    recalls = latest.merge(first_seen, on=KEYS)
    recalls["status"] = np.where(recalls["valid_to"].isna(), "OUTSTANDING", "FIXED")
    recalls.to_parquet(state_dir / "recalls.parquet", index=False)
    return {"added": int(new.sum()), "fixed": int(gone.sum()), "changed": int(differs.sum())}
