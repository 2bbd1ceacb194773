"""A real SFTP server (asyncssh) for the demo and the tests.

Why in-process asyncssh rather than OpenSSH: it needs no root, no system users and no
sshd config, yet speaks the real SSH/SFTP protocol, so Airflow's SFTPHook (paramiko) and
the manufacturers' clients are exercised exactly as against a production server.

Accounts authenticate with public keys only (password and keyboard-interactive are not
offered). Every account is chrooted with asyncssh's ``SFTPServer(chroot=...)``: the
``pipeline`` service account at the SFTP root, each manufacturer at ``/recalls/<CODE>/``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import asyncssh

log = logging.getLogger(__name__)

PIPELINE_USER = "pipeline"


@dataclass(frozen=True)
class SftpAccount:
    """One login: the public key allowed to authenticate and its chroot below the SFTP root."""

    authorized_key: Path
    chroot: str = ""


AccountSpec = SftpAccount | tuple[Path | str, str]
Accounts = Mapping[str, AccountSpec]
AccountsSource = Accounts | Callable[[], Accounts]


def public_key_path(private_key: Path) -> Path:
    """The OpenSSH convention: the public half sits next to the private key with ``.pub``."""
    private_key = Path(private_key)
    return private_key.with_name(private_key.name + ".pub")


def ensure_keypair(path: Path, comment: str | None = None) -> Path:
    """Create an OpenSSH ed25519 key pair at ``path`` and ``path.pub`` unless it exists.

    The private key is written in the OpenSSH format without a passphrase (mode 0600) so
    paramiko (``key_file=`` in Airflow's SSH/SFTP hooks) and asyncssh can both load it.
    An existing private key is kept; a missing ``.pub`` is re-derived from it.
    """
    path = Path(path)
    pub = public_key_path(path)
    if path.exists():
        if not pub.exists():
            key = asyncssh.read_private_key(str(path))
            pub.write_bytes(key.export_public_key("openssh"))
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    key = asyncssh.generate_private_key("ssh-ed25519", comment=comment or f"{path.stem}@recalls-local")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.export_private_key("openssh"))
    os.replace(tmp, path)
    pub.write_bytes(key.export_public_key("openssh"))
    return path


def write_accounts_file(path: Path, accounts: Accounts) -> None:
    """Persist accounts as JSON so a running server picks up new manufacturers without restart."""
    data = {
        user: {"authorized_key": str(acc.authorized_key), "chroot": acc.chroot}
        for user, acc in ((u, _as_account(a)) for u, a in accounts.items())
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_accounts_file(path: Path) -> dict[str, SftpAccount]:
    """Load the JSON written by :func:`write_accounts_file`."""
    data = json.loads(Path(path).read_text())
    return {u: SftpAccount(Path(v["authorized_key"]), v.get("chroot", "")) for u, v in data.items()}


def _as_account(spec: AccountSpec) -> SftpAccount:
    if isinstance(spec, SftpAccount):
        return spec
    key, chroot = spec
    return SftpAccount(Path(key), chroot)


class _AuthServer(asyncssh.SSHServer):
    """Per-connection SSH server: public-key auth only, keys looked up per user at login."""

    def __init__(self, owner: SftpServer) -> None:
        self._owner = owner
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._owner._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._owner._connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        account = self._owner.account(username)
        if account is not None and self._conn is not None:
            try:
                keys = asyncssh.read_authorized_keys(str(account.authorized_key))
            except (OSError, ValueError, asyncssh.KeyImportError) as exc:
                log.warning("sftp: cannot read authorized key for %r: %s", username, exc)
            else:
                self._conn.set_authorized_keys(keys)
        # Unknown users still "need auth"; with no authorized keys every attempt fails.
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def host_based_auth_supported(self) -> bool:
        return False


class _LandingSFTPServer(asyncssh.SFTPServer):
    """asyncssh's chrooted file server minus links: uploads never need them, and refusing
    them removes any doubt about where a path the pipeline reads really points.

    Also where the fault tests cut a download short (:meth:`SftpServer.drop_connection_once`).
    """

    def __init__(self, chan: asyncssh.SSHServerChannel, chroot: bytes, owner: SftpServer) -> None:
        super().__init__(chan, chroot=chroot)
        self._owner = owner
        self._dropping = False

    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        name = getattr(file_obj, "name", None)
        if self._dropping or (name is not None and self._owner._take_drop(os.fsdecode(name), offset + size)):
            # Like a network failure: the TCP connection goes away under the client's feet.
            self._dropping = True
            self.channel.get_connection().abort()
            raise asyncssh.SFTPConnectionLost("connection dropped (fault injection)")
        return super().read(file_obj, offset, size)

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPOpUnsupported("symbolic links are not allowed")

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPOpUnsupported("hard links are not allowed")


class SftpServer:
    """An asyncssh SFTP server over a folder, run in a thread or in the foreground.

    ``accounts`` maps a login to ``(authorized public key path, chroot relative to root)``
    (or an :class:`SftpAccount`); it may also be a callable returning such a mapping,
    called at every login, so accounts can change while the server runs.
    ``port=0`` binds a free port; :attr:`port` is the real one once started.
    """

    def __init__(
        self,
        root: Path,
        accounts: AccountsSource,
        host_key: Path,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.root = Path(root).resolve()
        self.host = host
        self.port = port
        self.host_key = Path(host_key)
        self._accounts = accounts
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._drops: dict[str, int] = {}
        self._drops_lock = threading.Lock()
        self.dropped: list[str] = []

    # -- fault injection (tests) -----------------------------------------------------
    def drop_connection_once(self, path: str, after_bytes: int) -> None:
        """The next download of ``path`` (as the pipeline sees it, from the SFTP root) loses its
        connection once a read would go past ``after_bytes``; later downloads work again."""
        with self._drops_lock:
            self._drops[str((self.root / path.lstrip("/")).resolve())] = after_bytes

    def _take_drop(self, local_path: str, end: int) -> bool:
        """Whether a read up to ``end`` of ``local_path`` must drop the connection (disarms it)."""
        real = os.path.realpath(local_path)
        with self._drops_lock:
            limit = self._drops.get(real)
            if limit is None or end <= limit:
                return False
            del self._drops[real]
            self.dropped.append(real)
            return True

    # -- accounts --------------------------------------------------------------------
    def accounts(self) -> dict[str, SftpAccount]:
        """The current accounts (re-read from the callable source, if any)."""
        source = self._accounts() if callable(self._accounts) else self._accounts
        return {user: _as_account(spec) for user, spec in source.items()}

    def account(self, username: str) -> SftpAccount | None:
        """The account for ``username``, or None (a failing source counts as no account)."""
        try:
            return self.accounts().get(username)
        except Exception:  # a broken accounts file must not kill the server
            log.exception("sftp: cannot load accounts")
            return None

    def chroot_for(self, account: SftpAccount) -> Path:
        """The absolute chroot folder of an account; refuses anything outside the root."""
        chroot = (self.root / account.chroot).resolve()
        if chroot != self.root and self.root not in chroot.parents:
            raise ValueError(f"chroot {account.chroot!r} escapes the SFTP root {self.root}")
        return chroot

    def _sftp_factory(self, chan: asyncssh.SSHServerChannel) -> asyncssh.SFTPServer:
        """One SFTP session: chrooted to the account's folder (created if missing)."""
        username = chan.get_extra_info("username")
        account = self.account(username)
        if account is None:  # pragma: no cover - auth already rejected such users
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, "no account")
        chroot = self.chroot_for(account)
        chroot.mkdir(parents=True, exist_ok=True)
        # Always pass a chroot: asyncssh treats chroot=None as "whole filesystem".
        return _LandingSFTPServer(chan, os.fsencode(chroot), self)

    # -- lifecycle in the current event loop ------------------------------------------
    async def start_async(self) -> None:
        """Bind and start accepting connections in the running event loop."""
        self.root.mkdir(parents=True, exist_ok=True)
        ensure_keypair(self.host_key, comment="sftp-host@recalls-local")
        self._acceptor = await asyncssh.listen(
            self.host,
            self.port,
            server_factory=lambda: _AuthServer(self),
            server_host_keys=[str(self.host_key)],
            sftp_factory=self._sftp_factory,
            allow_scp=False,
            reuse_address=True,
            login_timeout=30,
        )
        self.port = self._acceptor.get_port()
        log.info("sftp: listening on %s:%s, root %s", self.host, self.port, self.root)

    async def stop_async(self) -> None:
        """Stop listening and drop open sessions (clients see a closed connection)."""
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
            self._acceptor = None
        for conn in list(self._connections):
            conn.close()
        for conn in list(self._connections):
            await conn.wait_closed()
        self._connections.clear()

    # -- lifecycle in a background thread (pytest fixtures) -------------------------
    def start(self) -> Self:
        """Run the server on its own event loop in a daemon thread; returns when listening."""
        if self._thread is not None:
            raise RuntimeError("SFTP server already started")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="sftp-server", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.start_async(), loop).result(timeout=30)
        except BaseException:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()
            raise
        self._loop, self._thread = loop, thread
        return self

    def stop(self) -> None:
        """Stop a server started with :meth:`start` (idempotent)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.stop_async(), loop).result(timeout=15)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()
            self._loop = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- foreground (CLI) -------------------------------------------------------------
    def run_forever(self, on_ready: Callable[[SftpServer], None] | None = None) -> None:
        """Serve in the foreground until SIGTERM/SIGINT (used by ``run-sftp``)."""

        async def main() -> None:
            await self.start_async()
            stopped = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stopped.set)
            if on_ready is not None:
                on_ready(self)
            await stopped.wait()
            await self.stop_async()

        asyncio.run(main())
