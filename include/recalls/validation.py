"""Decides whether a manufacturer's recall CSV is ACCEPTED or REJECTED, with every reason.

Checks run in the spec's order (file, encoding, header, rows, duplicates) and each stage reports
all of its problems at once, so a manufacturer can fix a file in one go. Line numbers are the ones
the manufacturer sees in an editor: the header is line 1.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from include.recalls.schema import DVSA_REF, MANUFACTURER_REF, START_DATE, VIN, recall_rows_schema
from include.recalls.spec import HEADERS, WORDING, Code, Warning_

UTF8_BOM = b"\xef\xbb\xbf"
DEFAULT_MAX_BYTES = 1 << 30
# The spec sets no line limit; a real row is under 200 bytes. A hostile multi-GB line must not become one field.
DEFAULT_MAX_LINE_BYTES = 64 << 10
EXAMPLE_LINES = 10
REPORT_COLUMNS = ["line", "severity", "code", "reason", "column", "value"]


@dataclass(frozen=True)
class Finding:
    """One reason (rejection or warning), with how many rows it affects and the first lines."""

    code: str
    detail: str = ""
    rows: int = 0
    example_lines: tuple[int, ...] = ()

    @property
    def reason(self) -> str:
        return WORDING[self.code]


@dataclass
class Verdict:
    """The outcome of validating one file. ``snapshot`` is set only for an accepted file."""

    file_name: str
    problems: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    row_count: int = 0
    report: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REPORT_COLUMNS))
    snapshot: pa.Table | None = None

    @property
    def accepted(self) -> bool:
        return not self.problems

    @property
    def codes(self) -> list[str]:
        return [p.code for p in self.problems]


SNAPSHOT_SCHEMA = pa.schema(
    [
        ("vin", pa.string()),
        ("manufacturer_campaign_reference", pa.string()),
        ("dvsa_campaign_reference", pa.string()),
        ("recall_campaign_start_date", pa.date32()),
    ]
)


def check_file_name(file_name: str) -> list[Finding]:
    name = PurePosixPath(file_name).name
    found = []
    if PurePosixPath(name).suffix.lower() != ".csv":
        found.append(Finding(Code.WRONG_FILE_EXTENSION, f"the file name is {name!r}"))
    if any(ch.isspace() for ch in name):
        found.append(Finding(Code.SPACES_IN_FILE_NAME, f"the file name is {name!r}"))
    return found


def validate_recall_file(
    data: bytes, file_name: str, *, max_bytes: int = DEFAULT_MAX_BYTES, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Verdict:
    """Validate one file's bytes. Never raises for bad input: every problem becomes a Finding."""
    verdict = Verdict(file_name=file_name, problems=check_file_name(file_name))
    if len(data) > max_bytes:
        verdict.problems.append(Finding(Code.FILE_TOO_LARGE, f"{len(data)} bytes, the limit is {max_bytes}"))
        return verdict
    body = data[len(UTF8_BOM) :] if data.startswith(UTF8_BOM) else data
    if not body or body.isspace():  # as `not body.strip()`, without copying the file
        verdict.problems.append(Finding(Code.EMPTY_FILE))
        return verdict
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        verdict.problems.append(
            Finding(Code.WRONG_ENCODING, f"the first byte that is not UTF-8 is on line {line}", 1, (line,))
        )
        return verdict
    header_problem = _check_header(text)
    if header_problem:
        verdict.problems.append(header_problem)
        return verdict
    del text  # a copy of the whole file: rows are read from the bytes (the slow path decodes again)
    frame, malformed = _read_rows(body, max_line_bytes)
    verdict.row_count = len(frame) + len(malformed)
    reports = [malformed] if len(malformed) else []
    if len(malformed):
        verdict.problems.append(_finding(Code.MALFORMED_ROW, malformed["line"]))
    row_failures = _schema_failures(frame)
    if len(row_failures):
        reports.append(row_failures)
        for code, group in row_failures.groupby("code", sort=False):
            verdict.problems.append(_finding(code, group["line"].drop_duplicates()))
    duplicates = _duplicate_findings(frame)
    for finding, rows in duplicates:
        reports.append(rows)
        (verdict.problems if finding.code in Code.__members__ else verdict.warnings).append(finding)
    vin_warnings = _vin_warnings(frame)
    if len(vin_warnings):
        reports.append(vin_warnings)
        verdict.warnings.append(_finding(Warning_.VIN_NOT_ISO_3779, vin_warnings["line"]))
    if reports:
        report = pd.concat(reports, ignore_index=True)
        verdict.report = report.sort_values(["line", "code"], kind="stable", ignore_index=True)[REPORT_COLUMNS]
    verdict.problems.sort(key=lambda f: list(Code).index(Code(f.code)))
    if verdict.accepted:
        verdict.snapshot = _snapshot(frame, has_duplicates=bool(duplicates))
    return verdict


def _finding(code: str, lines: pd.Series, detail: str = "") -> Finding:
    ordered = lines.sort_values(kind="stable")
    return Finding(code, detail, len(ordered), tuple(int(x) for x in ordered.head(EXAMPLE_LINES)))


def _check_header(text: str) -> Finding | None:
    first_line = re.split(r"\r\n?|\n", text, maxsplit=1)[0]  # any line ending, as the csv module reads
    try:
        found = [name.strip() for name in next(csv.reader([first_line]), [])]
    except csv.Error as exc:  # e.g. a header field longer than the csv module's field limit
        return Finding(Code.MISSING_COLUMN_HEADERS, f"the header line could not be read: {exc}")
    canonical = {h.lower(): h for h in HEADERS}
    # Header names are matched without regard to case or surrounding spaces: a manufacturer
    # writing "vin" means VIN, and rejecting that would help nobody.
    named = [canonical.get(name.lower(), name) for name in found]
    missing = [h for h in HEADERS if h not in named]
    if missing:
        return Finding(Code.MISSING_COLUMN_HEADERS, "missing: " + ", ".join(missing))
    unexpected = [name for name in named if name not in HEADERS]
    if unexpected or len(named) != len(HEADERS):
        extra = unexpected or [h for h in HEADERS if named.count(h) > 1]
        return Finding(Code.UNEXPECTED_COLUMN_HEADERS, "unexpected: " + ", ".join(extra))
    if tuple(named) != HEADERS:
        return Finding(Code.COLUMNS_WRONG_ORDER, f"found {', '.join(named)}; expected {', '.join(HEADERS)}")
    return None


def _read_rows(body: bytes, max_line_bytes: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The data rows as strings with their line numbers, and the rows that cannot be read.

    One numpy pass finds the line boundaries and the few lines Arrow cannot read the way the csv
    module does (a quote, a NUL, a field longer than the csv module allows). Those lines, and the
    records they start, go through the csv module; every other line is read by Arrow in one call,
    so a handful of odd rows no longer sends a 3.5M-row file down the slow path. A line longer than
    ``max_line_bytes`` is reported as malformed and read as if blank (a hostile file cannot make
    one huge field). Line numbers are the csv module's: the header is line 1.
    """
    raw = np.frombuffer(body, np.uint8)
    newlines = np.flatnonzero(raw == 10)
    starts = np.concatenate([[0], newlines + 1])  # line k is body[starts[k]:starts[k + 1]]
    if starts[-1] == len(body):
        starts = starts[:-1]  # no empty line after a final newline
    ends = np.append(newlines, len(body))[: len(starts)]  # without the newline
    carriage = np.flatnonzero(raw == 13)
    bare_cr = carriage[(carriage + 1 >= len(body)) | (raw[np.minimum(carriage + 1, len(body) - 1)] != 10)]
    quotes = np.flatnonzero(raw == 34)
    if len(bare_cr) or (len(quotes) and quotes[0] < ends[0]):
        # A bare CR is a line ending to the csv module only; a quote in the header can make the
        # header record span lines. Both are rare enough to read the whole file the slow way.
        return _read_rows_exact(body.decode("utf-8"))
    content = ends - starts - (raw[np.maximum(ends - 1, 0)] == 13)  # bytes before the line ending
    n_lines = len(starts)
    blank = content == 0
    long = content > max_line_bytes
    long[0] = False  # the header was read already
    odd = np.zeros(n_lines, bool)
    for positions in (quotes, np.flatnonzero(raw == 0)):
        odd[np.searchsorted(starts, positions, side="right") - 1] = True
    odd |= (content > csv.field_size_limit()) & ~long
    # Arrow drops a UTF-8 BOM at the start of what it reads; the csv module keeps it in the field.
    padded = np.append(raw, np.zeros(3, raw.dtype))
    odd |= (padded[starts] == 0xEF) & (padded[starts + 1] == 0xBB) & (padded[starts + 2] == 0xBF)
    odd[0] = False
    bad: list[dict] = [
        _report_row(int(k) + 1, Code.MALFORMED_ROW, None, f"longer than {max_line_bytes} bytes")
        for k in np.flatnonzero(long)
    ]
    fast = ~(blank | long | odd)
    fast[0] = False
    slow_rows: list[list[str]] = []
    slow_lines: list[int] = []
    cutoff = n_lines
    for first in np.flatnonzero(odd).tolist():
        if not fast[first] and first < cutoff and odd[first]:
            consumed, unreadable = _read_region(body, starts, long, odd, first, slow_rows, slow_lines, bad)
            fast[first : first + consumed] = False
            odd[first : first + consumed] = False
            if unreadable is not None:
                cutoff = unreadable
                break
    fast[cutoff:] = False
    lines = np.flatnonzero(fast)
    table, lines = _read_lines_fast(body, starts, ends, lines, bad)
    del newlines, starts, ends, content, blank, long, odd, fast  # ~150 MB at 3.5M lines, not needed from here
    if slow_rows:
        slow = pa.table([pa.array(col, pa.string()) for col in zip(*slow_rows, strict=True)], names=list(HEADERS))
        table = pa.concat_tables([table, slow])
        numbers = np.concatenate([lines + 1, np.array(slow_lines, np.int64)])
        order = np.argsort(numbers, kind="stable")
        table, numbers = table.take(order), numbers[order]
    else:
        numbers = lines + 1
    frame = table.to_pandas(types_mapper=lambda _: pd.StringDtype("pyarrow"))
    frame.index = pd.Index(numbers.astype("int64"), name="line", dtype="int64")
    if not bad:
        return frame, _empty_report()
    bad.sort(key=lambda row: row["line"])  # from three readers: report them in file order
    return frame, pd.DataFrame(bad, columns=REPORT_COLUMNS)


def _read_region(
    body: bytes,
    starts: np.ndarray,
    long: np.ndarray,
    odd: np.ndarray,
    first: int,
    rows: list[list[str]],
    lines: list[int],
    bad: list[dict],
) -> tuple[int, int | None]:
    """Read records with the csv module from line index ``first`` until one ends before a plain line.

    Returns how many lines were consumed, and the line index from which nothing more can be read
    (a stray quote swallowing the rest of the file), if that happened. Appends to the lists given.
    """
    n_lines = len(starts)

    def physical_lines():
        for k in range(first, n_lines):
            if long[k]:
                yield "\n"
            else:
                stop = int(starts[k + 1]) if k + 1 < n_lines else len(body)
                yield body[int(starts[k]) : stop].decode("utf-8")

    reader = csv.reader(physical_lines())
    start = first + 1
    try:
        for record in reader:
            if record:
                if len(record) == len(HEADERS):
                    rows.append(record)
                    lines.append(start)
                else:
                    bad.append(
                        _report_row(start, Code.MALFORMED_ROW, None, f"{len(record)} fields, expected {len(HEADERS)}")
                    )
            start = first + reader.line_num + 1
            following = first + reader.line_num
            if following >= n_lines or not odd[following]:
                return reader.line_num, None
    except csv.Error as exc:
        bad.append(_report_row(start, Code.MALFORMED_ROW, None, f"unreadable from here on: {exc}"))
        return n_lines - first, start - 1
    return reader.line_num, None


def _read_lines_fast(
    body: bytes, starts: np.ndarray, ends: np.ndarray, lines: np.ndarray, bad: list[dict]
) -> tuple[pa.Table, np.ndarray]:
    """Arrow reads the plain lines (no quotes), single-threaded so that it numbers the rows it skips.

    Returns the rows and their line indices; lines with the wrong field count go to ``bad``.
    """
    if not len(lines):
        return pa.table([pa.array([], pa.string())] * len(HEADERS), names=list(HEADERS)), lines
    runs = np.flatnonzero(np.diff(lines) != 1) + 1  # contiguous runs of lines, one slice each
    # Every slice but the file's last line ends with its newline, so the slices join as they are.
    pieces = [body[int(starts[run[0]]) : int(ends[run[-1]]) + 1] for run in np.split(lines, runs)]
    buffer = pieces[0] if len(pieces) == 1 else b"".join(pieces)

    skipped: list[int] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        skipped.append(row.number - 1)  # 1-based among the rows read (never a blank line here)
        line = int(lines[row.number - 1]) + 1
        bad.append(_report_row(line, Code.MALFORMED_ROW, None, f"{row.actual_columns} fields, expected {len(HEADERS)}"))
        return "skip"

    table = pacsv.read_csv(
        io.BytesIO(buffer),
        read_options=pacsv.ReadOptions(column_names=list(HEADERS), block_size=16 << 20, use_threads=False),
        parse_options=pacsv.ParseOptions(quote_char=False, invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(
            column_types={h: pa.string() for h in HEADERS},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    return table, np.delete(lines, skipped) if skipped else lines


def _read_rows_exact(text: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader)
    rows: list[list[str]] = []
    lines: list[int] = []
    bad: list[dict] = []
    start = reader.line_num + 1
    try:
        for record in reader:
            if not record:  # a blank line carries no data
                start = reader.line_num + 1
                continue
            if len(record) == len(HEADERS):
                rows.append(record)
                lines.append(start)
            else:
                bad.append(
                    _report_row(start, Code.MALFORMED_ROW, None, f"{len(record)} fields, expected {len(HEADERS)}")
                )
            start = reader.line_num + 1
    except csv.Error as exc:  # e.g. a stray quote swallowing the rest of the file: cannot resync
        bad.append(_report_row(start, Code.MALFORMED_ROW, None, f"unreadable from here on: {exc}"))
    frame = pd.DataFrame(rows, columns=list(HEADERS), dtype=pd.StringDtype("pyarrow"))
    frame.index = pd.Index(lines, name="line", dtype="int64")
    return frame, pd.DataFrame(bad, columns=REPORT_COLUMNS)


def _report_row(line: int, code: str, column: str | None, value: str | None) -> dict:
    severity = "error" if code in Code.__members__ else "warning"
    return {"line": line, "severity": severity, "code": code, "reason": WORDING[code], "column": column, "value": value}


def _empty_report() -> pd.DataFrame:
    return pd.DataFrame(columns=REPORT_COLUMNS)


def _schema_failures(frame: pd.DataFrame) -> pd.DataFrame:
    import pandera.errors

    try:
        recall_rows_schema().validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        cases = cases[cases["index"].notna() & cases["check"].isin(Code.__members__)]
        return pd.DataFrame(
            {
                "line": cases["index"].astype("int64").to_numpy(),
                "severity": "error",
                "code": cases["check"].to_numpy(),
                "reason": cases["check"].map(WORDING).to_numpy(),
                "column": cases["column"].to_numpy(),
                "value": cases["failure_case"].astype("string").to_numpy(),
            }
        )
    return _empty_report()


_DUPLICATES_SQL = """
WITH keyed AS (
    SELECT line, "VIN" AS vin, "ManufacturerRecallCampaignReference" AS ref,
           count(*) OVER (PARTITION BY "VIN", "ManufacturerRecallCampaignReference") AS copies
    FROM rows
), repeated AS (
    SELECT r.line, k.vin, k.ref, r."DVSACampaignReference" AS dvsa, r."RecallCampaignStartDate" AS start
    FROM keyed k JOIN rows r USING (line) WHERE k.copies > 1
)
SELECT line, vin, ref,
       count(DISTINCT (dvsa, start)) OVER (PARTITION BY vin, ref) > 1 AS conflicting,
       row_number() OVER (PARTITION BY vin, ref, dvsa, start ORDER BY line) > 1 AS repeat
FROM repeated ORDER BY line
"""


def _duplicate_findings(frame: pd.DataFrame) -> list[tuple[Finding, pd.DataFrame]]:
    """Same (VIN, manufacturer reference) twice: identical rows are a warning, different a rejection."""
    import duckdb

    rows = pa.Table.from_pandas(frame.reset_index(), preserve_index=False)  # noqa: F841 (read by SQL)
    con = duckdb.connect()
    try:
        found = con.execute(_DUPLICATES_SQL).fetch_df()
    finally:
        con.close()
    if found.empty:
        return []
    findings = []
    for code, selected in (
        (Code.CONFLICTING_DUPLICATE, found[found["conflicting"]]),
        (Warning_.DUPLICATE_ROW, found[~found["conflicting"] & found["repeat"]]),
    ):
        if selected.empty:
            continue
        report = pd.DataFrame(
            {
                "line": selected["line"].astype("int64").to_numpy(),
                "severity": "error" if code is Code.CONFLICTING_DUPLICATE else "warning",
                "code": code.value,
                "reason": WORDING[code],
                "column": MANUFACTURER_REF,
                "value": (selected["vin"] + " / " + selected["ref"]).to_numpy(),
            }
        )
        keys = selected[["vin", "ref"]].drop_duplicates().shape[0]
        findings.append((_finding(code, report["line"], f"{keys} VIN and reference pairs"), report))
    return findings


def _vin_warnings(frame: pd.DataFrame) -> pd.DataFrame:
    import pyarrow.compute as pc

    vin = pa.array(frame[VIN].array, type=pa.string())
    trimmed = pc.utf8_trim_whitespace(vin)
    odd = pc.and_(
        pc.not_equal(trimmed, ""),
        pc.or_(pc.not_equal(pc.utf8_length(trimmed), 17), pc.match_substring_regex(trimmed, "[IOQioq]")),
    )
    flagged = frame.loc[odd.to_numpy(zero_copy_only=False), VIN]
    return pd.DataFrame(
        {
            "line": flagged.index.to_numpy(dtype="int64"),
            "severity": "warning",
            "code": Warning_.VIN_NOT_ISO_3779.value,
            "reason": WORDING[Warning_.VIN_NOT_ISO_3779],
            "column": VIN,
            "value": flagged.to_numpy(),
        }
    )


def _snapshot(frame: pd.DataFrame, has_duplicates: bool) -> pa.Table:
    import pyarrow.compute as pc

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if has_duplicates:
        table = table.group_by(list(HEADERS), use_threads=False).aggregate([])
    dvsa = table.column(DVSA_REF)
    return pa.table(
        [
            table.column(VIN),
            table.column(MANUFACTURER_REF),
            pc.if_else(pc.equal(dvsa, ""), pa.scalar(None, pa.string()), dvsa),
            table.column(START_DATE).cast(pa.date32()),
        ],
        schema=SNAPSHOT_SCHEMA,
    )
