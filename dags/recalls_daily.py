"""Recall intake: each manufacturer's daily snapshot from SFTP to the recall state.

One run per business day D (its logical date, in Europe/London; the run starts when D is over).
Each manufacturer is a mapped task group, so its outcome shows in the grid and one bad file never
blocks the others: wait for the day's file (reschedule mode, no worker slot held) -> archive it ->
scan, validate, stage (outside the warehouse lock) -> record and apply (pool `warehouse`).
A rejected or held file fails its `record_and_apply` task; the failure callback sends the email.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context, task, task_group

from dags.common.callbacks import FileRejected, SnapshotHeld
from dags.common.defaults import task_defaults


@dag(
    dag_id="recalls_daily",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="Europe/London"),
    start_date=pendulum.datetime(2026, 11, 1, tz="Europe/London"),
    catchup=False,
    max_active_runs=4,
    default_args=task_defaults(),
    tags=["recalls", "sftp", "intake"],
    doc_md=__doc__,
)
def recalls_daily():
    @task(pool="warehouse")
    def send_queued_mail() -> dict[str, int]:
        """Deliver messages left queued while SMTP was down on earlier runs."""
        from dags.common.runtime import deliver_outbox

        sent, queued = deliver_outbox("recall:")
        return {"sent": sent, "still_queued": queued}

    @task
    def list_manufacturers() -> list[dict[str, str]]:
        from dags.common.runtime import manufacturers

        return manufacturers()

    @task_group(group_id="intake")
    def intake(manufacturer: dict[str, str]):
        @task.sensor(mode="reschedule", poke_interval=300, timeout=timedelta(hours=30).total_seconds())
        def wait_for_file(manufacturer: dict[str, str]):
            """Done when the day's files have settled, or as MISSING once the deadline passed."""
            import time

            from airflow.providers.sftp.hooks.sftp import SFTPHook
            from airflow.sdk import PokeReturnValue

            from dags.common import runtime
            from include.landing.archive import Archive
            from include.recalls.pickup import inbox_of, wait_decision

            context = get_current_context()
            day = runtime.business_day(context["logical_date"])
            code = manufacturer["code"]
            archived = Archive(runtime.archive_path()).received("recalls", code, day.isoformat())
            hook = SFTPHook(ssh_conn_id="sftp_landing")
            with hook.get_managed_conn() as sftp:
                from include.landing.sftp_inbox import list_inbox

                remote = list_inbox(sftp, inbox_of(code))
            decision = wait_decision(
                day,
                remote,
                archived_count=len(archived),
                now=time.time(),
                settle_seconds=runtime.number("recall_settle_seconds", 60),
                deadline_minutes_after_day=runtime.number("recall_deadline_minutes_after_day", 120),
            )
            print(f"{code} {day}: {decision.reason}")
            return PokeReturnValue(is_done=decision.done, xcom_value=decision.state)

        @task
        def receive_files(manufacturer: dict[str, str], wait_state: str) -> list[dict]:
            """Archive the day's files (verified), then move them out of the inbox."""
            from airflow.providers.sftp.hooks.sftp import SFTPHook

            from dags.common import runtime
            from include.landing.archive import Archive
            from include.recalls.pickup import receive_day

            day = runtime.business_day(get_current_context()["logical_date"])
            archive = Archive(runtime.archive_path())
            if wait_state == "MISSING":
                return []
            with SFTPHook(ssh_conn_id="sftp_landing").get_managed_conn() as sftp:
                received = receive_day(sftp, archive, manufacturer["code"], day)
            return [r.__dict__ for r in received]

        @task
        def check_files(manufacturer: dict[str, str], received: list[dict]) -> list[dict]:
            """Virus scan, then validate and stage the day's first file (CPU work, no lock)."""
            from dags.common import runtime
            from include.landing.archive import Archive, ReceivedFile
            from include.recalls.intake import check_file, outcome_to_json

            archive = Archive(runtime.archive_path())
            host, port = runtime.clamd_address()
            max_bytes = int(runtime.number("recall_max_file_bytes", 1 << 30))
            max_line_bytes = int(runtime.number("recall_max_line_bytes", 64 << 10))
            outcomes = []
            for index, item in enumerate(received):
                outcome = check_file(
                    archive,
                    ReceivedFile(**item),
                    first_of_day=index == 0,
                    clamd_host=host,
                    clamd_port=port,
                    max_bytes=max_bytes,
                    max_line_bytes=max_line_bytes,
                )
                print(f"{item['original_name']}: {outcome.status} {outcome.codes} scanned by {outcome.scanner_name}")
                outcomes.append(outcome_to_json(outcome))
            return outcomes

        @task(pool="warehouse", retries=5)
        def record_and_apply(manufacturer: dict[str, str], outcomes: list[dict]) -> dict:
            """Record the files, queue emails and apply (or hold) the snapshot in one transaction."""
            from airflow.sdk.exceptions import AirflowSkipException

            from dags.common import runtime
            from include.recalls.intake import outcome_from_json, record_day
            from include.recalls.notify import Manufacturer
            from include.recalls.state import MassFixGuard
            from include.warehouse import connect

            context = get_current_context()
            day = runtime.business_day(context["logical_date"])
            code = manufacturer["code"]
            guard = MassFixGuard(
                max_share=runtime.number(f"recall_mass_fix_share_{code}", runtime.number("recall_mass_fix_share", 0.5)),
                max_count=int(
                    runtime.number(f"recall_mass_fix_count_{code}", runtime.number("recall_mass_fix_count", 1000))
                ),
            )
            with connect(runtime.warehouse_path()) as con:
                result = record_day(
                    con,
                    Manufacturer(**manufacturer),
                    day,
                    [outcome_from_json(o) for o in outcomes],
                    guard=guard,
                    ops_email=runtime.ops_email(),
                    dag_run_id=context["run_id"],
                )
            runtime.publish_ops_snapshot()
            print(f"{code} {day}: {result.status} {result.files}")
            prefix = f"recall:{code}:"
            if result.status == "MISSING":
                raise AirflowSkipException(f"{code}: no file for {day} by the deadline (MISSING)")
            if result.status == "HELD":
                raise SnapshotHeld(f"{code} {day}: snapshot HELD by the mass-fix guard", prefix)
            if result.rejected:
                reasons = "; ".join(f"{f['file_name']}: {', '.join(f['codes'])}" for f in result.rejected)
                raise FileRejected(f"{code} {day}: REJECTED ({reasons})", prefix)
            return result.__dict__

        waited = wait_for_file(manufacturer)
        received = receive_files(manufacturer, waited)
        checked = check_files(manufacturer, received)
        record_and_apply(manufacturer, checked)

    @task(pool="warehouse", trigger_rule="all_done")
    def quality_checks() -> dict:
        """Great Expectations over the recall tables; a failed expectation fails the task."""
        from dags.common import runtime
        from include.quality.recalls import run_recall_checkpoint

        context = get_current_context()
        result = run_recall_checkpoint(
            runtime.warehouse_path(),
            runtime.business_day(context["logical_date"]),
            docs_dir=runtime.variable("data_docs_path", None) or f"{runtime.archive_path()}/../data_docs",
        )
        if not result["success"]:
            from airflow.sdk.exceptions import AirflowFailException

            # Deterministic: retrying cannot fix the data, so fail now and tell ops_email.
            raise AirflowFailException(f"Great Expectations checkpoint failed: {result['failed']}")
        return result

    mail = send_queued_mail()
    intakes = intake.expand(manufacturer=list_manufacturers())
    mail >> intakes >> quality_checks()


recalls_daily()
