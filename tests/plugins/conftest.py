"""Fixtures of the operations page tests: one sample warehouse for the whole package, built by
running the real DAGs (dag.test) on the demo's sample data, and Airflow's API app in-process.

Building the warehouse runs ``recalls_daily`` for 4 days and ``mot_delta_daily`` for 3, once:
accepted files, a rejection with a row report, an infected file, a second file on a day, a
missing day, a held snapshot and a rejected file name; MOT creates, updates (with a quarantined
record) and a deletion. The days are the last four complete days in London, so the page's default
window shows them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import MANUFACTURERS, OPS_EMAIL, Pipeline

LONDON = ZoneInfo("Europe/London")
USERS = {"admin": "admin-ops-test", "viewer": "viewer-ops-test"}
JWT_SECRET = "operations-page-tests-secret-with-enough-bytes-for-hs512-0123456789abcdef"
# Shown as text, never as markup (the grid shows manufacturers' names).
MANUFACTURERS_WITH_HTML = [*MANUFACTURERS[:2], {**MANUFACTURERS[2], "name": "Crux <b>Trucks</b>"}]


def at(day: date, hour: int) -> float:
    return datetime.combine(day, clock(hour), tzinfo=LONDON).timestamp()


def sample_days() -> list[date]:
    today = datetime.now(LONDON).date()
    return [today - timedelta(days=4 - i) for i in range(4)]


@dataclass
class OpsSample:
    warehouse_path: Path
    archive_path: Path
    data_docs_path: Path
    days: list[date]
    env: dict[str, str]  # the Variables (AIRFLOW_VAR_*) and connections the DAGs ran with


@pytest.fixture(scope="package")
def ops_sample(
    airflow_db: Path,
    services_airflow_env: dict[str, str],
    sftp_service,
    smtp_service,
    clamd_service,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OpsSample]:
    from tools.sample_data import recall_uploads
    from tools.sample_mot import mot_uploads

    base = tmp_path_factory.mktemp("ops-sample")
    env = {
        **services_airflow_env,
        "AIRFLOW_VAR_MANUFACTURERS": json.dumps(MANUFACTURERS_WITH_HTML),
        "AIRFLOW_VAR_OPS_EMAIL": OPS_EMAIL,
        "AIRFLOW_VAR_WAREHOUSE_PATH": str(base / "warehouse" / "warehouse.duckdb"),
        "AIRFLOW_VAR_ARCHIVE_PATH": str(base / "archive"),
        "AIRFLOW_VAR_DATA_DOCS_PATH": str(base / "data_docs"),
        "AIRFLOW_VAR_RECALL_SETTLE_SECONDS": "5",
    }
    patch = pytest.MonkeyPatch()
    for key, value in env.items():
        patch.setenv(key, value)
    try:
        sftp_service.clear()
        smtp_service.clear()
        days = sample_days()
        for item in recall_uploads(days):
            sftp_service.upload(item.code, item.name, item.data, mtime=at(item.day, item.hour))
        mot_days = days[:3]
        for name, data, day in mot_uploads(days):
            if day in mot_days:
                sftp_service.upload_mot_delta(name, data, mtime=at(day, 6))
        pipeline = Pipeline(
            Path(env["AIRFLOW_VAR_WAREHOUSE_PATH"]), base / "archive", sftp_service, smtp_service, clamd_service
        )
        for day in days:
            pipeline.run_dag("recalls_daily", day)
        for day in mot_days:
            pipeline.run_dag("mot_delta_daily", day)
        yield OpsSample(Path(env["AIRFLOW_VAR_WAREHOUSE_PATH"]), base / "archive", base / "data_docs", days, env)
    finally:
        patch.undo()


@pytest.fixture(scope="package")
def auth_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Simple auth manager users with known passwords and a fixed JWT secret."""
    folder = tmp_path_factory.mktemp("ops-auth")
    passwords = folder / "passwords.json"
    passwords.write_text(json.dumps(USERS))
    return {
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": JWT_SECRET,
        "AIRFLOW__API__SECRET_KEY": JWT_SECRET,
    }


@dataclass
class ApiClient:
    client: object  # fastapi.testclient.TestClient of Airflow's whole API app
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, url: str, **kwargs):
        headers = {**self.auth, **kwargs.pop("headers", {})}
        return self.client.get(url, headers=headers, **kwargs)


@pytest.fixture(scope="package")
def api(ops_sample: OpsSample, auth_env: dict[str, str]) -> Iterator[ApiClient]:
    """Airflow's own API app (plugins mounted) in-process, and an admin's token from /auth/token."""
    from fastapi.testclient import TestClient

    patch = pytest.MonkeyPatch()
    for key, value in {**ops_sample.env, **auth_env}.items():
        patch.setenv(key, value)
    try:
        from airflow.api_fastapi.app import create_app, purge_cached_app

        app = create_app()
        with TestClient(app) as client:
            response = client.post("/auth/token", json={"username": "admin", "password": USERS["admin"]})
            assert response.status_code == 201, response.text
            yield ApiClient(client, response.json()["access_token"])
        purge_cached_app()
    finally:
        patch.undo()
