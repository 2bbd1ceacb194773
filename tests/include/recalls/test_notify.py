"""Rejection emails: subject, reasons in the spec's wording, safe attachment, escaped HTML."""

from __future__ import annotations

import csv
import io
from datetime import date

import pandas as pd

from include.recalls.notify import Manufacturer, ops_message, rejection_message, report_csv, spreadsheet_safe
from include.recalls.spec import DESCRIPTION, Code
from include.recalls.validation import REPORT_COLUMNS, validate_recall_file

HEADER = b"VIN,ManufacturerRecallCampaignReference,DVSACampaignReference,RecallCampaignStartDate\n"
ACME = Manufacturer("ACME", "Acme Motors", "recalls-team@acme.example")
DAY = date(2026, 11, 2)
SHA = "ab" * 32


def message_for(data: bytes, file_name: str = "acme_recalls.csv", manufacturer: Manufacturer = ACME):
    verdict = validate_recall_file(data, file_name)
    assert not verdict.accepted
    # The report goes through a CSV file between the tasks, as in intake.
    buffer = io.StringIO()
    verdict.report.to_csv(buffer, index=False)
    buffer.seek(0)
    report = pd.read_csv(buffer, dtype=str, keep_default_na=False)
    return rejection_message(manufacturer, file_name, DAY, SHA, verdict.problems, report, upload_id="upload-1")


def attachment_rows(message) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(message.attachment.decode("utf-8"))))


def test_subject_names_manufacturer_file_and_day():
    message = message_for(HEADER + b"V1,,,2026-01-01\n")
    assert message.subject == "Recall file rejected: Acme Motors (ACME), acme_recalls.csv, 2026-11-02"
    assert message.recipients == ("recalls-team@acme.example",)
    assert message.key == "recall:ACME:rejected:2026-11-02:upload-1"


def test_body_lists_each_reason_in_the_spec_wording_with_rows_and_lines():
    bad_dates = b"".join(f"VIN{i:014d},REF{i},,2026-1-{i + 1}\n".encode() for i in range(12))
    data = HEADER + b"V1,,,2026-01-01\n" + bad_dates + b"V2,A.B,,2026-01-01\n"
    message = message_for(data)
    text = message.body_text
    assert "- Missing required fields: 1 row; line 2\n" in text
    assert "- Incorrect date format: 12 rows; lines 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 and more\n" in text
    assert "- Invalid Manufacturer Recall Campaign Reference: 1 row; line 15\n" in text
    for code in (Code.MISSING_REQUIRED_FIELDS, Code.INCORRECT_DATE_FORMAT, Code.INVALID_MANUFACTURER_REF):
        assert DESCRIPTION[code] in text
        assert DESCRIPTION[code] in message.body_html
    # The spec's own wording for the reasons it names.
    assert "The Recall Campaign Start Date is not in the format YYYY-MM-DD." in text
    assert "Line numbers count the header as line 1." in text
    assert SHA in text
    assert "acme_recalls.csv" in text and "2026-11-02" in text
    assert message.attachment_name == "ACME-2026-11-02-errors.csv"
    assert text.index("Missing required fields") < text.index("Incorrect date format")


def test_file_level_reasons_without_rows():
    message = message_for(b"VIN,ManufacturerRecallCampaignReference\n", file_name="acme recalls.txt")
    assert "- Wrong file extension: the file name is 'acme recalls.txt'\n" in message.body_text
    assert "- Spaces in the file name: the file name is 'acme recalls.txt'\n" in message.body_text
    assert "- Missing column headers: missing: DVSACampaignReference, RecallCampaignStartDate\n" in message.body_text
    assert DESCRIPTION[Code.MISSING_COLUMN_HEADERS] in message.body_text
    assert message.attachment is None and message.attachment_name is None


def test_attachment_values_are_safe_from_formula_injection():
    data = HEADER + (
        b"=1+2,REF1,,2026-01-01\n"  # VIN warning, value =1+2
        b"V2,+A1,,2026-01-01\n"
        b"V3,-A1+B1,,2026-01-01\n"
        b"V4,@SUM(A1),,2026-01-01\n"
        b'V5,R5,"=HYPERLINK(""http://evil.example"")",2026-01-01\n'
        b"V6,R6,,%2026\n"
    )
    message = message_for(data)
    rows = attachment_rows(message)
    assert list(rows[0]) == REPORT_COLUMNS
    values = {row["value"] for row in rows}
    assert {"'=1+2", "'+A1", "'-A1+B1", "'@SUM(A1)", '\'=HYPERLINK("http://evil.example")', "'%2026"} <= values
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r", "|", "%")), row
    assert message.attachment.endswith(b"\r\n")


def test_spreadsheet_safe():
    assert [spreadsheet_safe(v) for v in ["=x", "+x", "-x", "@x", "plain", "", None, 12, float("nan")]] == [
        "'=x",
        "'+x",
        "'-x",
        "'@x",
        "plain",
        "",
        "",
        "12",
        "",
    ]
    frame = pd.DataFrame([[2, "error", "X", "r", "VIN", "=cmd|' /C calc'!A0"]], columns=REPORT_COLUMNS)
    assert report_csv(frame).decode().splitlines()[1] == "2,error,X,r,VIN,'=cmd|' /C calc'!A0"


def test_html_escapes_file_names_and_values():
    script = "<script>alert(1)</script>"
    message = message_for(
        HEADER.rstrip(b"\n") + b"," + script.encode() + b"\n",
        file_name=f"{script}.csv",
        manufacturer=Manufacturer("ACME", "Smith & <b>Sons</b>", "x@acme.example"),
    )
    html = message.body_html
    assert "<script>" not in html
    assert "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.csv" in html
    assert "unexpected: &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Smith &amp; &lt;b&gt;Sons&lt;/b&gt;" in html
    # The text body keeps the name as it is (it is not HTML).
    assert f"'{script}.csv'" in message.body_text


def test_ops_message_escapes_html_and_keeps_text():
    message = ops_message("key-1", "ops@example", "Subject", ["a <b> line", "second"])
    assert message.body_text == "a <b> line\nsecond\n"
    assert message.body_html == "<p>a &lt;b&gt; line</p><p>second</p>"
    assert message.recipients == ("ops@example",)
