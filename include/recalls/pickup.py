"""Picking up a manufacturer's recall file for a business day from its SFTP inbox."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from include.landing.archive import Archive, ReceivedFile
from include.landing.sftp_inbox import (
    RemoteFile,
    deadline_for,
    fetch_unless_taken,
    files_for_day,
    is_safe_name,
    list_inbox,
    move_to_processed,
    unsettled,
)

log = logging.getLogger(__name__)

FEED = "recalls"


def inbox_of(code: str) -> str:
    return f"/recalls/{code}"


@dataclass(frozen=True)
class WaitDecision:
    done: bool
    state: str  # READY, WAITING or MISSING
    reason: str


def wait_decision(
    day: date,
    remote: list[RemoteFile],
    *,
    archived_count: int,
    now: float,
    settle_seconds: float,
    deadline_minutes_after_day: float,
) -> WaitDecision:
    """Whether the day's files can be taken now.

    Ready when every file of the day has settled (an upload in progress keeps bumping its mtime)
    and the day is over (so no later file of the day can still arrive), or when the archive
    already holds the day's files (a rerun). MISSING once the deadline passes with nothing.
    """
    todays = [f for f in files_for_day(remote, day) if is_safe_name(f.name)]
    moving = unsettled(todays, settle_seconds, now)
    deadline = deadline_for(day, deadline_minutes_after_day)
    day_over = now >= deadline_for(day, 0)
    if todays and not moving and day_over:
        return WaitDecision(True, "READY", f"{len(todays)} file(s) settled: {[f.name for f in todays]}")
    if archived_count and not todays:
        return WaitDecision(True, "READY", f"{archived_count} file(s) already archived (rerun)")
    if now >= deadline:
        if todays and not moving:
            return WaitDecision(True, "READY", f"deadline passed; {len(todays)} settled file(s)")
        if archived_count:
            return WaitDecision(True, "READY", f"deadline passed; {archived_count} archived file(s)")
        still = f"; still uploading: {[f.name for f in moving]}" if moving else ""
        return WaitDecision(True, "MISSING", f"no complete file for {day} by the deadline{still}")
    if moving:
        return WaitDecision(False, "WAITING", f"waiting for uploads to settle: {[f.name for f in moving]}")
    return WaitDecision(False, "WAITING", f"waiting for the file of {day}")


def receive_day(sftp, archive: Archive, code: str, day: date, *, settle_seconds: float = 0) -> list[ReceivedFile]:
    """Archive every settled file of the day, then move each out of the inbox.

    Returns all the day's archived files (including ones archived by earlier attempts), earliest
    upload first. Files with unsafe names are reported and left alone.
    """
    inbox = inbox_of(code)
    remote = files_for_day(list_inbox(sftp, inbox), day)
    for item in remote:
        if not is_safe_name(item.name):
            log.warning("%s: ignoring remote file with an unsafe name %r", code, item.name)
            continue
        if settle_seconds and unsettled([item], settle_seconds):
            log.info("%s: %s is still being uploaded; left in the inbox", code, item.name)
            continue
        received = fetch_unless_taken(sftp, inbox, item, archive, feed=FEED, source=code)
        if received is None:
            continue  # a concurrent run of the day took it
        move_to_processed(sftp, inbox, received)
        log.info("%s: archived %s as %s", code, item.name, received.sha256)
    return archive.received(FEED, code, day.isoformat())
