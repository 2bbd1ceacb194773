"""Load airflow_settings.yaml (Astro CLI format) into the Airflow metadata DB.

No Airflow command reads that file, so this small loader does: connections, pools and variables
are created or updated (idempotent). ``${PROJECT_DIR}`` in any value becomes the project's path.
Environment variables AIRFLOW_CONN_* / AIRFLOW_VAR_* still win at run time, as Airflow reads
them before the metadata DB.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

PROJECT_DIR = Path(__file__).resolve().parents[1]


def _expand(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("${PROJECT_DIR}", str(PROJECT_DIR))
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    return value


def read_settings(path: Path) -> dict[str, list[dict[str, Any]]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    section = _expand(data.get("airflow", {}))
    return {key: section.get(key) or [] for key in ("connections", "pools", "variables")}


def load(path: Path) -> dict[str, int]:
    from airflow.models import Connection, Pool, Variable
    from airflow.utils.session import create_session

    settings = read_settings(path)
    with create_session() as session:
        for item in settings["connections"]:
            extra = item.get("conn_extra")
            wanted = Connection(
                conn_id=item["conn_id"],
                conn_type=item["conn_type"],
                host=item.get("conn_host"),
                schema=item.get("conn_schema"),
                login=item.get("conn_login"),
                password=item.get("conn_password"),
                port=item.get("conn_port"),
                extra=json.dumps(extra) if isinstance(extra, dict) else extra,
            )
            existing = session.query(Connection).filter(Connection.conn_id == wanted.conn_id).one_or_none()
            if existing is not None:
                session.delete(existing)
                session.flush()
            session.add(wanted)
        for item in settings["pools"]:
            Pool.create_or_update_pool(
                name=item["pool_name"],
                slots=int(item["pool_slot"]),
                description=item.get("pool_description", ""),
                include_deferred=False,
                session=session,
            )
    for item in settings["variables"]:
        value = item["variable_value"]
        Variable.set(item["variable_name"], value if isinstance(value, str) else json.dumps(value))
    return {key: len(value) for key, value in settings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file", type=Path, default=PROJECT_DIR / "airflow_settings.yaml")
    args = parser.parse_args()
    counts = load(args.file)
    print(
        f"loaded {args.file.name}: {counts['connections']} connections, {counts['pools']} pools, "
        f"{counts['variables']} variables"
    )


if __name__ == "__main__":
    main()
