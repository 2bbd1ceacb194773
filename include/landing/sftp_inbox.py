"""Taking files out of an SFTP inbox: which files belong to a day, when they are complete, and
how they move to the archive without ever being lost or half-copied.

Works on a paramiko ``SFTPClient`` (what Airflow's SFTPHook hands out), nothing Airflow-specific.
"""

from __future__ import annotations

import logging
import posixpath
import stat
import time as clock
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from include.landing.archive import Archive, ReceivedFile

log = logging.getLogger(__name__)

LONDON = ZoneInfo("Europe/London")
PROCESSED = "processed"


class FileStillChanging(Exception):
    """The remote file changed while it was being copied: try again once it has settled."""


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int
    mtime: float

    def business_date(self) -> date:
        return datetime.fromtimestamp(self.mtime, tz=LONDON).date()


# Control, format (bidi overrides, zero-width), surrogate and private-use characters, and the
# Unicode line/paragraph separators: a name with these can disguise its extension or break a
# line in a log, an email or the operations page.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


def is_safe_name(name: str) -> bool:
    """A plain file name: nothing that could point outside the inbox or confuse a reader."""
    return (
        bool(name)
        and name not in {".", ".."}
        and "/" not in name
        and "\\" not in name
        and not any(unicodedata.category(ch) in _UNSAFE_CATEGORIES for ch in name)
    )


def list_inbox(sftp, inbox: str) -> list[RemoteFile]:
    """Regular files in the inbox (sub-folders such as processed/ are not uploads)."""
    files = []
    for entry in sftp.listdir_attr(inbox):
        if entry.st_mode is not None and not stat.S_ISREG(entry.st_mode):
            continue
        files.append(RemoteFile(entry.filename, int(entry.st_size or 0), float(entry.st_mtime or 0)))
    return sorted(files, key=lambda f: (f.mtime, f.name))


def files_for_day(files: list[RemoteFile], day: date) -> list[RemoteFile]:
    return [f for f in files if f.business_date() == day]


def unsettled(files: list[RemoteFile], settle_seconds: float, now: float | None = None) -> list[RemoteFile]:
    """Files modified within the settle interval: an upload in progress keeps bumping mtime."""
    now = clock.time() if now is None else now
    return [f for f in files if now - f.mtime < settle_seconds]


def fetch(
    sftp,
    inbox: str,
    remote: RemoteFile,
    archive: Archive,
    *,
    feed: str,
    source: str,
    business_date: date | None = None,
) -> ReceivedFile:
    """Copy one remote file into the archive and record its manifest. Leaves the remote file.

    The business day is the file's upload day in London unless the feed names it (MOT deltas
    carry their date in the file name).

    The copy is checked against the size seen in the listing and the remote file is stat'ed
    again afterwards: a file that changed meanwhile is not archived (FileStillChanging).
    """
    path = posixpath.join(inbox, remote.name)
    with sftp.open(path, "rb") as handle:
        handle.prefetch(remote.size)
        sha256, size = archive.store_stream(handle, expected_size=remote.size)
    after = sftp.stat(path)
    if int(after.st_size) != remote.size or float(after.st_mtime) != remote.mtime:
        raise FileStillChanging(f"{path} changed while it was copied")
    received = ReceivedFile(
        feed=feed,
        source=source,
        business_date=(business_date or remote.business_date()).isoformat(),
        original_name=remote.name,
        remote_path=path,
        size=size,
        remote_mtime=remote.mtime,
        sha256=sha256,
        received_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    archive.record(received)
    return received


def fetch_unless_taken(
    sftp,
    inbox: str,
    remote: RemoteFile,
    archive: Archive,
    *,
    feed: str,
    source: str,
    business_date: date | None = None,
) -> ReceivedFile | None:
    """``fetch``, or None when another run of the same day took the file since it was listed.

    Two runs of a day can overlap (a backfill and the scheduled run): the other run archives the
    file (manifest included) before it moves it, so a listed file that is gone and already in the
    archive was received, not lost. A file gone for any other reason still raises.
    """
    try:
        return fetch(sftp, inbox, remote, archive, feed=feed, source=source, business_date=business_date)
    except FileNotFoundError:
        day = (business_date or remote.business_date()).isoformat()
        archived = archive.received(feed, source, day)
        if any(r.original_name == remote.name and r.remote_mtime == remote.mtime for r in archived):
            log.info("%s/%s was archived and moved by a concurrent run", inbox, remote.name)
            return None
        raise


def move_to_processed(sftp, inbox: str, received: ReceivedFile) -> str:
    """Move the remote file out of the inbox, only once its archived copy is durable."""
    folder = posixpath.join(inbox, PROCESSED, received.business_date)
    _makedirs(sftp, folder)
    target = posixpath.join(folder, f"{received.sha256[:12]}-{received.original_name}")
    source = posixpath.join(inbox, received.original_name)
    try:
        sftp.rename(source, target)
    except OSError:
        # Already moved by an earlier attempt that died before finishing: nothing to do.
        if _exists(sftp, target) and not _exists(sftp, source):
            return target
        raise
    return target


def _exists(sftp, path: str) -> bool:
    try:
        sftp.stat(path)
    except OSError:
        return False
    return True


def _makedirs(sftp, folder: str) -> None:
    parts = folder.strip("/").split("/")
    current = "/" if folder.startswith("/") else ""
    for part in parts:
        current = posixpath.join(current, part) if current else part
        if not _exists(sftp, current):
            try:
                sftp.mkdir(current)
            except OSError:
                if not _exists(sftp, current):
                    raise


def deadline_for(day: date, minutes_after_day: float) -> float:
    """Epoch seconds of the deadline: the end of day D in London plus a grace period."""
    end_of_day = datetime.combine(day + timedelta(days=1), time(0), tzinfo=LONDON)
    return (end_of_day + timedelta(minutes=minutes_after_day)).timestamp()
