"""Recall intake: check_file with the real clamd, record_day / release_held in a temp warehouse."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from include.landing.archive import Archive, ReceivedFile
from include.recalls.intake import (
    FileOutcome,
    check_file,
    outcome_from_json,
    outcome_to_json,
    record_day,
    release_held,
)
from include.recalls.notify import Manufacturer
from include.recalls.spec import Code
from include.recalls.state import MassFixGuard
from include.recalls.validation import validate_recall_file
from include.warehouse import connect
from tools.services.clamd import EICAR

HEADER = b"VIN,ManufacturerRecallCampaignReference,DVSACampaignReference,RecallCampaignStartDate\n"
GOOD = HEADER + b"LH7PRODCJEE012345,ABCCARS123,R/2026/123,2026-12-01\nABCCCX5RZUDE1234,ABCTRUCKS125,,2026-12-03\n"
BAD = HEADER + b"LH7PRODCJEE012345,,R/2026/123,2026-02-30\n"
ACME = Manufacturer("ACME", "Acme Motors", "recalls-team@acme.example")
OPS = "data-ops@dvsa.example"
DAY = date(2026, 11, 2)
GUARD = MassFixGuard(max_share=0.5, max_count=3)


def many(n: int, start: int = 0) -> bytes:
    return HEADER + b"".join(f"VIN{i:014d},REF{i},,2026-01-01\n".encode() for i in range(start, start + n))


def receive(archive: Archive, data: bytes, day: date = DAY, name: str = "acme.csv", minute: int = 0) -> ReceivedFile:
    sha256, size = archive.store_stream(io.BytesIO(data), expected_size=len(data))
    received = ReceivedFile(
        feed="recalls",
        source="ACME",
        business_date=day.isoformat(),
        original_name=name,
        remote_path=f"/recalls/ACME/{name}",
        size=size,
        remote_mtime=datetime.combine(day, time(9, minute), tzinfo=UTC).timestamp(),
        sha256=sha256,
        received_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    archive.record(received)
    return received


@pytest.fixture
def archive(tmp_path) -> Archive:
    return Archive(tmp_path / "archive")


@pytest.fixture
def con(tmp_path):
    with connect(tmp_path / "warehouse.duckdb") as connection:
        yield connection


@pytest.fixture
def check(archive, clamd_service):
    def run(received: ReceivedFile, first_of_day: bool = True) -> FileOutcome:
        return check_file(
            archive, received, first_of_day=first_of_day, clamd_host=clamd_service.host, clamd_port=clamd_service.port
        )

    return run


def outbox(con) -> list[tuple]:
    return con.execute("SELECT message_key, recipients, subject FROM outbox ORDER BY message_key").fetchall()


def files(con) -> list[tuple]:
    return con.execute(
        "SELECT business_date, status, error_codes, row_count, released_at IS NOT NULL FROM recall_files"
        " ORDER BY business_date, recorded_at"
    ).fetchall()


def outstanding(con) -> list[str]:
    return [r[0] for r in con.execute("SELECT vin FROM outstanding_recalls ORDER BY vin").fetchall()]


def record(con, day: date, outcomes: list[FileOutcome], guard: MassFixGuard = GUARD):
    return record_day(con, ACME, day, outcomes, guard=guard, ops_email=OPS, dag_run_id="test-run")


# -- check_file --------------------------------------------------------------------------------
def test_clean_file_is_accepted_and_staged_as_parquet(archive, check):
    received = receive(archive, GOOD)
    outcome = check(received)
    assert outcome.status == "ACCEPTED", outcome.problems
    assert outcome.scanner_verdict == "CLEAN"
    assert outcome.scanner_name.startswith("ClamAV")
    assert outcome.row_count == 2
    assert [w["code"] for w in outcome.warnings] == ["VIN_NOT_ISO_3779"]
    staged = pq.read_table(outcome.snapshot_path)
    assert staged.equals(validate_recall_file(GOOD, "acme.csv").snapshot)
    assert outcome.snapshot_path.endswith(f"snapshots/recalls/ACME/{DAY.isoformat()}/{received.sha256}.parquet")
    assert outcome.report_path and outcome.report_path.endswith(".csv")  # the warnings' rows
    assert outcome.validation_seconds is not None
    assert outcome_from_json(outcome_to_json(outcome)) == outcome


def test_invalid_file_is_rejected_with_a_report(archive, check):
    outcome = check(receive(archive, BAD))
    assert outcome.status == "REJECTED"
    assert outcome.codes == [Code.MISSING_REQUIRED_FIELDS, Code.INCORRECT_DATE_FORMAT]
    assert outcome.snapshot_path is None
    assert "INCORRECT_DATE_FORMAT" in Path(outcome.report_path).read_text(encoding="utf-8")


def test_infected_file_is_rejected_and_quarantined(archive, check):
    received = receive(archive, EICAR, name="acme.csv")
    outcome = check(received)
    assert outcome.status == "REJECTED"
    assert outcome.codes == [Code.INFECTED_FILE]
    assert "Eicar" in outcome.scanner_verdict
    assert not archive.object_path(received.sha256).exists()
    with pytest.raises(FileNotFoundError):
        archive.read_bytes(received.sha256)
    assert archive.quarantine_path(received.sha256).read_bytes() == EICAR
    # A rerun (the manifest is still there) finds it quarantined and says so again.
    again = check(received)
    assert (again.status, again.codes) == ("REJECTED", [Code.INFECTED_FILE])


def test_infected_csv_is_caught_before_validation(archive, check):
    received = receive(archive, GOOD + b"X," + EICAR + b",,2026-01-01\n")
    outcome = check(received)
    assert outcome.codes == [Code.INFECTED_FILE]
    assert outcome.row_count is None


def test_second_file_of_the_day_is_multiple_files(archive, check):
    receive(archive, GOOD, minute=0)
    second = receive(archive, GOOD.replace(b"R/2026/123", b"R/2026/999"), name="acme2.csv", minute=5)
    outcome = check(second, first_of_day=False)
    assert outcome.status == "REJECTED"
    assert outcome.codes == [Code.MULTIPLE_FILES]
    assert outcome.snapshot_path is None
    assert outcome.scanner_verdict == "CLEAN"


# -- record_day --------------------------------------------------------------------------------
def test_accepted_file_is_applied(con, archive, check):
    outcome = check(receive(archive, GOOD))
    result = record(con, DAY, [outcome])
    assert result.status == "ACCEPTED"
    assert result.files[0]["change"] == {"added": 2, "fixed": 0, "changed": 0, "outstanding": 2}
    assert files(con) == [(DAY, "ACCEPTED", [], 2, False)]
    assert outstanding(con) == ["ABCCCX5RZUDE1234", "LH7PRODCJEE012345"]
    assert outbox(con) == []
    row = con.execute(
        "SELECT warning_codes, warning_count, scanner_verdict, added_count, dag_run_id, size_bytes FROM recall_files"
    ).fetchone()
    assert row == (["VIN_NOT_ISO_3779"], 2, "CLEAN", 2, "test-run", len(GOOD))
    # A rerun records the same and applies nothing new.
    record(con, DAY, [outcome])
    assert files(con) == [(DAY, "ACCEPTED", [], 2, False)]
    assert con.execute("SELECT count(*) FROM recall_history").fetchone() == (2,)


def test_identical_duplicate_rows_count_once_as_outstanding(con, archive, check):
    data = GOOD + b"LH7PRODCJEE012345,ABCCARS123,R/2026/123,2026-12-01\n"
    outcome = check(receive(archive, data))
    assert outcome.status == "ACCEPTED" and outcome.row_count == 3
    result = record(con, DAY, [outcome])
    assert result.files[0]["change"] == {"added": 2, "fixed": 0, "changed": 0, "outstanding": 2}
    assert con.execute("SELECT row_count, outstanding_count FROM recall_files").fetchone() == (3, 2)
    assert con.execute("SELECT outstanding FROM recall_daily_changes").fetchone() == (2,)
    assert len(outstanding(con)) == 2


def test_rejected_file_queues_exactly_one_email_even_when_recorded_twice(con, archive, check):
    outcome = check(receive(archive, BAD))
    first = record(con, DAY, [outcome])
    second = record(con, DAY, [outcome])
    assert first.status == second.status == "REJECTED"
    assert len(first.queued_messages) == 1
    assert second.queued_messages == []
    [(_key, recipients, subject)] = outbox(con)
    assert recipients == [ACME.team_email]
    assert "acme.csv" in subject and DAY.isoformat() in subject
    assert files(con) == [(DAY, "REJECTED", ["MISSING_REQUIRED_FIELDS", "INCORRECT_DATE_FORMAT"], 1, False)]
    assert outstanding(con) == []
    attachment = con.execute("SELECT attachment_name, attachment FROM outbox").fetchone()
    assert attachment[0] == f"ACME-{DAY.isoformat()}-errors.csv"
    assert b"INCORRECT_DATE_FORMAT" in attachment[1]


def test_infected_file_emails_the_manufacturer_and_ops(con, archive, check):
    outcome = check(receive(archive, EICAR))
    record(con, DAY, [outcome])
    record(con, DAY, [outcome])
    recipients = sorted(r[1][0] for r in outbox(con))
    assert recipients == sorted([ACME.team_email, OPS])


def test_missing_day_then_the_file_arrives(con, archive, check):
    assert record(con, DAY, []).status == "MISSING"
    record(con, DAY, [])
    assert files(con) == [(DAY, "MISSING", [], None, False)]
    outcome = check(receive(archive, GOOD))
    assert record(con, DAY, [outcome]).status == "ACCEPTED"
    assert files(con) == [(DAY, "ACCEPTED", [], 2, False)]
    # A later rerun that (wrongly) sees no file does not add a MISSING row beside the real one.
    record(con, DAY, [])
    assert files(con) == [(DAY, "ACCEPTED", [], 2, False)]


def test_second_file_recorded_as_multiple_files_first_file_applied(con, archive, check):
    first = check(receive(archive, GOOD, minute=0))
    second = check(receive(archive, many(1), name="late.csv", minute=9), first_of_day=False)
    result = record(con, DAY, [first, second])
    assert result.status == "ACCEPTED"
    assert [f["status"] for f in result.files] == ["ACCEPTED", "REJECTED"]
    assert len(result.queued_messages) == 1
    assert outstanding(con) == ["ABCCCX5RZUDE1234", "LH7PRODCJEE012345"]


def test_mass_fix_guard_holds_then_release_applies(con, archive, check):
    day1, day2 = DAY, date(2026, 11, 3)
    record(con, day1, [check(receive(archive, many(10), day=day1))])
    assert len(outstanding(con)) == 10
    before = con.execute("SELECT * FROM recalls ORDER BY ALL").fetchall()

    held_file = receive(archive, many(2), day=day2)
    held = check(held_file)
    assert held.status == "ACCEPTED"
    result = record(con, day2, [held])
    assert result.status == "HELD"
    assert "8 of 10" in result.files[0]["hold_reason"]
    [(key, recipients, subject)] = outbox(con)
    assert recipients == [OPS] and "HELD" in subject and held_file.upload_id in key
    assert con.execute("SELECT * FROM recalls ORDER BY ALL").fetchall() == before
    assert con.execute("SELECT count(*) FROM recall_snapshots").fetchone() == (1,)
    # A rerun keeps it held and does not send the ops email again.
    assert record(con, day2, [held]).status == "HELD"
    assert len(outbox(con)) == 1

    released = release_held(con, held_file.sha256)
    assert released["change"] == {"added": 0, "fixed": 8, "changed": 0, "outstanding": 2}
    assert len(outstanding(con)) == 2
    assert files(con) == [(day1, "ACCEPTED", [], 10, False), (day2, "ACCEPTED", [], 2, True)]
    with pytest.raises(LookupError):
        release_held(con, held_file.sha256)  # no longer HELD

    released_sql = "SELECT CAST(released_at AS VARCHAR) FROM recall_files WHERE business_date = ?"
    released_at = con.execute(released_sql, [day2]).fetchone()
    # A rerun of the day after the release keeps it ACCEPTED (released, so not held again).
    rerun = record(con, day2, [held])
    assert rerun.status == "ACCEPTED"
    assert con.execute(released_sql, [day2]).fetchone() == released_at
    assert files(con) == [(day1, "ACCEPTED", [], 10, False), (day2, "ACCEPTED", [], 2, True)]
    assert len(outstanding(con)) == 2
    assert len(outbox(con)) == 1


def test_release_leaves_a_rejected_second_upload_of_the_same_bytes_rejected(con, archive, check):
    """The same bytes uploaded twice on a day are two uploads: the second is MULTIPLE_FILES."""
    day1, day2 = DAY, date(2026, 11, 3)
    record(con, day1, [check(receive(archive, many(10), day=day1))])
    first = receive(archive, many(2), day=day2, minute=0)
    again = receive(archive, many(2), day=day2, minute=30)
    assert first.sha256 == again.sha256 and first.upload_id != again.upload_id
    result = record(con, day2, [check(first), check(again, first_of_day=False)])
    assert [f["status"] for f in result.files] == ["HELD", "REJECTED"]
    release_held(con, first.sha256)
    statuses = con.execute(
        "SELECT status, error_codes, released_at IS NOT NULL FROM recall_files WHERE business_date = ?"
        " ORDER BY remote_mtime",
        [day2],
    ).fetchall()
    assert statuses == [("ACCEPTED", [], True), ("REJECTED", ["MULTIPLE_FILES"], False)]


def test_late_day_updates_the_counts_recorded_for_later_days(con, archive, check):
    d1, d2, d3 = DAY, date(2026, 11, 3), date(2026, 11, 4)

    def counts():
        return con.execute(
            "SELECT business_date, added_count, fixed_count, changed_count, outstanding_count FROM recall_files"
            " ORDER BY business_date"
        ).fetchall()

    record(con, d1, [check(receive(archive, many(4), day=d1))])  # VINs 0-3
    record(con, d3, [check(receive(archive, many(4, start=1), day=d3))])  # 1-4: adds 4, fixes 0
    assert counts() == [(d1, 4, 0, 0, 4), (d3, 1, 1, 0, 4)]
    record(con, d2, [check(receive(archive, many(2, start=2), day=d2))])  # late 2-3: fixes 0 and 1
    # Now D3 re-adds 1 and adds 4, and fixes nothing.
    assert counts() == [(d1, 4, 0, 0, 4), (d2, 0, 2, 0, 2), (d3, 2, 0, 0, 4)]
    derived = con.execute(
        "SELECT business_date, added, fixed, changed, outstanding FROM recall_daily_changes ORDER BY business_date"
    ).fetchall()
    assert counts() == derived


def test_release_of_an_unknown_file_fails(con):
    with pytest.raises(LookupError):
        release_held(con, "0" * 64)


def test_a_failure_while_recording_leaves_nothing(con, archive, check, monkeypatch):
    import include.recalls.intake as intake

    outcome = check(receive(archive, BAD))

    def broken(*args, **kwargs):
        raise RuntimeError("mail queue broken")

    monkeypatch.setattr(intake, "enqueue", broken)
    with pytest.raises(RuntimeError):
        record(con, DAY, [outcome])
    assert files(con) == []
    assert outbox(con) == []
