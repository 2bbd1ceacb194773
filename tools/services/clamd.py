"""The virus scanner: the real Debian clamd with an EICAR-only database, or a dev fallback.

Why the real clamd: the pipeline's scanning task speaks the clamd TCP protocol (INSTREAM),
and only the real daemon proves limits, timeouts and replies are right. Official signature
databases cannot be downloaded here, so clamd loads a database written by this module that
knows the EICAR test file, both as a whole-file hash (``.hdb``) and as a body pattern
anywhere in any file (``.ndb``), so EICAR embedded in a CSV line is found too.

ClamAV reports signatures from unsigned databases with a ``.UNOFFICIAL`` suffix:
``stream: Eicar-Test-Signature.UNOFFICIAL FOUND``. Clients must treat any reply ending in
``FOUND`` as infected, whatever the name.

The fallback (``dev-eicar-scanner``) is a tiny Python server speaking the same protocol
subset; ``up`` uses it only when clamd is not installed and cannot be. Its VERSION reply
says plainly that it is not a virus scanner.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

from tools.services.net import free_port

CLAMD_BIN = Path("/usr/sbin/clamd")
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_SIGNATURE = "Eicar-Test-Signature"
DEV_SCANNER_KIND = "dev-eicar-scanner"
DEV_SCANNER_VERSION = f"{DEV_SCANNER_KIND} (development only, knows only the EICAR test signature)"
# Files up to 300 MB must be scanned whole: clamd's defaults (100M) would cut them off.
SIZE_LIMIT_MB = 1000
ScannerKind = Literal["clamd", "dev-eicar-scanner"]


class ScannerError(RuntimeError):
    """The scanner could not be started or did not answer."""


# -- a minimal clamd client (used to wait for readiness and by tools) -------------------------
def command(host: str, port: int, cmd: str, timeout: float = 5.0) -> str:
    """Send ``z<cmd>\\0`` and return the NUL-terminated reply without the NUL."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"z" + cmd.encode() + b"\0")
        return _read_reply(sock)


def ping(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when the scanner answers PONG."""
    try:
        return command(host, port, "PING", timeout) == "PONG"
    except OSError:
        return False


def instream(
    host: str,
    port: int,
    data: bytes | BinaryIO,
    chunk_size: int = 1 << 20,
    timeout: float = 120.0,
) -> str:
    """Scan bytes or a binary file with INSTREAM; returns e.g. ``stream: OK``."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"zINSTREAM\0")
        for chunk in _chunks(data, chunk_size):
            sock.sendall(struct.pack(">I", len(chunk)) + chunk)
        sock.sendall(struct.pack(">I", 0))
        return _read_reply(sock)


def _chunks(data: bytes | BinaryIO, size: int) -> Iterable[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        for start in range(0, len(view), size):
            yield bytes(view[start : start + size])
        return
    while chunk := data.read(size):
        yield chunk


def _read_reply(sock: socket.socket) -> str:
    buf = b""
    while not buf.endswith(b"\0"):
        part = sock.recv(4096)
        if not part:
            break
        buf += part
    return buf.rstrip(b"\0").decode("utf-8", "replace").strip()


def wait_for_pong(
    host: str,
    port: int,
    timeout: float = 120.0,
    proc: subprocess.Popen[bytes] | None = None,
    log_file: Path | None = None,
) -> None:
    """Poll PING until PONG; fail early if ``proc`` exits (clamd loads signatures first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ping(host, port, timeout=1.0):
            return
        if proc is not None and proc.poll() is not None:
            raise ScannerError(f"clamd exited with {proc.returncode}{_tail(log_file)}")
        time.sleep(0.2)
    raise ScannerError(f"no PONG from {host}:{port} within {timeout:.0f}s{_tail(log_file)}")


def _tail(path: Path | None, lines: int = 20) -> str:
    if path is None or not path.exists():
        return ""
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"; last lines of {path}:\n" + "\n".join(text)


# -- real clamd ------------------------------------------------------------------------------
def clamd_available() -> bool:
    return CLAMD_BIN.exists() and os.access(CLAMD_BIN, os.X_OK)


def write_signatures(db_dir: Path) -> None:
    """Write the EICAR-only database: whole-file MD5 (.hdb) and body pattern (.ndb)."""
    db_dir.mkdir(parents=True, exist_ok=True)
    md5 = hashlib.md5(EICAR, usedforsecurity=False).hexdigest()
    (db_dir / "eicar.hdb").write_text(f"{md5}:{len(EICAR)}:{EICAR_SIGNATURE}\n")
    # Name:TargetType(0 = any file):Offset(* = anywhere):HexSignature
    (db_dir / "eicar.ndb").write_text(f"{EICAR_SIGNATURE}:0:*:{EICAR.hex()}\n")


def write_clamd_config(state_dir: Path, port: int, host: str = "127.0.0.1") -> Path:
    """Write ``<state_dir>/clamd.conf`` (and the database); returns the config path.

    No ``User`` line: clamd then keeps the identity it was started with. As root it runs
    as root (CI); as a normal user it needs no privileges, every path being in state_dir.
    """
    state_dir = Path(state_dir).resolve()
    for sub in ("db", "tmp"):
        (state_dir / sub).mkdir(parents=True, exist_ok=True)
    write_signatures(state_dir / "db")
    config = state_dir / "clamd.conf"
    config.write_text(
        "# Generated by tools/services/clamd.py: rewritten at every start.\n"
        f"TCPSocket {port}\n"
        f"TCPAddr {host}\n"
        "Foreground yes\n"
        f"DatabaseDirectory {state_dir / 'db'}\n"
        f"TemporaryDirectory {state_dir / 'tmp'}\n"
        f"LogFile {state_dir / 'clamd.log'}\n"
        "LogTime yes\n"
        "LogFileMaxSize 10M\n"
        f"PidFile {state_dir / 'clamd.pid'}\n"
        f"StreamMaxLength {SIZE_LIMIT_MB}M\n"
        f"MaxScanSize {SIZE_LIMIT_MB}M\n"
        f"MaxFileSize {SIZE_LIMIT_MB}M\n"
        "MaxThreads 4\n"
        "ReadTimeout 120\n"
        "CommandReadTimeout 30\n"
        "SelfCheck 3600\n"
    )
    return config


def clamd_command(config: Path) -> list[str]:
    return [str(CLAMD_BIN), "-c", str(config)]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: SIGTERM clamd when the test process dies, so no daemon outlives a killed run."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class RunningScanner:
    """A started scanner: ``host``/``port`` speak the clamd protocol; ``stop()`` ends it."""

    host: str
    port: int
    kind: ScannerKind
    pid: int | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _server: socketserver.BaseServer | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def version(self) -> str:
        return command(self.host, self.port, "VERSION")

    def scan(self, data: bytes | BinaryIO) -> str:
        return instream(self.host, self.port, data)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (then SIGKILL) clamd, or shut the dev server down; idempotent."""
        if self._proc is not None:
            stop_process(self._proc, timeout)
            self._proc = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def start_clamd(
    state_dir: Path,
    port: int = 0,
    host: str = "127.0.0.1",
    timeout: float = 120.0,
) -> RunningScanner:
    """Start the real clamd as a child process and wait for PONG (``port=0``: a free port)."""
    if not clamd_available():
        raise ScannerError(
            f"{CLAMD_BIN} is not installed: run tools/bootstrap_system.sh --require-clamd "
            "(installs the Debian clamav-daemon package)"
        )
    port = port or free_port(host)
    state_dir = Path(state_dir).resolve()
    config = write_clamd_config(state_dir, port, host)
    out = open(state_dir / "clamd.out", "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            clamd_command(config),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
    finally:
        out.close()
    try:
        wait_for_pong(host, port, timeout, proc, state_dir / "clamd.out")
    except BaseException:
        stop_process(proc)
        raise
    return RunningScanner(host=host, port=port, kind="clamd", pid=proc.pid, _proc=proc)


# -- development fallback --------------------------------------------------------------------
class _DevScanHandler(socketserver.StreamRequestHandler):
    """One clamd command per connection, like clamd outside IDSESSION."""

    timeout = 60
    max_stream = SIZE_LIMIT_MB * 1024 * 1024

    def handle(self) -> None:
        first = self.rfile.read(1)
        if not first:
            return
        if first in (b"z", b"n"):
            delim = b"\0" if first == b"z" else b"\n"
            cmd = self._read_until(delim)
        else:
            delim = b"\n"
            cmd = first + self._read_until(delim)
        name = cmd.strip().decode("ascii", "replace")
        if name == "PING":
            reply = "PONG"
        elif name == "VERSION":
            reply = DEV_SCANNER_VERSION
        elif name == "INSTREAM":
            reply = self._instream()
        else:
            reply = "UNKNOWN COMMAND"
        self.wfile.write(reply.encode() + delim)

    def _read_until(self, delim: bytes, limit: int = 1024) -> bytes:
        buf = b""
        while len(buf) < limit:
            ch = self.rfile.read(1)
            if not ch or ch == delim:
                break
            buf += ch
        return buf

    def _instream(self) -> str:
        keep = len(EICAR) - 1
        tail = b""
        found = False
        total = 0
        while True:
            header = self.rfile.read(4)
            if len(header) < 4:
                return "INSTREAM: connection closed. ERROR"
            (size,) = struct.unpack(">I", header)
            if size == 0:
                break
            total += size
            if total > self.max_stream:
                return "INSTREAM size limit exceeded. ERROR"
            chunk = self.rfile.read(size)
            if len(chunk) < size:
                return "INSTREAM: connection closed. ERROR"
            window = tail + chunk
            found = found or EICAR in window
            tail = window[-keep:]
        return f"stream: {EICAR_SIGNATURE} FOUND" if found else "stream: OK"


class DevScannerServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def start_dev_scanner(port: int = 0, host: str = "127.0.0.1") -> RunningScanner:
    """Start the EICAR-only development scanner in a background thread."""
    server = DevScannerServer((host, port), _DevScanHandler)
    real_port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, name="dev-scanner", daemon=True)
    thread.start()
    wait_for_pong(host, real_port, timeout=10)
    return RunningScanner(host=host, port=real_port, kind=DEV_SCANNER_KIND, _server=server, _thread=thread)


def run_dev_scanner(host: str, port: int) -> None:
    """Serve the development scanner in the foreground until SIGTERM/SIGINT."""
    server = DevScannerServer((host, port), _DevScanHandler)

    def _stop(*_: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop)
    with server:
        server.serve_forever()


def start_scanner(
    state_dir: Path,
    port: int = 0,
    host: str = "127.0.0.1",
    allow_dev: bool = True,
) -> RunningScanner:
    """The real clamd when installed, else (if ``allow_dev``) the development scanner."""
    if clamd_available():
        return start_clamd(state_dir, port, host)
    if not allow_dev:
        raise ScannerError(f"{CLAMD_BIN} is not installed and the dev scanner is not allowed")
    print(
        f"WARNING: {CLAMD_BIN} not installed; using {DEV_SCANNER_VERSION}",
        file=sys.stderr,
    )
    return start_dev_scanner(port, host)
