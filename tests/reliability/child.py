"""The process the fault tests kill: runs one pipeline step, pausing at a named point.

Started by ``tests.reliability.faults.start_child`` (forkserver). At the pause point the child writes
``<marker>`` and sleeps until the test SIGKILLs it, so the kill lands exactly there (no timing
guesses). The hooks wrap the DuckDB connection and a few functions in this process only; the
code under test is the unmodified ``include`` package.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any


def pause(marker: str) -> None:
    """Tell the test we are at the kill point, then wait for SIGKILL."""
    Path(marker).write_text("reached")
    while True:
        time.sleep(60)


class PausingConnection:
    """A DuckDB connection that pauses at one point of a transaction.

    ``point`` is ``mid:<text>`` (after the first statement inside the transaction containing
    ``text``), ``before_commit`` (COMMIT about to run) or ``after_commit`` (COMMIT returned).
    """

    def __init__(self, con: Any, point: str, marker: str) -> None:
        self._con, self._point, self._marker = con, point, marker
        self._in_transaction = False

    def execute(self, query: str, *args: Any, **kwargs: Any) -> Any:
        statement = query.strip().upper()
        if statement.startswith("BEGIN"):
            self._in_transaction = True
        if statement == "COMMIT" and self._point == "before_commit":
            pause(self._marker)
        result = self._con.execute(query, *args, **kwargs)
        if statement == "COMMIT" and self._point == "after_commit":
            pause(self._marker)
        if self._in_transaction and self._point.startswith("mid:") and self._point[4:] in query:
            pause(self._marker)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def recall_apply(job: dict[str, Any], con: Any) -> None:
    from include.recalls.intake import outcome_from_json, record_day
    from include.recalls.notify import Manufacturer
    from include.recalls.state import MassFixGuard

    record_day(
        con,
        Manufacturer(**job["manufacturer"]),
        date.fromisoformat(job["day"]),
        [outcome_from_json(o) for o in job["outcomes"]],
        guard=MassFixGuard(),
        ops_email=job["ops_email"],
    )


def mot_apply(job: dict[str, Any], con: Any) -> None:
    from include.mot import apply_delta
    from include.mot.stage import StagedDelta

    apply_delta(con, StagedDelta.from_dict(job["staged"]), sha256=job["sha256"], file_name=job["file_name"])


@contextmanager
def sftp_session(job: dict[str, Any]) -> Iterator[Any]:
    """A paramiko SFTP session as the pipeline account (what Airflow's SFTPHook hands out)."""
    import paramiko

    ssh = paramiko.SSHClient()
    ssh.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    ssh.connect(
        job["host"], job["port"], username=job["user"], key_filename=job["key"], look_for_keys=False, allow_agent=False
    )
    with ssh, ssh.open_sftp() as sftp:
        yield sftp


def recall_receive(job: dict[str, Any]) -> None:
    """``receive_day`` over real SFTP, paused after the archive copy, before the remote move."""
    from include.landing.archive import Archive
    from include.recalls import pickup

    pickup.move_to_processed = lambda sftp, inbox, received: pause(job["marker"])
    with sftp_session(job) as sftp:
        pickup.receive_day(sftp, Archive(job["archive"]), job["code"], date.fromisoformat(job["day"]))


def recall_day(job: dict[str, Any]) -> None:
    """One whole run of a recall day at package level, as the DAG's tasks do it in turn:
    receive (SFTP) -> scan, validate, stage (clamd) -> record and apply -> send queued mail."""
    from include.landing.archive import Archive
    from include.mail.outbox import SmtpSettings, deliver_pending
    from include.recalls.intake import check_file, record_day
    from include.recalls.notify import Manufacturer
    from include.recalls.pickup import receive_day
    from include.recalls.state import MassFixGuard
    from include.warehouse import connect

    while not Path(job["go"]).exists():  # both runs start together
        time.sleep(0.001)
    archive = Archive(job["archive"])
    day = date.fromisoformat(job["day"])
    manufacturer = Manufacturer(**job["manufacturer"])
    with sftp_session(job) as sftp:
        received = receive_day(sftp, archive, manufacturer.code, day)
    outcomes = [
        check_file(archive, r, first_of_day=i == 0, clamd_host=job["clamd_host"], clamd_port=job["clamd_port"])
        for i, r in enumerate(received)
    ]
    with connect(job["warehouse"]) as con:
        record_day(con, manufacturer, day, outcomes, guard=MassFixGuard(), ops_email=job["ops_email"])
    smtp = SmtpSettings(host=job["smtp_host"], port=job["smtp_port"], from_email=job["sender"], timeout=10)
    with connect(job["warehouse"]) as con:
        deliver_pending(con, smtp, f"recall:{manufacturer.code}:")


def main(job_file: str) -> None:
    job = json.loads(Path(job_file).read_text())
    try:
        run(job)
    except BaseException:
        import traceback

        Path(job["marker"] + ".error").write_text(traceback.format_exc())
        raise


def run(job: dict[str, Any]) -> None:
    from include.warehouse import connect

    if job["kind"] == "recall_day":
        recall_day(job)
        Path(job["marker"] + ".done").write_text("done")
        return
    if job["kind"] == "recall_receive":
        recall_receive(job)
        Path(job["marker"] + ".done").write_text("done")
        return
    if job["kind"] == "hold_warehouse":
        # Another writer (an operator's shell, say): holds the file open read-write until told.
        with connect(job["warehouse"]):
            Path(job["marker"]).write_text("holding")
            while not Path(job["release"]).exists():
                time.sleep(0.01)
        Path(job["marker"] + ".done").write_text("done")
        return
    with connect(job["warehouse"]) as real:
        con = PausingConnection(real, job["point"], job["marker"]) if job.get("point") else real
        {"recall_apply": recall_apply, "mot_apply": mot_apply}[job["kind"]](job, con)
    Path(job["marker"] + ".done").write_text("done")


# Imported once by the forkserver (tests/reliability/faults.py), so forked children start warm.
import include.mot  # noqa: E402
import include.recalls.intake  # noqa: E402, F401

if __name__ == "__main__":
    main(sys.argv[1])
