"""Hostile remote file names against the real SFTP server: nothing escapes the inbox or the archive.

Names that a POSIX server can hold (newlines, bidi overrides, zero-width and C1 characters,
backslashes, look-alike slashes, NFC/NFD spellings) are uploaded for real. Names no POSIX file
can carry (``../``, absolute paths, NUL) come from a server that lies in its listing: the client
wrapper below adds them to the real listing and records every path the pipeline then touches.
"""

from __future__ import annotations

import logging
import posixpath
import unicodedata
from datetime import date, datetime, time
from pathlib import Path

import paramiko
import pytest

from include.landing.archive import Archive
from include.landing.sftp_inbox import LONDON, PROCESSED, list_inbox
from include.recalls.pickup import inbox_of, receive_day, wait_decision

DAY = date(2026, 10, 6)
DATA = b"VIN,ManufacturerRecallCampaignReference,DVSACampaignReference,RecallCampaignStartDate\nV1,R1,,2026-01-01\n"
INBOX = inbox_of("ACME")

# Real files: taken (plain text, however odd) or left in the inbox and reported (can confuse a reader).
SAFE = {
    "fullwidth solidus": "acme\uff0f..\uff0fescape.csv",  # looks like a path, is one name
    "NFC": unicodedata.normalize("NFC", "r\u00e9calls.csv"),
    "NFD": unicodedata.normalize("NFD", "r\u00e9calls.csv"),
    "leading dash": "-rf.csv",
    "dots": "...csv",
}
UNSAFE_ON_DISK = {
    "newline": "acme\nforged log line.csv",
    "carriage return": "acme\r.csv",
    "RTL override": "recalls\u202evsc.exe",  # shows as recallsexe.csv
    "zero-width space": "acme\u200b.csv",
    "C1 control (NEL)": "acme\x85.csv",
    "line separator": "acme\u2028.csv",
    "backslash": "..\\..\\escape.csv",
    "DEL": "acme\x7f.csv",
}
# Only a lying (or compromised) server could list these.
UNSAFE_LISTED = ["../../etc/passwd", "../BOLT/bolt.csv", "/etc/passwd", "a/../../b.csv", "acme\x00.csv", "..", "."]


def at(day: date, hour: int) -> float:
    return datetime.combine(day, time(hour), tzinfo=LONDON).timestamp()


class LyingServer:
    """A paramiko SFTP client that adds names to every listing and records every path used."""

    def __init__(self, sftp: paramiko.SFTPClient, extra_names: list[str], mtime: float) -> None:
        self._sftp = sftp
        self._extra = extra_names
        self._mtime = mtime
        self.touched: list[str] = []

    def listdir_attr(self, path: str):
        entries = self._sftp.listdir_attr(path)
        for name in self._extra:
            attrs = paramiko.SFTPAttributes()
            attrs.filename, attrs.st_size, attrs.st_mode = name, len(DATA), 0o100644
            attrs.st_mtime = int(self._mtime)
            entries.append(attrs)
        return entries

    def _use(self, *paths: str) -> None:
        self.touched.extend(paths)

    def open(self, path, mode="r", *args, **kwargs):
        self._use(path)
        return self._sftp.open(path, mode, *args, **kwargs)

    def stat(self, path):
        if posixpath.normpath(path) not in ("/", "/recalls", INBOX):  # _makedirs checks the parents exist
            self._use(path)
        return self._sftp.stat(path)

    def rename(self, source, target):
        self._use(source, target)
        return self._sftp.rename(source, target)

    def mkdir(self, path, *args):
        self._use(path)
        return self._sftp.mkdir(path, *args)


def tree(root: Path, skip: Path | None = None) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and (skip is None or skip not in p.parents)
    }


@pytest.mark.reliability(
    "Hostile input",
    "remote file names with ../, absolute paths, NUL, newlines, backslashes, RTL override, zero-width and C1"
    " characters, fullwidth solidus, NFC/NFD spellings (real SFTP server, plus a lying listing)",
    "nothing outside the manufacturer's inbox is read, written or moved; unsafe names stay in the inbox and are"
    " logged escaped; odd-but-plain names are archived content-addressed with the exact name in the manifest",
)
def test_hostile_remote_names_never_escape_the_inbox_or_the_archive(sftp_service, tmp_path, caplog):
    sftp_service.clear()
    mtime = at(DAY, 10)
    for index, name in enumerate([*SAFE.values(), *UNSAFE_ON_DISK.values()]):
        sftp_service.upload_as("pipeline", f"{INBOX}/{name}", DATA + b"V%d,R%d,,2026-01-01\n" % (index, index), mtime)
    sftp_service.upload("BOLT", "bolt.csv", DATA, at(DAY, 9))
    inbox_dir = sftp_service.local_path(INBOX)
    outside_before = tree(sftp_service.root, skip=inbox_dir)
    unsafe_before = {name: (inbox_dir / name).read_bytes() for name in UNSAFE_ON_DISK.values()}
    archive = Archive(tmp_path / "archive")

    unsafe_names = set(UNSAFE_LISTED) | set(UNSAFE_ON_DISK.values())
    with sftp_service.client() as sftp, caplog.at_level(logging.WARNING, logger="include.recalls.pickup"):
        lying = LyingServer(sftp, UNSAFE_LISTED, mtime)
        received = receive_day(lying, archive, "ACME", DAY)
        # Not even the wait decision counts a file with an unsafe name as the day's file.
        only_unsafe = wait_decision(
            DAY,
            [f for f in list_inbox(lying, INBOX) if f.name in unsafe_names],
            archived_count=0,
            now=at(DAY, 23) + 86400,
            settle_seconds=0,
            deadline_minutes_after_day=0,
        )
    assert only_unsafe.state == "MISSING"

    # Every path the pipeline used is inside the inbox, and none is an unsafe name.
    allowed = {PROCESSED, DAY.isoformat(), *SAFE.values()}
    for path in lying.touched:
        assert path == posixpath.normpath(path) and path.startswith(INBOX + "/"), path
        for part in path[len(INBOX) + 1 :].split("/"):
            assert part in allowed or (part[12:13] == "-" and part[13:] in SAFE.values()), path
    # Safe names: archived under their exact (unnormalised) names, moved to processed/ inside the inbox.
    assert sorted(r.original_name for r in received) == sorted(SAFE.values())
    assert len({r.upload_id for r in received}) == len(SAFE)  # NFC and NFD are two uploads, not one
    processed = inbox_dir / PROCESSED / DAY.isoformat()
    assert sorted(p.name.split("-", 1)[1] for p in processed.iterdir()) == sorted(SAFE.values())
    # Unsafe files: still in the inbox, untouched; everything outside the inbox unchanged.
    assert {name: (inbox_dir / name).read_bytes() for name in UNSAFE_ON_DISK.values()} == unsafe_before
    assert tree(sftp_service.root, skip=inbox_dir) == outside_before
    # The archive holds only content-addressed objects and manifests named by upload id.
    for path in (tmp_path / "archive").rglob("*"):
        relative = path.relative_to(tmp_path / "archive")
        assert relative.parts[0] in {"objects", "manifests", "incoming"}, relative
        assert all(part.isascii() and part.isprintable() for part in relative.parts), relative
    # Each unsafe name is reported once, escaped: no raw newline or bidi control reaches the log.
    warnings = [r.getMessage() for r in caplog.records if "unsafe name" in r.getMessage()]
    assert len(warnings) == len(unsafe_names)
    for message in warnings:
        assert message.isprintable(), repr(message)
