"""SQL is parameterised: values from files are bound, never spliced into SQL text.

Behaviour: an MOT delivery whose values (and the file name and paths around it) are built to break
out of SQL strings is stored verbatim. (The recall file case runs through recalls_daily in
test_isolation_recalls_daily.py.) Statically: every ``execute``-like call in ``include/`` whose SQL
is built with an f-string, ``%``, ``.format`` or ``+`` splices only reviewed expressions:
identifiers from fixed lists, our own paths quoted by ``sql_literal``, or constant SQL.
"""

from __future__ import annotations

import ast
from datetime import date
from pathlib import Path

import duckdb
import pytest

from include.mot import apply_delta, delta_file_name, stage_delta
from include.warehouse import migrate
from tools import mot_samples as samples

PROJECT = Path(__file__).resolve().parents[2]
INJECTION = "'); DROP TABLE vehicles; --"
DAY = date(2024, 6, 1)
SQL_CALLS = {"execute", "executemany", "sql", "query", "read_sql"}

# file -> expressions allowed inside an SQL string built in a call, each reviewed (why it is safe).
ALLOWED = {
    "include/mot/parse.py": {
        "int(threads)",  # an int
        "sql_literal(memory_limit)",  # quoted literal of our own setting
        "query",  # one of the constant queries of the dict just above
        "sql_literal(target)",  # our own staging path, quoted
        "table",  # a fixed temp-table name of this module
        "options",  # the constant COPY options just above
    },
    "include/mot/versioning.py": {
        "table",  # one of _TEMP_TABLES
        "view",  # one of _STAGED_VIEWS or _TEMP_VIEWS
        "_parquet_list(paths)",  # our own staging paths, each quoted by sql_literal
        "assignments",  # "<column> = ?" for the fixed _AUDIT_COLUMNS
        "', '.join(columns)",  # the fixed audit column names
        "', '.join(('?' for _ in columns))",  # placeholders
        "source",  # read_parquet() of our own quoted staging paths
        "where",  # a constant WHERE clause with placeholders
    },
    "include/ops/overview.py": {"quoted"},  # our snapshot path with ' doubled
    "include/ops/publish.py": {"quoted", "alias", "name", "sql"},  # own path; uuid alias; constant QUERIES
}


def built_sql_expressions(node: ast.expr) -> list[str] | None:
    """The expressions spliced into SQL text built by ``node``; None when ``node`` builds no text."""
    if isinstance(node, ast.JoinedStr):
        return [ast.unparse(v.value) for v in node.values if isinstance(v, ast.FormattedValue)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = built_sql_expressions(node.left), built_sql_expressions(node.right)
        parts = [(p if p is not None else ([] if isinstance(side, ast.Constant) else [ast.unparse(side)]))
                 for p, side in ((left, node.left), (right, node.right))]  # fmt: skip
        return parts[0] + parts[1]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return [ast.unparse(node.right)]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return [ast.unparse(a) for a in [*node.args, *(k.value for k in node.keywords)]]
    return None


def spliced_sql() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((PROJECT / "include").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in SQL_CALLS
                and node.args
            ):
                continue
            spliced = built_sql_expressions(node.args[0])
            if spliced:
                found.setdefault(str(path.relative_to(PROJECT)), set()).update(spliced)
    return found


@pytest.mark.reliability(
    "Isolation and secrets",
    "SQL built by splicing values into its text (static scan of every execute/sql/query call in include/)",
    "only reviewed expressions are spliced (fixed identifiers, our own quoted paths, constant SQL); any new"
    " f-string, %, .format or + in an SQL call fails until reviewed; values are bound as parameters",
)
def test_sql_text_splices_only_reviewed_identifiers_and_quoted_paths():
    found = spliced_sql()
    unreviewed = {file: sorted(exprs - ALLOWED.get(file, set())) for file, exprs in found.items()}
    assert {f: e for f, e in unreviewed.items() if e} == {}
    assert found, "the scan found no built SQL at all: is it still looking at the right calls?"
    # The scan does see the dangerous shapes.
    for bad in ("f\"... = '{value}'\"", "\"... = '%s'\" % value", "\"... = '{}'\".format(value)", '"... = \'" + value'):
        call = ast.parse(f"con.execute({bad})").body[0].value
        assert built_sql_expressions(call.args[0]) == ["value"], bad


@pytest.mark.reliability(
    "Isolation and secrets",
    "an MOT delivery with '); DROP TABLE ...; -- in record values and the file name, staged under paths"
    " containing quotes",
    "applied with the values stored verbatim (registration normalised as designed); every table intact",
)
def test_sql_in_an_mot_delivery_is_stored_as_data(tmp_path):
    base = tmp_path / "it's"
    model = 'x"; DELETE FROM mot_tests; --'
    records = [
        samples.vehicle_record(
            "AB12CDE", "CREATED", [samples.mot_test(1, defects=[samples.defect(text=INJECTION)])], make=INJECTION,
            model=model,
        ),
        samples.vehicle_record(INJECTION, "CREATED", []),
    ]  # fmt: skip
    path = samples.write_delta_zip(base / "land'ing" / delta_file_name(DAY), records)
    con = duckdb.connect()
    migrate(con)
    tables_before = sorted(r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall())
    staged = stage_delta(path, DAY, base / "stag'ing")
    file_name = "delta');DROP TABLE mot_delta_files;--.zip"
    result = apply_delta(con, staged, sha256=staged.sha256, file_name=file_name)
    assert result.status == "APPLIED"
    assert sorted(con.execute("SELECT registration, make, model FROM vehicles").fetchall()) == [
        ("');DROPTABLEVEHICLES;--", "HILLMAN", "AVENGER"),  # registrations are upper-cased without spaces
        ("AB12CDE", INJECTION, model),
    ]
    assert con.execute("SELECT text FROM mot_defects").fetchall() == [(INJECTION,)]
    assert con.execute("SELECT file_name, status FROM mot_delta_files").fetchall() == [(file_name, "APPLIED")]
    tables_after = sorted(r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall())
    assert tables_after == tables_before
