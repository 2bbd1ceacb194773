"""The Pandera schema of a recall CSV's rows.

Every check is vectorised and named after its rejection code, so one lazy validation reports every
failing row of every kind at once, and the code maps straight to the spec's wording.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from functools import cache

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.recalls.spec import REFERENCE_MAX_LENGTH, REFERENCE_PATTERN, Code

VIN = "VIN"
MANUFACTURER_REF = "ManufacturerRecallCampaignReference"
DVSA_REF = "DVSACampaignReference"
START_DATE = "RecallCampaignStartDate"

_ISO_DATE = r"\d{4}-\d{2}-\d{2}"


def _arrow(series: pd.Series) -> pa.Array | pa.ChunkedArray:
    return pa.array(series.array, type=pa.string())


def _mask(series: pd.Series, ok: pa.Array | pa.ChunkedArray) -> pd.Series:
    return pd.Series(pc.fill_null(ok, False).to_numpy(zero_copy_only=False), index=series.index)


def _by_distinct(series: pd.Series, predicate: Callable[[list[str]], list[bool]]) -> pd.Series:
    """Judge each distinct value once: references and dates repeat across millions of rows."""
    values = _arrow(series)
    distinct = pc.unique(values)
    good = distinct.filter(pa.array(predicate(distinct.to_pylist()), type=pa.bool_()))
    return _mask(series, pc.is_in(values, value_set=good))


def _present(series: pd.Series) -> pd.Series:
    return _mask(series, pc.not_equal(pc.utf8_trim_whitespace(_arrow(series)), ""))


_REFERENCE = re.compile(REFERENCE_PATTERN)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _reference_characters_ok(series: pd.Series) -> pd.Series:
    return _by_distinct(series, lambda values: [_REFERENCE.fullmatch(v) is not None for v in values])


def _is_real_iso_date(value: str) -> bool:
    if not value:
        return True  # blank is "missing", reported by its own check
    if not _ISO_DATE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:  # 2026-02-30 has the right shape but is not a day
        return False
    return True


def _date_ok(series: pd.Series) -> pd.Series:
    return _by_distinct(series, lambda values: [_is_real_iso_date(v) for v in values])


@cache
def recall_rows_schema():  # -> pandera DataFrameSchema; built lazily because pandera imports slowly
    import pandera.pandas as pa_

    def check(fn, code: Code):
        return pa_.Check(fn, name=code.value, ignore_na=False)

    def max_length(column_code: Code):
        return check(lambda s: s.str.len() <= REFERENCE_MAX_LENGTH, column_code)

    text = "string"
    return pa_.DataFrameSchema(
        {
            VIN: pa_.Column(text, checks=[check(_present, Code.MISSING_REQUIRED_FIELDS)]),
            MANUFACTURER_REF: pa_.Column(
                text,
                checks=[
                    check(_present, Code.MISSING_REQUIRED_FIELDS),
                    max_length(Code.MANUFACTURER_REF_TOO_LONG),
                    check(_reference_characters_ok, Code.INVALID_MANUFACTURER_REF),
                ],
            ),
            DVSA_REF: pa_.Column(
                text,
                checks=[
                    max_length(Code.DVSA_REF_TOO_LONG),
                    check(_reference_characters_ok, Code.INVALID_DVSA_REF),
                ],
            ),
            START_DATE: pa_.Column(
                text,
                checks=[
                    check(_present, Code.MISSING_REQUIRED_FIELDS),
                    check(_date_ok, Code.INCORRECT_DATE_FORMAT),
                ],
            ),
        },
        strict=True,
        ordered=True,
        name="recall_rows",
    )
