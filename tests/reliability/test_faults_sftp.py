"""The SFTP landing zone under faults: a connection lost mid-download, a file still growing."""

from __future__ import annotations

import hashlib
import os
from datetime import date, datetime, time

import paramiko
import pytest

from include.landing.archive import Archive
from include.landing.sftp_inbox import LONDON, PROCESSED, list_inbox
from include.recalls.pickup import inbox_of, receive_day, wait_decision
from tests.reliability.faults import run_and_kill

DAY = date(2026, 11, 2)
INBOX = inbox_of("ACME")


def london(day: date, hour: int, minute: int = 0) -> float:
    return datetime.combine(day, time(hour, minute), tzinfo=LONDON).timestamp()


def archive_contents(archive: Archive) -> list[str]:
    return sorted(str(p.relative_to(archive.root)) for p in archive.root.rglob("*") if p.is_file())


@pytest.fixture
def sftp(sftp_service):
    sftp_service.clear()
    yield sftp_service
    sftp_service.clear()


@pytest.mark.reliability(
    "Faults",
    "The SFTP connection drops in the middle of downloading a recall file",
    "The download fails and nothing is archived (no object, no manifest, no temp file); the remote file "
    "stays in the inbox; the retry on a new connection archives it whole (size and SHA-256 checked) and "
    "only then moves it to processed/",
)
def test_connection_dropped_mid_download(sftp, tmp_path):
    data = os.urandom(400_000)  # several SFTP read requests
    path = sftp.upload("ACME", "acme.csv", data, mtime=london(DAY, 10))
    sftp.server.drop_connection_once(path, after_bytes=100_000)
    archive = Archive(tmp_path / "archive")

    with sftp.client() as client, pytest.raises(paramiko.SSHException, match="connection dropped"):
        receive_day(client, archive, "ACME", DAY)
    assert sftp.server.dropped == [str(sftp.local_path(path).resolve())]
    assert archive_contents(archive) == []  # the temp file was removed too
    assert sftp.local_path(path).read_bytes() == data  # still in the inbox, untouched

    with sftp.client() as client:  # the task's retry: a fresh connection
        [received] = receive_day(client, archive, "ACME", DAY)
        assert [f.name for f in list_inbox(client, INBOX)] == []
    sha256 = hashlib.sha256(data).hexdigest()
    assert (received.sha256, received.size) == (sha256, len(data))
    stored = archive.object_path(sha256)
    assert stored.stat().st_size == len(data)
    assert Archive.sha256_of(stored) == sha256
    assert archive_contents(archive) == sorted(
        [f"objects/{sha256[:2]}/{sha256}", f"manifests/recalls/ACME/{DAY}/{received.upload_id}.json"]
    )
    moved = sftp.local_path(f"{INBOX}/{PROCESSED}/{DAY}/{sha256[:12]}-acme.csv")
    assert moved.read_bytes() == data


@pytest.mark.reliability(
    "Faults",
    "A recall file is still being uploaded (it grows, its mtime keeps moving) when the day's run looks at it",
    "It is not taken while it changes, even after the day is over; once its mtime has been still for the "
    "settle interval it is taken whole (the final size and SHA-256)",
)
def test_growing_file_is_taken_only_once_settled(sftp, tmp_path):
    settle = 120.0
    whole = b"VIN,ManufacturerRecallCampaignReference,DVSACampaignReference,RecallCampaignStartDate\n" + b"".join(
        f"VIN{i:014d},REF{i},,2026-01-01\n".encode() for i in range(2000)
    )
    path = f"{INBOX}/acme.csv"
    next_day = DAY.toordinal() + 1

    def decide(now: float):
        with sftp.client() as client:
            listed = list_inbox(client, INBOX)
        decision = wait_decision(
            DAY, listed, archived_count=0, now=now, settle_seconds=settle, deadline_minutes_after_day=120
        )
        return listed, decision

    def at(hour: int, minute: int, second: int = 0) -> float:
        return london(date.fromordinal(next_day), hour, minute) + second

    # The upload has written a third of the file just before midnight.
    sftp.upload_as("acme", "/acme.csv", whole[: len(whole) // 3], mtime=london(DAY, 23, 58) + 30)
    listed, decision = decide(now=at(0, 0))
    assert (decision.done, decision.state) == (False, "WAITING") and "settle" in decision.reason
    first_size = listed[0].size

    # More bytes arrive: the size grows and the mtime moves on. The first listing's mtime would
    # have settled by now, the growing file has not.
    sftp.upload_as("acme", "/acme.csv", whole, mtime=london(DAY, 23, 59) + 30)
    listed, decision = decide(now=at(0, 0, 40))
    assert listed[0].size > first_size
    assert (decision.done, decision.state) == (False, "WAITING")
    assert sftp.local_path(path).exists()

    # Still for the settle interval: taken, whole.
    listed, decision = decide(now=london(DAY, 23, 59) + 30 + settle)
    assert (decision.done, decision.state) == (True, "READY")
    archive = Archive(tmp_path / "archive")
    with sftp.client() as client:
        [received] = receive_day(client, archive, "ACME", DAY)
    assert (received.size, received.sha256) == (len(whole), hashlib.sha256(whole).hexdigest())
    assert archive.read_bytes(received.sha256) == whole


@pytest.mark.reliability(
    "Faults",
    "The process receiving a recall file is killed with SIGKILL after the archive copy is durable, before "
    "the remote file is moved to processed/",
    "The remote file is still in the inbox and the archive holds the verified copy and manifest; the rerun "
    "moves it once and the archive is identical to a fault-free receive (one object, one manifest)",
)
def test_receive_killed_between_archive_and_remote_move(sftp, tmp_path):
    data = b"VIN,ManufacturerRecallCampaignReference,DVSACampaignReference,RecallCampaignStartDate\n" + b"X" * 5000
    mtime = london(DAY, 10)

    reference = Archive(tmp_path / "reference")
    sftp.upload("ACME", "acme.csv", data, mtime=mtime)
    with sftp.client() as client:
        [expected] = receive_day(client, reference, "ACME", DAY)
    sftp.clear()

    path = sftp.upload("ACME", "acme.csv", data, mtime=mtime)
    archive = Archive(tmp_path / "archive")
    job = {
        "kind": "recall_receive",
        "host": sftp.host,
        "port": sftp.port,
        "user": sftp.pipeline_user,
        "key": str(sftp.pipeline_key),
        "archive": str(archive.root),
        "code": "ACME",
        "day": DAY.isoformat(),
    }
    run_and_kill(job, tmp_path, "receive")
    assert sftp.local_path(path).read_bytes() == data  # not moved: the run died first
    assert archive_contents(archive) == archive_contents(reference)
    assert Archive.sha256_of(archive.object_path(expected.sha256)) == expected.sha256

    with sftp.client() as client:  # the retry
        [received] = receive_day(client, archive, "ACME", DAY)
        assert [f.name for f in list_inbox(client, INBOX)] == []
        assert client.listdir(f"{INBOX}/{PROCESSED}/{DAY}") == [f"{expected.sha256[:12]}-acme.csv"]
    assert archive_contents(archive) == archive_contents(reference)
    ignore = {"received_at": None}
    assert {**received.__dict__, **ignore} == {**expected.__dict__, **ignore}
