"""Faults of the services around the pipeline: SMTP down, clamd down, the warehouse locked."""

from __future__ import annotations

import logging
import threading
from datetime import date
from pathlib import Path

import duckdb
import pytest

from include.landing.archive import Archive
from include.mail.outbox import SmtpSettings, deliver_pending
from include.recalls import intake
from include.recalls.intake import check_file, record_day
from include.recalls.state import MassFixGuard
from include.scanning.clamd import ScannerUnavailable
from include.warehouse import connect
from tests.reliability.faults import ACME, HEADER, OPS, archive_upload, start_child, wait_for, warehouse_tables
from tools.services.net import free_port

DAY = date(2026, 11, 2)
GOOD = HEADER + b"LH7PRODCJEE012345,ABCCARS123,R/2026/123,2026-10-01\nABCCCX5RZUDE1234,ABCTRUCKS125,,2026-10-03\n"
BAD = HEADER + b"LH7PRODCJEE012345,,R/2026/123,2026-02-30\n"
SENDER = "vehicle-recalls-pipeline@dvsa.localhost"


def checked(archive: Archive, data: bytes, clamd) -> list[intake.FileOutcome]:
    outcome = check_file(
        archive, archive_upload(archive, DAY, data), first_of_day=True, clamd_host=clamd.host, clamd_port=clamd.port
    )
    outcome.validation_seconds = 0.0  # wall clock: not part of the comparison
    return [outcome]


def record(warehouse: Path, outcomes) -> None:
    with connect(warehouse) as con:
        record_day(con, ACME, DAY, outcomes, guard=MassFixGuard(), ops_email=OPS)


def without(state: dict[str, list[tuple]], table: str, *positions: int) -> dict[str, list[tuple]]:
    """The state with some columns of one table blanked (by position in DESCRIBE order)."""
    rows = [tuple(None if i in positions else v for i, v in enumerate(row)) for row in state[table]]
    return {**state, table: rows}


def mail_dump(stored) -> list[tuple]:
    """Delivered messages as the recipient sees them (MIME boundaries are random, so parts)."""
    dump = []
    for item in stored:
        msg = item.message
        parts = [
            (p.get_content_type(), p.get_filename(), p.get_payload(decode=True))
            for p in msg.walk()
            if not p.is_multipart()
        ]
        headers = tuple(msg[h] for h in ("From", "To", "Subject", "Message-ID", "X-Pipeline-Message-Key"))
        dump.append((item.mail_from, tuple(item.rcpt_tos), headers, tuple(parts)))
    return sorted(dump)


@pytest.fixture
def smtp(smtp_service):
    smtp_service.start()
    smtp_service.clear()
    yield smtp_service
    smtp_service.start()
    smtp_service.clear()


@pytest.mark.reliability(
    "Faults",
    "The SMTP server is down while a run queues a rejection email",
    "The email stays queued in the warehouse outbox (nothing lost, delivery failures recorded); once SMTP is "
    "back it is delivered exactly once (counted at the real SMTP server), identical to a fault-free run's email",
)
def test_smtp_down_then_back(smtp, clamd_service, tmp_path):
    outcomes = checked(Archive(tmp_path / "archive"), BAD, clamd_service)
    assert outcomes[0].status == "REJECTED"
    settings = SmtpSettings(host=smtp.host, port=smtp.port, from_email=SENDER, timeout=5)

    reference = tmp_path / "reference.duckdb"
    record(reference, outcomes)
    with connect(reference) as con:
        assert deliver_pending(con, settings) == (1, 0)
    expected_mail = mail_dump(smtp.stored())
    assert len(expected_mail) == 1
    smtp.clear()

    warehouse = tmp_path / "warehouse.duckdb"
    with smtp.down():
        record(warehouse, outcomes)
        with connect(warehouse) as con:
            assert deliver_pending(con, settings) == (0, 1)  # a first run
            assert deliver_pending(con, settings) == (0, 1)  # and the next, still down
            assert con.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone() == (1,)
    assert smtp.stored() == []

    with connect(warehouse) as con:  # SMTP is back: the next run's send_queued_mail
        assert deliver_pending(con, settings) == (1, 0)
        assert deliver_pending(con, settings) == (0, 0)
        attempts = con.execute("SELECT attempts, last_error FROM outbox").fetchall()
    assert attempts == [(3, None)]  # two failed attempts recorded, then one delivery
    assert mail_dump(smtp.stored()) == expected_mail

    with connect(reference) as con:
        attempts_at = [r[0] for r in con.execute("DESCRIBE outbox").fetchall()].index("attempts")
    assert without(warehouse_tables(warehouse), "outbox", attempts_at) == without(
        warehouse_tables(reference), "outbox", attempts_at
    )


@pytest.mark.reliability(
    "Faults",
    "clamd is down when a recall file is to be scanned",
    "Nothing is validated, staged, quarantined or recorded without a verdict: the check fails "
    "(ScannerUnavailable, so the task retries); with clamd back the retry processes the file and the warehouse "
    "is identical to a fault-free run",
)
def test_clamd_down_then_back(clamd_service, tmp_path, monkeypatch):
    validated = []
    real_validate = intake.validate_recall_file
    monkeypatch.setattr(
        intake, "validate_recall_file", lambda *a, **k: validated.append(a[1]) or real_validate(*a, **k)
    )
    reference = tmp_path / "reference.duckdb"
    record(reference, checked(Archive(tmp_path / "reference-archive"), GOOD, clamd_service))
    validated.clear()

    archive = Archive(tmp_path / "archive")
    received = archive_upload(archive, DAY, GOOD)
    before = sorted(p.relative_to(archive.root) for p in archive.root.rglob("*") if p.is_file())
    with pytest.raises(ScannerUnavailable):
        check_file(archive, received, first_of_day=True, clamd_host="127.0.0.1", clamd_port=free_port())
    assert validated == []
    assert sorted(p.relative_to(archive.root) for p in archive.root.rglob("*") if p.is_file()) == before
    assert not archive.quarantine_path(received.sha256).exists()

    # The retry, clamd back.
    outcome = check_file(
        archive, received, first_of_day=True, clamd_host=clamd_service.host, clamd_port=clamd_service.port
    )
    assert validated == [received.original_name]
    assert (outcome.status, outcome.scanner_verdict) == ("ACCEPTED", "CLEAN")
    outcome.validation_seconds = 0.0
    warehouse = tmp_path / "warehouse.duckdb"
    record(warehouse, [outcome])
    assert _paths_free(warehouse_tables(warehouse), tmp_path) == _paths_free(warehouse_tables(reference), tmp_path)


def _paths_free(state, tmp_path: Path):
    """Archive paths differ between the two archives of a test: compare them relative to their archive."""
    text = repr(state)
    return text.replace(str(tmp_path / "reference-archive"), "ARCHIVE").replace(str(tmp_path / "archive"), "ARCHIVE")


class _Retries(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "locked by another process" in record.getMessage():
            self.count += 1
            if self.count >= 3:
                self.seen.set()


@pytest.mark.reliability(
    "Faults",
    "Another process holds the DuckDB warehouse open for writing when a run records its day",
    "The writer waits and retries (no error, no partial write), completes once the lock is released, and the "
    "warehouse is identical to a fault-free run; a wait past its limit fails cleanly for the task to retry",
)
def test_warehouse_locked_by_another_writer(clamd_service, tmp_path):
    outcomes = checked(Archive(tmp_path / "archive"), GOOD, clamd_service)
    reference = tmp_path / "reference.duckdb"
    record(reference, outcomes)
    warehouse = tmp_path / "warehouse.duckdb"
    with connect(warehouse):
        pass  # an existing, migrated warehouse
    before = warehouse_tables(warehouse)

    release = tmp_path / "release"
    holder, holding = start_child(
        {"kind": "hold_warehouse", "warehouse": str(warehouse), "release": str(release)}, tmp_path, "holder"
    )
    try:
        wait_for(holding, holder)
        with pytest.raises(duckdb.IOException, match="lock"), connect(warehouse, wait_seconds=0.2):
            pass

        retries = _Retries()
        logger = logging.getLogger("include.warehouse.connection")
        logger.addHandler(retries)
        logger.setLevel(logging.INFO)
        errors: list[BaseException] = []

        def writer() -> None:
            try:
                record(warehouse, outcomes)
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            assert retries.seen.wait(timeout=60), "the writer never retried"
            assert thread.is_alive()  # still waiting for the lock, not failed
        finally:
            release.write_text("go")
            thread.join(timeout=120)
            logger.removeHandler(retries)
    finally:
        release.write_text("go")
        holder.join(timeout=30)
    assert holder.exitcode == 0
    assert not thread.is_alive() and errors == []
    after = warehouse_tables(warehouse)
    assert after != before
    assert _paths_free(after, tmp_path) == _paths_free(warehouse_tables(reference), tmp_path)
