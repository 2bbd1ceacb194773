"""Two runs of the same recall day at once (a backfill overlapping the scheduled run)."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, time
from pathlib import Path

import pytest

from include.landing.archive import Archive
from include.landing.sftp_inbox import LONDON, PROCESSED
from tests.reliability import child
from tests.reliability.faults import ACME, HEADER, OPS, start_child, wait_for, warehouse_tables

DAY = date(2026, 11, 2)
GOOD = HEADER + b"LH7PRODCJEE012345,ABCCARS123,R/2026/123,2026-10-01\nABCCCX5RZUDE1234,ABCTRUCKS125,,2026-10-03\n"
SECOND = HEADER + b"WBA00000000000003,ABCCARS124,,2026-10-05\n"  # a second file the same day: rejected, emailed


def london(hour: int) -> float:
    return datetime.combine(DAY, time(hour), tzinfo=LONDON).timestamp()


def upload(sftp) -> None:
    sftp.upload("ACME", "acme.csv", GOOD, mtime=london(9))
    sftp.upload("ACME", "again.csv", SECOND, mtime=london(15))


def job_for(base: Path, sftp, smtp, clamd) -> dict:
    return {
        "kind": "recall_day",
        "go": str(base / "go"),
        "archive": str(base / "archive"),
        "warehouse": str(base / "warehouse.duckdb"),
        "day": DAY.isoformat(),
        "manufacturer": ACME.__dict__,
        "ops_email": OPS,
        "host": sftp.host,
        "port": sftp.port,
        "user": sftp.pipeline_user,
        "key": str(sftp.pipeline_key),
        "clamd_host": clamd.host,
        "clamd_port": clamd.port,
        "smtp_host": smtp.host,
        "smtp_port": smtp.port,
        "sender": "vehicle-recalls-pipeline@dvsa.localhost",
    }


def comparable(state: dict, base: Path) -> str:
    return repr(state).replace(str(base), "BASE")


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.reliability(
    "Faults",
    "Two runs of the same recall day at once (a backfill overlapping the scheduled run), each a separate "
    "process doing receive, scan/validate, record/apply and mail delivery",
    "One result: every warehouse table, the archive (one object and one manifest per upload), the inbox "
    "(each file moved once) and the mail delivered (once) are identical to a single fault-free run",
)
def test_two_runs_of_the_same_day_at_once(sftp_service, smtp_service, clamd_service, tmp_path):
    sftp_service.clear()
    smtp_service.start()
    smtp_service.clear()

    # Fault-free: one run.
    ref = tmp_path / "ref"
    ref.mkdir()
    upload(sftp_service)
    (ref / "go").touch()
    child.recall_day(job_for(ref, sftp_service, smtp_service, clamd_service))
    expected_mail = sorted(m["X-Pipeline-Message-Key"] for m in smtp_service.messages())
    expected_state = comparable(warehouse_tables(ref / "warehouse.duckdb", keep={"released_at"}), ref)
    expected_files = files_under(ref / "archive")
    assert len(expected_mail) == 1
    sftp_service.clear()
    smtp_service.clear()

    # Two runs of the same day, released at the same instant.
    both = tmp_path / "both"
    both.mkdir()
    upload(sftp_service)
    job = job_for(both, sftp_service, smtp_service, clamd_service)
    runs = [start_child(job, both, name) for name in ("scheduled", "backfill")]
    (both / "go").touch()
    for proc, marker in runs:
        wait_for(Path(f"{marker}.done"), proc)
        proc.join(timeout=30)
        assert proc.exitcode == 0

    assert comparable(warehouse_tables(both / "warehouse.duckdb", keep={"released_at"}), both) == expected_state
    assert files_under(both / "archive") == expected_files  # one object per file, one manifest each
    assert sorted(m["X-Pipeline-Message-Key"] for m in smtp_service.messages()) == expected_mail  # sent once
    archive = Archive(both / "archive")
    processed = sftp_service.local_path(f"/recalls/ACME/{PROCESSED}/{DAY}")
    assert sorted(p.name for p in processed.iterdir()) == sorted(
        f"{hashlib.sha256(data).hexdigest()[:12]}-{name}" for name, data in (("acme.csv", GOOD), ("again.csv", SECOND))
    )
    assert [f.name for f in sftp_service.local_path("/recalls/ACME").iterdir() if f.is_file()] == []
    assert len(archive.received("recalls", "ACME", DAY.isoformat())) == 2


@pytest.mark.reliability(
    "Faults",
    "Two overlapping runs of a day: one lists the inbox, then the other archives and moves every file before "
    "the first fetches them",
    "The later run takes the other's archived files instead of failing on the vanished remote files; nothing "
    "is fetched or archived twice",
)
def test_one_run_moves_the_files_the_other_has_just_listed(sftp_service, tmp_path, monkeypatch):
    """The worst interleaving of two receives, made deterministic: run B lists the inbox, then run A
    archives and moves every file before B fetches them."""
    from include.recalls import pickup

    sftp_service.clear()
    upload(sftp_service)
    archive = Archive(tmp_path / "archive")
    real_list = pickup.list_inbox
    first: list = []

    with sftp_service.client() as run_a, sftp_service.client() as run_b:

        def list_then_let_a_finish(sftp, inbox):
            listed = real_list(sftp, inbox)
            if sftp is run_b and not first:
                first.extend(pickup.receive_day(run_a, archive, "ACME", DAY))
            return listed

        monkeypatch.setattr(pickup, "list_inbox", list_then_let_a_finish)
        second = pickup.receive_day(run_b, archive, "ACME", DAY)
    assert [r.original_name for r in first] == ["acme.csv", "again.csv"]
    assert second == first  # B saw A's archived files, fetched nothing twice, raised nothing
    assert len(files_under(archive.root)) == 4  # two objects, two manifests
