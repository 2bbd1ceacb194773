"""``python -m tools.services``: start, inspect and stop the local services of the demo.

    up      --state-dir DIR [--sftp-port 8022 --smtp-port 8025 --clamd-port 8310]
            [--manufacturers ACME,BOLT,CRUX] [--scanner auto|clamd|dev]
    status  --state-dir DIR [--json]
    down    --state-dir DIR

``up`` starts each service as its own detached process (SFTP and SMTP through the
``run-*`` sub-commands below, clamd itself), records PIDs in ``DIR/pids/<name>.pid`` and
everything a client needs in ``DIR/services.json``, waits until each one answers (SSH
banner, SMTP 220, clamd PONG) and exits. Services already running are left alone, so
``up`` twice starts nothing twice. Port 0 means "pick a free port".

Layout of DIR (default ``<repo>/.local``)::

    sftp/recalls/<CODE>/  sftp/mot/delta/     the SFTP root
    keys/pipeline_ed25519 keys/<code>_ed25519 keys/sftp_host_ed25519 (+ .pub)
    mail/*.eml (+ .json envelopes)           clamd/ (config, EICAR db, log)
    pids/<name>.pid   logs/<name>.log   sftp_accounts.json   services.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tools.services import clamd as clamd_mod
from tools.services.net import free_port, wait_for_banner

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = REPO_ROOT / ".local"
DEFAULT_MANUFACTURERS = "ACME,BOLT,CRUX"
SERVICES = ("sftp", "smtp", "clamd")
PIPELINE_USER = "pipeline"


# -- layout -------------------------------------------------------------------------------
class Layout:
    """Paths under the state dir, in one place so the CLI and the run-* commands agree."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.sftp_root = self.state_dir / "sftp"
        self.keys = self.state_dir / "keys"
        self.mail = self.state_dir / "mail"
        self.clamd = self.state_dir / "clamd"
        self.pids = self.state_dir / "pids"
        self.logs = self.state_dir / "logs"
        self.accounts_file = self.state_dir / "sftp_accounts.json"
        self.services_file = self.state_dir / "services.json"
        self.host_key = self.keys / "sftp_host_ed25519"

    def user_key(self, user: str) -> Path:
        return self.keys / f"{user}_ed25519"

    def pid_file(self, name: str) -> Path:
        return self.pids / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"


def prepare(layout: Layout, manufacturers: list[str]) -> dict[str, dict[str, str]]:
    """Create folders, keys and the SFTP accounts file; returns the accounts for services.json."""
    from tools.services.sftp import (
        SftpAccount,
        ensure_keypair,
        public_key_path,
        write_accounts_file,
    )

    for folder in (
        layout.sftp_root / "mot" / "delta",
        layout.sftp_root / "mot" / "bulk",
        layout.keys,
        layout.mail,
        layout.clamd,
        layout.pids,
        layout.logs,
    ):
        folder.mkdir(parents=True, exist_ok=True)
    ensure_keypair(layout.host_key, comment="sftp-host@recalls-local")
    accounts: dict[str, SftpAccount] = {}
    users = [(PIPELINE_USER, "")] + [(code.lower(), f"recalls/{code}") for code in manufacturers]
    for user, chroot in users:
        key = ensure_keypair(layout.user_key(user), comment=f"{user}@recalls-local")
        (layout.sftp_root / chroot).mkdir(parents=True, exist_ok=True)
        accounts[user] = SftpAccount(public_key_path(key), chroot)
    # Keep accounts of manufacturers added by an earlier `up` (their folders still exist).
    if layout.accounts_file.exists():
        from tools.services.sftp import read_accounts_file

        for user, acc in read_accounts_file(layout.accounts_file).items():
            accounts.setdefault(user, acc)
    write_accounts_file(layout.accounts_file, accounts)
    return {
        user: {
            "private_key": str(layout.user_key(user)),
            "public_key": str(acc.authorized_key),
            "chroot": "/" + acc.chroot if acc.chroot else "/",
        }
        for user, acc in sorted(accounts.items())
    }


# -- process bookkeeping ------------------------------------------------------------------
def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def pid_alive(pid: int, marker: str | None = None) -> bool:
    """True if ``pid`` runs and is ours: not a zombie and (on Linux) its command line has ``marker``.

    The marker (the state dir) guards against a recycled PID after a reboot.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            return False
        if state in ("Z", "X"):
            return False
        if marker is not None and marker not in cmdline:
            return False
    return True


def running_pid(layout: Layout, name: str) -> int | None:
    pid = read_pid(layout.pid_file(name))
    if pid is not None and pid_alive(pid, str(layout.state_dir)):
        return pid
    return None


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def spawn(layout: Layout, name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
    """Start ``cmd`` detached (own session, output to logs/<name>.log) and record its PID."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    with open(layout.log_file(name), "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    layout.pid_file(name).write_text(f"{proc.pid}\n")
    return proc


def log_tail(path: Path, lines: int = 15) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def terminate(pid: int, marker: str, timeout: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL; only if the PID is still one of ours."""
    if not pid_alive(pid, marker):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid, marker):
            return
        time.sleep(0.1)
    if pid_alive(pid, marker):
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


# -- readiness ----------------------------------------------------------------------------
def wait_ready(
    name: str,
    host: str,
    port: int,
    timeout: float,
    proc: subprocess.Popen[bytes] | None,
    log: Path,
) -> str:
    """Wait until the service answers; returns what it said (banner or version)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{name} exited with code {proc.returncode} while starting; {log}:\n{log_tail(log)}")
        try:
            if name == "sftp":
                return wait_for_banner(host, port, b"SSH-2.0-", timeout=1.0).decode()
            if name == "smtp":
                return wait_for_banner(host, port, b"220", timeout=1.0).decode()
            if clamd_mod.ping(host, port):
                return clamd_mod.command(host, port, "VERSION")
        except (OSError, TimeoutError) as exc:
            last_error = exc
        time.sleep(0.2)
    raise SystemExit(f"{name} not ready on {host}:{port} after {timeout:.0f}s ({last_error}); {log}:\n{log_tail(log)}")


# -- commands -----------------------------------------------------------------------------
def load_services(layout: Layout) -> dict[str, Any]:
    try:
        return json.loads(layout.services_file.read_text())
    except (OSError, ValueError):
        return {}


def cmd_up(args: argparse.Namespace) -> int:
    layout = Layout(args.state_dir)
    host: str = args.host
    manufacturers = [m.strip().upper() for m in args.manufacturers.split(",") if m.strip()]
    accounts = prepare(layout, manufacturers)
    previous = load_services(layout)
    marker = str(layout.state_dir)

    if args.scanner == "clamd" and not clamd_mod.clamd_available():
        raise SystemExit(f"{clamd_mod.CLAMD_BIN} is not installed: run tools/bootstrap_system.sh")
    use_clamd = args.scanner == "clamd" or (args.scanner == "auto" and clamd_mod.clamd_available())

    requested = {
        "sftp": args.sftp_port,
        "smtp": args.smtp_port,
        "clamd": args.clamd_port,
    }
    info: dict[str, dict[str, Any]] = {}
    started: list[str] = []
    procs: dict[str, subprocess.Popen[bytes] | None] = {}
    try:
        for name in SERVICES:
            pid = running_pid(layout, name)
            if pid is not None:
                port = int(previous.get(name, {}).get("port") or requested[name])
                info[name] = dict(previous.get(name, {}), port=port, pid=pid)
                procs[name] = None
                print(f"{name}: already running (pid {pid}, port {port})")
                continue
            port = requested[name] or free_port(host)
            if port_in_use(host, port):
                raise SystemExit(f"{name}: port {host}:{port} is already in use by another process")
            layout.pid_file(name).unlink(missing_ok=True)
            log = layout.log_file(name)
            entry: dict[str, Any] = {"port": port, "log": str(log)}
            if name == "sftp":
                cmd = [
                    sys.executable,
                    "-m",
                    "tools.services",
                    "run-sftp",
                    "--state-dir",
                    marker,
                    "--host",
                    host,
                    "--port",
                    str(port),
                ]
                entry.update(
                    root=str(layout.sftp_root),
                    host_key=str(layout.host_key),
                    login=PIPELINE_USER,
                    key_file=accounts[PIPELINE_USER]["private_key"],
                )
            elif name == "smtp":
                cmd = [
                    sys.executable,
                    "-m",
                    "tools.services",
                    "run-smtp",
                    "--state-dir",
                    marker,
                    "--host",
                    host,
                    "--port",
                    str(port),
                ]
                entry.update(folder=str(layout.mail))
            elif use_clamd:
                config = clamd_mod.write_clamd_config(layout.clamd, port, host)
                cmd = clamd_mod.clamd_command(config)
                entry.update(
                    kind="clamd",
                    config=str(config),
                    clamd_log=str(layout.clamd / "clamd.log"),
                )
            else:
                why = "requested" if args.scanner == "dev" else f"{clamd_mod.CLAMD_BIN} is not installed"
                print(
                    f"WARNING: {why}: starting {clamd_mod.DEV_SCANNER_VERSION}",
                    file=sys.stderr,
                )
                cmd = [
                    sys.executable,
                    "-m",
                    "tools.services",
                    "run-dev-scanner",
                    "--state-dir",
                    marker,
                    "--host",
                    host,
                    "--port",
                    str(port),
                ]
                entry.update(kind=clamd_mod.DEV_SCANNER_KIND)
            proc = spawn(layout, name, cmd)
            started.append(name)
            procs[name] = proc
            info[name] = dict(entry, pid=proc.pid)
        for name in SERVICES:
            answer = wait_ready(
                name,
                host,
                int(info[name]["port"]),
                args.timeout,
                procs[name],
                layout.log_file(name),
            )
            if name == "clamd":
                info[name]["version"] = answer
                info[name]["kind"] = (
                    clamd_mod.DEV_SCANNER_KIND if answer.startswith(clamd_mod.DEV_SCANNER_KIND) else "clamd"
                )
    except BaseException:
        # Leave nothing half-started behind: stop what this call started.
        for name in started:
            pid = read_pid(layout.pid_file(name))
            if pid is not None:
                terminate(pid, marker)
            layout.pid_file(name).unlink(missing_ok=True)
        raise

    services = {
        "state_dir": marker,
        "host": host,
        "manufacturers": sorted(set(manufacturers) | set(previous.get("manufacturers", []))),
        "accounts": accounts,
        **info,
    }
    tmp = layout.services_file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(services, indent=2) + "\n")
    os.replace(tmp, layout.services_file)
    for name in SERVICES:
        extra = f" [{info[name].get('kind')}]" if name == "clamd" else ""
        print(f"{name}: {host}:{info[name]['port']} pid {info[name]['pid']}{extra}")
    if info["clamd"].get("kind") != "clamd":
        print(
            "WARNING: the scanner is the development EICAR-only scanner, not ClamAV",
            file=sys.stderr,
        )
    print(f"state: {layout.services_file}")
    return 0


def service_status(layout: Layout) -> dict[str, Any]:
    services = load_services(layout)
    result: dict[str, Any] = {"state_dir": str(layout.state_dir)}
    for name in SERVICES:
        pid = running_pid(layout, name)
        entry = dict(services.get(name, {}))
        entry["running"] = pid is not None
        entry["pid"] = pid
        result[name] = entry
    return result


def cmd_status(args: argparse.Namespace) -> int:
    layout = Layout(args.state_dir)
    status = service_status(layout)
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        for name in SERVICES:
            entry = status[name]
            state = f"running (pid {entry['pid']})" if entry["running"] else "stopped"
            port = entry.get("port", "?")
            kind = f" [{entry.get('kind')}]" if name == "clamd" and entry.get("kind") else ""
            print(f"{name:6} {state:24} port {port}{kind}")
    return 0 if all(status[n]["running"] for n in SERVICES) else 1


def cmd_down(args: argparse.Namespace) -> int:
    layout = Layout(args.state_dir)
    marker = str(layout.state_dir)
    for name in SERVICES:
        pid_file = layout.pid_file(name)
        pid = read_pid(pid_file)
        if pid is not None and pid_alive(pid, marker):
            terminate(pid, marker)
            print(f"{name}: stopped (pid {pid})")
        else:
            print(f"{name}: not running")
        pid_file.unlink(missing_ok=True)
    return 0


def cmd_run_sftp(args: argparse.Namespace) -> int:
    from tools.services.sftp import SftpServer, read_accounts_file

    layout = Layout(args.state_dir)
    server = SftpServer(
        layout.sftp_root,
        lambda: read_accounts_file(layout.accounts_file),
        host_key=layout.host_key,
        host=args.host,
        port=args.port,
    )
    server.run_forever(lambda s: print(f"sftp: listening on {s.host}:{s.port}, root {s.root}", flush=True))
    return 0


def cmd_run_smtp(args: argparse.Namespace) -> int:
    from tools.services.smtp import SmtpServer

    layout = Layout(args.state_dir)
    server = SmtpServer(layout.mail, host=args.host, port=args.port)
    server.run_forever(lambda s: print(f"smtp: listening on {s.host}:{s.port}, mail in {s.folder}", flush=True))
    return 0


def cmd_run_dev_scanner(args: argparse.Namespace) -> int:
    print(
        f"{clamd_mod.DEV_SCANNER_VERSION}: listening on {args.host}:{args.port}",
        flush=True,
    )
    clamd_mod.run_dev_scanner(args.host, args.port)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.services", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--state-dir",
            type=Path,
            default=DEFAULT_STATE_DIR,
            help="default: %(default)s",
        )
        return p

    up = common(sub.add_parser("up", help="start the services (idempotent)"))
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--sftp-port", type=int, default=8022)
    up.add_argument("--smtp-port", type=int, default=8025)
    up.add_argument("--clamd-port", type=int, default=8310)
    up.add_argument("--manufacturers", default=DEFAULT_MANUFACTURERS, help="comma-separated codes")
    up.add_argument(
        "--scanner",
        choices=("auto", "clamd", "dev"),
        default="auto",
        help="auto: clamd if installed, else the dev EICAR-only scanner",
    )
    up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for each service")
    up.set_defaults(func=cmd_up)

    status = common(sub.add_parser("status", help="show the services; exit 1 unless all run"))
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    common(sub.add_parser("down", help="stop the services (idempotent)")).set_defaults(func=cmd_down)

    for name, func in (
        ("run-sftp", cmd_run_sftp),
        ("run-smtp", cmd_run_smtp),
        ("run-dev-scanner", cmd_run_dev_scanner),
    ):
        p = common(sub.add_parser(name, help="internal: serve in the foreground"))
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, required=True)
        p.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command.startswith("run-"):
        # The services' own logs (asyncssh logins, aiosmtpd sessions) go to logs/<name>.log.
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
