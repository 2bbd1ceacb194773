"""The content-addressed archive: durable objects, idempotent manifests, quarantine."""

from __future__ import annotations

import hashlib
import io
import stat
from dataclasses import replace
from datetime import date

import pytest

from include.landing.archive import Archive, ArchiveIntegrityError, ReceivedFile

DATA = b"VIN,ManufacturerRecallCampaignReference,DVSACampaignReference,RecallCampaignStartDate\n"


@pytest.fixture
def archive(tmp_path) -> Archive:
    return Archive(tmp_path / "archive")


def objects(archive: Archive) -> list[str]:
    folder = archive.root / "objects"
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def leftovers(archive: Archive) -> list[str]:
    folder = archive.root / "incoming"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def manifest(sha256: str, mtime: float, name: str = "acme.csv", day: str = "2026-11-02") -> ReceivedFile:
    return ReceivedFile(
        feed="recalls",
        source="ACME",
        business_date=day,
        original_name=name,
        remote_path=f"/recalls/ACME/{name}",
        size=len(DATA),
        remote_mtime=mtime,
        sha256=sha256,
        received_at="2026-11-03T01:00:00+00:00",
    )


def test_store_stream_is_content_addressed_and_read_only(archive):
    sha256, size = archive.store_stream(io.BytesIO(DATA), expected_size=len(DATA))
    assert sha256 == hashlib.sha256(DATA).hexdigest()
    assert size == len(DATA)
    path = archive.object_path(sha256)
    assert path == archive.root / "objects" / sha256[:2] / sha256
    assert path.read_bytes() == DATA == archive.read_bytes(sha256)
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert leftovers(archive) == []


def test_storing_the_same_bytes_twice_keeps_one_object(archive):
    first = archive.store_stream(io.BytesIO(DATA))
    second = archive.store_stream(io.BytesIO(DATA), expected_size=len(DATA))
    assert first == second
    assert objects(archive) == [first[0]]
    assert leftovers(archive) == []


def test_large_stream_in_many_chunks(archive):
    data = bytes(range(256)) * 20_000  # ~5 MB, several CHUNKs
    sha256, size = archive.store_stream(io.BytesIO(data), expected_size=len(data))
    assert (sha256, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert archive.read_bytes(sha256) == data


@pytest.mark.parametrize("expected", [len(DATA) - 1, len(DATA) + 1, 0])
def test_size_mismatch_raises_and_stores_nothing(archive, expected):
    with pytest.raises(ArchiveIntegrityError):
        archive.store_stream(io.BytesIO(DATA), expected_size=expected)
    assert objects(archive) == []
    assert leftovers(archive) == []


def test_a_failing_stream_stores_nothing(archive):
    class Broken(io.RawIOBase):
        calls = 0

        def read(self, n=-1):
            self.calls += 1
            if self.calls > 1:
                raise OSError("connection reset")
            return DATA

    with pytest.raises(OSError, match="connection reset"):
        archive.store_stream(Broken(), expected_size=10 * len(DATA))
    assert objects(archive) == []
    assert leftovers(archive) == []


def test_manifests_are_idempotent_and_ordered_by_upload_time(archive):
    sha_a = archive.store_stream(io.BytesIO(DATA))[0]
    sha_b = archive.store_stream(io.BytesIO(DATA + b"x"))[0]
    late = manifest(sha_a, 1_793_700_000.0, "late.csv")
    early = manifest(sha_b, 1_793_690_000.5, "early.csv")
    first_path = archive.record(late)
    assert archive.record(late) == first_path  # idempotent
    archive.record(early)
    archive.record(early)
    received = archive.received("recalls", "ACME", "2026-11-02")
    assert received == [early, late]
    assert len(list(first_path.parent.glob("*.json"))) == 2
    assert received[0].day == date(2026, 11, 2)
    assert archive.received("recalls", "ACME", "2026-11-03") == []
    assert archive.received("recalls", "BOLT", "2026-11-02") == []


def test_same_bytes_uploaded_twice_are_two_uploads(archive):
    sha256 = archive.store_stream(io.BytesIO(DATA))[0]
    first = manifest(sha256, 1_793_690_000.0)
    again = replace(first, remote_mtime=1_793_690_600.0)
    assert first.upload_id != again.upload_id
    archive.record(again)
    archive.record(first)
    assert archive.received("recalls", "ACME", "2026-11-02") == [first, again]
    assert objects(archive) == [sha256]


def test_manifest_with_an_odd_file_name(archive):
    sha256 = archive.store_stream(io.BytesIO(DATA))[0]
    odd = manifest(sha256, 1_793_690_000.0, name="r\u00e9calls \udcff.csv")  # surrogate from a non-UTF-8 name
    archive.record(odd)
    assert archive.received("recalls", "ACME", "2026-11-02") == [odd]


def test_quarantine_moves_the_object_out_of_reach(archive):
    sha256 = archive.store_stream(io.BytesIO(DATA))[0]
    target = archive.quarantine(sha256)
    assert target == archive.quarantine_path(sha256)
    assert target.read_bytes() == DATA
    assert not archive.object_path(sha256).exists()
    with pytest.raises(FileNotFoundError):
        archive.read_bytes(sha256)
    assert archive.quarantine(sha256) == target  # idempotent
    # The same bytes arriving again are not put back where readers look.
    assert archive.store_stream(io.BytesIO(DATA), expected_size=len(DATA)) == (sha256, len(DATA))
    assert not archive.object_path(sha256).exists()
    assert leftovers(archive) == []


def test_derived_paths():
    archive = Archive("/data/archive")
    path = archive.derived_path("snapshots", "recalls", "ACME", "2026-11-02", "x.parquet")
    assert str(path) == "/data/archive/snapshots/recalls/ACME/2026-11-02/x.parquet"
