"""Recall CSV validation: one test per rejection code, line numbers, the snapshot, and properties."""

from __future__ import annotations

import csv
import io
import tempfile
from datetime import date

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from include.recalls.spec import HEADERS, REFERENCE_MAX_LENGTH, WORDING, Code, Warning_
from include.recalls.validation import SNAPSHOT_SCHEMA, validate_recall_file

# Hypothesis caches constants under .hypothesis/ even with database=None: keep that out of the repo.
set_hypothesis_home_dir(tempfile.mkdtemp(prefix="hypothesis-"))

HEADER = b"VIN,ManufacturerRecallCampaignReference,DVSACampaignReference,RecallCampaignStartDate\n"
# The spec's own example rows, verbatim: a 16-character VIN and a VIN containing the letter O.
SPEC_EXAMPLE = HEADER + (
    b"LH7PRODCJEE012345,ABCCARS123,R/2026/123,2026-12-01\n"
    b"17748U47X15831234,ABCVANS124,R/2026/124,2026-12-02\n"
    b"ABCCCX5RZUDE1234,ABCTRUCKS125,R/2026/125,2026-12-03\n"
    b"CSVR5SJ62XBY12345,ABCBUSES126,R/2026/126,2026-12-04\n"
)
GOOD_ROW = b"JN3MS37A9PW212345,ABC123,R/2022/123,2026-01-05\n"


def rows(*lines: str) -> bytes:
    return HEADER + b"".join(line.encode() + b"\n" for line in lines)


def validate(data: bytes, name: str = "recalls.csv"):
    return validate_recall_file(data, name)


def problem(verdict, code: str):
    found = [p for p in verdict.problems if p.code == code]
    assert len(found) == 1, (code, verdict.problems)
    return found[0]


def only_code(verdict, code: str):
    assert verdict.codes == [code], verdict.problems
    assert verdict.snapshot is None
    return verdict.problems[0]


# -- the file itself ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["recalls.csv", "RECALLS.CSV", "Recalls.Csv", "acme_2026-01-05.csv"])
def test_csv_extension_in_any_case_is_accepted(name):
    verdict = validate(HEADER + GOOD_ROW, name)
    assert verdict.accepted, verdict.problems


@pytest.mark.parametrize("name", ["recalls.txt", "recalls", "recalls.csv.gz", "recalls.xlsx", "csv"])
def test_wrong_file_extension(name):
    finding = only_code(validate(HEADER + GOOD_ROW, name), Code.WRONG_FILE_EXTENSION)
    assert finding.reason == "Wrong file extension"


@pytest.mark.parametrize("name", ["acme recalls.csv", "acme\trecalls.csv", " recalls.csv"])
def test_spaces_in_file_name(name):
    only_code(validate(HEADER + GOOD_ROW, name), Code.SPACES_IN_FILE_NAME)


def test_file_name_problems_are_reported_together_with_content_problems():
    verdict = validate(rows("V1,,,2026-01-01"), "my recalls.txt")
    assert verdict.codes == [Code.WRONG_FILE_EXTENSION, Code.SPACES_IN_FILE_NAME, Code.MISSING_REQUIRED_FIELDS]


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n", b"\r\n\r\n", b"\xef\xbb\xbf  \n"])
def test_empty_file(data):
    only_code(validate(data), Code.EMPTY_FILE)


def test_wrong_encoding_reports_the_line_of_the_first_bad_byte():
    data = HEADER + GOOD_ROW + b"VIN2,R\xe9F1,,2026-01-05\n"  # latin-1 e-acute
    finding = only_code(validate(data), Code.WRONG_ENCODING)
    assert finding.reason == "Wrong encoding format"
    assert finding.example_lines == (3,)
    assert "line 3" in finding.detail


def test_wrong_encoding_in_the_header_is_line_1():
    finding = only_code(validate(b"VIN\xff,x\n"), Code.WRONG_ENCODING)
    assert finding.example_lines == (1,)


def test_utf8_bom_is_accepted():
    verdict = validate(b"\xef\xbb\xbf" + SPEC_EXAMPLE)
    assert verdict.accepted, verdict.problems
    assert verdict.snapshot.num_rows == 4


def test_crlf_line_endings_are_accepted():
    verdict = validate(SPEC_EXAMPLE.replace(b"\n", b"\r\n"))
    assert verdict.accepted, verdict.problems
    assert verdict.snapshot.equals(validate(SPEC_EXAMPLE).snapshot)


def test_non_ascii_utf8_is_accepted_as_text():
    verdict = validate(rows("VIN\u00e9\u4e2d1,R1,,2026-01-01"))
    assert verdict.accepted, verdict.problems
    assert verdict.snapshot.column("vin").to_pylist() == ["VIN\u00e9\u4e2d1"]


def test_header_only_file_is_an_accepted_empty_snapshot():
    """A manufacturer with no outstanding recalls left sends just the header."""
    for data in (HEADER, HEADER.rstrip(b"\n"), HEADER.replace(b"\n", b"\r\n")):
        verdict = validate(data)
        assert verdict.accepted, verdict.problems
        assert verdict.snapshot.num_rows == 0
        assert verdict.snapshot.schema == SNAPSHOT_SCHEMA


# -- the header --------------------------------------------------------------------------------
def test_missing_column_headers_names_which():
    finding = only_code(
        validate(b"VIN,ManufacturerRecallCampaignReference,RecallCampaignStartDate\nV,R,2026-01-01\n"),
        Code.MISSING_COLUMN_HEADERS,
    )
    assert finding.reason == "Missing column headers"
    assert "DVSACampaignReference" in finding.detail
    assert "VIN" not in finding.detail.replace("DVSACampaignReference", "")


def test_missing_every_header_when_the_first_line_is_data():
    finding = only_code(validate(GOOD_ROW + GOOD_ROW), Code.MISSING_COLUMN_HEADERS)
    for name in HEADERS:
        assert name in finding.detail


def test_columns_wrong_order():
    data = b"ManufacturerRecallCampaignReference,VIN,DVSACampaignReference,RecallCampaignStartDate\nR,V,,2026-01-01\n"
    finding = only_code(validate(data), Code.COLUMNS_WRONG_ORDER)
    assert finding.reason == "Columns in the wrong order"


def test_unexpected_column_headers():
    data = HEADER.rstrip(b"\n") + b",Colour\n" + GOOD_ROW.rstrip(b"\n") + b",red\n"
    finding = only_code(validate(data), Code.UNEXPECTED_COLUMN_HEADERS)
    assert "Colour" in finding.detail


def test_duplicated_header_is_unexpected():
    data = HEADER.rstrip(b"\n") + b",VIN\n"
    finding = only_code(validate(data), Code.UNEXPECTED_COLUMN_HEADERS)
    assert "VIN" in finding.detail


def test_header_case_and_surrounding_spaces_are_tolerated():
    data = b"vin , manufacturerrecallcampaignreference,DVSACampaignReference,RECALLCAMPAIGNSTARTDATE\n" + GOOD_ROW
    assert validate(data).accepted


# -- rows --------------------------------------------------------------------------------------
def test_malformed_rows_report_their_lines():
    verdict = validate(rows("V1,R1,,2026-01-01", "V2,R2,2026-01-01", "V3,R3,,2026-01-01,extra"))
    finding = only_code(verdict, Code.MALFORMED_ROW)
    assert (finding.rows, finding.example_lines) == (2, (3, 4))


@pytest.mark.parametrize(
    ("row", "column"),
    [
        (",ABC123,R/1,2026-01-05", "VIN"),
        ("   ,ABC123,R/1,2026-01-05", "VIN"),
        ("JN3MS37A9PW212345,,R/1,2026-01-05", "ManufacturerRecallCampaignReference"),
        ("JN3MS37A9PW212345,ABC123,R/1,", "RecallCampaignStartDate"),
    ],
)
def test_missing_required_fields(row, column):
    verdict = validate(rows(GOOD_ROW.decode().strip(), row))
    finding = problem(verdict, Code.MISSING_REQUIRED_FIELDS)
    assert (finding.rows, finding.example_lines) == (1, (3,))
    assert finding.reason == "Missing required fields"
    assert set(verdict.report.loc[verdict.report["code"] == Code.MISSING_REQUIRED_FIELDS, "column"]) == {column}
    assert not verdict.accepted


def test_blank_dvsa_reference_is_fine():
    verdict = validate(rows("JN3MS37A9PW212345,ABC123,,2026-01-05"))
    assert verdict.accepted, verdict.problems
    assert verdict.snapshot.column("dvsa_campaign_reference").to_pylist() == [None]


@pytest.mark.parametrize(
    "value", ["2026-1-05", "05/01/2026", "2026-02-30", "2026/01/05", "26-01-05", "2026-01-05T00:00"]
)
def test_incorrect_date_format(value):
    finding = only_code(validate(rows(f"JN3MS37A9PW212345,ABC123,,{value}")), Code.INCORRECT_DATE_FORMAT)
    assert finding.example_lines == (2,)
    assert finding.reason == "Incorrect date format"


def test_leap_day_is_a_valid_date():
    verdict = validate(rows("JN3MS37A9PW212345,ABC123,,2024-02-29"))
    assert verdict.accepted, verdict.problems
    assert verdict.snapshot.column("recall_campaign_start_date").to_pylist() == [date(2024, 2, 29)]


def test_manufacturer_reference_length_limit():
    assert REFERENCE_MAX_LENGTH == 50
    assert validate(rows(f"JN3MS37A9PW212345,{'A' * 50},,2026-01-05")).accepted
    finding = only_code(validate(rows(f"JN3MS37A9PW212345,{'A' * 51},,2026-01-05")), Code.MANUFACTURER_REF_TOO_LONG)
    assert finding.reason == "Manufacturer Recall Campaign Reference too long"


def test_dvsa_reference_length_limit():
    assert validate(rows(f"JN3MS37A9PW212345,ABC,{'R' * 50},2026-01-05")).accepted
    finding = only_code(validate(rows(f"JN3MS37A9PW212345,ABC,{'R' * 51},2026-01-05")), Code.DVSA_REF_TOO_LONG)
    assert finding.reason == "DVSA Recall Campaign Reference too long"


ALLOWED_REFERENCE = "azAZ09-_\\/"


@pytest.mark.parametrize("bad", ["ABC 123", "ABC.123", "ABC#123", "ABC,123", "ABC\u00e9"])
def test_invalid_manufacturer_reference(bad):
    quoted = bad if "," not in bad else f'"{bad}"'
    finding = only_code(validate(rows(f"JN3MS37A9PW212345,{quoted},,2026-01-05")), Code.INVALID_MANUFACTURER_REF)
    assert finding.reason == "Invalid Manufacturer Recall Campaign Reference"


@pytest.mark.parametrize("bad", ["R 2026", "R.2026", "R#2026"])
def test_invalid_dvsa_reference(bad):
    finding = only_code(validate(rows(f"JN3MS37A9PW212345,ABC,{bad},2026-01-05")), Code.INVALID_DVSA_REF)
    assert finding.reason == "Invalid DVSA Recall Campaign Reference"


def test_every_allowed_reference_character_is_accepted():
    verdict = validate(rows(f"JN3MS37A9PW212345,{ALLOWED_REFERENCE},{ALLOWED_REFERENCE},2026-01-05"))
    assert verdict.accepted, verdict.problems
    assert verdict.snapshot.column("manufacturer_campaign_reference").to_pylist() == [ALLOWED_REFERENCE]
    assert verdict.snapshot.column("dvsa_campaign_reference").to_pylist() == [ALLOWED_REFERENCE]


def test_conflicting_duplicate():
    verdict = validate(
        rows(
            "JN3MS37A9PW212345,ABC,R/1,2026-01-05",
            "OTHERVIN000000001,ABC,R/1,2026-01-05",
            "JN3MS37A9PW212345,ABC,R/2,2026-01-05",
        )
    )
    finding = only_code(verdict, Code.CONFLICTING_DUPLICATE)
    assert finding.example_lines == (2, 4)


def test_identical_duplicate_is_accepted_once_with_a_warning():
    verdict = validate(rows("JN3MS37A9PW212345,ABC,R/1,2026-01-05", "JN3MS37A9PW212345,ABC,R/1,2026-01-05"))
    assert verdict.accepted, verdict.problems
    assert verdict.snapshot.num_rows == 1
    [warning] = verdict.warnings
    assert (warning.code, warning.rows, warning.example_lines) == (Warning_.DUPLICATE_ROW, 1, (3,))
    assert verdict.row_count == 2


def test_spec_example_rows_are_accepted_with_vin_warnings_only():
    verdict = validate(SPEC_EXAMPLE)
    assert verdict.accepted, verdict.problems
    assert verdict.problems == []
    [warning] = verdict.warnings
    # ABCCCX5RZUDE1234 has 16 characters; LH7PRODCJEE012345 contains an O.
    assert (warning.code, warning.rows, warning.example_lines) == (Warning_.VIN_NOT_ISO_3779, 2, (2, 4))
    assert verdict.snapshot.num_rows == 4


@pytest.mark.parametrize("vin", ["ABCCCX5RZUDE1234", "LH7PRODCJEE012345", "JN3MS37A9PW21234Q", "X"])
def test_non_iso_vin_is_a_warning_never_a_rejection(vin):
    verdict = validate(rows(f"{vin},ABC,,2026-01-05"))
    assert verdict.accepted
    assert [w.code for w in verdict.warnings] == [Warning_.VIN_NOT_ISO_3779]


def test_several_problems_are_reported_at_once_with_line_numbers():
    verdict = validate(
        rows(
            "JN3MS37A9PW212345,ABC1,,2026-01-05",  # 2 fine
            ",ABC2,,2026-01-05",  # 3 missing VIN
            "JN3MS37A9PW212346,ABC3,,05/01/2026",  # 4 bad date
            f"JN3MS37A9PW212347,{'A' * 51},,2026-01-05",  # 5 too long
            "JN3MS37A9PW212348,A.B,R 1,2026-01-05",  # 6 both references invalid
            "JN3MS37A9PW212349,ABC6,,",  # 7 missing date
            "JN3MS37A9PW212345,ABC1,R/9,2026-01-05",  # 8 conflicts with 2
        )
    )
    assert verdict.codes == [
        Code.MISSING_REQUIRED_FIELDS,
        Code.INCORRECT_DATE_FORMAT,
        Code.MANUFACTURER_REF_TOO_LONG,
        Code.INVALID_MANUFACTURER_REF,
        Code.INVALID_DVSA_REF,
        Code.CONFLICTING_DUPLICATE,
    ]
    lines = {p.code: p.example_lines for p in verdict.problems}
    assert lines == {
        Code.MISSING_REQUIRED_FIELDS: (3, 7),
        Code.INCORRECT_DATE_FORMAT: (4,),
        Code.MANUFACTURER_REF_TOO_LONG: (5,),
        Code.INVALID_MANUFACTURER_REF: (6,),
        Code.INVALID_DVSA_REF: (6,),
        Code.CONFLICTING_DUPLICATE: (2, 8),
    }
    assert verdict.snapshot is None
    assert verdict.row_count == 7
    report = verdict.report
    assert list(report["line"]) == sorted(report["line"])
    assert set(report.loc[report["severity"] == "error", "line"]) == {2, 3, 4, 5, 6, 7, 8}


def test_quoted_fields_and_blank_lines_do_not_shift_line_numbers():
    """The slow csv path: a quoted field spanning two lines and blank lines in the middle."""
    data = (
        HEADER
        + b'"JN3MS37A9PW212345","ABC1",,2026-01-05\n'  # 2
        + b"\n"  # 3 blank
        + b",ABC2,,2026-01-05\n"  # 4 missing VIN
        + b'"VIN\nSPLIT",ABC3,,2026-01-05\n'  # 5-6 one record on two lines
        + b"\r\n"  # 7 blank
        + b"JN3MS37A9PW212347,ABC4,,2026-13-01\n"  # 8 bad date
        + b'JN3MS37A9PW212348,"A,B",,2026-01-05\n'  # 9 comma inside a quoted reference
        + b"JN3MS37A9PW212349,ABC5,2026-01-05\n"  # 10 three fields
    )
    verdict = validate(data)
    lines = {p.code: p.example_lines for p in verdict.problems}
    assert lines == {
        Code.MALFORMED_ROW: (10,),
        Code.MISSING_REQUIRED_FIELDS: (4,),
        Code.INCORRECT_DATE_FORMAT: (8,),
        Code.INVALID_MANUFACTURER_REF: (9,),
    }
    assert verdict.row_count == 6


def test_fast_and_slow_paths_agree():
    plain = rows("JN3MS37A9PW212345,ABC1,,2026-01-05", ",ABC2,,2026-01-05", "JN3MS37A9PW212347,ABC3,,2026-1-5")
    quoted = plain.replace(b"ABC1", b'"ABC1"')
    fast, slow = validate(plain), validate(quoted)
    assert [(p.code, p.rows, p.example_lines) for p in fast.problems] == [
        (p.code, p.rows, p.example_lines) for p in slow.problems
    ]
    assert [(p.code, p.example_lines) for p in fast.problems] == [
        (Code.MISSING_REQUIRED_FIELDS, (3,)),
        (Code.INCORRECT_DATE_FORMAT, (4,)),
    ]


def test_bare_cr_blank_line_does_not_shift_line_numbers():
    verdict = validate(HEADER + b"JN3MS37A9PW212345,ABC1,,2026-01-05\r\r,ABC2,,2026-01-05\n")
    assert [(p.code, p.example_lines) for p in verdict.problems] == [(Code.MISSING_REQUIRED_FIELDS, (4,))]


def test_cr_only_line_endings_are_read():
    verdict = validate(SPEC_EXAMPLE.replace(b"\n", b"\r"))
    assert verdict.accepted, verdict.problems
    assert verdict.snapshot.equals(validate(SPEC_EXAMPLE).snapshot)


@pytest.mark.reliability(
    "Hostile input",
    "a stray quote that would swallow the rest of a large recall file into one field",
    "rejected as a malformed row, not a crash",
)
def test_stray_quote_swallowing_a_large_file_is_malformed_not_a_crash():
    data = HEADER + b'JN3MS37A9PW212345,"ABC1,,2026-01-05\n' + b"JN3MS37A9PW212346,ABC2,,2026-01-05\n" * 5000
    verdict = validate(data)
    assert Code.MALFORMED_ROW in verdict.codes
    assert problem(verdict, Code.MALFORMED_ROW).example_lines == (2,)


def test_snapshot_content_is_exact():
    verdict = validate(
        rows(
            "JN3MS37A9PW212345,ABC1,R/2026/1,2026-01-05",
            "JN3MS37A9PW212346,ABC2,,2024-02-29",
            "JN3MS37A9PW212345,ABC3,R\\2026_3-x,1999-12-31",
        )
    )
    assert verdict.accepted
    expected = pa.table(
        {
            "vin": ["JN3MS37A9PW212345", "JN3MS37A9PW212346", "JN3MS37A9PW212345"],
            "manufacturer_campaign_reference": ["ABC1", "ABC2", "ABC3"],
            "dvsa_campaign_reference": ["R/2026/1", None, "R\\2026_3-x"],
            "recall_campaign_start_date": pa.array(
                [date(2026, 1, 5), date(2024, 2, 29), date(1999, 12, 31)], pa.date32()
            ),
        },
        schema=SNAPSHOT_SCHEMA,
    )
    assert verdict.snapshot.schema == SNAPSHOT_SCHEMA
    assert verdict.snapshot.schema.field("recall_campaign_start_date").type == pa.date32()
    assert verdict.snapshot.equals(expected)
    assert verdict.row_count == 3


def test_every_code_has_wording():
    for code in [*Code, *Warning_]:
        assert WORDING[code]


@pytest.mark.reliability(
    "Hostile input",
    "recall file above the configured maximum size",
    "rejected FILE_TOO_LARGE before it is parsed",
)
def test_too_large_file_is_rejected_without_reading():
    verdict = validate_recall_file(HEADER + GOOD_ROW * 10, "recalls.csv", max_bytes=100)
    assert verdict.codes == [Code.FILE_TOO_LARGE]


# -- properties --------------------------------------------------------------------------------
# Each validation of a non-trivial file costs ~0.1 s (pandera + DuckDB), so the example counts are modest;
# database=None keeps hypothesis from writing a .hypothesis folder into the repository.
PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
_CHUNKS = st.sampled_from(
    [b"a", b"Z9", b",", b"\n", b"\r\n", b"\r", b'"', b" ", b"-", b"/", b"2026-01-05", b"\xef\xbb\xbf", b"\xe9",
     b"\x00", b"\t", b"VIN", HEADER]
)  # fmt: skip


@pytest.mark.reliability(
    "Hostile input",
    "arbitrary bytes as a recall CSV (hypothesis: binary, BOMs, NUL, stray quotes, bare CRs)",
    "validation returns ACCEPTED or REJECTED with known codes only, never raises",
)
@PROPERTY_SETTINGS
@given(
    prefix=st.sampled_from([b"", HEADER, b"\xef\xbb\xbf" + HEADER]),
    body=st.one_of(st.binary(max_size=300), st.lists(_CHUNKS, max_size=60).map(b"".join)),
    name=st.sampled_from(["recalls.csv", "x.CSV", "bad name.txt", "", "../x.csv"]),
)
def test_arbitrary_bytes_never_raise(prefix, body, name):
    verdict = validate_recall_file(prefix + body, name)
    assert all(p.code in Code.__members__ for p in verdict.problems)
    assert all(w.code in Warning_.__members__ for w in verdict.warnings)
    if verdict.accepted:
        assert verdict.problems == []
        assert verdict.snapshot is not None
        assert verdict.snapshot.schema == SNAPSHOT_SCHEMA
    else:
        assert verdict.problems
        assert verdict.snapshot is None


_REF_ALPHABET = st.sampled_from("abcXYZ0189-_\\/")
_VIN = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=20
).filter(lambda v: v.strip() != "")
_ROW = st.tuples(
    _VIN,
    st.text(_REF_ALPHABET, min_size=1, max_size=50),
    st.one_of(st.just(""), st.text(_REF_ALPHABET, min_size=1, max_size=50)),
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
)


@pytest.mark.reliability(
    "Hostile input",
    "any valid rows with odd but legal text (unicode, quotes, CR/LF inside quoted fields)",
    "accepted rows round-trip exactly into the snapshot",
)
@settings(PROPERTY_SETTINGS, max_examples=30)
@given(
    data=st.lists(_ROW, min_size=1, max_size=30, unique_by=lambda r: (r[0], r[1])),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    newline=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
)
def test_valid_rows_round_trip_exactly_into_the_snapshot(data, quoting, newline, bom):
    if any("\r" in vin or "\n" in vin for vin, *_ in data):
        quoting = csv.QUOTE_ALL  # the csv module leaves a bare CR unquoted: not valid CSV, not our input
    out = io.StringIO()
    writer = csv.writer(out, quoting=quoting, lineterminator=newline)
    writer.writerow(HEADERS)
    for vin, ref, dvsa, start in data:
        writer.writerow([vin, ref, dvsa, start.isoformat()])
    raw = (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode("utf-8")
    verdict = validate_recall_file(raw, "recalls.csv")
    assert verdict.accepted, verdict.problems
    assert verdict.row_count == len(data)
    assert verdict.snapshot.to_pylist() == [
        {
            "vin": vin,
            "manufacturer_campaign_reference": ref,
            "dvsa_campaign_reference": dvsa or None,
            "recall_campaign_start_date": start,
        }
        for vin, ref, dvsa, start in data
    ]


# -- hostile sizes -----------------------------------------------------------------------------
@pytest.mark.reliability(
    "Hostile input",
    "a recall file with one enormous line (megabytes without a newline)",
    "the line is rejected as MALFORMED_ROW with its line number, never parsed as a field; other rows are still checked",
)
@pytest.mark.parametrize("quoted", [False, True])
def test_over_long_line_is_a_malformed_row_with_its_line_number(quoted):
    huge = b"JN3MS37A9PW212346," + b"A" * (2 << 20) + b",,2026-01-05\n"
    quoted_row = b'"JN3MS37A9PW212347",ABC,,2026-01-05\n' if quoted else b""
    data = HEADER + GOOD_ROW + huge + quoted_row + b",ABC,,2026-01-05\n"
    verdict = validate_recall_file(data, "recalls.csv", max_line_bytes=64 << 10)
    malformed = problem(verdict, Code.MALFORMED_ROW)
    assert (malformed.rows, malformed.example_lines) == (1, (3,))
    report = verdict.report.loc[verdict.report["code"] == Code.MALFORMED_ROW]
    assert report["value"].tolist() == [f"longer than {64 << 10} bytes"]
    missing = problem(verdict, Code.MISSING_REQUIRED_FIELDS)
    assert missing.example_lines == ((5,) if quoted else (4,))
    assert verdict.row_count == (4 if quoted else 3)
    assert verdict.snapshot is None


def test_line_at_the_limit_is_read():
    line = b"JN3MS37A9PW212345,ABC,,2026-01-05"
    verdict = validate_recall_file(HEADER + line + b"\r\n", "recalls.csv", max_line_bytes=len(line))
    assert verdict.accepted, verdict.problems
    verdict = validate_recall_file(HEADER + line + b"\n", "recalls.csv", max_line_bytes=len(line) - 1)
    assert problem(verdict, Code.MALFORMED_ROW).example_lines == (2,)


@pytest.mark.reliability(
    "Hostile input",
    "a recall file larger than the service accepts (e.g. a multi-GB upload)",
    "rejected as FILE_TOO_LARGE with its size and the limit in the reason, before any parsing",
)
def test_file_over_the_size_limit_is_rejected_with_a_clear_reason():
    data = HEADER + GOOD_ROW * 10
    verdict = validate_recall_file(data, "recalls.csv", max_bytes=len(data) - 1)
    finding = only_code(verdict, Code.FILE_TOO_LARGE)
    assert finding.detail == f"{len(data)} bytes, the limit is {len(data) - 1}"
    assert finding.reason == "File too large"
    assert verdict.row_count == 0
    assert validate_recall_file(data, "recalls.csv", max_bytes=len(data)).accepted


@pytest.mark.parametrize(
    "rows",
    [
        b"\xef\xbb\xbf",
        b"\xef\xbb\xbfVIN12345678901234,R1,,2026-01-05\n",
        b"A,B,,2026-01-05\n\xef\xbb\xbfC,D,,2026-01-05\n",
    ],
)
def test_a_bom_inside_the_body_is_data_not_a_file_start(rows):
    """Arrow drops a BOM at the start of what it reads; the csv module keeps it (found by hypothesis)."""
    import pandas as pd

    from include.recalls.validation import _read_rows, _read_rows_exact

    fast, fast_bad = _read_rows(HEADER + rows, 1 << 16)
    exact, exact_bad = _read_rows_exact((HEADER + rows).decode("utf-8"))
    pd.testing.assert_frame_equal(fast, exact, check_dtype=False)
    pd.testing.assert_frame_equal(fast_bad.reset_index(drop=True), exact_bad.reset_index(drop=True), check_dtype=False)


@PROPERTY_SETTINGS
@given(body=st.one_of(st.binary(max_size=300), st.lists(_CHUNKS, max_size=60).map(b"".join)))
def test_fast_row_reader_equals_the_csv_module(body):
    """The Arrow fast path must read exactly what the csv module reads, line numbers included."""
    import pandas as pd

    from include.recalls.validation import _read_rows, _read_rows_exact

    try:
        text = (HEADER + body).decode("utf-8")
    except UnicodeDecodeError:
        return  # WRONG_ENCODING is decided before rows are read
    try:
        exact, exact_bad = _read_rows_exact(text)
    except Exception:
        return
    fast, fast_bad = _read_rows(HEADER + body, 1 << 16)
    pd.testing.assert_frame_equal(fast, exact, check_dtype=False, check_index_type=False)
    pd.testing.assert_frame_equal(fast_bad.reset_index(drop=True), exact_bad.reset_index(drop=True), check_dtype=False)
