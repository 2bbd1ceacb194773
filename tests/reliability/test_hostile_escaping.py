"""Text taken from a manufacturer's file is data, never markup or a spreadsheet formula: through the
real steps (clamd scan, validation, recording, delivery by real SMTP), hostile values in the file
name and the rows reach the rejection email escaped and its CSV attachment formula-safe."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import date

import pytest

from include.landing.archive import Archive, ReceivedFile
from include.mail.outbox import SmtpSettings, deliver_pending
from include.recalls.intake import check_file, record_day
from include.recalls.notify import report_csv, spreadsheet_safe
from include.recalls.state import MassFixGuard
from include.warehouse import connect
from tests.reliability.faults import ACME

DAY = date(2026, 10, 7)
HEADERS = ["VIN", "ManufacturerRecallCampaignReference", "DVSACampaignReference", "RecallCampaignStartDate"]
SCRIPT = '<script>alert("x")</script>'
FILE_NAME = "<img src=x onerror=alert(1)>&amp;.csv"
# Every character a spreadsheet may read as the start of a formula (or DDE), then markup.
FORMULAS = [
    '=HYPERLINK("http://evil.example","click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A2)",
    "\t=1+1",
    "\r=1+1",
    "|calc",
    "%0A=1",
    SCRIPT,
]


def hostile_file() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(HEADERS)
    for index, vin in enumerate(FORMULAS):  # any text is a VIN (a warning, not a rejection): echoed in the report
        writer.writerow([vin, f"REF{index}", "", "2026-01-01"])
    for ref in FORMULAS:  # invalid references: the rejection, each echoed in the report
        writer.writerow(["LH7PRODCJEE012345", ref, "", "2026-01-01"])
    return out.getvalue().encode()


@pytest.mark.reliability(
    "Hostile input",
    "HTML/script in a recall file's name and rows; spreadsheet formulas (= + - @ tab CR | %) in its values",
    "the rejection email (real SMTP) shows them as escaped text; every CSV attachment cell that could start a"
    " formula is prefixed with a quote (also in the stored report the operations page serves), and a CR inside a"
    " value never splits a report row",
)
def test_file_text_is_escaped_in_the_email_and_formula_safe_in_the_attachment(tmp_path, clamd_service, smtp_service):
    smtp_service.clear()
    archive = Archive(tmp_path / "archive")
    data = hostile_file()
    sha256, size = archive.store_stream(io.BytesIO(data), expected_size=len(data))
    received = ReceivedFile(
        "recalls",
        "ACME",
        DAY.isoformat(),
        FILE_NAME,
        f"/recalls/ACME/{FILE_NAME}",
        size,
        1.0e9,
        sha256,
        "2026-10-08T00:00:00+00:00",
    )
    archive.record(received)
    outcome = check_file(
        archive, received, first_of_day=True, clamd_host=clamd_service.host, clamd_port=clamd_service.port
    )
    assert outcome.status == "REJECTED" and "INVALID_MANUFACTURER_REF" in outcome.codes
    # The stored row report (attached, and served by the operations page's report.csv) has one row per
    # finding: a value holding a bare CR must not split its row when read back (it did with pandas' to_csv).
    with open(outcome.report_path, newline="", encoding="utf-8") as handle:
        stored = list(csv.DictReader(handle))
    assert len(stored) == 2 * len(FORMULAS) + len(FORMULAS)  # hostile VINs, hostile refs and their VINs
    assert all(not c.startswith(("=", "+", "-", "@", "\t", "\r", "|", "%")) for r in stored for c in r.values())
    with connect(tmp_path / "warehouse.duckdb") as con:
        record_day(con, ACME, DAY, [outcome], guard=MassFixGuard(), ops_email="ops@dvsa.example")
        sent, queued = deliver_pending(con, SmtpSettings(smtp_service.host, smtp_service.port, "p@dvsa.localhost"))
    assert (sent, queued) == (1, 0)
    (email,) = smtp_service.messages()

    body = email.get_body(("html",)).get_content()
    assert "<script" not in body and "<img" not in body
    assert html.escape(FILE_NAME) in body  # shown, as text
    tags = set(re.findall(r"</?([a-zA-Z]+)", body))
    assert tags <= {"p", "code", "ul", "li", "strong", "br", "small"}, tags

    (attachment,) = list(email.iter_attachments())
    raw = attachment.get_content()
    rows = list(csv.DictReader(io.StringIO(raw, newline="")))
    # Mail transport may rewrite a bare CR inside a quoted field as a line break: compare line breaks loosely.
    values = [re.sub(r"\r\n?|\n", "\n", row["value"]) for row in rows]
    for cell in (c for row in rows for c in row.values()):
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r", "|", "%")), repr(cell)
    for value in FORMULAS:
        expected = re.sub(r"\r\n?|\n", "\n", value if value == SCRIPT else "'" + value)
        assert values.count(expected) == 2, (value, values)  # once as a VIN, once as a reference


@pytest.mark.reliability(
    "Hostile input",
    "formula prefixes in any report column (unit check of the CSV writer)",
    "each prefix is neutralised with a leading quote; plain text, empty and missing values are unchanged",
)
def test_spreadsheet_safe_covers_every_formula_prefix():
    for prefix in ("=", "+", "-", "@", "\t", "\r", "|", "%"):
        assert spreadsheet_safe(prefix + "1") == "'" + prefix + "1"
    assert spreadsheet_safe("ABC=1") == "ABC=1"
    assert spreadsheet_safe(None) == "" and spreadsheet_safe(float("nan")) == ""
    import pandas as pd

    report = pd.DataFrame(
        [[2, "ERROR", "=CODE", "@reason", "-col", "+value"]],
        columns=["line", "severity", "code", "reason", "column", "value"],
    )
    (row,) = list(csv.reader(io.StringIO(report_csv(report).decode(), newline="")))[1:]
    assert row == ["2", "ERROR", "'=CODE", "'@reason", "'-col", "'+value"]
