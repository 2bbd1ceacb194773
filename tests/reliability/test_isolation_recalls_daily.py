"""Several manufacturers in one recalls_daily run (dag.test, real SFTP, clamd and SMTP): one
accepted, one rejected, one whose file claims to be another manufacturer's. What is in one
manufacturer's inbox changes only that manufacturer's recalls, and its errors go only to it.

The same run is the secrets check: the SFTP connection carries the private key inline (not a key
file) and SMTP needs a login and password, and afterwards neither secret may appear in captured
output, Airflow's log files, the emails, the archive, the warehouse or the operations page.
It is also the SQL injection check for recall files: a VIN and a file name built to break a
string literal are stored verbatim and every table is still there.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from fastapi.testclient import TestClient

from tests.conftest import AIRFLOW_TEST_HOME, MANUFACTURERS, OPS_EMAIL
from tests.reliability.faults import HEADER
from tools.services.smtp import EmlFolderHandler, StoredMessage, free_port, read_stored

LONDON = ZoneInfo("Europe/London")
DAY = date(2026, 11, 9)
INJECTION = "'); DROP TABLE recalls; --"
ACME_FILE_NAME = "acme');DROP_TABLE_recall_files;--.csv"
ACME_FILE = HEADER + f'"{INJECTION}",ACMEREF1,R/2026/1,2026-10-01\nLH7PRODCJEE012345,ACMEREF2,,2026-10-02\n'.encode()
BOLT_FILE = HEADER + b"BOLTVIN0000000001,,R/2026/9,2026-02-30\n"
# Misplaced: CRUX's inbox holds a file named and written as if it were ACME's (ACME's references).
CRUX_FILE = HEADER + b"LH7PRODCJEE012345,ACMEREF2,,2026-10-02\nCRUXVIN0000000003,ACMEREF3,,2026-10-03\n"
SMTP_LOGIN, SMTP_PASSWORD = "recalls-mailer", "smtp-secret-Zq9!x7#Lm2-do-not-log"
TEAM = {m["code"]: m["team_email"] for m in MANUFACTURERS}


class AuthSmtp:
    """A second real SMTP server that, unlike the session one, insists on a login (AUTH PLAIN/LOGIN)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.attempts: list[tuple[str, bool]] = []

        def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
            ok = auth_data.login == SMTP_LOGIN.encode() and auth_data.password == SMTP_PASSWORD.encode()
            self.attempts.append((mechanism, ok))
            return AuthResult(success=ok, handled=False)

        self.controller = Controller(
            EmlFolderHandler(folder),
            hostname="127.0.0.1",
            port=free_port("127.0.0.1"),
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=False,
        )

    def __enter__(self) -> AuthSmtp:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    @property
    def port(self) -> int:
        return self.controller.port


def at(day: date, hour: int) -> float:
    return datetime.combine(day, time(hour), tzinfo=LONDON).timestamp()


def secret_forms(pipeline_key: Path) -> dict[str, str]:
    """Every spelling of the secrets worth searching for: each line of the key's body, the password
    and its base64 forms as AUTH PLAIN / LOGIN would send them."""
    body = [line for line in pipeline_key.read_text().splitlines() if line and not line.startswith("-----")]
    forms = {f"private key line {i}": line for i, line in enumerate(body) if len(line) >= 16}
    forms["smtp password"] = SMTP_PASSWORD
    forms["smtp password (base64)"] = base64.b64encode(SMTP_PASSWORD.encode()).decode()
    forms["smtp AUTH PLAIN"] = base64.b64encode(f"\0{SMTP_LOGIN}\0{SMTP_PASSWORD}".encode()).decode()
    return forms


def leaks(text: str, forms: dict[str, str]) -> list[str]:
    return [name for name, value in forms.items() if value in text]


def files_text(root: Path) -> dict[str, str]:
    return {
        str(p): p.read_bytes().decode("utf-8", "replace")
        for p in root.rglob("*")
        if p.is_file() and p.suffix != ".duckdb"
    }


@dataclass
class Scenario:
    files: list[tuple]
    recalls: list[tuple]
    tables: set[str]
    emails: list[StoredMessage]
    places: dict[str, str]  # where a secret could leak -> its text


_SCENARIO: list[Scenario] = []


def scenario(pipeline, monkeypatch, tmp_path, capfd, caplog) -> Scenario:
    """Run the day once per session (both tests below read it) and gather everything it wrote."""
    if _SCENARIO:
        return _SCENARIO[0]
    caplog.set_level(logging.DEBUG)
    sftp_conn = json.loads(pipeline.sftp.airflow_connection())
    sftp_conn["extra"] = {"private_key": pipeline.sftp.pipeline_key.read_text(), "no_host_key_check": True}
    monkeypatch.setenv("AIRFLOW_CONN_SFTP_LANDING", json.dumps(sftp_conn))
    with AuthSmtp(tmp_path / "auth-mail") as smtp:
        smtp_conn = json.loads(os.environ["AIRFLOW_CONN_SMTP_DEFAULT"])
        smtp_conn.update(port=smtp.port, login=SMTP_LOGIN, password=SMTP_PASSWORD)
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(smtp_conn))
        pipeline.sftp.upload("ACME", ACME_FILE_NAME, ACME_FILE, mtime=at(DAY, 9))
        pipeline.sftp.upload("BOLT", "bolt_recalls.csv", BOLT_FILE, mtime=at(DAY, 10))
        pipeline.sftp.upload("CRUX", "ACME_recalls.csv", CRUX_FILE, mtime=at(DAY, 11))
        pipeline.run_dag("recalls_daily", DAY)
        emails = read_stored(smtp.folder)
        assert smtp.attempts and all(ok for _, ok in smtp.attempts), smtp.attempts
    with pipeline.warehouse() as con:
        files = con.execute(
            "SELECT manufacturer, file_name, status, error_codes FROM recall_files ORDER BY manufacturer"
        ).fetchall()
        recalls = con.execute(
            "SELECT manufacturer, vin, manufacturer_campaign_reference FROM recalls ORDER BY ALL"
        ).fetchall()
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        warehouse_text = "\n".join(
            repr(con.execute(f'SELECT CAST(COLUMNS(*) AS VARCHAR) FROM "{t}"').fetchall()) for t in sorted(tables)
        )
    out, err = capfd.readouterr()
    places = {"captured stdout": out, "captured stderr": err, "logging": caplog.text, "warehouse": warehouse_text}
    places |= files_text(AIRFLOW_TEST_HOME / "logs") if (AIRFLOW_TEST_HOME / "logs").exists() else {}
    places |= files_text(tmp_path / "auth-mail")
    places |= files_text(pipeline.archive_path)
    places |= ops_pages(pipeline)
    _SCENARIO.append(Scenario(files, recalls, tables, emails, places))
    return _SCENARIO[0]


@pytest.mark.reliability(
    "Isolation and secrets",
    "several manufacturers in one recalls_daily run: A accepted, B rejected, C's inbox holding a file named and"
    " written as A's",
    "each inbox changes only its own manufacturer's recalls (C's file is C's); B's rejection email goes only to"
    " B (SMTP envelope and headers); no email to A or C mentions B's file",
)
def test_one_manufacturers_inbox_never_changes_or_tells_another(pipeline, monkeypatch, tmp_path, capfd, caplog):
    run = scenario(pipeline, monkeypatch, tmp_path, capfd, caplog)
    assert run.files == [
        ("ACME", ACME_FILE_NAME, "ACCEPTED", []),
        ("BOLT", "bolt_recalls.csv", "REJECTED", ["MISSING_REQUIRED_FIELDS", "INCORRECT_DATE_FORMAT"]),
        ("CRUX", "ACME_recalls.csv", "ACCEPTED", []),
    ]
    assert run.recalls == [
        ("ACME", INJECTION, "ACMEREF1"),
        ("ACME", "LH7PRODCJEE012345", "ACMEREF2"),
        ("CRUX", "CRUXVIN0000000003", "ACMEREF3"),
        ("CRUX", "LH7PRODCJEE012345", "ACMEREF2"),
    ]
    assert run.emails, "no email was delivered"
    for stored in run.emails:
        email = stored.message
        to_header = {a.strip() for a in (email["To"] or "").split(",") if a.strip()}
        assert email.get("Cc") is None and email.get("Bcc") is None
        assert set(stored.rcpt_tos) == to_header, (stored.rcpt_tos, to_header)
        if "bolt_recalls.csv" in email.as_string():
            assert to_header <= {TEAM["BOLT"], OPS_EMAIL}, to_header
    to_bolt = [m for m in run.emails if m.rcpt_tos == [TEAM["BOLT"]]]
    assert len(to_bolt) == 1 and "bolt_recalls.csv" in to_bolt[0].message["Subject"]


@pytest.mark.reliability(
    "Isolation and secrets",
    "a recall file whose VIN and file name are built to break out of an SQL string: '); DROP TABLE recalls; --",
    "accepted and stored verbatim as data; every table still there",
)
def test_sql_in_a_recall_file_is_stored_as_data(pipeline, monkeypatch, tmp_path, capfd, caplog):
    run = scenario(pipeline, monkeypatch, tmp_path, capfd, caplog)
    assert ("ACME", INJECTION, "ACMEREF1") in run.recalls
    assert ("ACME", ACME_FILE_NAME, "ACCEPTED", []) in run.files
    assert {"recalls", "recall_files", "recall_history", "outbox"} <= run.tables


@pytest.mark.reliability(
    "Isolation and secrets",
    "secrets in the pipeline's configuration: the SFTP private key inline in the connection, an SMTP password"
    " (server requiring AUTH)",
    "neither appears in captured stdout/stderr and logging (where dag.test writes the task logs), files under"
    " AIRFLOW_HOME/logs, the emails, the archive (objects, manifests, reports), the warehouse or the operations page",
)
def test_secrets_never_appear_in_logs_emails_archive_warehouse_or_pages(pipeline, monkeypatch, tmp_path, capfd, caplog):
    run = scenario(pipeline, monkeypatch, tmp_path, capfd, caplog)
    forms = secret_forms(pipeline.sftp.pipeline_key)
    assert len(forms) >= 4
    assert any(name.endswith(".eml") for name in run.places) and any("ops page" in name for name in run.places)
    assert any("manifests" in name for name in run.places)
    found = {place: leaks(text, forms) for place, text in run.places.items() if leaks(text, forms)}
    assert found == {}, found
    # The scan read real output of the run, not nothing.
    assert "ACME" in run.places["captured stdout"] + run.places["captured stderr"] + run.places["logging"]


def ops_pages(pipeline) -> dict[str, str]:
    """The operations page, rendered from this run's warehouse (as the plugin serves it)."""
    from include.ops.web import Settings, create_app

    settings = Settings(
        str(pipeline.warehouse_path), str(pipeline.archive_path), None, {m["code"]: m["name"] for m in MANUFACTURERS}
    )
    app = create_app(settings=lambda: settings, authenticate=lambda: None, today=lambda: DAY + timedelta(days=1))
    client = TestClient(app)
    urls = ["/", f"/?end={DAY}", "/api/overview", *(f"/file/{m['code']}/{DAY}" for m in MANUFACTURERS)]
    urls += ["/vin-lookup?vin=LH7PRODCJEE012345", "/mot/quarantine"]
    pages = {}
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, (url, response.text[:500])
        pages[f"ops page {url}"] = response.text
    assert "bolt_recalls.csv" in pages[f"ops page /file/BOLT/{DAY}"]
    return pages
