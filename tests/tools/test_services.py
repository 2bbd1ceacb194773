"""The local services work with the real clients the pipeline uses.

SFTP through paramiko (what Airflow's SFTPHook uses), SMTP through smtplib (SmtpHook),
clamd through a minimal INSTREAM client written here, and the ``up/status/down`` CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import smtplib
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

import paramiko
import pytest

from tools.services.clamd import EICAR, RunningScanner, start_dev_scanner
from tools.services.net import read_banner
from tools.services.sftp import ensure_keypair, public_key_path
from tools.services.smtp import SmtpServer, read_messages, read_stored

if TYPE_CHECKING:  # the fixtures come from tests/conftest.py's pytest_plugins
    from tests.fixtures.services import SftpService

REPO_ROOT = Path(__file__).resolve().parents[2]
CLEAN_CSV = b"recall_ref,vin,defect\r\nR/2024/001,WDB1234561A000001,Brake hose may chafe\r\n"


# -- SFTP -----------------------------------------------------------------------------------
def test_keypair_is_openssh_ed25519_that_paramiko_loads(tmp_path: Path) -> None:
    key = ensure_keypair(tmp_path / "keys" / "someone_ed25519")
    assert key.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    loaded = paramiko.Ed25519Key.from_private_key_file(str(key))
    assert public_key_path(key).read_text().split()[:2] == [
        "ssh-ed25519",
        loaded.get_base64(),
    ]

    before = key.read_bytes()
    public_key_path(key).unlink()
    ensure_keypair(key)  # idempotent: keeps the private key, re-derives the public one
    assert key.read_bytes() == before
    assert public_key_path(key).read_text().split()[1] == loaded.get_base64()


def test_pipeline_sees_layout_and_reads_renames_and_gets_mtime(
    sftp_service: SftpService,
) -> None:
    sftp_service.clear()
    mtime = 1_717_171_717.75
    path = sftp_service.upload("ACME", "recalls_20240601.csv", CLEAN_CSV, mtime=mtime)
    assert path == "/recalls/ACME/recalls_20240601.csv"

    with sftp_service.client() as sftp:
        assert sorted(sftp.listdir("/")) == ["mot", "recalls"]
        assert sorted(sftp.listdir("/recalls")) == ["ACME", "BOLT", "CRUX"]
        assert sftp.listdir("/mot/delta") == []
        [entry] = sftp.listdir_attr("/recalls/ACME")
        assert entry.filename == "recalls_20240601.csv"
        assert entry.st_size == len(CLEAN_CSV)
        # SFTP v3 times are whole seconds: setstat truncates the fraction.
        assert entry.st_mtime == int(mtime)
        assert sftp.stat(path).st_mtime == int(mtime)
        with sftp.open(path, "rb") as fh:
            assert fh.read() == CLEAN_CSV

        sftp.mkdir("/recalls/ACME/.processing")
        moved = "/recalls/ACME/.processing/recalls_20240601.csv"
        sftp.rename(path, moved)
        assert sftp.listdir("/recalls/ACME") == [".processing"]
        assert sftp.stat(moved).st_mtime == int(mtime)  # rename keeps the mtime

        # Plain SFTP rename refuses to overwrite; posix-rename (OpenSSH extension) replaces.
        sftp_service.upload("ACME", "recalls_20240601.csv", b"second\n")
        with pytest.raises(OSError):
            sftp.rename(path, moved)
        sftp.posix_rename(path, moved)
        with sftp.open(moved, "rb") as fh:
            assert fh.read() == b"second\n"

        sftp.remove(moved)
        sftp.rmdir("/recalls/ACME/.processing")
        sftp.utime("/mot/delta", (1_700_000_000, 1_700_000_000))
        assert sftp.stat("/mot/delta").st_mtime == 1_700_000_000
    assert sftp_service.local_path("/recalls/ACME").is_dir()
    assert list(sftp_service.local_path("/recalls/ACME").iterdir()) == []


def test_mot_delta_upload_and_file_mtime_on_disk(sftp_service: SftpService) -> None:
    sftp_service.clear()
    path = sftp_service.upload_mot_delta("mot_delta_20240601.csv", b"a\n", mtime=1_600_000_000)
    assert sftp_service.local_path(path).read_bytes() == b"a\n"
    assert sftp_service.local_path(path).stat().st_mtime == 1_600_000_000


@pytest.mark.reliability(
    "Isolation and secrets",
    "manufacturer A's SFTP login tries ../, absolute paths and symlinks to reach B's inbox or the MOT folder",
    "A sees only its own inbox: every read, write and symlink outside fails",
)
def test_manufacturer_is_chrooted_to_its_recalls_folder(
    sftp_service: SftpService,
) -> None:
    sftp_service.clear()
    sftp_service.upload("BOLT", "bolt_secret.csv", b"bolt only\n")
    sftp_service.local_path("/mot/delta/mot.csv").write_bytes(b"mot\n")

    with sftp_service.client("acme") as sftp:
        assert sftp.listdir("/") == []
        assert sftp.normalize("/../../..") == "/"
        assert sftp.listdir("/..") == []
        for outside in (
            "/../BOLT/bolt_secret.csv",
            "../BOLT/bolt_secret.csv",
            "/recalls/BOLT/bolt_secret.csv",
            "/mot/delta/mot.csv",
            "/etc/passwd",
        ):
            with pytest.raises(OSError):
                sftp.open(outside, "rb").read()
        for outside_dir in ("/../BOLT", "/../../mot/delta", "/recalls"):
            with pytest.raises(OSError):
                sftp.open(f"{outside_dir}/evil.csv", "wb").write(b"x")
        with pytest.raises(OSError):
            sftp.symlink("/etc/passwd", "/passwd")

        with sftp.open("/own.csv", "wb") as fh:
            fh.write(b"mine\n")
        assert sftp.listdir("/") == ["own.csv"]

    root = sftp_service.root
    assert (root / "recalls/ACME/own.csv").read_bytes() == b"mine\n"
    assert sorted(p.name for p in (root / "recalls/BOLT").iterdir()) == ["bolt_secret.csv"]
    assert sorted(p.name for p in (root / "mot/delta").iterdir()) == ["mot.csv"]
    assert not list(root.rglob("evil.csv"))
    assert not (root / "recalls/ACME/passwd").exists()


@pytest.mark.reliability(
    "Isolation and secrets",
    "SFTP password login, another manufacturer's key, a manufacturer's key for the pipeline account",
    "refused: public key only, each key for its own account",
)
def test_only_public_key_auth_with_the_right_key(sftp_service: SftpService) -> None:
    transport = paramiko.Transport((sftp_service.host, sftp_service.port))
    try:
        transport.start_client(timeout=10)
        with pytest.raises(paramiko.BadAuthenticationType) as err:
            transport.auth_password("acme", "acme")
        assert err.value.allowed_types == ["publickey"]
    finally:
        transport.close()

    wrong = [
        ("acme", sftp_service.key_for("bolt")),  # another manufacturer's key
        (
            "pipeline",
            sftp_service.key_for("acme"),
        ),  # a manufacturer cannot become the pipeline
        ("nobody", sftp_service.pipeline_key),  # unknown user
    ]
    for user, key in wrong:
        with (
            pytest.raises(paramiko.AuthenticationException),
            sftp_service.client(user, key),
        ):
            pass


@pytest.mark.reliability(
    "Isolation and secrets",
    "shell or exec over the SFTP server's SSH channel",
    "refused: SFTP only",
)
def test_no_shell_or_exec(sftp_service: SftpService) -> None:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        sftp_service.host,
        sftp_service.port,
        username="pipeline",
        key_filename=str(sftp_service.pipeline_key),
        look_for_keys=False,
        allow_agent=False,
    )
    try:
        with pytest.raises(paramiko.SSHException):
            client.exec_command("id", timeout=5)
    finally:
        client.close()


# -- SMTP -----------------------------------------------------------------------------------
def _message(subject: str, to: str = "recalls-team@acme.example", cc: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = "vehicle-recalls-pipeline@dvsa.localhost"
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg.set_content("Line one\n.a line starting with a dot\nünïcode\n")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def test_smtp_stores_raw_message_and_envelope(smtp_service: SmtpServer) -> None:
    smtp_service.clear()
    raw = _message("Recall file rejected", cc="safety@boltvans.example")
    rcpts = [
        "recalls-team@acme.example",
        "safety@boltvans.example",
        "data-ops@dvsa.localhost",
    ]
    with smtplib.SMTP(smtp_service.host, smtp_service.port, timeout=10) as client:
        refused = client.sendmail("vehicle-recalls-pipeline@dvsa.localhost", rcpts, raw)
    assert refused == {}

    [stored] = read_stored(smtp_service.folder)
    assert stored.path.read_bytes() == raw  # byte for byte (dot-stuffing undone)
    assert stored.mail_from == "vehicle-recalls-pipeline@dvsa.localhost"
    assert stored.rcpt_tos == rcpts  # the Bcc-like recipient exists only in the envelope
    assert "data-ops" not in str(stored.message)
    [msg] = smtp_service.messages()
    assert msg["Subject"] == "Recall file rejected"
    assert ".a line starting with a dot" in msg.get_content()
    assert "ünïcode" in msg.get_content()
    sidecar = json.loads(stored.path.with_suffix(".json").read_text())
    assert set(sidecar) >= {"mail_from", "rcpt_tos", "received_at"}


def test_smtp_files_sort_by_receive_time(smtp_service: SmtpServer) -> None:
    smtp_service.clear()
    with smtplib.SMTP(smtp_service.host, smtp_service.port, timeout=10) as client:
        for i in range(5):
            client.sendmail("a@dvsa.localhost", ["b@example.com"], _message(f"message {i}"))
    assert [m["Subject"] for m in read_messages(smtp_service.folder)] == [f"message {i}" for i in range(5)]
    names = [p.name for p in sorted(smtp_service.folder.glob("*.eml"))]
    assert len(set(names)) == 5


def test_smtp_down_then_up_on_the_same_port(smtp_service: SmtpServer) -> None:
    smtp_service.clear()
    port = smtp_service.port
    with smtp_service.down(), pytest.raises(OSError):
        smtplib.SMTP(smtp_service.host, port, timeout=5)
    assert smtp_service.port == port
    with smtplib.SMTP(smtp_service.host, port, timeout=10) as client:
        client.sendmail("a@dvsa.localhost", ["b@example.com"], _message("after the outage"))
    assert [m["Subject"] for m in smtp_service.messages()] == ["after the outage"]

    smtp_service.stop()
    smtp_service.stop()  # idempotent
    smtp_service.start()
    assert read_banner(smtp_service.host, port).startswith(b"220 ")


# -- clamd ----------------------------------------------------------------------------------
def _clamd(
    host: str,
    port: int,
    command: bytes,
    payload: bytes | None = None,
    chunk: int = 8192,
) -> str:
    """Minimal clamd client: z-command, INSTREAM chunks as 4-byte big-endian length + data."""
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(b"z" + command + b"\0")
        if payload is not None:
            for start in range(0, len(payload), chunk):
                part = payload[start : start + chunk]
                sock.sendall(struct.pack(">I", len(part)) + part)
            sock.sendall(struct.pack(">I", 0))
        reply = b""
        while not reply.endswith(b"\0"):
            data = sock.recv(4096)
            if not data:
                break
            reply += data
    return reply.rstrip(b"\0").decode()


def _infected_csv() -> bytes:
    rows = [b"recall_ref,vin,defect"] + [b"R/2024/%03d,WDB12345%08d,Brake hose may chafe" % (i, i) for i in range(2000)]
    rows.insert(1000, b"R/2024/999,WDB1234500000999," + EICAR)
    return b"\r\n".join(rows) + b"\r\n"


def test_real_clamd_answers_ping_and_version(clamd_service: RunningScanner) -> None:
    assert clamd_service.kind == "clamd"
    assert _clamd(clamd_service.host, clamd_service.port, b"PING") == "PONG"
    assert _clamd(clamd_service.host, clamd_service.port, b"VERSION").startswith("ClamAV ")


def test_real_clamd_scans_clean_and_eicar(clamd_service: RunningScanner) -> None:
    host, port = clamd_service.host, clamd_service.port
    assert _clamd(host, port, b"INSTREAM", CLEAN_CSV) == "stream: OK"
    assert _clamd(host, port, b"INSTREAM", b"") == "stream: OK"

    bare = _clamd(host, port, b"INSTREAM", EICAR)
    assert bare.startswith("stream: Eicar-Test-Signature") and bare.endswith(" FOUND")

    infected = _infected_csv()
    # 8 KiB chunks put EICAR across a chunk boundary somewhere; the .ndb must still match.
    embedded = _clamd(host, port, b"INSTREAM", infected)
    assert embedded.startswith("stream: Eicar-Test-Signature") and embedded.endswith(" FOUND")
    offset = infected.index(EICAR)
    split = _clamd(host, port, b"INSTREAM", infected, chunk=offset + 10)
    assert split.endswith(" FOUND")


def test_dev_scanner_speaks_the_same_protocol() -> None:
    scanner = start_dev_scanner()
    try:
        host, port = scanner.host, scanner.port
        assert scanner.kind == "dev-eicar-scanner"
        assert _clamd(host, port, b"PING") == "PONG"
        assert "development only" in _clamd(host, port, b"VERSION")
        assert _clamd(host, port, b"INSTREAM", CLEAN_CSV) == "stream: OK"
        assert _clamd(host, port, b"INSTREAM", EICAR) == "stream: Eicar-Test-Signature FOUND"
        infected = _infected_csv()
        split = _clamd(host, port, b"INSTREAM", infected, chunk=infected.index(EICAR) + 10)
        assert split == "stream: Eicar-Test-Signature FOUND"
    finally:
        scanner.stop()


# -- CLI --------------------------------------------------------------------------------------
def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.run(
        [sys.executable, "-m", "tools.services", *args],
        cwd=REPO_ROOT,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat_file = Path(f"/proc/{pid}/stat")
    try:
        return stat_file.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def test_cli_up_status_down(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ports = ["--sftp-port", "0", "--smtp-port", "0", "--clamd-port", "0"]
    pids: list[int] = []
    try:
        up = _cli("up", "--state-dir", str(state), *ports, "--manufacturers", "ACME,BOLT")
        assert up.returncode == 0, up.stderr + up.stdout
        services = json.loads((state / "services.json").read_text())
        pids = [int((state / "pids" / f"{n}.pid").read_text()) for n in ("sftp", "smtp", "clamd")]
        assert all(_alive(pid) for pid in pids)
        assert services["clamd"]["kind"] == "clamd"
        assert services["clamd"]["version"].startswith("ClamAV ")
        for sub in (
            "sftp/recalls/ACME",
            "sftp/recalls/BOLT",
            "sftp/mot/delta",
            "mail",
            "clamd",
        ):
            assert (state / sub).is_dir(), sub
        for key in (
            "pipeline_ed25519",
            "acme_ed25519",
            "bolt_ed25519",
            "sftp_host_ed25519",
        ):
            assert (state / "keys" / key).is_file() and (state / "keys" / f"{key}.pub").is_file()

        host = services["host"]
        assert _clamd(host, services["clamd"]["port"], b"PING") == "PONG"
        with smtplib.SMTP(host, services["smtp"]["port"], timeout=10) as client:
            client.sendmail("a@dvsa.localhost", ["b@example.com"], _message("via the cli server"))
        assert [m["Subject"] for m in read_messages(state / "mail")] == ["via the cli server"]
        _sftp_listdir(
            host,
            services["sftp"]["port"],
            "pipeline",
            state / "keys/pipeline_ed25519",
            "/recalls",
            ["ACME", "BOLT"],
        )

        # Twice: nothing new starts; a new manufacturer is served without a restart.
        again = _cli("up", "--state-dir", str(state), *ports, "--manufacturers", "ACME,BOLT,CRUX")
        assert again.returncode == 0, again.stderr + again.stdout
        assert again.stdout.count("already running") == 3
        assert [int((state / "pids" / f"{n}.pid").read_text()) for n in ("sftp", "smtp", "clamd")] == pids
        _sftp_listdir(host, services["sftp"]["port"], "crux", state / "keys/crux_ed25519", "/", [])

        status = _cli("status", "--state-dir", str(state), "--json")
        assert status.returncode == 0, status.stderr
        assert all(json.loads(status.stdout)[n]["running"] for n in ("sftp", "smtp", "clamd"))
    finally:
        down = _cli("down", "--state-dir", str(state))
        for pid in pids:  # never leak a daemon, even if `down` is broken
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert down.returncode == 0, down.stderr
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids)
    assert not list((state / "pids").iterdir())
    assert _cli("status", "--state-dir", str(state)).returncode == 1
    assert _cli("down", "--state-dir", str(state)).returncode == 0  # idempotent


def _sftp_listdir(host: str, port: int, user: str, key: Path, path: str, expected: list[str]) -> None:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        host,
        port,
        username=user,
        key_filename=str(key),
        look_for_keys=False,
        allow_agent=False,
    )
    try:
        assert sorted(client.open_sftp().listdir(path)) == expected
    finally:
        client.close()


def test_bootstrap_is_a_no_op_when_clamd_is_installed(
    clamd_service: RunningScanner,
) -> None:
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "tools/bootstrap_system.sh"), "--require-clamd"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "clamd present" in result.stderr
    assert "apt-get" not in result.stderr


@pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/usr/bin/setpriv").exists(),
    reason="needs root to run the script as an unprivileged user",
)
def test_bootstrap_without_privileges_warns_or_fails_clearly() -> None:
    """A normal user without sudo cannot install clamd: warning for the demo, error for tests."""
    # the checkout may sit in a directory only root can enter (a private temp dir): run a copy
    # of the (self-contained) script from a folder the unprivileged user can read
    readable = Path(tempfile.mkdtemp(prefix="bootstrap-"))
    try:
        readable.chmod(0o755)
        script = readable / "bootstrap_system.sh"
        shutil.copyfile(REPO_ROOT / "tools/bootstrap_system.sh", script)
        script.chmod(0o644)
        base = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "bash", str(script)]
        env = dict(os.environ, CLAMD_BIN="/nonexistent/clamd")
        run = {"env": env, "capture_output": True, "text": True, "check": False, "cwd": "/"}
        demo = subprocess.run(base, **run)
        tests = subprocess.run([*base, "--require-clamd"], **run)
    finally:
        shutil.rmtree(readable, ignore_errors=True)
    assert demo.returncode == 0, demo.stderr
    assert "WARNING" in demo.stderr and "development EICAR-only scanner" in demo.stderr
    assert tests.returncode == 1
    assert "ERROR" in tests.stderr and "cannot run without it" in tests.stderr
