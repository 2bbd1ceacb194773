"""One place that says how this project's Airflow is configured (embedded defaults).

Used by the demo, `make up` and the tests, before anything imports airflow.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
DEFAULT_HOME = PROJECT_DIR / ".airflow"


def airflow_env(home: Path = DEFAULT_HOME) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    pythonpath = os.environ.get("PYTHONPATH", "")
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_DIR / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_DIR / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        # SQLite serialises writers: wait for the lock (scheduler, dag-processor, CLI, tasks)
        # instead of failing with "database is locked"; WAL lets readers go on meanwhile.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db?timeout=60",
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": "Europe/London",
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "10",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "AIRFLOW__API__EXPOSE_CONFIG": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__EMAIL__EMAIL_CONN_ID": "smtp_default",
        "PYTHONPATH": os.pathsep.join(p for p in (str(PROJECT_DIR), pythonpath) if p),
    }


def use_wal(home: Path = DEFAULT_HOME) -> None:
    """Switch the migrated SQLite metadata DB to WAL mode (persistent, idempotent)."""
    import sqlite3

    with sqlite3.connect(home / "airflow.db", timeout=60) as db:
        db.execute("PRAGMA journal_mode=WAL")


def apply(home: Path = DEFAULT_HOME) -> dict[str, str]:
    env = airflow_env(home)
    os.environ.update(env)
    return env


if __name__ == "__main__":
    for key, value in airflow_env().items():
        print(f"export {key}={value!s}")
