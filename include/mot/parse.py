"""JSON-lines segments -> flattened, validated vehicle / test / defect parquet + quarantine.

The hot path is a single DuckDB ``read_json`` per segment with an explicit nested column list
(unknown fields are skipped by the scanner, never materialised), followed by SQL ``UNNEST``
into the three frames, pandera validation of the rows of *suspect* records only (a SQL
prefilter, ``sql/suspects.sql``, finds the records that might break a rule; clean files skip
pandera entirely), and a parquet ``COPY`` of the accepted rows. Python touches individual lines only to explain a
failure: the exact line of a JSON syntax error, or the raw text of a quarantined record.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import NoReturn

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from include.mot import schema
from include.mot.files import UTF8_BOM, DeltaRejected, Limits, Segment

VEHICLE_FIELDS = (
    "registration",
    "firstUsedDate",
    "registrationDate",
    "manufactureDate",
    "primaryColour",
    "secondaryColour",
    "engineSize",
    "model",
    "make",
    "fuelType",
    "lastMotTestDate",
    "dataSource",
    "modification",
    "last_modification",
)
TEST_FIELDS = (
    "completedDate",
    "motTestNumber",
    "dataSource",
    "expiryDate",
    "regMarkTimeOfTest",
    "registrationAtTimeOfTest",
    "testResult",
    "odometerValue",
    "odometerUnit",
    "odometerResultType",
)
DEFECT_FIELDS = ("dangerous", "text", "type")

_READ_FIELDS = frozenset((*VEHICLE_FIELDS, "motTests"))  # the top-level fields read_json is given

_DEFECT_TYPE = "STRUCT(" + ", ".join(f'"{f}" VARCHAR' for f in DEFECT_FIELDS) + ")[]"
_TESTS_TYPE = "STRUCT(" + ", ".join(f'"{f}" VARCHAR' for f in TEST_FIELDS) + f", defects {_DEFECT_TYPE})[]"

# Record ids: part index, segment index and ordinal packed so that ordering by rec is file order.
PART_SHIFT = 40
SEGMENT_SHIFT = 28

QUARANTINE_SCHEMA = pa.schema(
    [
        ("rec", pa.int64()),
        ("part", pa.string()),
        ("line", pa.int64()),
        ("registration", pa.string()),
        ("reason", pa.string()),
        ("record", pa.string()),
    ]
)


@cache
def sql_text(name: str) -> str:
    """A statement file from ``include/mot/sql`` (SQL lives beside the code, not in strings)."""
    return resources.files("include.mot").joinpath("sql").joinpath(name).read_text(encoding="utf-8")


def sql_literal(value: str | Path) -> str:
    """A single-quoted SQL string literal (paths are ours, but quote them properly anyway)."""
    return "'" + str(value).replace("'", "''") + "'"


def _columns_literal(tests_as_json: bool) -> str:
    items = [f"{sql_literal(f)}: 'VARCHAR'" for f in VEHICLE_FIELDS]
    items.append(f"'motTests': {sql_literal('JSON' if tests_as_json else _TESTS_TYPE)}")
    return "{" + ", ".join(items) + "}"


def _json_shape(fields: tuple[str, ...], extra: dict[str, str] | None = None) -> str:
    shape = {f: "VARCHAR" for f in fields}
    shape.update(extra or {})
    return sql_literal(json.dumps([shape]))


def staging_connection(*, threads: int | None = None, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for CPU work: no warehouse file, so no write lock is ever held."""
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = {sql_literal(memory_limit)}")
    con.execute(sql_text("parse_macros.sql"))
    return con


def _fill(template: str, **values: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)


def _params(sql: str, params: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in params.items() if f"${k}" in sql}


def split_statements(script: str) -> list[str]:
    """Statements of a .sql file: whole-line ``--`` comments dropped, split on ``;``.

    Our SQL files keep semicolons out of string literals and inline comments, so this simple
    split is exact; it lets each statement get its own named parameters.
    """
    body = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def _run(con: duckdb.DuckDBPyConnection, script: str, params: dict[str, object]) -> None:
    for statement in split_statements(script):
        con.execute(statement, _params(statement, params))


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """DuckDB refuses an object with a repeated key; Python would silently keep the last one."""
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        counts = Counter(keys)
        repeated = next(key for key in keys if counts[key] > 1)
        raise ValueError(f"duplicate key {repeated!r}")
    return dict(pairs)


_JSON_TYPE_NAMES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


def locate_syntax_error(con: duckdb.DuckDBPyConnection, segment: Segment) -> tuple[int, str] | None:
    """(part line, message) of the first line DuckDB's reader refuses, or None if none is found.

    Only called after DuckDB refused the segment, so the per-line Python parse is off the hot
    path; it gives the precise message (column, repeated key). Python's parser and DuckDB's do
    not agree on everything, and the line blamed must be one DuckDB refuses, so on every line
    where they may differ DuckDB (on ``con``, the caller's connection: this runs in staging
    threads) has the last word:

    - a line Python refuses that DuckDB reads as an object (a trailing comma) is not at fault;
    - a line too deep for Python's recursive parser is checked by DuckDB's iterative one;
    - a line Python accepts with an unpaired UTF-16 surrogate escape is one DuckDB refuses.

    When no line is found at fault, the caller keeps DuckDB's own error rather than guessing.
    """
    with open(segment.path, "rb") as handle:
        for offset, raw in enumerate(handle):
            if offset == 0 and segment.first_line == 1 and raw.startswith(UTF8_BOM):
                raw = raw[len(UTF8_BOM) :]  # skipped at the very start of a part, as DuckDB does
            text = raw.strip()
            if not text:
                continue
            line = segment.first_line + offset
            try:
                # decoded strictly first: json.loads(bytes) would drop a byte order mark and let
                # surrogate bytes through, both of which DuckDB refuses
                decoded = text.decode("utf-8")
            except UnicodeDecodeError as exc:
                return line, f"invalid JSON: {exc}"
            try:
                value = json.loads(decoded, object_pairs_hook=_no_duplicate_keys)
            except (ValueError, RecursionError) as exc:  # RecursionError: deep, maybe valid
                problem = _duckdb_line_problem(con, decoded)
                if problem is None:
                    continue
                if problem == _NOT_WELL_FORMED and isinstance(exc, ValueError):
                    problem = f"invalid JSON: {exc}"  # Python's message says where
                return line, problem
            if not isinstance(value, dict):
                kind = _JSON_TYPE_NAMES.get(type(value), "null")
                return line, f"line is a JSON {kind}, not an object"
            if _SURROGATE_ESCAPE.search(decoded):
                # Python turns an unpaired escape into a lone surrogate, which no UTF-8 can hold
                lone = _LONE_SURROGATE.search(json.dumps(value, ensure_ascii=False))
                if lone is not None and _duckdb_line_problem(con, decoded) is not None:
                    return line, f"invalid JSON: unpaired UTF-16 surrogate escape \\u{ord(lone[0]):04x} in a string"
    return None


_NOT_WELL_FORMED = "invalid JSON: not well-formed"
# a \uD800-\uDFFF escape; a hint only (it may be an escaped backslash followed by "ud800")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _duckdb_line_problem(con: duckdb.DuckDBPyConnection, decoded: str) -> str | None:
    """Why DuckDB's parser refuses a line, or None if it reads an object with distinct keys."""
    # one query: CASE evaluates json_type and json_keys only where the line parses
    valid, kind, keys = con.execute(
        "SELECT json_valid($text), CASE WHEN json_valid($text) THEN json_type($text) END,"
        " CASE WHEN json_valid($text) AND json_type($text) = 'OBJECT' THEN json_keys($text) END",
        {"text": decoded},
    ).fetchone()
    if not valid:
        return _NOT_WELL_FORMED
    if kind != "OBJECT":
        return f"line is a JSON {str(kind).lower()}, not an object"
    try:
        # DuckDB's reader only minds a repeated key among the fields it reads
        _no_duplicate_keys([(key, None) for key in keys if key in _READ_FIELDS])
    except ValueError as exc:
        return f"invalid JSON: {exc}"
    return None


def read_and_flatten(
    con: duckdb.DuckDBPyConnection, segment: Segment, limits: Limits, params: dict[str, object]
) -> str:
    """Flatten one segment into ``mot_seg_vehicles`` / ``_tests`` / ``_defects``; returns the path used.

    The fast path exposes the segment as a *view* (``read_typed.sql``), so each flatten query
    scans the file for just the columns it needs: the vehicle columns without converting the
    nested tests (a fraction of the cost), then the tests once. That beats materialising every
    record as a nested table and scanning it twice. A field of the wrong shape makes the typed
    scan fail; the segment is then read by ``read_fallback.sql`` into a table that flags such
    records for quarantine. Raises DeltaRejected (with part and line) when the segment is not
    JSON lines at all.
    """
    common = {"path": sql_literal(segment.path), "max_object_size": str(limits.max_line_bytes + 16)}
    con.execute(_fill(sql_text("read_typed.sql"), columns=_columns_literal(False), **common))
    try:
        _flatten(con, params)
        return "typed"
    except duckdb.Error as exc:
        message = str(exc)
        if "transform" not in message.lower() and "expected" not in message.lower():
            _reject_at_syntax_error(con, segment, exc)
    con.execute("DROP VIEW mot_seg_records")
    try:
        con.execute(
            _fill(
                sql_text("read_fallback.sql"),
                json_columns=_columns_literal(True),
                tests_json_shape=_json_shape(TEST_FIELDS, {"defects": "JSON"}),
                defects_json_shape=_json_shape(DEFECT_FIELDS),
                tests_type=_TESTS_TYPE,
                tests_fields=", ".join(f'"{f}" := t."{f}"' for f in TEST_FIELDS),
                **common,
            )
        )
    except duckdb.Error as exc:
        _reject_at_syntax_error(con, segment, exc)
    _flatten(con, params)
    return "fallback"


def _flatten(con: duckdb.DuckDBPyConnection, params: dict[str, object]) -> None:
    _run(con, sql_text("flatten_vehicles.sql"), params)
    _run(con, sql_text("flatten_tests.sql"), params)


def _reject_at_syntax_error(con: duckdb.DuckDBPyConnection, segment: Segment, exc: duckdb.Error) -> NoReturn:
    """Turn a failed scan into a rejection naming the line; re-raise if no line is at fault."""
    found = locate_syntax_error(con, segment)
    if found is None:
        raise exc
    line, why = found
    raise DeltaRejected(why, part=segment.part, line=line) from exc


_CHECKED_COLUMNS = {
    "mot_seg_vehicles": "rec, ordinal, registration_raw, registration, modification, structure_error, "
    "first_used_date_raw, first_used_date, registration_date_raw, registration_date, "
    "manufacture_date_raw, manufacture_date, last_mot_test_date_raw, last_mot_test_date",
    "mot_seg_tests": "rec, mot_test_number_raw, mot_test_number, completed_date_raw, completed_date, test_result, "
    "expiry_date_raw, expiry_date, odometer_value, odometer_unit, odometer_result_type",
    "mot_seg_defects": "rec, type, text IS NOT NULL AS has_text, dangerous_raw, dangerous",
}


def _frame(con: duckdb.DuckDBPyConnection, table: str) -> pd.DataFrame:
    """The checked columns of the suspect records' rows, as an Arrow-backed pandas frame.

    Only rows of records listed in ``mot_seg_suspects`` (see ``sql/suspects.sql``) are fetched:
    pandera's checks are per row, and uniqueness is within one record, so validating just these
    rows yields the same failures as validating the whole frame.
    """
    query = f"SELECT {_CHECKED_COLUMNS[table]} FROM {table} SEMI JOIN mot_seg_suspects USING (rec) ORDER BY rec"
    return con.sql(query).to_arrow_table().to_pandas(types_mapper=pd.ArrowDtype)


@dataclass
class SegmentResult:
    """What one segment produced: parquet paths (None when empty) and record counts."""

    part: str
    records: int
    accepted: int
    quarantined: int
    vehicles_path: Path | None
    tests_path: Path | None
    defects_path: Path | None
    quarantine: pa.Table
    path_used: str
    seconds: dict[str, float]


class _Clock:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self._last
        self._last = now


def parse_segment(
    con: duckdb.DuckDBPyConnection,
    segment: Segment,
    out_dir: Path,
    limits: Limits,
    *,
    kind: str = "delta",
) -> SegmentResult:
    """Parse, flatten, validate and stage one segment.

    Records failing the pandera schemas are left out of the parquet files and returned as
    quarantine rows (reason, part, line, raw text); nothing else about the file is decided here.
    """
    clock = _Clock()
    rec_base = (segment.part_index << PART_SHIFT) + (segment.index << SEGMENT_SHIFT)
    params = {"rec_base": rec_base, "default_modification": "CREATED" if kind == "bulk" else None}
    path_used = read_and_flatten(con, segment, limits, params)
    clock.lap("read_flatten")

    record_count = con.execute("SELECT count(*) FROM mot_seg_vehicles").fetchall()[0][0]
    record_lines = segment.record_lines()
    _run(con, sql_text("suspects.sql"), params)
    if con.execute("SELECT count(*) FROM mot_seg_suspects").fetchall()[0][0]:
        vehicles = _frame(con, "mot_seg_vehicles")
        tests = _frame(con, "mot_seg_tests")
        defects = _frame(con, "mot_seg_defects")
        failures = pd.concat(
            [
                schema.failing_records(schema.vehicle_schema(require_modification=kind != "bulk"), vehicles),
                schema.failing_records(schema.test_schema(), tests),
                schema.failing_records(schema.defect_schema(), defects),
            ],
            ignore_index=True,
        )
        del tests, defects
        quarantine = _quarantine_rows(segment, vehicles, failures, record_lines)
    else:
        quarantine = QUARANTINE_SCHEMA.empty_table()
    clock.lap("validate")

    if segment.blank_lines.size:
        lines = pa.table({"ordinal": range(1, len(record_lines) + 1), "line": record_lines})
        line_expr, lines_join = "l.line", "JOIN mot_seg_lines l USING (ordinal)"
        con.register("mot_seg_lines", lines)
    else:  # no blank lines: record ordinal n is simply the segment's n-th line
        line_expr, lines_join = f"CAST(v.ordinal + {int(segment.first_line) - 1} AS BIGINT) AS line", ""
    if quarantine.num_rows:
        con.register("mot_seg_quarantined", pa.table({"rec": quarantine.column("rec")}))
        anti_join = "ANTI JOIN mot_seg_quarantined q USING (rec)"
    else:
        anti_join = ""

    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"p{segment.part_index:05d}-s{segment.index:04d}"
    accepted = record_count - quarantine.num_rows
    paths: dict[str, Path | None] = {"vehicles": None, "tests": None, "defects": None}
    # always write the files, even empty: the apply reads a fixed set of columns
    copies = {
        "vehicles": f"""
            SELECT v.rec, {sql_literal(segment.part)} AS part, {line_expr}, v.registration, v.modification,
                   v.make, v.model, v.primary_colour, v.secondary_colour, v.fuel_type, v.engine_size,
                   v.first_used_date, v.registration_date, v.manufacture_date, v.last_mot_test_date,
                   v.data_source
            FROM mot_seg_vehicles v {lines_join}
            {anti_join}""",
        "tests": f"""
            SELECT t.rec, t.registration, t.mot_test_number, t.registration_at_time_of_test, t.completed_date,
                   t.test_result, t.expiry_date, t.odometer_value, t.odometer_unit, t.odometer_result_type,
                   t.data_source
            FROM mot_seg_tests t {anti_join}""",
        "defects": f"""
            SELECT d.rec, d.mot_test_number, d.type, d.text, d.dangerous
            FROM mot_seg_defects d {anti_join}""",
    }
    # zstd level 1: about a fifth less CPU than the default level 3 for ~7 % larger files
    options = "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1"
    for name, query in copies.items():
        target = out_dir / f"{name}-{stem}.parquet"
        con.execute(f"COPY ({query}) TO {sql_literal(target)} ({options})")
        paths[name] = target
    clock.lap("write")
    if quarantine.num_rows:
        con.unregister("mot_seg_quarantined")
    if lines_join:
        con.unregister("mot_seg_lines")
    con.execute("DROP VIEW mot_seg_records" if path_used == "typed" else "DROP TABLE mot_seg_records")
    for table in ("mot_seg_suspects", "mot_seg_vehicles", "mot_seg_tests", "mot_seg_defects"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return SegmentResult(
        part=segment.part,
        records=record_count,
        accepted=accepted,
        quarantined=quarantine.num_rows,
        vehicles_path=paths["vehicles"],
        tests_path=paths["tests"],
        defects_path=paths["defects"],
        quarantine=quarantine,
        path_used=path_used,
        seconds=clock.laps,
    )


def _quarantine_rows(
    segment: Segment, vehicles: pd.DataFrame, failures: pd.DataFrame, record_lines: np.ndarray
) -> pa.Table:
    """One row per failing record: every reason joined, location, and the raw line as evidence."""
    if failures.empty:
        return QUARANTINE_SCHEMA.empty_table()
    reasons = failures.groupby("rec", sort=True)["reason"].agg(lambda r: "; ".join(sorted(set(r))))
    info = vehicles.set_index("rec").loc[reasons.index, ["ordinal", "registration_raw"]]
    ordinals = info["ordinal"].to_numpy(dtype="int64")
    lines = [int(record_lines[o - 1]) for o in ordinals]
    return pa.table(
        {
            "rec": pa.array(reasons.index.to_numpy(dtype="int64")),
            "part": pa.array([segment.part] * len(lines), pa.string()),
            "line": pa.array(lines, pa.int64()),
            "registration": pa.array(
                info["registration_raw"].astype(object).where(info["registration_raw"].notna(), None).tolist(),
                pa.string(),
            ),
            "reason": pa.array(reasons.tolist(), pa.string()),
            "record": pa.array([segment.read_line(line) for line in lines], pa.string()),
        },
        schema=QUARANTINE_SCHEMA,
    )
