"""MOT history delta ingest into the versioned vehicle table.

One run per business day D (logical date in Europe/London; the run starts when D is over): wait
for `delta-light-vehicle_DD-MM-YYYY.zip` (reschedule mode) -> archive it -> unzip, parse, validate
and stage Parquet (CPU work, no lock) -> apply in one transaction (pool `warehouse`) -> Great
Expectations. A structurally broken file or one with too many quarantined records fails the
apply task and emails ops_email; a missing file is recorded as MISSING (task skipped).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context, task

from dags.common.callbacks import FileRejected, SnapshotHeld
from dags.common.defaults import task_defaults


def _day():
    from dags.common.runtime import business_day

    return business_day(get_current_context()["logical_date"])


@dag(
    dag_id="mot_delta_daily",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="Europe/London"),
    start_date=pendulum.datetime(2026, 11, 1, tz="Europe/London"),
    catchup=False,
    max_active_runs=4,
    default_args=task_defaults(),
    tags=["mot", "sftp", "intake"],
    doc_md=__doc__,
)
def mot_delta_daily():
    @task.sensor(mode="reschedule", poke_interval=300, timeout=timedelta(hours=30).total_seconds())
    def wait_for_delta():
        import time

        from airflow.providers.sftp.hooks.sftp import SFTPHook
        from airflow.sdk import PokeReturnValue

        from dags.common import runtime
        from include.landing.archive import Archive
        from include.landing.sftp_inbox import deadline_for, list_inbox
        from include.mot.pickup import FEED, INBOX, SOURCE, wait_decision

        day = _day()
        archived = Archive(runtime.archive_path()).received(FEED, SOURCE, day.isoformat())
        with SFTPHook(ssh_conn_id="sftp_landing").get_managed_conn() as sftp:
            remote = list_inbox(sftp, INBOX)
        decision = wait_decision(
            day,
            remote,
            archived_count=len(archived),
            now=time.time(),
            settle_seconds=runtime.number("mot_settle_seconds", 60),
            deadline=deadline_for(day, runtime.number("mot_deadline_minutes_after_day", 360)),
        )
        print(f"MOT delta {day}: {decision.reason}")
        return PokeReturnValue(is_done=decision.done, xcom_value=decision.state)

    @task
    def receive_delta(wait_state: str) -> dict | None:
        from airflow.providers.sftp.hooks.sftp import SFTPHook

        from dags.common import runtime
        from include.landing.archive import Archive
        from include.mot.pickup import receive_delta as receive

        if wait_state == "MISSING":
            return None
        with SFTPHook(ssh_conn_id="sftp_landing").get_managed_conn() as sftp:
            received = receive(sftp, Archive(runtime.archive_path()), _day())
        return received.__dict__ if received else None

    @task
    def stage(received: dict | None) -> dict | None:
        """Unzip, parse, validate (Pandera) and stage Parquet: CPU work outside the lock."""
        from dags.common import runtime
        from include.landing.archive import Archive
        from include.mot.files import DeltaRejected
        from include.mot.stage import stage_delta

        if received is None:
            return None
        archive = Archive(runtime.archive_path())
        try:
            staged = stage_delta(
                archive.object_path(received["sha256"]),
                _day(),
                archive.root / "staged",
                sha256=received["sha256"],
                max_decompressed_bytes=int(runtime.number("mot_max_decompressed_bytes", 64 << 30)),
                max_ratio=runtime.number("mot_max_compression_ratio", 200),
                max_file_bytes=int(runtime.number("mot_max_file_bytes", 8 << 30)),
                max_line_bytes=int(runtime.number("mot_max_line_bytes", 8 << 20)),
            )
        except DeltaRejected as exc:
            return {"received": received, "rejected": {"reason": str(exc), "part": exc.part, "line": exc.line}}
        return {"received": received, "staged": staged.to_dict()}

    @task(pool="warehouse", retries=5)
    def apply(staged: dict | None) -> dict:
        """Apply in one transaction, or record REJECTED / HELD / MISSING."""
        from airflow.sdk.exceptions import AirflowSkipException

        from dags.common import runtime
        from include.mail.outbox import enqueue
        from include.mot.files import DeltaRejected, delta_file_name
        from include.mot.stage import StagedDelta
        from include.mot.versioning import apply_delta, record_missing, reject
        from include.recalls.notify import ops_message
        from include.warehouse import connect

        day = _day()
        if staged is None:
            with connect(runtime.warehouse_path()) as con:
                record_missing(con, day, file_name=delta_file_name(day))
            runtime.publish_ops_snapshot()
            raise AirflowSkipException(f"no MOT delta for {day} by the deadline (MISSING)")
        received = staged["received"]
        prefix = f"mot:delta:{day.isoformat()}:{received['sha256']}"
        with connect(runtime.warehouse_path()) as con:
            if "rejected" in staged:
                problem = staged["rejected"]
                error = DeltaRejected(problem["reason"], part=problem["part"], line=problem["line"])
                result = reject(
                    con, business_date=day, file_name=received["original_name"], sha256=received["sha256"], error=error
                )
            else:
                result = apply_delta(
                    con,
                    StagedDelta.from_dict(staged["staged"]),
                    sha256=received["sha256"],
                    file_name=received["original_name"],
                    max_quarantine_share=runtime.number("mot_max_quarantine_share", 0.01),
                )
            print(f"MOT delta {day}: {result}")
            if result.status in {"REJECTED", "HELD"}:
                enqueue(
                    con,
                    ops_message(
                        f"{prefix}:{result.status.lower()}",
                        runtime.ops_email(),
                        f"MOT delta {result.status}: {received['original_name']} ({day.isoformat()})",
                        [
                            f"The MOT delta {received['original_name']!r} for {day.isoformat()} was "
                            f"{result.status}: {result.message}.",
                            "Nothing from it was applied. Quarantined records: mot_quarantine; audit: mot_delta_files.",
                        ],
                    ),
                )
        runtime.publish_ops_snapshot()
        if result.status == "REJECTED":
            raise FileRejected(f"MOT delta {day} REJECTED: {result.message}", prefix)
        if result.status == "HELD":
            raise SnapshotHeld(f"MOT delta {day} HELD: {result.message}", prefix)
        return {k: v for k, v in result.__dict__.items() if isinstance(v, (int, float, str, bool, type(None)))}

    @task(pool="warehouse", trigger_rule="all_done")
    def quality_checks() -> dict:
        from dags.common import runtime
        from include.quality.mot import run_mot_checkpoint

        result = run_mot_checkpoint(
            runtime.warehouse_path(),
            _day(),
            docs_dir=runtime.variable("data_docs_path", None) or f"{runtime.archive_path()}/../data_docs",
        )
        if not result["success"]:
            from airflow.sdk.exceptions import AirflowFailException

            # Deterministic: retrying cannot fix the data, so fail now and tell ops_email.
            raise AirflowFailException(f"Great Expectations checkpoint failed: {result['failed']}")
        return result

    apply(stage(receive_delta(wait_for_delta()))) >> quality_checks()


mot_delta_daily()
