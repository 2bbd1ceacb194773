"""`make demo`: the whole pipeline on sample data, through Airflow, with a readable summary.

Starts the local services, prepares the Airflow home (.airflow/, SQLite), loads
airflow_settings.yaml, uploads sample files over real SFTP with the manufacturers' own keys, runs
the DAGs for each day with `airflow dags test`, prints what happened, and stops the services it
started. Each run starts from empty demo data, so running it twice gives the same summary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

from tools import airflow_home

PROJECT_DIR = airflow_home.PROJECT_DIR
STATE_DIR = PROJECT_DIR / ".local"
LONDON = ZoneInfo("Europe/London")


def _run(args: list[str], env: dict[str, str], log: Path | None = None, check: bool = True) -> int:
    if log is None:
        return subprocess.run(args, env=env, check=check).returncode
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.run(args, env=env, check=check, stdout=out, stderr=subprocess.STDOUT).returncode


def demo_days(count: int = 4) -> list[date]:
    """The last ``count`` complete days in London (their runs are due, as in production)."""
    today = datetime.now(LONDON).date()
    return [today - timedelta(days=count - i) for i in range(count)]


def reset_demo_data() -> None:
    for sub in ("warehouse", "archive", "data_docs", "gx", "demo-logs"):
        shutil.rmtree(STATE_DIR / sub, ignore_errors=True)
    for folder in (STATE_DIR / "sftp" / "recalls", STATE_DIR / "sftp" / "mot", STATE_DIR / "mail"):
        if folder.is_dir():
            for child in folder.iterdir():
                if child.is_dir() and folder.name in {"recalls", "mot"}:
                    for item in child.iterdir():
                        shutil.rmtree(item) if item.is_dir() else item.unlink()
                elif child.is_file():
                    child.unlink()


def upload(code_or_user: str, remote_path: str, data: bytes, mtime: float) -> None:
    """Upload over SFTP exactly as a manufacturer would, then set the file's time to the day."""
    import paramiko

    from tools.services.__main__ import Layout

    layout = Layout(STATE_DIR)
    services = _services()
    key = paramiko.Ed25519Key.from_private_key_file(str(layout.user_key(code_or_user)))
    transport = paramiko.Transport(("127.0.0.1", services["sftp"]["port"]))
    try:
        transport.connect(username=code_or_user, pkey=key)
        sftp = paramiko.SFTPClient.from_transport(transport)
        with sftp.open(remote_path, "wb") as handle:
            handle.write(data)
        sftp.utime(remote_path, (mtime, mtime))
        sftp.close()
    finally:
        transport.close()


def _services() -> dict:
    import json

    return json.loads((STATE_DIR / "services.json").read_text())


def at(day: date, hour: int) -> float:
    return datetime.combine(day, clock(hour), tzinfo=LONDON).timestamp()


def main() -> int:
    env = {**os.environ, **airflow_home.apply()}
    env["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "INFO"
    python = sys.executable
    logs = STATE_DIR / "demo-logs"
    print("== Starting local services (SFTP, SMTP, ClamAV)")
    _run([python, "-m", "tools.services", "up", "--state-dir", str(STATE_DIR)], env)
    started = time.monotonic()
    try:
        reset_demo_data()
        print("== Preparing Airflow home .airflow/ (SQLite) and loading airflow_settings.yaml")
        _run([python, "-m", "airflow", "db", "migrate"], env, logs / "airflow-db.log")
        airflow_home.use_wal()
        _run([python, "-m", "tools.load_settings"], env)
        days = demo_days()
        print(f"== Uploading sample files over SFTP for {days[0]} .. {days[-1]}")
        from tools.sample_data import recall_uploads

        for item in recall_uploads(days):
            upload(item.code.lower(), item.name, item.data, at(item.day, item.hour))
        upload_mot_samples(days)
        for day in days:
            for dag_id in ("recalls_daily", "mot_delta_daily"):
                if not (PROJECT_DIR / "dags" / f"{dag_id}.py").exists():
                    continue
                t0 = time.monotonic()
                code = _run(
                    [python, "-m", "airflow", "dags", "test", dag_id, day.isoformat()],
                    env,
                    logs / f"{dag_id}-{day}.log",
                    check=False,
                )
                state = _run_state(logs / f"{dag_id}-{day}.log", code)
                print(f"   {dag_id} {day}: {state} in {time.monotonic() - t0:.0f}s")
        print_summary(days)
        print(f"\nDemo finished in {time.monotonic() - started:.0f}s. Task logs: {logs}")
    finally:
        print("== Stopping local services")
        _run([python, "-m", "tools.services", "down", "--state-dir", str(STATE_DIR)], env, check=False)
    return 0


def _run_state(log: Path, exit_code: int) -> str:
    """The DAG run's final state from `airflow dags test` output (its exit code is 0 either way)."""
    import re

    states = re.findall(r"DagRun Finished: .*?state=(\w+)", log.read_text(errors="replace"))
    if not states:
        return f"did not finish (exit code {exit_code})"
    return f"DAG run {states[-1]}"


def upload_mot_samples(days: list[date]) -> None:
    try:
        from tools.sample_mot import mot_uploads
    except ImportError:
        return
    for name, data, day in mot_uploads(days):
        upload("pipeline", f"/mot/delta/{name}", data, at(day, 6))


def print_summary(days: list[date]) -> None:
    from include.warehouse import read_only

    warehouse = STATE_DIR / "warehouse" / "warehouse.duckdb"
    if not warehouse.exists():
        print("no warehouse was written")
        return
    with read_only(warehouse) as con:
        print("\n== Recall files per manufacturer and day")
        rows = con.execute(
            """
            SELECT f.business_date, f.manufacturer, f.status, coalesce(f.file_name, '-'),
                   array_to_string(f.error_codes, ' '), f.added_count, f.fixed_count, f.changed_count,
                   f.outstanding_count, f.scanner_name
            FROM recall_files f ORDER BY f.business_date, f.manufacturer, f.remote_mtime
            """
        ).fetchall()
        print(
            f"{'day':<11} {'maker':<5} {'status':<9} {'file':<30} {'added':>5} {'fixed':>5} {'chg':>4} "
            f"{'outst.':>6}  reasons / scanner"
        )
        for day, code, status, name, errors, added, fixed, changed, outstanding, scanner in rows:
            nums = [("" if v is None else str(v)) for v in (added, fixed, changed, outstanding)]
            note = errors or ("" if status != "ACCEPTED" else f"scanned by {scanner}")
            print(
                f"{day!s:<11} {code:<5} {status:<9} {name[:30]:<30} {nums[0]:>5} {nums[1]:>5} {nums[2]:>4} "
                f"{nums[3]:>6}  {note}"
            )
        held = con.execute(
            "SELECT manufacturer, business_date, sha256, hold_reason FROM recall_files WHERE status = 'HELD'"
        ).fetchall()
        for code, day, sha, reason in held:
            print(
                f"\nHELD {code} {day}: {reason}\n  release with: airflow dags trigger recalls_release_held "
                f'--conf \'{{"sha256": "{sha}"}}\''
            )
        print("\n== Outstanding recalls now, per manufacturer")
        for code, count in con.execute(
            "SELECT manufacturer, count(*) FROM outstanding_recalls GROUP BY 1 ORDER BY 1"
        ).fetchall():
            print(f"   {code}: {count}")
        as_of = days[1]
        print(f"\n== As-of query: outstanding_recalls_as_of('{as_of}') per manufacturer")
        for code, count in con.execute(
            "SELECT manufacturer, count(*) FROM outstanding_recalls_as_of(?) GROUP BY 1 ORDER BY 1", [as_of]
        ).fetchall():
            print(f"   {code}: {count}")
        print("\n== Emails")
        for recipients, subject, sent in con.execute(
            "SELECT array_to_string(recipients, ', '), subject, sent_at IS NOT NULL FROM outbox ORDER BY created_at"
        ).fetchall():
            print(f"   {'sent  ' if sent else 'QUEUED'} to {recipients}: {subject}")
        print_mot_summary(con)
    mails = sorted((STATE_DIR / "mail").glob("*.eml"))
    print(f"\n{len(mails)} message(s) in the local mailbox {STATE_DIR / 'mail'}")
    docs = STATE_DIR / "data_docs" / "index.html"
    if docs.exists():
        print(f"Great Expectations Data Docs: {docs}")


def print_mot_summary(con) -> None:
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if "mot_delta_files" not in tables:
        return
    print("\n== MOT delta files")
    print("   day         status   file                                 created updated deleted unchanged quarantined")
    for row in con.execute(
        "SELECT business_date, status, file_name, created, updated, deleted, unchanged, quarantined"
        " FROM mot_delta_files ORDER BY business_date"
    ).fetchall():
        day, status, name, *counts = ("" if v is None else str(v) for v in row)
        print(f"   {day:<11} {status:<8} {name:<36} " + " ".join(f"{c:>7}" for c in counts))
    try:
        from tools.sample_mot import FEATURED_REGISTRATION
    except ImportError:
        return
    print(f"\n== Version history of vehicle {FEATURED_REGISTRATION} (CREATED, colour change, DELETED, created again)")
    print("   valid_from  valid_to    current deleted make model colour")
    for row in con.execute(
        "SELECT valid_from, valid_to, is_current, is_deleted, make, model, primary_colour FROM vehicles"
        " WHERE registration = ? ORDER BY valid_from",
        [FEATURED_REGISTRATION],
    ).fetchall():
        print("   " + "  ".join("" if v is None else str(v) for v in row))


if __name__ == "__main__":
    sys.exit(main())
