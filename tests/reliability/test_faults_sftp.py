"""The SFTP landing zone under faults: a connection lost mid-download, a file still growing."""

from __future__ import annotations

import hashlib
import os
from datetime import date, datetime, time

import paramiko
import pytest

from include.landing.archive import Archive
from include.landing.sftp_inbox import LONDON, PROCESSED, list_inbox
from include.recalls.pickup import inbox_of, receive_day

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
