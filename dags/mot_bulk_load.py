"""Initial (or re-)load of the MOT history from a weekly bulk file.

Trigger it with the bulk file's name once DVSA has put it in `/mot/bulk/` on the landing server:
    airflow dags trigger mot_bulk_load --conf '{"file_name": "bulk-light-vehicle_01-12-2026.zip"}'
Each ~500k-record part is parsed, validated and staged to Parquet by its own mapped task (in
parallel, across workers); only the final apply takes the warehouse write lock (pool `warehouse`).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from dags.common.callbacks import FileRejected, SnapshotHeld
from dags.common.defaults import task_defaults


@dag(
    dag_id="mot_bulk_load",
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 1, tz="Europe/London"),
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(retries=2),
    params={
        "file_name": Param(
            "",
            type="string",
            pattern=r"^bulk-light-vehicle_\d{2}-\d{2}-\d{4}\.zip$",
            description="bulk file in /mot/bulk",
        )
    },
    tags=["mot", "bulk", "operations"],
    doc_md=__doc__,
)
def mot_bulk_load():
    @task
    def receive_bulk() -> dict:
        from airflow.providers.sftp.hooks.sftp import SFTPHook

        from dags.common import runtime
        from include.landing.archive import Archive
        from include.mot.pickup import receive_bulk as receive

        file_name = get_current_context()["params"]["file_name"]
        with SFTPHook(ssh_conn_id="sftp_landing").get_managed_conn() as sftp:
            return receive(sftp, Archive(runtime.archive_path()), file_name).__dict__

    @task
    def list_parts(received: dict) -> list[dict]:
        from dags.common import runtime
        from include.landing.archive import Archive
        from include.mot.stage import bulk_parts

        path = Archive(runtime.archive_path()).object_path(received["sha256"])
        return [{"received": received, "part": name} for name in bulk_parts(path)]

    @task(map_index_template="{{ task.op_kwargs['item']['part'] }}")
    def stage_part(item: dict) -> dict:
        from datetime import date

        from dags.common import runtime
        from include.landing.archive import Archive
        from include.mot.stage import stage_bulk_part

        archive = Archive(runtime.archive_path())
        received = item["received"]
        staged = stage_bulk_part(
            archive.object_path(received["sha256"]),
            item["part"],
            date.fromisoformat(received["business_date"]),
            archive.root / "staged",
            sha256=received["sha256"],
        )
        return staged.to_dict()

    @task(pool="warehouse", retries=5)
    def apply(received: dict, staged_parts: list[dict]) -> dict:
        from dags.common import runtime
        from include.mot.stage import StagedDelta
        from include.mot.versioning import apply_bulk
        from include.warehouse import connect

        with connect(runtime.warehouse_path()) as con:
            result = apply_bulk(
                con,
                [StagedDelta.from_dict(p) for p in staged_parts],
                sha256=received["sha256"],
                file_name=received["original_name"],
                max_quarantine_share=runtime.number("mot_max_quarantine_share", 0.01),
            )
        runtime.publish_ops_snapshot()
        print(f"bulk {received['original_name']}: {result}")
        prefix = f"mot:bulk:{received['sha256']}"
        if result.status == "REJECTED":
            raise FileRejected(f"bulk REJECTED: {result.message}", prefix)
        if result.status == "HELD":
            raise SnapshotHeld(f"bulk HELD: {result.message}", prefix)
        return {k: v for k, v in result.__dict__.items() if isinstance(v, (int, float, str, bool, type(None)))}

    received = receive_bulk()
    apply(received, stage_part.expand(item=list_parts(received)))


mot_bulk_load()
