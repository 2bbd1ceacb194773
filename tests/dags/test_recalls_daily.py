"""recalls_daily end to end through Airflow (dag.test) against real SFTP, SMTP and clamd."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from tests.conftest import MANUFACTURERS

LONDON = ZoneInfo("Europe/London")
DAY = date(2026, 11, 2)
HEADER = b"VIN,ManufacturerRecallCampaignReference,DVSACampaignReference,RecallCampaignStartDate\n"
GOOD = HEADER + b"LH7PRODCJEE012345,ABCCARS123,R/2026/123,2026-10-01\nABCCCX5RZUDE1234,ABCTRUCKS125,,2026-10-03\n"
BAD = HEADER + b"LH7PRODCJEE012345,,R/2026/123,2026-02-30\n"


def at(day: date, hour: int = 12) -> float:
    return datetime.combine(day, time(hour), tzinfo=LONDON).timestamp()


def task_states(dag_run) -> dict[str, list[str]]:
    states: dict[str, list[str]] = {}
    for ti in dag_run.get_task_instances():
        states.setdefault(ti.task_id, []).append(f"{ti.map_index}:{ti.state}")
    return states


def test_one_day_accepted_rejected_missing(pipeline):
    pipeline.sftp.upload("ACME", "acme_recalls.csv", GOOD, mtime=at(DAY))
    pipeline.sftp.upload("BOLT", "bolt_recalls.csv", BAD, mtime=at(DAY))
    run = pipeline.run_dag("recalls_daily", DAY)
    print(task_states(run))
    with pipeline.warehouse() as con:
        files = con.execute(
            "SELECT manufacturer, status, error_codes, row_count FROM recall_files ORDER BY manufacturer"
        ).fetchall()
        outstanding = con.execute("SELECT manufacturer, vin FROM outstanding_recalls ORDER BY ALL").fetchall()
    assert files == [
        ("ACME", "ACCEPTED", [], 2),
        ("BOLT", "REJECTED", ["MISSING_REQUIRED_FIELDS", "INCORRECT_DATE_FORMAT"], 1),
        ("CRUX", "MISSING", [], None),
    ]
    assert outstanding == [("ACME", "ABCCCX5RZUDE1234"), ("ACME", "LH7PRODCJEE012345")]
    mails = pipeline.smtp.messages()
    assert [m["To"] for m in mails] == [MANUFACTURERS[1]["team_email"]]


EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
DAY2 = date(2026, 11, 3)


def recall_files(pipeline) -> list[tuple]:
    with pipeline.warehouse() as con:
        return con.execute(
            "SELECT manufacturer, business_date, file_name, status, error_codes FROM recall_files ORDER BY ALL"
        ).fetchall()


def test_infected_and_multiple_files_then_rerun_sends_nothing_twice(pipeline):
    pipeline.sftp.upload("ACME", "first.csv", GOOD, mtime=at(DAY, 9))
    pipeline.sftp.upload("ACME", "second.csv", GOOD, mtime=at(DAY, 15))
    pipeline.sftp.upload("BOLT", "bolt.csv", HEADER + EICAR + b"\n", mtime=at(DAY))
    pipeline.run_dag("recalls_daily", DAY)
    first = recall_files(pipeline)
    assert first == [
        ("ACME", DAY, "first.csv", "ACCEPTED", []),
        ("ACME", DAY, "second.csv", "REJECTED", ["MULTIPLE_FILES"]),
        ("BOLT", DAY, "bolt.csv", "REJECTED", ["INFECTED_FILE"]),
        ("CRUX", DAY, None, "MISSING", []),
    ]
    mails = pipeline.smtp.messages()
    assert sorted(m["To"] for m in mails) == sorted(
        [MANUFACTURERS[0]["team_email"], MANUFACTURERS[1]["team_email"], "data-ops@dvsa.example"]
    )
    multiple = next(m for m in mails if m["To"] == MANUFACTURERS[0]["team_email"])
    assert "Multiple files uploaded" in multiple.get_body(("plain",)).get_content()
    assert "second.csv" in multiple["Subject"] and DAY.isoformat() in multiple["Subject"]
    # The infected object is out of the archive's readable objects, the remote files left the inbox.
    sha = next(p for p in (pipeline.archive_path / "quarantine").iterdir())
    assert not (pipeline.archive_path / "objects" / sha.name[:2] / sha.name).exists()
    assert not list(pipeline.sftp.local_path("/recalls/ACME").glob("*.csv"))
    # A rerun of the day reads the archive, changes nothing and sends no second email.
    pipeline.run_dag("recalls_daily", DAY)
    assert recall_files(pipeline) == first
    assert len(pipeline.smtp.messages()) == len(mails)


def test_smtp_down_keeps_the_email_queued_until_a_later_run(pipeline):
    pipeline.sftp.upload("BOLT", "bolt.csv", BAD, mtime=at(DAY))
    pipeline.smtp.stop()
    try:
        pipeline.run_dag("recalls_daily", DAY)
    finally:
        pipeline.smtp.start()
    assert pipeline.smtp.messages() == []
    with pipeline.warehouse() as con:
        assert con.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0] == 1
    pipeline.run_dag("recalls_daily", DAY2)  # the next day's run sends what was queued
    mails = pipeline.smtp.messages()
    assert [m["To"] for m in mails] == [MANUFACTURERS[1]["team_email"]]
    assert "bolt.csv" in mails[0]["Subject"]
    pipeline.run_dag("recalls_daily", DAY2)
    assert len(pipeline.smtp.messages()) == 1


def test_late_backfill_of_an_earlier_day_slots_into_history(pipeline):
    later = HEADER + b"LH7PRODCJEE012345,ABCCARS123,R/2026/123,2026-10-01\n"
    pipeline.sftp.upload("ACME", "day2.csv", later, mtime=at(DAY2))
    pipeline.run_dag("recalls_daily", DAY2)
    # The file for the earlier day was uploaded on that day, but its run happens afterwards.
    pipeline.sftp.upload("ACME", "day1.csv", GOOD, mtime=at(DAY))
    pipeline.run_dag("recalls_daily", DAY)
    with pipeline.warehouse() as con:
        history = con.execute(
            "SELECT vin, valid_from, valid_to, opened_by, closed_by FROM recall_history ORDER BY ALL"
        ).fetchall()
        counts = con.execute(
            "SELECT business_date, added_count, fixed_count FROM recall_files WHERE status = 'ACCEPTED' ORDER BY 1"
        ).fetchall()
    assert history == [
        ("ABCCCX5RZUDE1234", DAY, DAY2, "NEW", "FIXED"),
        ("LH7PRODCJEE012345", DAY, None, "NEW", None),
    ]
    assert counts == [(DAY, 2, 0), (DAY2, 0, 1)]


def test_file_still_being_uploaded_is_not_taken(pipeline, monkeypatch):
    today = datetime.now(LONDON).date()
    pipeline.sftp.upload("ACME", "growing.csv", GOOD)  # mtime: now
    monkeypatch.setenv("AIRFLOW_VAR_RECALL_SETTLE_SECONDS", "600")
    monkeypatch.setenv("AIRFLOW_VAR_RECALL_DEADLINE_MINUTES_AFTER_DAY", "-1440")  # deadline already passed
    pipeline.run_dag("recalls_daily", today)
    assert ("ACME", today, None, "MISSING", []) in recall_files(pipeline)
    assert (pipeline.sftp.local_path("/recalls/ACME") / "growing.csv").exists()
    assert not (pipeline.archive_path / "objects").exists()


def test_mass_fix_guard_holds_then_operator_releases(pipeline, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_RECALL_MASS_FIX_COUNT_ACME", "1")  # per-manufacturer override
    three = GOOD + b"WBA00000000000003,ABCCARS124,,2026-10-05\n"
    pipeline.sftp.upload("ACME", "full.csv", three, mtime=at(DAY))
    pipeline.sftp.upload(
        "ACME", "truncated.csv", HEADER + b"WBA00000000000003,ABCCARS124,,2026-10-05\n", mtime=at(DAY2)
    )
    pipeline.run_dag("recalls_daily", DAY)
    pipeline.run_dag("recalls_daily", DAY2)
    with pipeline.warehouse() as con:
        held = con.execute(
            "SELECT sha256, hold_reason FROM recall_files WHERE status = 'HELD' AND manufacturer = 'ACME'"
        ).fetchall()
        assert con.execute("SELECT count(*) FROM outstanding_recalls").fetchone()[0] == 3
    assert len(held) == 1 and "would mark 2 of 3" in held[0][1]
    ops = [m for m in pipeline.smtp.messages() if m["To"] == "data-ops@dvsa.example"]
    assert len(ops) == 1 and "HELD" in ops[0]["Subject"] and held[0][0] in ops[0].get_body(("plain",)).get_content()

    pipeline.run_dag("recalls_release_held", DAY2, conf={"sha256": held[0][0]})
    with pipeline.warehouse() as con:
        assert con.execute(
            "SELECT status, fixed_count FROM recall_files WHERE sha256 = ? AND manufacturer = 'ACME'", [held[0][0]]
        ).fetchone() == ("ACCEPTED", 2)
        assert con.execute("SELECT count(*) FROM outstanding_recalls").fetchone()[0] == 1
    pipeline.run_dag("recalls_daily", DAY2)  # a rerun of the day keeps the released snapshot applied
    with pipeline.warehouse() as con:
        assert con.execute("SELECT count(*) FROM outstanding_recalls").fetchone()[0] == 1
