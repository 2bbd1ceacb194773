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
