"""A transactional outbox: messages are written in the same warehouse transaction as the decision
that causes them and delivered afterwards. SMTP being down delays a message, never loses it; a
message key is enqueued once, so retries, reruns and backfills never send it twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage

import duckdb

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    from_email: str
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    use_ssl: bool = False
    starttls: bool = False
    timeout: float = 30.0


@dataclass(frozen=True)
class Message:
    key: str  # what makes it unique, e.g. "recall-rejected:ACME:<sha256>"
    recipients: tuple[str, ...]
    subject: str
    body_text: str
    body_html: str | None = None
    attachment_name: str | None = None
    attachment: bytes | None = None


def enqueue(con: duckdb.DuckDBPyConnection, message: Message) -> bool:
    """Queue a message unless its key was queued before; True when newly queued."""
    inserted = con.execute(
        "INSERT INTO outbox (message_key, recipients, subject, body_text, body_html, attachment_name, attachment)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING message_key",
        [
            message.key,
            list(message.recipients),
            message.subject,
            message.body_text,
            message.body_html,
            message.attachment_name,
            message.attachment,
        ],
    ).fetchall()
    return bool(inserted)


def pending(con: duckdb.DuckDBPyConnection, key_prefix: str = "") -> list[Message]:
    rows = con.execute(
        "SELECT message_key, recipients, subject, body_text, body_html, attachment_name, attachment"
        " FROM outbox WHERE sent_at IS NULL AND starts_with(message_key, ?) ORDER BY created_at, message_key",
        [key_prefix],
    ).fetchall()
    return [Message(r[0], tuple(r[1]), r[2], r[3], r[4], r[5], bytes(r[6]) if r[6] is not None else None) for r in rows]


def to_email(message: Message, sender: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = ", ".join(message.recipients)
    email["Subject"] = message.subject
    # Stable per message key, so a receiving system can drop a duplicate delivery.
    email["Message-ID"] = f"<{hashlib.sha256(message.key.encode()).hexdigest()[:32]}@vehicle-recalls.local>"
    email["X-Pipeline-Message-Key"] = message.key
    email.set_content(message.body_text)
    if message.body_html:
        email.add_alternative(message.body_html, subtype="html")
    if message.attachment_name and message.attachment is not None:
        email.add_attachment(message.attachment, maintype="text", subtype="csv", filename=message.attachment_name)
    return email


def _open_smtp(settings: SmtpSettings) -> smtplib.SMTP:
    if settings.use_ssl:
        return smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=settings.timeout, context=ssl.create_default_context()
        )
    client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    if settings.starttls:
        client.starttls(context=ssl.create_default_context())
    return client


def deliver_pending(con: duckdb.DuckDBPyConnection, settings: SmtpSettings, key_prefix: str = "") -> tuple[int, int]:
    """Send queued messages; returns (sent, still_queued). SMTP trouble leaves them queued."""
    queued = pending(con, key_prefix)
    if not queued:
        return 0, 0
    sent = 0
    try:
        client = _open_smtp(settings)
    except (OSError, smtplib.SMTPException) as exc:
        _record_failure(con, [m.key for m in queued], exc)
        log.warning(
            "SMTP %s:%s unavailable, %d message(s) stay queued: %s", settings.host, settings.port, len(queued), exc
        )
        return 0, len(queued)
    try:
        if settings.login:
            client.login(settings.login, settings.password or "")
        for message in queued:
            try:
                client.send_message(to_email(message, settings.from_email))
            except (OSError, smtplib.SMTPException) as exc:
                _record_failure(con, [message.key], exc)
                log.warning("message %s stays queued: %s", message.key, exc)
                continue
            con.execute(
                "UPDATE outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL WHERE message_key = ?",
                [message.key],
            )
            sent += 1
    finally:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            client.quit()
    return sent, len(queued) - sent


def _record_failure(con: duckdb.DuckDBPyConnection, keys: list[str], exc: Exception) -> None:
    for key in keys:
        con.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE message_key = ?",
            [f"{type(exc).__name__}: {exc}"[:500], key],
        )
