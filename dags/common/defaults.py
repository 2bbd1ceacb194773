"""Task defaults every DAG shares: an owner, retries with back-off, and the failure callback."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dags.common.callbacks import notify_failure


def task_defaults(retries: int = 3, retry_delay: timedelta = timedelta(minutes=2)) -> dict[str, Any]:
    return {
        "owner": "data-platform",
        "retries": retries,
        "retry_delay": retry_delay,
        "retry_exponential_backoff": True,
        "on_failure_callback": notify_failure,
    }
