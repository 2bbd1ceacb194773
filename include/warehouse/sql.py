"""Running the .sql files that live next to the code that uses them."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

import duckdb

_PARAM = re.compile(r"\$([a-z_][a-z0-9_]*)")


@cache
def load_statements(package: str, name: str) -> tuple[str, ...]:
    """The statements of ``package/sql/name``; statements end with ';' at the end of a line."""
    text = resources.files(package).joinpath("sql", name).read_text(encoding="utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return tuple(s.strip() for s in re.split(r";\s*\n", body + "\n") if s.strip())


def run_sql(con: duckdb.DuckDBPyConnection, package: str, name: str, **params: Any) -> list[tuple]:
    """Run every statement of a .sql file with named parameters; returns the last one's rows.

    Values are always bound as parameters, never spliced into the SQL text.
    """
    rows: list[tuple] = []
    for statement in load_statements(package, name):
        used = {key: params[key] for key in dict.fromkeys(_PARAM.findall(statement))}
        rows = con.execute(statement, used).fetchall()
    return rows
