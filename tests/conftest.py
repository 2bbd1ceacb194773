"""Session-wide test set-up: one temporary Airflow home with a migrated SQLite DB, one set of
real services (SFTP, SMTP, clamd: tests/fixtures/services.py), and per-test warehouse/archive.

The Airflow environment is set here, at import, because Airflow reads its configuration when it
is first imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pytest

from tools import airflow_home

PROJECT_DIR = Path(__file__).resolve().parents[1]
AIRFLOW_TEST_HOME = Path(tempfile.mkdtemp(prefix="airflow-test-home-"))
airflow_home.apply(AIRFLOW_TEST_HOME)
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")

pytest_plugins = ["tests.fixtures.services", "tests.fixtures.reliability_report"]

MANUFACTURERS = [
    {"code": "ACME", "name": "Acme Motors", "team_email": "recalls-team@acme.example"},
    {"code": "BOLT", "name": "Bolt Vans", "team_email": "safety@boltvans.example"},
    {"code": "CRUX", "name": "Crux Trucks", "team_email": "recalls@cruxtrucks.example"},
]
OPS_EMAIL = "data-ops@dvsa.example"


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrate the session's Airflow metadata DB once (a fresh process reads the same env)."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        [sys.executable, "-m", "airflow", "pools", "set", "warehouse", "1", "DuckDB warehouse writers"],
        check=True,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
    )
    airflow_home.use_wal(AIRFLOW_TEST_HOME)
    return AIRFLOW_TEST_HOME


@dataclass
class Pipeline:
    """A clean pipeline environment for one test: its own warehouse and archive, empty inbox/mail."""

    warehouse_path: Path
    archive_path: Path
    sftp: object
    smtp: object
    clamd: object

    def run_dag(self, dag_id: str, day: date, conf: dict | None = None):
        """Run one DAG run for a business day through Airflow (dag.test), returning the DagRun."""
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(PROJECT_DIR / "dags" / f"{dag_id}.py"))
        assert not bag.import_errors, bag.import_errors
        dag = bag.get_dag(dag_id)
        logical_date = datetime(day.year, day.month, day.day, tzinfo=airflow_home_tz())
        return dag.test(logical_date=logical_date, run_conf=conf)

    def warehouse(self):
        from include.warehouse import connect

        return connect(self.warehouse_path)


def airflow_home_tz():
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/London")


@pytest.fixture
def pipeline(
    airflow_db: Path,
    services_airflow_env: dict[str, str],
    sftp_service,
    smtp_service,
    clamd_service,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Pipeline]:
    for key, value in services_airflow_env.items():
        monkeypatch.setenv(key, value)
    variables = {
        "manufacturers": json.dumps(MANUFACTURERS),
        "ops_email": OPS_EMAIL,
        "warehouse_path": str(tmp_path / "warehouse.duckdb"),
        "archive_path": str(tmp_path / "archive"),
        "data_docs_path": str(tmp_path / "data_docs"),
        "recall_settle_seconds": "5",
    }
    for key, value in variables.items():
        monkeypatch.setenv(f"AIRFLOW_VAR_{key.upper()}", value)
    sftp_service.clear()
    smtp_service.clear()
    yield Pipeline(tmp_path / "warehouse.duckdb", tmp_path / "archive", sftp_service, smtp_service, clamd_service)
