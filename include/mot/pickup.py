"""Picking up the MOT delta for a business day from the SFTP landing zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from include.landing.archive import Archive, ReceivedFile
from include.landing.sftp_inbox import RemoteFile, fetch, fetch_unless_taken, list_inbox, move_to_processed
from include.mot.files import delta_candidate_names

FEED = "mot"
SOURCE = "delta"
INBOX = "/mot/delta"


@dataclass(frozen=True)
class DeltaWait:
    done: bool
    state: str  # READY, WAITING or MISSING
    reason: str


def delta_for_day(remote: list[RemoteFile], day: date) -> RemoteFile | None:
    """The day's delta by name (zip first, then .json.gz, then .jsonl)."""
    by_name = {f.name: f for f in remote}
    for name in delta_candidate_names(day):
        if name in by_name:
            return by_name[name]
    return None


def wait_decision(
    day: date, remote: list[RemoteFile], *, archived_count: int, now: float, settle_seconds: float, deadline: float
) -> DeltaWait:
    found = delta_for_day(remote, day)
    if found is not None and now - found.mtime >= settle_seconds:
        return DeltaWait(True, "READY", f"{found.name} has settled")
    if found is None and archived_count:
        return DeltaWait(True, "READY", "already archived (rerun)")
    if now >= deadline:
        return DeltaWait(True, "MISSING", f"no complete delta for {day} by the deadline")
    return DeltaWait(False, "WAITING", f"waiting for {delta_candidate_names(day)[0]}")


def receive_delta(sftp, archive: Archive, day: date) -> ReceivedFile | None:
    """Archive the day's delta (verified, durable), move it to processed/, return its manifest."""
    found = delta_for_day(list_inbox(sftp, INBOX), day)
    if found is not None:
        received = fetch_unless_taken(sftp, INBOX, found, archive, feed=FEED, source=SOURCE, business_date=day)
        if received is not None:  # None: a concurrent run of the day took it
            move_to_processed(sftp, INBOX, received)
    archived = archive.received(FEED, SOURCE, day.isoformat())
    return archived[0] if archived else None


BULK_INBOX = "/mot/bulk"


def receive_bulk(sftp, archive: Archive, file_name: str) -> ReceivedFile:
    """Archive a bulk file named by the operator (its date comes from the name) and move it out."""
    from include.landing.sftp_inbox import is_safe_name
    from include.mot.files import parse_file_name

    if not is_safe_name(file_name):
        raise ValueError(f"unsafe bulk file name {file_name!r}")
    kind, day = parse_file_name(file_name)
    if kind != "bulk":
        raise ValueError(f"{file_name!r} is not a bulk-light-vehicle_DD-MM-YYYY.zip file")
    archived = [r for r in archive.received(FEED, "bulk", day.isoformat()) if r.original_name == file_name]
    remote = {f.name: f for f in list_inbox(sftp, BULK_INBOX)}
    if file_name in remote:
        received = fetch(sftp, BULK_INBOX, remote[file_name], archive, feed=FEED, source="bulk", business_date=day)
        move_to_processed(sftp, BULK_INBOX, received)
        return received
    if archived:
        return archived[-1]
    raise FileNotFoundError(f"{BULK_INBOX}/{file_name} is not on the server and was never archived")
