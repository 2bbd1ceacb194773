"""The transactional outbox against the real SMTP server (aiosmtpd), including an outage."""

from __future__ import annotations

import duckdb
import pytest

from include.mail.outbox import Message, SmtpSettings, deliver_pending, enqueue, pending, to_email
from include.warehouse import migrate, transaction
from tools.services.net import free_port

SENDER = "vehicle-recalls-pipeline@dvsa.localhost"
ATTACHMENT = b"line,severity,code\r\n2,error,'=1+2\r\n"


def message(key: str = "recall:ACME:rejected:2026-11-02:abc", **changes) -> Message:
    fields = {
        "key": key,
        "recipients": ("recalls-team@acme.example", "backup@acme.example"),
        "subject": "Recall file rejected: Acme Motors (ACME), acme.csv, 2026-11-02",
        "body_text": "Reasons:\n- Incorrect date format\n",
        "body_html": "<p>Reasons:</p><ul><li>Incorrect date format</li></ul>",
        "attachment_name": "ACME-2026-11-02-errors.csv",
        "attachment": ATTACHMENT,
    }
    fields.update(changes)
    return Message(**fields)


@pytest.fixture
def con():
    connection = duckdb.connect()
    migrate(connection)
    yield connection
    connection.close()


@pytest.fixture
def smtp(smtp_service):
    smtp_service.start()
    smtp_service.clear()
    yield smtp_service
    smtp_service.start()  # whatever a test did, leave it listening
    smtp_service.clear()


def settings_for(smtp) -> SmtpSettings:
    return SmtpSettings(host=smtp.host, port=smtp.port, from_email=SENDER, timeout=5)


def row(con, key: str) -> tuple:
    return con.execute(
        "SELECT sent_at IS NOT NULL, attempts, last_error FROM outbox WHERE message_key = ?", [key]
    ).fetchone()


def test_enqueue_twice_keeps_one_row(con):
    assert enqueue(con, message()) is True
    assert enqueue(con, message(subject="a different subject, same key")) is False
    assert con.execute("SELECT count(*), any_value(subject) FROM outbox").fetchone() == (1, message().subject)
    assert pending(con) == [message()]


def test_enqueue_rolls_back_with_its_transaction(con):
    with pytest.raises(RuntimeError), transaction(con):
        enqueue(con, message())
        raise RuntimeError("the decision failed")
    assert pending(con) == []


def test_pending_by_prefix_and_round_trip(con):
    enqueue(con, message("recall:ACME:a"))
    enqueue(con, message("recall:BOLT:b", body_html=None, attachment_name=None, attachment=None))
    assert [m.key for m in pending(con, "recall:BOLT:")] == ["recall:BOLT:b"]
    [bolt] = pending(con, "recall:BOLT:")
    assert bolt.attachment is None and bolt.body_html is None
    assert [m.key for m in pending(con)] == ["recall:ACME:a", "recall:BOLT:b"]


def test_to_email_has_a_stable_message_id():
    first, second = to_email(message(), SENDER), to_email(message(), SENDER)
    assert first["Message-ID"] == second["Message-ID"]
    assert first["Message-ID"] != to_email(message("other"), SENDER)["Message-ID"]
    assert first["X-Pipeline-Message-Key"] == message().key


def test_deliver_sends_with_attachment_and_recipients(con, smtp):
    enqueue(con, message())
    assert deliver_pending(con, settings_for(smtp)) == (1, 0)
    [stored] = smtp.stored()
    assert stored.mail_from == SENDER
    assert sorted(stored.rcpt_tos) == ["backup@acme.example", "recalls-team@acme.example"]
    email = stored.message
    assert email["Subject"] == message().subject
    assert email["To"] == "recalls-team@acme.example, backup@acme.example"
    assert email["X-Pipeline-Message-Key"] == message().key
    assert email.get_body(("plain",)).get_content().replace("\r\n", "\n") == message().body_text  # SMTP: CRLF
    assert email.get_body(("html",)).get_content().strip() == message().body_html
    [attachment] = list(email.iter_attachments())
    assert attachment.get_filename() == "ACME-2026-11-02-errors.csv"
    assert attachment.get_content_type() == "text/csv"
    assert attachment.get_payload(decode=True) == ATTACHMENT
    assert row(con, message().key) == (True, 1, None)
    # Nothing left to send: a second delivery sends nothing.
    assert deliver_pending(con, settings_for(smtp)) == (0, 0)
    assert len(smtp.stored()) == 1


def test_smtp_down_keeps_messages_queued_then_delivers_once(con, smtp):
    enqueue(con, message("recall:ACME:one"))
    enqueue(con, message("recall:ACME:two", attachment_name=None, attachment=None))
    smtp.stop()
    try:
        assert deliver_pending(con, settings_for(smtp)) == (0, 2)
        assert deliver_pending(con, settings_for(smtp)) == (0, 2)
    finally:
        smtp.start()
    for key in ("recall:ACME:one", "recall:ACME:two"):
        sent, attempts, last_error = row(con, key)
        assert (sent, attempts) == (False, 2)
        assert "Connection" in last_error or "refused" in last_error.lower()
    assert smtp.stored() == []

    assert deliver_pending(con, settings_for(smtp)) == (2, 0)
    assert deliver_pending(con, settings_for(smtp)) == (0, 0)
    # Re-enqueueing a sent key (a rerun) does not send it again.
    assert enqueue(con, message("recall:ACME:one")) is False
    assert deliver_pending(con, settings_for(smtp)) == (0, 0)
    stored = smtp.stored()
    assert sorted(s.message["X-Pipeline-Message-Key"] for s in stored) == ["recall:ACME:one", "recall:ACME:two"]
    assert row(con, "recall:ACME:one") == (True, 3, None)


def test_unreachable_server_is_recorded_not_raised(con):
    enqueue(con, message())
    settings = SmtpSettings(host="127.0.0.1", port=free_port(), from_email=SENDER, timeout=2)
    assert deliver_pending(con, settings) == (0, 1)
    assert row(con, message().key)[:2] == (False, 1)
