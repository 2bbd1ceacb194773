"""Pandera schemas of the flattened MOT frames: the record-level acceptance rules.

The SQL flattening (``sql/flatten_*.sql``) turns each JSON record into rows of three frames and
does the type conversion with ``TRY_CAST`` (so a bad value becomes NULL instead of failing the
whole file). Beside every converted column it keeps the raw text (``*_raw``). These schemas
then state the rules a record must meet: "a date that is present must parse" is simply "raw is
null or converted is not null". Every check is vectorised (one pandas expression per rule) so
validation keeps pace with the parser; the frames stay Arrow-backed (``pd.ArrowDtype``).

A record failing any rule in any of its three frames is quarantined as a whole; the failing
rule names become the quarantine reason. Enumerations are normalised (case, spacing, the
``OK`` odometer alias) in SQL *before* these checks, so only genuinely unknown values fail.

Only rows of records flagged by ``sql/suspects.sql`` reach these schemas (validating millions of
clean rows cost more than parsing them). That query must stay a superset of the rules here:
when a rule is added or changed, add its negation there too.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa

MODIFICATIONS = ("CREATED", "UPDATED", "DELETED")
TEST_RESULTS = ("PASSED", "FAILED")
ODOMETER_UNITS = ("MI", "KM")
ODOMETER_RESULT_TYPES = ("READ", "UNREADABLE", "NO_ODOMETER")


def _parses(raw: str, parsed: str) -> pa.Check:
    """A value that is present must convert (dates parse, numbers are numbers)."""
    return pa.Check(
        lambda df: df[raw].isna() | df[parsed].notna(),
        name=f"{raw.removesuffix('_raw')} present but not convertible",
    )


def _present(column: str) -> pa.Check:
    return pa.Check(lambda s: s.notna() & (s.astype("string").str.len() > 0), name=f"{column} present")


def vehicle_schema(*, require_modification: bool = True) -> pa.DataFrameSchema:
    """One row per JSON record. Bulk files carry no change type, hence the switch."""
    return pa.DataFrameSchema(
        {
            "rec": pa.Column(nullable=False, unique=True),
            "registration": pa.Column(nullable=False, checks=_present("registration")),
            "modification": pa.Column(
                nullable=not require_modification,
                checks=pa.Check.isin(MODIFICATIONS, name="modification in CREATED/UPDATED/DELETED"),
            ),
            "structure_error": pa.Column(
                nullable=True, checks=pa.Check(lambda s: s.isna(), name="motTests/defects must be lists of objects")
            ),
        },
        checks=[
            _parses("first_used_date_raw", "first_used_date"),
            _parses("registration_date_raw", "registration_date"),
            _parses("manufacture_date_raw", "manufacture_date"),
            _parses("last_mot_test_date_raw", "last_mot_test_date"),
        ],
        strict=False,
        name="mot_vehicle_frame",
    )


def test_schema() -> pa.DataFrameSchema:
    """One row per element of ``motTests``."""
    return pa.DataFrameSchema(
        {
            "rec": pa.Column(nullable=False),
            "mot_test_number_raw": pa.Column(nullable=False, checks=_present("motTestNumber")),
            "test_result": pa.Column(nullable=True, checks=pa.Check.isin(TEST_RESULTS, name="testResult known")),
            "odometer_unit": pa.Column(nullable=True, checks=pa.Check.isin(ODOMETER_UNITS, name="odometerUnit known")),
            "odometer_result_type": pa.Column(
                nullable=True, checks=pa.Check.isin(ODOMETER_RESULT_TYPES, name="odometerResultType known")
            ),
        },
        checks=[
            _parses("mot_test_number_raw", "mot_test_number"),
            _parses("completed_date_raw", "completed_date"),
            _parses("expiry_date_raw", "expiry_date"),
            pa.Check(
                lambda df: (df["odometer_result_type"] != "READ").fillna(True) | df["odometer_value"].notna(),
                name="odometerValue numeric when odometerResultType is READ",
            ),
        ],
        unique=["rec", "mot_test_number"],
        report_duplicates="all",
        strict=False,
        name="mot_test_frame",
    )


def defect_schema() -> pa.DataFrameSchema:
    """One row per element of ``motTests[].defects``."""
    return pa.DataFrameSchema(
        {"rec": pa.Column(nullable=False)},
        checks=[
            _parses("dangerous_raw", "dangerous"),
            pa.Check(lambda df: df["has_text"].fillna(False) | df["type"].notna(), name="defect has text or type"),
        ],
        strict=False,
        name="mot_defect_frame",
    )


def _value(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    text = str(value)
    return f" (got {text[:60]!r})"


def failing_records(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> pd.DataFrame:
    """``rec`` and a readable ``reason`` for every row of ``frame`` that breaks ``schema``.

    ``lazy=True`` collects every failure in one pass instead of stopping at the first, so a
    record's reason lists all of its problems.
    """
    if frame.empty:
        return pd.DataFrame({"rec": pd.Series([], dtype="int64"), "reason": pd.Series([], dtype="string")})
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        cases = cases[cases["index"].notna()]
        positions = frame.index.get_indexer(cases["index"])
        recs = frame["rec"].to_numpy()[positions]
        label = schema.name.removeprefix("mot_").removesuffix("_frame")
        frame_level = (cases["schema_context"] == "DataFrameSchema").to_numpy()
        checks = cases["check"].astype(str).to_numpy()
        columns = cases["column"].astype(str).to_numpy()
        values = cases["failure_case"].to_numpy()
        reasons = pd.DataFrame(
            {
                "rec": recs.astype("int64"),
                "reason": [
                    f"{label}: {check}" if whole else f"{label}: {column} {check}{_value(value)}"
                    for check, column, whole, value in zip(checks, columns, frame_level, values, strict=True)
                ],
            }
        ).drop_duplicates()
        return reasons
    return pd.DataFrame({"rec": pd.Series([], dtype="int64"), "reason": pd.Series([], dtype="string")})
