"""A clamd client speaking the INSTREAM protocol over TCP.

An unreachable or failing scanner raises ScannerUnavailable: the caller must fail and retry,
never treat the file as clean.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20


class ScannerUnavailable(Exception):
    """No verdict could be obtained: the file must not be processed."""


@dataclass(frozen=True)
class ScanResult:
    infected: bool
    signature: str | None
    scanner: str  # what judged the file, e.g. "ClamAV 1.0.7/..."

    @property
    def verdict(self) -> str:
        return self.signature if self.infected else "CLEAN"


def _command(host: str, port: int, timeout: float, command: bytes, payload: Path | None = None) -> str:
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(b"z" + command + b"\0")
            if payload is not None:
                with open(payload, "rb") as handle:
                    while chunk := handle.read(CHUNK):
                        conn.sendall(struct.pack("!L", len(chunk)) + chunk)
                conn.sendall(struct.pack("!L", 0))
            reply = b""
            while not reply.endswith(b"\0"):
                data = conn.recv(4096)
                if not data:
                    break
                reply += data
    except OSError as exc:
        raise ScannerUnavailable(f"clamd at {host}:{port} is unreachable: {exc}") from exc
    return reply.rstrip(b"\0").decode("utf-8", "replace").strip()


def scanner_version(host: str, port: int, timeout: float = 10.0) -> str:
    return _command(host, port, timeout, b"VERSION") or "unknown scanner"


def scan_file(path: Path, host: str, port: int, timeout: float = 120.0) -> ScanResult:
    """Stream a file to clamd and return its verdict."""
    scanner = scanner_version(host, port, timeout)
    reply = _command(host, port, timeout, b"INSTREAM", payload=path)
    if reply.endswith("FOUND"):
        signature = reply.removeprefix("stream:").removesuffix("FOUND").strip()
        return ScanResult(True, signature, scanner)
    if reply.endswith(": OK") or reply == "stream: OK":
        return ScanResult(False, None, scanner)
    raise ScannerUnavailable(f"clamd gave no verdict: {reply!r}")
