"""MOT delta ingest, the plain pandas + pandera way.

Stage: per part, ``json.loads`` every line, ``pd.json_normalize`` into vehicles / tests / defects,
pandera schemas on each (dates parse, enumerations known, numbers numeric); records failing any
check are quarantined; Parquet per part. Apply: the store is three Parquet files; the file's
vehicles replace their previous rows, and their tests and defects replace the old ones (an upsert:
unlike ours, no versioned vehicle history and no test-ownership rule).
"""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

import pandas as pd

VEHICLE_FIELDS = [
    "registration",
    "firstUsedDate",
    "registrationDate",
    "manufactureDate",
    "primaryColour",
    "secondaryColour",
    "engineSize",
    "model",
    "make",
    "fuelType",
    "lastMotTestDate",
    "dataSource",
    "modification",
]
TEST_FIELDS = [
    "completedDate",
    "motTestNumber",
    "dataSource",
    "expiryDate",
    "regMarkTimeOfTest",
    "registrationAtTimeOfTest",
    "testResult",
    "odometerValue",
    "odometerUnit",
    "odometerResultType",
]
_SCHEMAS = None


def warm_up() -> None:
    _schemas()


def _schemas():
    global _SCHEMAS
    if _SCHEMAS is None:
        import pandera.pandas as pa

        def parses(raw: str, parsed: str) -> pa.Check:
            return pa.Check(lambda df: df[raw].isna() | df[parsed].notna(), name=f"{raw} parses")

        vehicles = pa.DataFrameSchema(
            {
                "registration": pa.Column(str, pa.Check.str_length(min_value=1)),
                "modification": pa.Column(str, pa.Check.isin(["CREATED", "UPDATED", "DELETED"]), nullable=True),
            },
            checks=[parses(c, c + "_parsed") for c in ("firstUsedDate", "registrationDate", "manufactureDate")],
        )
        tests = pa.DataFrameSchema(
            {
                "motTestNumber": pa.Column(nullable=False),
                "testResult": pa.Column(str, pa.Check.isin(["PASSED", "FAILED"]), nullable=True),
                "odometerUnit": pa.Column(str, pa.Check.isin(["MI", "KM", "mi", "km"]), nullable=True),
                "odometerResultType": pa.Column(
                    str, pa.Check.isin(["READ", "UNREADABLE", "NO_ODOMETER", "OK"]), nullable=True
                ),
            },
            checks=[
                parses("completedDate", "completedDate_parsed"),
                parses("expiryDate", "expiryDate_parsed"),
                parses("odometerValue", "odometerValue_parsed"),
            ],
        )
        defects = pa.DataFrameSchema(
            {"type": pa.Column(str, nullable=True), "dangerous": pa.Column(bool, nullable=True)}
        )
        _SCHEMAS = (vehicles, tests, defects)
    return _SCHEMAS


def _failing(schema, frame: pd.DataFrame) -> pd.Index:
    """Index labels of the rows failing ``schema``."""
    from pandera.errors import SchemaErrors

    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        return pd.Index(exc.failure_cases["index"].dropna().unique())
    return pd.Index([])


def stage(zip_path: str | Path, out_dir: str | Path, parts: list[str] | None = None) -> dict:
    """Every part -> vehicles/tests/defects Parquet (quarantined records left out)."""
    vehicles_schema, tests_schema, defects_schema = _schemas()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[str]] = {"vehicles": [], "tests": [], "defects": []}
    counts = {"records": 0, "quarantined": 0}
    with zipfile.ZipFile(zip_path) as zf:
        for number, name in enumerate(parts or zf.namelist()):
            with zf.open(name) as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
                records = [json.loads(line) for line in lines if line.strip()]
            vehicles = pd.json_normalize(records, max_level=0).reindex(columns=VEHICLE_FIELDS)
            tests = pd.json_normalize(records, record_path="motTests", meta=["registration"]).reindex(
                columns=[*TEST_FIELDS, "registration"]
            )
            defects = pd.json_normalize(
                records, record_path=["motTests", "defects"], meta=["registration", ["motTests", "motTestNumber"]]
            ).rename(columns={"motTests.motTestNumber": "motTestNumber"})
            del records
            for column in ("firstUsedDate", "registrationDate", "manufactureDate"):
                vehicles[column + "_parsed"] = pd.to_datetime(vehicles[column], format="%Y-%m-%d", errors="coerce")
            tests["completedDate_parsed"] = pd.to_datetime(
                tests["completedDate"], format="%Y-%m-%d %H:%M:%S", errors="coerce"
            )
            tests["expiryDate_parsed"] = pd.to_datetime(tests["expiryDate"], format="%Y-%m-%d", errors="coerce")
            tests["odometerValue_parsed"] = pd.to_numeric(tests["odometerValue"], errors="coerce")
            bad = set(vehicles.loc[_failing(vehicles_schema, vehicles), "registration"])
            bad |= set(tests.loc[_failing(tests_schema, tests), "registration"])
            bad |= set(defects.loc[_failing(defects_schema, defects), "registration"])
            counts["records"] += len(vehicles)
            counts["quarantined"] += len(bad)
            keep_v = ~vehicles["registration"].isin(bad)
            keep_t = ~tests["registration"].isin(bad)
            keep_d = ~defects["registration"].isin(bad)
            for kind, frame in (
                ("vehicles", vehicles[keep_v]),
                ("tests", tests[keep_t]),
                ("defects", defects[keep_d]),
            ):
                target = out_dir / f"{kind}-{number:04d}.parquet"
                frame.to_parquet(target, index=False, compression="zstd")
                files[kind].append(str(target))
    return {"files": files, "counts": counts}


def _read(paths: list[str]) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)


def apply(state_dir: str | Path, staged: dict) -> dict:
    """Upsert the staged vehicles, and replace their tests and defects, in the Parquet store."""
    state_dir = Path(state_dir)
    new_vehicles = _read(staged["files"]["vehicles"]).drop_duplicates("registration", keep="last")
    new_tests = _read(staged["files"]["tests"])
    new_defects = _read(staged["files"]["defects"])
    deleted = new_vehicles["modification"] == "DELETED"
    live = set(new_vehicles.loc[~deleted, "registration"])
    touched = set(new_vehicles["registration"])
    out = {}
    for name, new, key in (
        ("vehicles", new_vehicles[~deleted], "registration"),
        ("tests", new_tests[new_tests["registration"].isin(live)], "registration"),
        ("defects", new_defects[new_defects["registration"].isin(live)], "registration"),
    ):
        path = state_dir / f"{name}.parquet"
        if path.exists():
            old = pd.read_parquet(path)
            table = pd.concat([old[~old[key].isin(touched)], new], ignore_index=True)
        else:
            table = new
        table.to_parquet(path, index=False, compression="zstd")
        out[f"{name}_rows"] = len(table)
    return out
