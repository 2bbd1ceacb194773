"""The SFTP inbox against the real SFTP server, and the recall pickup's wait decision."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time, timedelta

import pytest

from include.landing.archive import Archive
from include.landing.sftp_inbox import (
    LONDON,
    PROCESSED,
    FileStillChanging,
    RemoteFile,
    deadline_for,
    fetch,
    files_for_day,
    is_safe_name,
    list_inbox,
    move_to_processed,
    unsettled,
)
from include.recalls.pickup import inbox_of, receive_day, wait_decision

DATA = b"VIN,ManufacturerRecallCampaignReference,DVSACampaignReference,RecallCampaignStartDate\nV,R,,2026-01-01\n"
SUMMER = date(2026, 7, 1)  # BST: London is UTC+1
WINTER = date(2026, 1, 15)  # GMT
INBOX = "/recalls/ACME"


def london(day: date, hour: int, minute: int = 0, second: int = 0) -> float:
    return datetime.combine(day, time(hour, minute, second), tzinfo=LONDON).timestamp()


def utc(day: date, hour: int, minute: int = 0) -> float:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC).timestamp()


@pytest.fixture
def sftp_server(sftp_service):
    sftp_service.clear()
    yield sftp_service
    sftp_service.clear()


@pytest.fixture
def archive(tmp_path) -> Archive:
    return Archive(tmp_path / "archive")


# -- names, days and settling (no server) --------------------------------------------------------
@pytest.mark.parametrize("name", ["acme.csv", "ACME_2026-01-05.CSV", "r\u00e9calls.csv", "with space.csv", ".hidden"])
def test_safe_names(name):
    assert is_safe_name(name)


@pytest.mark.parametrize(
    "name",
    [
        *("", ".", "..", "../x", "../../etc/passwd", "a/b.csv", "a\\b.csv", "x\n.csv", "x\x00.csv", "x\r", "\x7f"),
        *("r\u202evsc.exe", "a\u200b.csv", "a\x85.csv", "a\u2028.csv"),  # bidi override, zero-width, C1, LS
    ],
)
def test_unsafe_names(name):
    assert not is_safe_name(name)


def test_business_day_is_the_london_day():
    # 23:30 UTC on a summer day is 00:30 BST the next day.
    assert RemoteFile("a.csv", 1, utc(SUMMER, 23, 30)).business_date() == SUMMER + timedelta(days=1)
    assert RemoteFile("a.csv", 1, utc(SUMMER, 22, 59)).business_date() == SUMMER
    # In winter London is on UTC.
    assert RemoteFile("a.csv", 1, utc(WINTER, 23, 30)).business_date() == WINTER
    files = [
        RemoteFile("a.csv", 1, utc(SUMMER, 22, 59)),
        RemoteFile("b.csv", 1, utc(SUMMER, 23, 30)),
        RemoteFile("c.csv", 1, utc(SUMMER, 0, 0)),
    ]
    assert [f.name for f in files_for_day(files, SUMMER)] == ["a.csv", "c.csv"]
    assert [f.name for f in files_for_day(files, SUMMER + timedelta(days=1))] == ["b.csv"]


def test_unsettled():
    now = 1_800_000_000.0
    files = [
        RemoteFile("old.csv", 1, now - 120),
        RemoteFile("new.csv", 1, now - 5),
        RemoteFile("edge.csv", 1, now - 60),
    ]
    assert [f.name for f in unsettled(files, 60, now)] == ["new.csv"]
    assert unsettled(files, 0, now) == []
    assert [f.name for f in unsettled([RemoteFile("x", 1, 10**12)], 60)] == ["x"]  # default now: time.time()


# -- the real SFTP server ----------------------------------------------------------------------
def test_list_fetch_and_move_to_processed(sftp_server, archive):
    mtime = london(SUMMER, 10, 15)
    sftp_server.upload("ACME", "acme.csv", DATA, mtime=mtime)
    with sftp_server.client() as sftp:
        [remote] = list_inbox(sftp, INBOX)
        assert remote == RemoteFile("acme.csv", len(DATA), mtime)
        received = fetch(sftp, INBOX, remote, archive, feed="recalls", source="ACME")
        assert received.sha256 == hashlib.sha256(DATA).hexdigest()
        assert (received.business_date, received.size, received.remote_path) == (
            SUMMER.isoformat(),
            len(DATA),
            "/recalls/ACME/acme.csv",
        )
        assert archive.read_bytes(received.sha256) == DATA
        assert archive.received("recalls", "ACME", SUMMER.isoformat()) == [received]
        assert "acme.csv" in sftp.listdir(INBOX)  # fetch leaves the remote file

        target = move_to_processed(sftp, INBOX, received)
        assert target == f"{INBOX}/{PROCESSED}/{SUMMER.isoformat()}/{received.sha256[:12]}-acme.csv"
        assert sftp.listdir(INBOX) == [PROCESSED]
        assert list_inbox(sftp, INBOX) == []  # the processed/ folder is not an upload
        with sftp.open(target, "rb") as handle:
            assert handle.read() == DATA
        # A second attempt (the first died after the move) is fine.
        assert move_to_processed(sftp, INBOX, received) == target
    assert sftp_server.local_path(target).read_bytes() == DATA
    assert not sftp_server.local_path(f"{INBOX}/acme.csv").exists()


def test_fetch_an_empty_file(sftp_server, archive):
    sftp_server.upload("ACME", "empty.csv", b"", mtime=london(SUMMER, 10))
    with sftp_server.client() as sftp:
        [remote] = list_inbox(sftp, INBOX)
        received = fetch(sftp, INBOX, remote, archive, feed="recalls", source="ACME")
    assert (received.size, received.sha256) == (0, hashlib.sha256(b"").hexdigest())
    assert archive.read_bytes(received.sha256) == b""


def test_list_inbox_orders_by_upload_time(sftp_server):
    sftp_server.upload("ACME", "b.csv", DATA, mtime=london(SUMMER, 9))
    sftp_server.upload("ACME", "a.csv", DATA, mtime=london(SUMMER, 11))
    sftp_server.upload("ACME", "c.csv", DATA, mtime=london(SUMMER, 10))
    with sftp_server.client() as sftp:
        assert [f.name for f in list_inbox(sftp, INBOX)] == ["b.csv", "c.csv", "a.csv"]


def test_files_for_day_with_real_mtimes(sftp_server):
    sftp_server.upload("ACME", "late.csv", DATA, mtime=utc(SUMMER, 23, 30))
    sftp_server.upload("ACME", "ontime.csv", DATA, mtime=utc(SUMMER, 22, 30))
    with sftp_server.client() as sftp:
        listed = list_inbox(sftp, INBOX)
    assert [f.name for f in files_for_day(listed, SUMMER)] == ["ontime.csv"]
    assert [f.name for f in files_for_day(listed, SUMMER + timedelta(days=1))] == ["late.csv"]


def test_a_file_that_changes_while_it_is_copied_is_not_recorded(sftp_server, archive):
    sftp_server.upload("ACME", "acme.csv", DATA, mtime=london(SUMMER, 10))
    with sftp_server.client() as sftp:
        [stale] = list_inbox(sftp, INBOX)
        # The upload goes on: same size, later mtime.
        sftp_server.upload("ACME", "acme.csv", DATA.replace(b"V,R", b"W,S"), mtime=london(SUMMER, 10, 1))
        with pytest.raises(FileStillChanging):
            fetch(sftp, INBOX, stale, archive, feed="recalls", source="ACME")
        assert archive.received("recalls", "ACME", SUMMER.isoformat()) == []
        assert "acme.csv" in sftp.listdir(INBOX)


def test_receive_day_takes_the_days_settled_safe_files_and_is_rerunnable(sftp_server, archive):
    sftp_server.upload("ACME", "first.csv", DATA, mtime=london(SUMMER, 9))
    sftp_server.upload("ACME", "second.csv", DATA + b"W,S,,2026-01-01\n", mtime=london(SUMMER, 18))
    sftp_server.upload("ACME", "tomorrow.csv", DATA, mtime=utc(SUMMER, 23, 30))
    unsafe = sftp_server.local_path(f"{INBOX}/bad\nname.csv")
    unsafe.write_bytes(DATA)
    with sftp_server.client() as sftp:
        received = receive_day(sftp, archive, "ACME", SUMMER)
        assert [r.original_name for r in received] == ["first.csv", "second.csv"]
        remaining = sorted(sftp.listdir(INBOX))
        assert remaining == sorted(["bad\nname.csv", "tomorrow.csv", PROCESSED])
        assert sorted(sftp.listdir(f"{INBOX}/{PROCESSED}/{SUMMER.isoformat()}")) == sorted(
            f"{r.sha256[:12]}-{r.original_name}" for r in received
        )
        # A rerun reads the archive: same files, nothing fetched again.
        assert receive_day(sftp, archive, "ACME", SUMMER) == received
        decision = wait_decision(
            SUMMER,
            list_inbox(sftp, INBOX),
            archived_count=len(received),
            now=london(SUMMER, 12),
            settle_seconds=60,
            deadline_minutes_after_day=120,
        )
        assert (decision.done, decision.state) == (True, "READY")
        assert "already archived" in decision.reason


def test_receive_day_leaves_a_file_still_being_uploaded(sftp_server, archive):
    sftp_server.upload("ACME", "acme.csv", DATA)  # mtime: now
    today = datetime.now(LONDON).date()
    with sftp_server.client() as sftp:
        assert receive_day(sftp, archive, "ACME", today, settle_seconds=3600) == []
        assert "acme.csv" in sftp.listdir(INBOX)


# -- wait_decision -------------------------------------------------------------------------------
def decide(remote: list[RemoteFile], now: float, archived: int = 0, settle: float = 60, grace: float = 120):
    return wait_decision(
        SUMMER, remote, archived_count=archived, now=now, settle_seconds=settle, deadline_minutes_after_day=grace
    )


END_OF_DAY = london(SUMMER + timedelta(days=1), 0)
DEADLINE = END_OF_DAY + 120 * 60


def test_deadline_is_the_end_of_the_london_day_plus_grace():
    assert deadline_for(SUMMER, 0) == END_OF_DAY == utc(SUMMER, 23, 0)
    assert deadline_for(SUMMER, 120) == DEADLINE
    assert deadline_for(WINTER, 30) == utc(WINTER + timedelta(days=1), 0, 30)
    assert inbox_of("ACME") == INBOX


@pytest.mark.parametrize(
    ("remote", "now", "archived", "expected"),
    [
        # A settled file during the day: wait, another file of the day could still come.
        ([RemoteFile("a.csv", 1, london(SUMMER, 9))], london(SUMMER, 15), 0, (False, "WAITING")),
        # The day is over and the file settled.
        ([RemoteFile("a.csv", 1, london(SUMMER, 9))], END_OF_DAY + 60, 0, (True, "READY")),
        # The day is over but an upload is still going on.
        ([RemoteFile("a.csv", 1, END_OF_DAY - 10)], END_OF_DAY + 20, 0, (False, "WAITING")),
        # Nothing yet, before the deadline.
        ([], END_OF_DAY + 60, 0, (False, "WAITING")),
        # Nothing by the deadline.
        ([], DEADLINE, 0, (True, "MISSING")),
        # Only a file of the next day and a file with an unsafe name: nothing for this day.
        (
            [RemoteFile("next.csv", 1, END_OF_DAY + 1), RemoteFile("../x", 1, london(SUMMER, 9))],
            DEADLINE + 1,
            0,
            (True, "MISSING"),
        ),
        # A rerun: the archive already has the day's files, the inbox does not.
        ([], london(SUMMER, 12), 1, (True, "READY")),
        ([], DEADLINE + 3600, 2, (True, "READY")),
        # A rerun while a new file of the day is still settling after the day: wait for it.
        ([RemoteFile("b.csv", 1, END_OF_DAY - 5)], END_OF_DAY + 1, 1, (False, "WAITING")),
        # ... and at the deadline the archived files are taken.
        ([RemoteFile("b.csv", 1, DEADLINE - 5)], DEADLINE, 1, (True, "READY")),
    ],
)
def test_wait_decision(remote, now, archived, expected):
    decision = decide(remote, now, archived)
    assert (decision.done, decision.state) == expected, decision.reason


def test_still_uploading_at_the_deadline_is_missing_and_says_so():
    # A file of the day (modified at 23:59 BST) that has not settled by 02:00 with a 3-hour settle time.
    decision = decide([RemoteFile("big.csv", 1, END_OF_DAY - 60)], DEADLINE, settle=3 * 3600)
    assert (decision.done, decision.state) == (True, "MISSING")
    assert "still uploading: ['big.csv']" in decision.reason


def test_a_file_modified_after_midnight_belongs_to_the_next_day():
    decision = decide([RemoteFile("a.csv", 1, DEADLINE - 1)], DEADLINE)
    assert (decision.done, decision.state) == (True, "MISSING")
    assert (
        wait_decision(
            SUMMER + timedelta(days=1),
            [RemoteFile("a.csv", 1, DEADLINE - 1)],
            archived_count=0,
            now=DEADLINE + 24 * 3600,
            settle_seconds=60,
            deadline_minutes_after_day=120,
        ).state
        == "READY"
    )
