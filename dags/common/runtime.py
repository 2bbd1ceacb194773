"""Reads the configuration contract (Variables, Connections) at task run time, never at parse."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")


def business_day(logical_date: datetime) -> date:
    """The calendar day in Europe/London that a run's logical date falls on."""
    return logical_date.astimezone(LONDON).date()


def variable(key: str, default: Any = None) -> Any:
    from airflow.sdk import Variable

    return Variable.get(key, default=default)


def manufacturers() -> list[dict[str, str]]:
    raw = variable("manufacturers", "[]")
    listed = json.loads(raw) if isinstance(raw, str) else raw
    codes = [m["code"] for m in listed]
    if len(codes) != len(set(codes)):
        raise ValueError(f"duplicate manufacturer codes in the manufacturers Variable: {codes}")
    return [{"code": m["code"], "name": m.get("name", m["code"]), "team_email": m["team_email"]} for m in listed]


def number(key: str, default: float) -> float:
    return float(variable(key, default))


def warehouse_path() -> str:
    return variable("warehouse_path")


def archive_path() -> str:
    return variable("archive_path")


def ops_email() -> str:
    return variable("ops_email")


def clamd_address() -> tuple[str, int]:
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection("clamav")
    return conn.host or "127.0.0.1", int(conn.port or 3310)


def smtp_settings():
    from airflow.sdk import BaseHook

    from include.mail.outbox import SmtpSettings

    conn = BaseHook.get_connection("smtp_default")
    extra = conn.extra_dejson
    return SmtpSettings(
        host=conn.host or "localhost",
        port=int(conn.port or 25),
        from_email=extra.get("from_email") or "airflow@localhost",
        login=conn.login or None,
        password=conn.password or None,
        use_ssl=not _flag(extra.get("disable_ssl", True)),
        starttls=not _flag(extra.get("disable_tls", True)),
        timeout=float(extra.get("timeout", 30)),
    )


def _flag(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() in {"1", "true", "yes"}


def deliver_outbox(key_prefix: str = "") -> tuple[int, int]:
    """Send what is queued (optionally only keys with a prefix); SMTP down leaves it queued."""
    from include.mail.outbox import deliver_pending
    from include.warehouse import connect

    with connect(warehouse_path()) as con:
        result = deliver_pending(con, smtp_settings(), key_prefix)
    publish_ops_snapshot()
    return result


def publish_ops_snapshot() -> None:
    """Refresh what the operations page reads, after a writer has committed and closed."""
    from include.ops.publish import publish_after_commit

    publish_after_commit(warehouse_path())
