"""Small socket helpers shared by the services and the CLI."""

from __future__ import annotations

import socket
import time


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the OS picks it), for servers that need one up front."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def read_banner(host: str, port: int, timeout: float = 2.0) -> bytes:
    """The first line a server sends on connect (SSH ``SSH-2.0-...``, SMTP ``220 ...``)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        buf = b""
        while b"\n" not in buf and len(buf) < 1024:
            part = sock.recv(1024)
            if not part:
                break
            buf += part
        return buf.split(b"\n", 1)[0].rstrip(b"\r")


def wait_for_banner(host: str, port: int, prefix: bytes, timeout: float = 30.0) -> bytes:
    """Poll until the server greets with ``prefix``; raises TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            banner = read_banner(host, port)
            if banner.startswith(prefix):
                return banner
            last = banner
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{host}:{port} did not greet with {prefix!r} within {timeout}s (last: {last!r})")
