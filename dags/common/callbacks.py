"""Failure callbacks: technical failures email ops_email; rejections email the manufacturer."""

from __future__ import annotations

import logging

from airflow.sdk.exceptions import AirflowFailException

log = logging.getLogger(__name__)


class FileRejected(AirflowFailException):
    """A received file was rejected: the task fails (visible in the grid) without retries, and the
    failure callback delivers the messages queued for it (``outbox_prefix``)."""

    def __init__(self, message: str, outbox_prefix: str) -> None:
        super().__init__(message)
        self.outbox_prefix = outbox_prefix


class SnapshotHeld(FileRejected):
    """A valid file was held (mass-fix guard, quarantine share): an operator must release it."""


def ops_failure_notifier():
    """The ops email for technical failures (built on use: the provider import is not free)."""
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    return SmtpNotifier(
        to="{{ var.value.ops_email }}",
        smtp_conn_id="smtp_default",
        subject="[vehicle-pipeline] Task failed: {{ ti.dag_id }}.{{ ti.task_id }} ({{ ds }})",
        html_content=(
            "<p>Task <b>{{ ti.task_id }}</b> of DAG <b>{{ ti.dag_id }}</b> failed for {{ ds }}"
            " (run {{ run_id }}, try {{ ti.try_number }}).</p><p>Error: {{ exception | e }}</p>"
        ),
    )


def notify_failure(context) -> None:
    """A rejection sends the queued outbox messages; anything else is a technical failure."""
    from dags.common.runtime import deliver_outbox

    exception = context.get("exception")
    if isinstance(exception, FileRejected):
        sent, queued = deliver_outbox(exception.outbox_prefix)
        log.info("outbox %s: %d sent, %d still queued", exception.outbox_prefix, sent, queued)
        return
    ops_failure_notifier()(context)
