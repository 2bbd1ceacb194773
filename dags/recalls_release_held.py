"""Release a recall snapshot HELD by the mass-fix guard, after an operator has checked it.

Trigger with the file's SHA-256 (shown in the hold email, the operations page and recall_files):
    airflow dags trigger recalls_release_held --conf '{"sha256": "<sha256>"}'
The snapshot is then applied to its own business day (later days are recomputed).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from dags.common.defaults import task_defaults


@dag(
    dag_id="recalls_release_held",
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 1, tz="Europe/London"),
    catchup=False,
    default_args=task_defaults(retries=2, retry_delay=timedelta(minutes=1)),
    params={"sha256": Param("", type="string", pattern="^[0-9a-f]{64}$", description="SHA-256 of the HELD file")},
    tags=["recalls", "operations"],
    doc_md=__doc__,
)
def recalls_release_held():
    @task(pool="warehouse")
    def release() -> dict:
        from dags.common import runtime
        from include.recalls.intake import release_held
        from include.warehouse import connect

        sha256 = get_current_context()["params"]["sha256"]
        with connect(runtime.warehouse_path()) as con:
            result = release_held(con, sha256)
        runtime.publish_ops_snapshot()
        print(f"released {sha256}: {result}")
        return result

    release()


recalls_release_held()
