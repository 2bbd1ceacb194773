"""What manufacturers and operators are told, as outbox messages.

A rejection email names the manufacturer, the file and the day, lists every reason in the spec's
wording with how many rows it affects and the first lines, and attaches the full row report.
Everything taken from the file is escaped for HTML and made safe for spreadsheets.
"""

from __future__ import annotations

import csv
import html
import io
from dataclasses import dataclass
from datetime import date

import pandas as pd

from include.mail.outbox import Message
from include.recalls.spec import DESCRIPTION
from include.recalls.validation import REPORT_COLUMNS, Finding

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "|", "%")
MAX_REPORT_ROWS = 1_000_000


@dataclass(frozen=True)
class Manufacturer:
    code: str
    name: str
    team_email: str


def spreadsheet_safe(value: object) -> str:
    """Text a spreadsheet shows as text: a leading formula character gets a quote in front."""
    text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def report_csv(report: pd.DataFrame, max_rows: int | None = MAX_REPORT_ROWS) -> bytes:
    """The row report as CSV: formula-safe, and quoted wherever a value holds a CR or LF (pandas'
    ``to_csv`` leaves a bare CR unquoted, which splits the row when it is read back)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(REPORT_COLUMNS)
    rows = report if max_rows is None else report.head(max_rows)
    for row in rows[REPORT_COLUMNS].itertuples(index=False):
        writer.writerow([spreadsheet_safe(v) for v in row])
    return out.getvalue().encode("utf-8")


def _lines(finding: Finding) -> str:
    if not finding.example_lines:
        return ""
    shown = ", ".join(str(n) for n in finding.example_lines)
    more = " and more" if finding.rows > len(finding.example_lines) else ""
    return f"line{'s' if len(finding.example_lines) > 1 else ''} {shown}{more}"


def _summary(finding: Finding) -> str:
    parts = []
    if finding.rows:
        parts.append(f"{finding.rows:,} row{'s' if finding.rows != 1 else ''}")
    if finding.example_lines:
        parts.append(_lines(finding))
    if finding.detail:
        parts.append(finding.detail)
    return "; ".join(parts)


def rejection_message(
    manufacturer: Manufacturer,
    file_name: str,
    business_date: date,
    sha256: str,
    problems: list[Finding],
    report: pd.DataFrame | None,
    *,
    upload_id: str | None = None,
) -> Message:
    subject = (
        f"Recall file rejected: {manufacturer.name} ({manufacturer.code}), {file_name}, {business_date.isoformat()}"
    )
    text = [
        f"Dear {manufacturer.name} recalls team,",
        "",
        f"The recall file {file_name!r} you uploaded for {business_date.isoformat()} was rejected,",
        "so none of it was applied and your outstanding recalls are unchanged.",
        "",
        "Reasons:",
    ]
    items = []
    for finding in problems:
        summary = _summary(finding)
        text.append(f"- {finding.reason}{': ' + summary if summary else ''}")
        text.append(f"  {DESCRIPTION.get(finding.code, '')}")
        items.append(
            f"<li><strong>{html.escape(finding.reason)}</strong>"
            + (f": {html.escape(summary)}" if summary else "")
            + f"<br><small>{html.escape(DESCRIPTION.get(finding.code, ''))}</small></li>"
        )
    has_report = report is not None and len(report) > 0
    footer = [
        "",
        "Line numbers count the header as line 1.",
        "The attached CSV lists every affected row." if has_report else "",
        "Please correct the file and upload it again.",
        "",
        f"File SHA-256: {sha256}",
    ]
    text.extend(line for line in footer if line is not None)
    body_html = (
        f"<p>Dear {html.escape(manufacturer.name)} recalls team,</p>"
        f"<p>The recall file <code>{html.escape(file_name)}</code> you uploaded for "
        f"{business_date.isoformat()} was rejected, so none of it was applied and your outstanding "
        f"recalls are unchanged.</p><p>Reasons:</p><ul>{''.join(items)}</ul>"
        "<p>Line numbers count the header as line 1."
        + (" The attached CSV lists every affected row." if has_report else "")
        + f" Please correct the file and upload it again.</p><p><small>File SHA-256: {sha256}</small></p>"
    )
    return Message(
        key=f"recall:{manufacturer.code}:rejected:{business_date.isoformat()}:{upload_id or sha256}",
        recipients=(manufacturer.team_email,),
        subject=subject,
        body_text="\n".join(text) + "\n",
        body_html=body_html,
        attachment_name=f"{manufacturer.code}-{business_date.isoformat()}-errors.csv" if has_report else None,
        attachment=report_csv(report) if has_report else None,
    )


def ops_message(key: str, ops_email: str, subject: str, lines: list[str]) -> Message:
    text = "\n".join(lines) + "\n"
    body_html = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    return Message(key=key, recipients=(ops_email,), subject=subject, body_text=text, body_html=body_html)
