"""Every rejection reason, through the real steps: clamd scan, validation, recording in the
warehouse, and delivery of the manufacturer's email by real SMTP. Each asserts the status, the
code, the email (recipient, the spec's wording, the attachment) and that nothing was applied.
"""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from include.landing.archive import Archive, ReceivedFile
from include.mail.outbox import SmtpSettings, deliver_pending
from include.recalls.intake import check_file, record_day
from include.recalls.notify import Manufacturer
from include.recalls.state import MassFixGuard
from include.warehouse import connect

ACME = Manufacturer("ACME", "Acme Motors", "recalls-team@acme.example")
DAY0, DAY = date(2026, 10, 1), date(2026, 10, 2)
HEADER = "VIN,ManufacturerRecallCampaignReference,DVSACampaignReference,RecallCampaignStartDate\n"
GOOD_ROW = "LH7PRODCJEE012345,ABCCARS123,R/2026/123,2026-01-01\n"
EICAR = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

# reason code -> (file name, content, wording in the email, line numbers in the attachment)
CASES = {
    "INFECTED_FILE": ("acme.csv", HEADER + EICAR + "\n", "Infected file", None),
    "WRONG_FILE_EXTENSION": ("acme.txt", HEADER + GOOD_ROW, "Wrong file extension", None),
    "SPACES_IN_FILE_NAME": ("acme recalls.csv", HEADER + GOOD_ROW, "Spaces in the file name", None),
    "EMPTY_FILE": ("acme.csv", "", "Empty file", None),
    "WRONG_ENCODING": ("acme.csv", None, "Wrong encoding format", None),
    "MISSING_COLUMN_HEADERS": (
        "acme.csv",
        "VIN,RecallCampaignStartDate\nX,2026-01-01\n",
        "Missing column headers",
        None,
    ),
    "COLUMNS_WRONG_ORDER": (
        "acme.csv",
        "VIN,DVSACampaignReference,ManufacturerRecallCampaignReference,RecallCampaignStartDate\n",
        "Columns in the wrong order",
        None,
    ),
    "MISSING_REQUIRED_FIELDS": ("acme.csv", HEADER + GOOD_ROW + ",REF1,,2026-01-01\n", "Missing required fields", [3]),
    "INCORRECT_DATE_FORMAT": ("acme.csv", HEADER + "V1,REF1,,01/02/2026\n" + GOOD_ROW, "Incorrect date format", [2]),
    "MANUFACTURER_REF_TOO_LONG": (
        "acme.csv",
        HEADER + GOOD_ROW + "V2," + "R" * 51 + ",,2026-01-01\n",
        "Manufacturer Recall Campaign Reference too long",
        [3],
    ),
    "DVSA_REF_TOO_LONG": (
        "acme.csv",
        HEADER + "V2,REF2," + "D" * 51 + ",2026-01-01\n",
        "DVSA Recall Campaign Reference too long",
        [2],
    ),
    "INVALID_MANUFACTURER_REF": (
        "acme.csv",
        HEADER + "V2,=HYPERLINK(1),,2026-01-01\n",
        "Invalid Manufacturer Recall Campaign Reference",
        [2],
    ),
    "INVALID_DVSA_REF": (
        "acme.csv",
        HEADER + "V2,REF2,R 2026.1,2026-01-01\n",
        "Invalid DVSA Recall Campaign Reference",
        [2],
    ),
    "CONFLICTING_DUPLICATE": (
        "acme.csv",
        HEADER + "V3,REF3,R/1,2026-01-01\n" + GOOD_ROW + "V3,REF3,R/2,2026-01-01\n",
        "Conflicting duplicate recalls",
        [2, 4],
    ),
}


@pytest.fixture
def setup(tmp_path, clamd_service, smtp_service):
    smtp_service.clear()
    archive = Archive(tmp_path / "archive")
    warehouse = tmp_path / "warehouse.duckdb"
    smtp = SmtpSettings(smtp_service.host, smtp_service.port, "pipeline@dvsa.localhost")
    # An accepted day first, so "nothing applied" is checked against real state.
    outcome = check_file(
        archive,
        _receive(archive, "day0.csv", (HEADER + GOOD_ROW).encode(), DAY0),
        **_scanner(clamd_service),
        first_of_day=True,
    )
    with connect(warehouse) as con:
        record_day(con, ACME, DAY0, [outcome], guard=MassFixGuard(), ops_email="ops@dvsa.example")
    return archive, warehouse, smtp


def _scanner(clamd_service) -> dict:
    return {"clamd_host": clamd_service.host, "clamd_port": clamd_service.port}


def _receive(archive: Archive, name: str, data: bytes, day: date) -> ReceivedFile:
    sha256, size = archive.store_stream(io.BytesIO(data), expected_size=len(data))
    received = ReceivedFile(
        "recalls",
        "ACME",
        day.isoformat(),
        name,
        f"/recalls/ACME/{name}",
        size,
        1.0e9,
        sha256,
        "2026-10-03T00:00:00+00:00",
    )
    archive.record(received)
    return received


def _state(warehouse) -> list[tuple]:
    with connect(warehouse) as con:
        return (
            con.execute("SELECT * FROM recall_history ORDER BY ALL").fetchall()
            + con.execute("SELECT * FROM recalls ORDER BY ALL").fetchall()
        )


@pytest.mark.parametrize("code", list(CASES))
def test_rejection_reason_is_recorded_and_emailed(code, setup, clamd_service, smtp_service):
    archive, warehouse, smtp = setup
    name, text, wording, lines = CASES[code]
    data = b"VIN,ManufacturerRecallCampaignReference\n" + b"\xff\xfe bad\n" if text is None else text.encode()
    before = _state(warehouse)
    outcome = check_file(archive, _receive(archive, name, data, DAY), **_scanner(clamd_service), first_of_day=True)
    with connect(warehouse) as con:
        result = record_day(con, ACME, DAY, [outcome], guard=MassFixGuard(), ops_email="ops@dvsa.example")
        row = con.execute(
            "SELECT status, error_codes FROM recall_files WHERE business_date = ? AND manufacturer = 'ACME'", [DAY]
        ).fetchone()
        assert deliver_pending(con, smtp) == (len(result.queued_messages), 0)
    assert row[0] == "REJECTED" and code in row[1]
    assert _state(warehouse) == before  # nothing applied
    to_manufacturer = [m for m in smtp_service.messages() if m["To"] == ACME.team_email]
    assert len(to_manufacturer) == 1
    email = to_manufacturer[0]
    assert "Acme Motors" in email["Subject"] and name in email["Subject"] and DAY.isoformat() in email["Subject"]
    assert wording in email.get_body(("plain",)).get_content()
    attachments = list(email.iter_attachments())
    if lines is None:
        assert attachments == [] or code not in attachments[0].get_content()
    else:
        rows = list(csv.DictReader(io.StringIO(attachments[0].get_content())))
        assert sorted({int(r["line"]) for r in rows if r["code"] == code}) == lines
        assert all(not r["value"].startswith(("=", "+", "@")) for r in rows)  # formula-safe
