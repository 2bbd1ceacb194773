"""A real SMTP server (aiosmtpd) that stores every message as an ``.eml`` file.

Why: the pipeline's alert e-mails go through Airflow's SmtpHook (smtplib) exactly as in
production; the demo and the tests then read what was "sent" from a folder. Each message is
stored byte for byte as ``<name>.eml`` and its SMTP envelope (which a message's own headers
do not reliably carry, e.g. Bcc) in ``<name>.json``. Names sort by receive time.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import itertools
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tools.services.net import free_port

# Alert mails are small; this only bounds memory if something misbehaves.
DATA_SIZE_LIMIT = 64 * 1024 * 1024
_sequence = itertools.count(1)
_sequence_lock = threading.Lock()


@dataclass(frozen=True)
class StoredMessage:
    """A received message with its envelope (from the ``.json`` sidecar)."""

    path: Path
    message: EmailMessage
    mail_from: str
    rcpt_tos: list[str]
    received_at: str


class EmlFolderHandler:
    """aiosmtpd handler writing raw message bytes to ``<folder>/<name>.eml`` plus a sidecar."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content
        if raw is None:  # pragma: no cover - aiosmtpd always sets it after DATA
            raw = envelope.content if isinstance(envelope.content, bytes) else b""
        self.store(raw, envelope.mail_from or "", list(envelope.rcpt_tos), session.peer)
        return "250 Message accepted for delivery"

    def store(self, raw: bytes, mail_from: str, rcpt_tos: list[str], peer: Any = None) -> Path:
        """Write one message; the sidecar is in place before the ``.eml`` appears."""
        self.folder.mkdir(parents=True, exist_ok=True)
        now = datetime.now(UTC)
        meta = {
            "mail_from": mail_from,
            "rcpt_tos": rcpt_tos,
            "received_at": now.isoformat(timespec="microseconds"),
            "peer": list(peer) if isinstance(peer, tuple) else peer,
            "size": len(raw),
        }
        while True:
            with _sequence_lock:
                seq = next(_sequence)
            stem = f"{now:%Y%m%dT%H%M%S%f}Z-{os.getpid()}-{seq:06d}"
            try:
                fd = os.open(
                    self.folder / f"{stem}.json",
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                    0o644,
                )
            except FileExistsError:  # pragma: no cover - same microsecond, pid and sequence
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump(meta, fh, indent=2)
                fh.write("\n")
            break
        tmp = self.folder / f".{stem}.eml.tmp"
        tmp.write_bytes(raw)
        final = self.folder / f"{stem}.eml"
        os.replace(tmp, final)
        return final


def message_files(folder: Path) -> list[Path]:
    """The stored ``.eml`` files in receive order."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.eml") if not p.name.startswith("."))


def read_messages(folder: Path) -> list[EmailMessage]:
    """All stored messages, parsed with ``email.policy.default``, in receive order."""
    return [_parse(p) for p in message_files(folder)]


def read_stored(folder: Path) -> list[StoredMessage]:
    """All stored messages with their envelopes, in receive order."""
    result = []
    for path in message_files(folder):
        meta = json.loads(path.with_suffix(".json").read_text())
        result.append(
            StoredMessage(
                path=path,
                message=_parse(path),
                mail_from=meta["mail_from"],
                rcpt_tos=list(meta["rcpt_tos"]),
                received_at=meta["received_at"],
            )
        )
    return result


def _parse(path: Path) -> EmailMessage:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


class SmtpServer:
    """aiosmtpd in a background thread; stop()/start() keep the same port (to simulate outages).

    ``port=0`` picks a free port once, at construction, so a restart reuses it.
    """

    def __init__(
        self,
        folder: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        data_size_limit: int = DATA_SIZE_LIMIT,
    ) -> None:
        self.folder = Path(folder)
        self.host = host
        self.port = port or free_port(host)
        self.data_size_limit = data_size_limit
        self._controller: Controller | None = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> Self:
        """Listen (again) on ``host:port``; no-op if already running."""
        if self._controller is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            controller = Controller(
                EmlFolderHandler(self.folder),
                hostname=self.host,
                port=self.port,
                data_size_limit=self.data_size_limit,
                ident="recalls-local-smtp",
            )
            controller.start()
            self._controller = controller
        return self

    def stop(self) -> None:
        """Stop listening (connections are then refused); idempotent."""
        if self._controller is not None:
            controller, self._controller = self._controller, None
            controller.stop()

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        """An outage: stopped inside the block, listening again (same port) after it."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def messages(self) -> list[EmailMessage]:
        return read_messages(self.folder)

    def stored(self) -> list[StoredMessage]:
        return read_stored(self.folder)

    def clear(self) -> None:
        """Delete stored messages (and sidecars) so a test sees only its own mail."""
        for path in self.folder.glob("*"):
            if path.suffix in {".eml", ".json", ".tmp"} and path.is_file():
                path.unlink(missing_ok=True)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """Wait until at least ``count`` messages are stored (for mail sent by other processes)."""
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.messages()
            if len(msgs) >= count or time.monotonic() >= deadline:
                return msgs
            time.sleep(0.05)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def run_forever(self, on_ready: Callable[[SmtpServer], None] | None = None) -> None:
        """Serve until SIGTERM/SIGINT (used by ``run-smtp``)."""
        stopped = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopped.set())
        self.start()
        try:
            if on_ready is not None:
                on_ready(self)
            while not stopped.wait(1.0):
                pass
        finally:
            self.stop()
