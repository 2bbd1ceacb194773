"""Content-addressed, immutable archive of every received file.

Objects are stored by SHA-256 and never rewritten; a manifest per received file records where it
came from. Reruns and backfills read from here, never from the SFTP server again.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import BinaryIO

from include.atomic import private_temp

CHUNK = 1 << 20


class ArchiveIntegrityError(Exception):
    """The bytes written are not the bytes expected (size or hash): nothing was stored."""


@dataclass(frozen=True)
class ReceivedFile:
    """Manifest of one received file."""

    feed: str  # "recalls" or "mot"
    source: str  # manufacturer code, or "delta" / "bulk"
    business_date: str  # ISO date
    original_name: str
    remote_path: str
    size: int
    remote_mtime: float  # epoch seconds, as the SFTP server reported it
    sha256: str
    received_at: str  # ISO timestamp, UTC

    @property
    def day(self) -> date:
        return date.fromisoformat(self.business_date)

    @property
    def upload_id(self) -> str:
        """Identifies one upload: the same bytes uploaded twice are two uploads."""
        name_tag = hashlib.sha256(self.original_name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
        return f"{int(self.remote_mtime * 1000):015d}-{self.sha256[:16]}-{name_tag}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Archive:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def object_path(self, sha256: str) -> Path:
        return self.root / "objects" / sha256[:2] / sha256

    def quarantine_path(self, sha256: str) -> Path:
        return self.root / "quarantine" / sha256

    def derived_path(self, kind: str, feed: str, source: str, business_date: str, name: str) -> Path:
        """Where files derived from a received file live (staged snapshots, reports)."""
        return self.root / kind / feed / source / business_date / name

    @contextmanager
    def _temp_file(self) -> Iterator[tuple[Path, BinaryIO]]:
        incoming = self.root / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        path = incoming / f"{uuid.uuid4().hex}.part"
        try:
            with open(path, "wb") as handle:
                yield path, handle
        finally:
            path.unlink(missing_ok=True)

    def store_stream(self, source: BinaryIO, expected_size: int | None = None) -> tuple[str, int]:
        """Copy a stream into the archive; returns (sha256, size). Durable before it returns.

        The copy goes to a temporary file, is fsynced, checked against the expected size, and
        only then renamed into place, so a partial download never appears in the archive.
        """
        digest = hashlib.sha256()
        size = 0
        with self._temp_file() as (temp, handle):
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                handle.write(chunk)
                size += len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
            if expected_size is not None and size != expected_size:
                raise ArchiveIntegrityError(f"received {size} bytes, expected {expected_size}")
            sha256 = digest.hexdigest()
            target = self.object_path(sha256)
            if not target.exists() and not self.quarantine_path(sha256).exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(temp, 0o444)
                os.replace(temp, target)
                _fsync_dir(target.parent)
        if self.sha256_of(self.object_path(sha256)) != sha256 and not self.quarantine_path(sha256).exists():
            raise ArchiveIntegrityError(f"archived object {sha256} does not match its hash")
        return sha256, size

    @staticmethod
    def sha256_of(path: Path) -> str:
        digest = hashlib.sha256()
        if not path.exists():
            return ""
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def read_bytes(self, sha256: str) -> bytes:
        return self.object_path(sha256).read_bytes()

    def quarantine(self, sha256: str) -> Path:
        """Move an infected object out of reach of every reader; idempotent."""
        source, target = self.object_path(sha256), self.quarantine_path(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.exists():
            os.replace(source, target)
            _fsync_dir(target.parent)
        return target

    def _manifest_dir(self, feed: str, source: str, business_date: str) -> Path:
        return self.root / "manifests" / feed / source / business_date

    def record(self, received: ReceivedFile) -> Path:
        """Write the manifest of a received file (idempotent for the same upload)."""
        directory = self._manifest_dir(received.feed, received.source, received.business_date)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{received.upload_id}.json"
        if not path.exists():
            temp = private_temp(path)  # two runs of a day may record the same upload at once
            temp.write_text(json.dumps(asdict(received), indent=2, sort_keys=True), encoding="utf-8")
            os.replace(temp, path)
            _fsync_dir(directory)
        return path

    def received(self, feed: str, source: str, business_date: str) -> list[ReceivedFile]:
        """Every file received for the day, earliest upload first."""
        directory = self._manifest_dir(feed, source, business_date)
        if not directory.is_dir():
            return []
        found = [ReceivedFile(**json.loads(p.read_text(encoding="utf-8"))) for p in directory.glob("*.json")]
        return sorted(found, key=lambda f: (f.remote_mtime, f.original_name, f.sha256))
