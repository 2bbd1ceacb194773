"""The operations page as a FastAPI app (mounted into Airflow's API server by ``plugins/ops_page.py``).

Airflow-specific parts come in as arguments: ``authenticate`` (a FastAPI dependency that returns
the user or raises 401/403), ``settings`` (the Variables) and the optional ``airflow`` hooks that
look up DAG runs. Every route depends on ``authenticate``; the OpenAPI docs are switched off so no
route is left unprotected.

HTML is rendered by Jinja2 with autoescaping on, so every value from the warehouse (file names,
VINs, codes, messages) is shown as text; charts are SVG built with escaped text
(:mod:`include.ops.charts`). The Content-Security-Policy allows only this app's own script and
stylesheet.
"""

from __future__ import annotations

import csv
import mimetypes
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.exceptions import HTTPException as StarletteHTTPException

from include.ops import overview as ov
from include.ops.charts import Series, bar_chart, hbar_chart
from include.ops.gx import SuiteVerdicts, latest_verdicts
from include.ops.lookups import (
    as_text,
    normalise_registration,
    normalise_vin,
    registration_history,
    vin_history,
)
from include.ops.readers import StateCache, WarehouseBusy, WarehouseMissing

LONDON = ZoneInfo("Europe/London")
HERE = Path(__file__).parent
STATIC_FILES = {"ops.css": "text/css; charset=utf-8", "ops.js": "text/javascript; charset=utf-8"}
LOOKUP_WAIT_SECONDS = 1.5
VIEW_CACHE_ENTRIES = 32
RECALL_DAG, MOT_DAG, RELEASE_DAG = "recalls_daily", "mot_delta_daily", "recalls_release_held"
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'self'; base-uri 'none'"
)
# Data Docs pages are GX's own HTML (it links CDN assets): shown as documents, no scripts, nothing remote.
DOCS_CSP = "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'self'"
STATUS_LABEL = {"ACCEPTED": "OK", "REJECTED": "REJ", "HELD": "HELD", "MISSING": "MISS"}
CHART_COLOURS = {
    "added": "#2f9e44",
    "fixed": "#1971c2",
    "changed": "#f08c00",
    "created": "#2f9e44",
    "updated": "#1971c2",
    "deleted": "#e03131",
    "quarantined": "#f08c00",
}


@dataclass(frozen=True)
class Settings:
    """What the page reads from Airflow's configuration (the project's Variables)."""

    warehouse_path: str | None
    archive_path: str | None = None
    data_docs_path: str | None = None
    manufacturers: dict[str, str] = field(default_factory=dict)  # code -> name

    @property
    def docs_dir(self) -> Path | None:
        if self.data_docs_path:
            return Path(self.data_docs_path)
        if self.archive_path:
            return Path(self.archive_path).parent / "data_docs"
        return None


@dataclass
class AirflowHooks:
    """Optional look-ups in Airflow's metadata DB (the plugin provides them)."""

    dag_runs: Callable[[str, date, date], dict[date, str]] | None = None  # dag_id, first, last -> day: run_id
    release_state: Callable[[], dict[str, Any]] | None = None  # {"paused": bool, "runs": {sha256: {...}}}


def abbreviation(code: str) -> str:
    return "".join(part[0] for part in code.split("_") if part)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["n"] = lambda v: "" if v is None else f"{v:,}" if isinstance(v, int) else str(v)
    env.filters["t"] = as_text
    env.filters["q"] = lambda v: quote(str(v), safe="")
    env.filters["abbr"] = abbreviation
    env.filters["pct"] = lambda v: "" if v is None else f"{v:.1%}"
    env.filters["dt"] = lambda v: "" if v is None else f"{v:%Y-%m-%d %H:%M}"
    from include.recalls.spec import WORDING

    env.globals["wording"] = lambda code: WORDING.get(code, code)
    return env


def _today() -> date:
    return datetime.now(LONDON).date()


def create_app(
    *,
    settings: Callable[[], Settings],
    authenticate: Callable[..., Any],
    url_prefix: str = "/ops",
    airflow: AirflowHooks | None = None,
    today: Callable[[], date] = _today,
) -> FastAPI:
    hooks = airflow or AirflowHooks()
    env = _environment()
    source = ov.OverviewSource()
    lookups = StateCache()

    for name in env.list_templates():  # compile now rather than on the first visit
        env.get_template(name)
    app = FastAPI(
        title="Operations page",
        dependencies=[Depends(authenticate)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    def warm_up() -> None:
        """Read the configuration, the snapshot and the GX results once, so the first visit is quick."""
        config = settings()
        if config.warehouse_path:
            source.get(config.warehouse_path)
        gx_verdicts(config.docs_dir)

    app.state.warm_up = warm_up

    def bases(request: Request) -> tuple[str, str]:
        """(this app's URL path, Airflow's URL path), both without trailing slash."""
        root = request.scope.get("root_path", "").rstrip("/")
        airflow_base = root[: -len(url_prefix)] if url_prefix and root.endswith(url_prefix) else ""
        return root, airflow_base

    def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        base, airflow_base = bases(request)
        html = env.get_template(template).render(base=base, airflow_base=airflow_base, **context)
        return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})

    def warehouse_of(config: Settings) -> str:
        if not config.warehouse_path:
            raise HTTPException(503, "The Variable warehouse_path is not set.")
        return config.warehouse_path

    def run_link(request: Request, dag_id: str, run_id: str | None) -> str | None:
        if not run_id:
            return None
        return f"{bases(request)[1]}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"

    def runs_by_day(dag_id: str, first: date, last: date) -> dict[date, str]:
        if hooks.dag_runs is None:
            return {}
        try:
            return hooks.dag_runs(dag_id, first, last)
        except Exception:  # Airflow's DB is a nicety here; the page works without it
            return {}

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        if "text/html" in request.headers.get("accept", "") and request.method == "GET":
            base, airflow_base = bases(request)
            html = env.get_template("message.html").render(
                base=base, airflow_base=airflow_base, status=exc.status_code, detail=str(exc.detail)
            )
            return HTMLResponse(html, status_code=exc.status_code, headers=headers)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        docs = request.url.path.rstrip("/").split("/").count("data-docs") > 0
        response.headers.setdefault("Content-Security-Policy", DOCS_CSP if docs else PAGE_CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in STATIC_FILES:
            raise HTTPException(404, "Not found")
        return Response(
            (HERE / "static" / name).read_bytes(),
            media_type=STATIC_FILES[name],
            headers={"Cache-Control": "private, max-age=300"},
        )

    def window(end: date | None, days: int) -> tuple[date, date]:
        last = end or today() - timedelta(days=1)
        return last - timedelta(days=days - 1), last

    views: OrderedDict[tuple, tuple[ov.Snapshot, dict[str, Any]]] = OrderedDict()
    views_lock = threading.Lock()

    def snapshot_view(
        request: Request, data: ov.Snapshot, config: Settings, last: date, days: int, chart_days: int, m: str | None
    ) -> dict[str, Any]:
        """Everything on the page that depends only on the snapshot, built once per snapshot and view."""
        base, airflow_base = bases(request)
        key = (id(data), last, days, chart_days, m, base, airflow_base, today(), tuple(config.manufacturers.items()))
        with views_lock:
            cached = views.get(key)
            if cached is not None and cached[0] is data:
                views.move_to_end(key)
                return cached[1]
        first = last - timedelta(days=days - 1)
        columns, rows = ov.grid(data, config.manufacturers, last, days)
        grid_html = grid_table(
            columns, rows, base=base, run_href=lambda run_id, day: run_link(request, RECALL_DAG, run_id)
        )
        manufacturer = m if m in {r.code for r in rows} else None
        changes = ov.daily_changes(data, last - timedelta(days=chart_days - 1), last, manufacturer)
        changes_chart = bar_chart(
            [f"{d:%d %b}" for d, *_ in changes],
            [
                Series("added", [c[1] for c in changes], CHART_COLOURS["added"]),
                Series("fixed", [c[2] for c in changes], CHART_COLOURS["fixed"]),
            ],
            title=f"Recalls added and fixed per day ({manufacturer or 'all manufacturers'})",
            chart_id="chart-recalls",
        )
        outstanding_rows = [r for r in rows if r.outstanding is not None]
        outstanding_chart = hbar_chart(
            [r.code for r in outstanding_rows],
            [r.outstanding or 0 for r in outstanding_rows],
            title="Outstanding recalls per manufacturer",
        )
        mot = ov.mot_days(data, first, last)
        mot_chart = bar_chart(
            [f"{d:%d %b}" for d, *_ in mot],
            [
                Series("created", [r[1] for r in mot], CHART_COLOURS["created"]),
                Series("updated", [r[2] for r in mot], CHART_COLOURS["updated"]),
                Series("deleted", [r[3] for r in mot], CHART_COLOURS["deleted"]),
                Series("quarantined", [r[4] for r in mot], CHART_COLOURS["quarantined"]),
            ],
            title="MOT delta: vehicles created, updated, deleted and records quarantined per day",
            stacked=True,
            chart_id="chart-mot",
        )
        yesterday = today() - timedelta(days=1)
        view = {
            "grid_html": grid_html,
            "rows": rows,
            "first": first,
            "last": last,
            "days": days,
            "earlier": first - timedelta(days=1),
            "later": min(last + timedelta(days=days), yesterday) if last < yesterday else None,
            "chart_days": chart_days,
            "manufacturer": manufacturer,
            "changes_chart": changes_chart,
            "outstanding_chart": outstanding_chart,
            "total_outstanding": sum(r.outstanding or 0 for r in rows),
            "held": ov.held(data),
            "mot_chart": mot_chart,
            "mot_rows": ov.mot_files(data, first, last),
            "quarantine": ov.quarantine(data, limit=20),
            "attention": ov.needs_attention(data, today()),
            "codes_in_view": sorted({code for r in rows for cell in r.cells for code in cell.codes}),
        }
        with views_lock:
            views[key] = (data, view)
            while len(views) > VIEW_CACHE_ENTRIES:
                views.popitem(last=False)
        return view

    @app.get("/", response_class=HTMLResponse)
    def index(
        request: Request,
        end: date | None = None,
        days: int = Query(30, ge=7, le=60),
        chart_days: int = Query(30, ge=7, le=366),
        m: str | None = Query(None, max_length=64),
    ) -> HTMLResponse:
        config = settings()
        data, freshness = source.get(warehouse_of(config))
        first, last = window(end, days)
        view = snapshot_view(request, data, config, last, days, chart_days, m)
        mot_runs = runs_by_day(MOT_DAG, first, last)
        release: dict[str, Any] = {}
        if hooks.release_state is not None:
            try:
                release = hooks.release_state()
            except Exception:  # Airflow's DB is a nicety here
                release = {}
        verdicts = gx_verdicts(config.docs_dir)
        attention = list(view["attention"])
        for suite in verdicts:
            if not suite.latest.success:
                attention.append(ov.Attention("bad", f"Great Expectations {suite.suite}: latest run failed", "quality"))
        return render(
            request,
            "index.html",
            **{**view, "attention": attention},
            freshness=freshness,
            data=data,
            release=release,
            release_dag=RELEASE_DAG,
            mot_runs={d: run_link(request, MOT_DAG, r) for d, r in mot_runs.items()},
            verdicts=verdicts,
        )

    @app.get("/api/overview")
    def api_overview(end: date | None = None, days: int = Query(30, ge=1, le=366)) -> JSONResponse:
        """The grid, outstanding counts, held snapshots and MOT days as JSON (for scripts and tests)."""
        config = settings()
        data, freshness = source.get(warehouse_of(config))
        first, last = window(end, days)
        columns, rows = ov.grid(data, config.manufacturers, last, days)
        return JSONResponse(
            {
                "published_at": as_text(data.published_at) or None,
                "publisher": data.publisher or None,
                "freshness": freshness.status,
                "days": [d.isoformat() for d in columns],
                "manufacturers": [
                    {
                        "code": r.code,
                        "name": r.name,
                        "outstanding": r.outstanding,
                        "cells": [
                            {
                                "day": c.day.isoformat(),
                                "status": c.status,
                                "codes": c.codes,
                                "files": c.later_files + 1 if c.first else 0,
                                "email": c.email_state,
                            }
                            for c in r.cells
                        ],
                    }
                    for r in rows
                ],
                "held": [
                    {
                        "manufacturer": h.row["manufacturer"],
                        "business_date": h.row["business_date"].isoformat(),
                        "sha256": h.row["sha256"],
                        "file_name": h.row["file_name"],
                        "would_fix": h.would_fix,
                        "outstanding_before": h.outstanding_before,
                    }
                    for h in ov.held(data)
                ],
                "mot": [
                    {"day": d.isoformat(), "created": c, "updated": u, "deleted": x, "quarantined": q}
                    for d, c, u, x, q in ov.mot_days(data, first, last)
                ],
            },
            headers={"Cache-Control": "no-store"},
        )

    @app.get("/file/{manufacturer}/{day}", response_class=HTMLResponse)
    def file_detail(request: Request, manufacturer: str, day: date) -> HTMLResponse:
        config = settings()
        data, freshness = source.get(warehouse_of(config))
        files = ov.day_files(data, manufacturer, day)
        if not files:
            raise HTTPException(404, f"Nothing recorded for {manufacturer} on {day.isoformat()}")
        details = [
            {
                "row": row,
                "emails": ov.emails_for(data, manufacturer, row["upload_id"]),
                "report": _report_preview(row.get("report_path"), config.archive_path),
                "run": run_link(request, RECALL_DAG, row["dag_run_id"]),
            }
            for row in files
        ]
        return render(
            request,
            "file.html",
            freshness=freshness,
            manufacturer=manufacturer,
            name=config.manufacturers.get(manufacturer, manufacturer),
            day=day,
            details=details,
            outstanding=ov.outstanding(data).get(manufacturer),
            release_dag=RELEASE_DAG,
        )

    @app.get("/file/{manufacturer}/{day}/{upload_id}/report.csv")
    def file_report(manufacturer: str, day: date, upload_id: str) -> FileResponse:
        config = settings()
        data, _ = source.get(warehouse_of(config))
        row = next((r for r in ov.day_files(data, manufacturer, day) if r["upload_id"] == upload_id), None)
        path = _inside(row.get("report_path") if row else None, config.archive_path)
        if path is None:
            raise HTTPException(404, "No row report for this file")
        safe_name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{manufacturer}_{day.isoformat()}_{row['file_name']}")
        return FileResponse(path, media_type="text/csv", filename=f"{safe_name}.report.csv")

    def lookup_error(request: Request, exc: Exception, what: str) -> HTMLResponse:
        status = 503 if isinstance(exc, WarehouseBusy) else 404
        message = (
            "The warehouse is busy: a DAG task is writing it. Retry in a few seconds."
            if isinstance(exc, WarehouseBusy)
            else "No warehouse yet: no DAG has written it."
        )
        return render(request, "message.html", status_code=status, status=status, detail=message, what=what)

    @app.get("/vin-lookup", response_class=HTMLResponse)
    def vin_page(request: Request, vin: str = Query("", max_length=200)) -> HTMLResponse:
        config = settings()
        wanted = normalise_vin(vin)
        if not wanted:
            return render(request, "vin.html", vin=vin, found=None, stale=False)
        try:
            found, stale = lookups.read(
                warehouse_of(config), ("vin", wanted), lambda con: vin_history(con, wanted), wait=LOOKUP_WAIT_SECONDS
            )
        except (WarehouseBusy, WarehouseMissing) as exc:
            return lookup_error(request, exc, "VIN lookup")
        return render(request, "vin.html", vin=wanted, found=found, stale=stale, names=config.manufacturers)

    @app.get("/vin/{vin}")
    def vin_api(vin: str) -> JSONResponse:
        """Outstanding recalls of a VIN in the recalls API's GET shape: ``{vin, manufacturer, recalls}``."""
        config = settings()
        wanted = normalise_vin(vin)
        if not wanted or len(vin) > 64:
            raise HTTPException(422, "A VIN is 1 to 64 characters")
        try:
            found, stale = lookups.read(
                warehouse_of(config), ("vin", wanted), lambda con: vin_history(con, wanted), wait=LOOKUP_WAIT_SECONDS
            )
        except WarehouseBusy:
            raise HTTPException(503, "warehouse busy, retry", headers={"Retry-After": "5"}) from None
        except WarehouseMissing:
            raise HTTPException(503, "no warehouse yet", headers={"Retry-After": "60"}) from None
        headers = {"Cache-Control": "no-store"}
        if stale:
            headers["X-Data-Stale"] = "true"  # a writer is busy: the last answer for this VIN
        return JSONResponse(found.api_payload(config.manufacturers), headers=headers)

    @app.get("/registration", response_class=HTMLResponse)
    def registration_page(request: Request, reg: str = Query("", max_length=200)) -> HTMLResponse:
        config = settings()
        wanted = normalise_registration(reg)
        if not wanted:
            return render(request, "registration.html", reg=reg, found=None, stale=False)
        try:
            found, stale = lookups.read(
                warehouse_of(config),
                ("registration", wanted),
                lambda con: registration_history(con, wanted),
                wait=LOOKUP_WAIT_SECONDS,
            )
        except (WarehouseBusy, WarehouseMissing) as exc:
            return lookup_error(request, exc, "registration lookup")
        return render(request, "registration.html", reg=wanted, found=found, stale=stale)

    @app.get("/mot/quarantine", response_class=HTMLResponse)
    def quarantine_page(request: Request, day: date | None = None) -> HTMLResponse:
        config = settings()
        data, freshness = source.get(warehouse_of(config))
        records = ov.quarantine(data, day)
        days = ov.quarantine_days(data)
        return render(request, "quarantine.html", freshness=freshness, records=records, day=day, days=days)

    @app.get("/data-docs/{path:path}")
    def data_docs(path: str = "index.html") -> FileResponse:
        config = settings()
        root = config.docs_dir
        target = _inside(str(root / (path or "index.html")) if root else None, str(root) if root else None)
        if target is None or not target.is_file():
            raise HTTPException(404, "No such Data Docs page (no checkpoint has run yet?)")
        media = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return FileResponse(target, media_type=media)

    return app


_gx_cache: dict[Path, tuple[float, tuple, list[SuiteVerdicts]]] = {}
GX_CACHE_SECONDS = 10.0


def gx_verdicts(docs_dir: Path | None) -> list[SuiteVerdicts]:
    """The latest verdicts, re-scanned when a checkpoint folder changed or every few seconds."""
    if docs_dir is None:
        return []
    validations = docs_dir.resolve().parent / "gx" / "uncommitted" / "validations"
    try:
        key = tuple(sorted((e.name, e.stat().st_mtime_ns) for e in validations.iterdir() if e.is_dir()))
    except FileNotFoundError:
        return []
    cached = _gx_cache.get(docs_dir)
    if cached and cached[1] == key and time.monotonic() - cached[0] < GX_CACHE_SECONDS:
        return cached[2]
    verdicts = latest_verdicts(docs_dir)
    _gx_cache[docs_dir] = (time.monotonic(), key, verdicts)
    return verdicts


def grid_table(
    columns: list[date], rows: list[ov.GridRow], *, base: str, run_href: Callable[[str | None, date], str | None]
) -> Markup:
    """The recall grid as HTML (built directly: 1,500 cells are too many for a template to stay fast).

    Every value is escaped; links are built from quoted path segments."""
    e = escape
    out = [
        '<table class="grid" id="recall-grid"><thead><tr><th scope="col">Manufacturer</th>',
    ]
    for d in columns:
        weekend = " weekend" if d.weekday() >= 5 else ""
        out.append(f'<th scope="col" class="day{weekend}" title="{d}">{d:%a}<br>{d:%d/%m}</th>')
    out.append('<th scope="col" class="num">Outstanding now</th></tr></thead><tbody>')
    runs: dict[tuple[str | None, date], str | None] = {}
    for row in rows:
        code = e(row.code)
        out.append(
            f'<tr data-manufacturer="{code}"><th scope="row" title="{e(row.name)}">{code}'
            f'<span class="name">{e(row.name)}</span></th>'
        )
        segment = e(quote(row.code, safe=""))
        for cell in row.cells:
            if cell.first is None:
                out.append(
                    f'<td class="cell empty" data-day="{cell.day}" title="{code} {cell.day}: nothing recorded">'
                    "&middot;</td>"
                )
                continue
            f = cell.first
            status = cell.status or ""
            title = [f"{row.code} {cell.day}: {status}"]
            if cell.released:
                title.append("released after a hold")
            if f["file_name"]:
                title.append(str(f["file_name"]))
            if cell.codes:
                title.append(", ".join(cell.codes))
            if cell.later_files:
                title.append(f"{cell.later_files} later file(s)")
            if cell.email_state:
                title.append(f"email {cell.email_state}")
            parts = [
                f'<td class="cell s-{e(status.lower())}" data-day="{cell.day}" data-status="{e(status)}"'
                f' data-codes="{e(" ".join(cell.codes))}">'
                f'<a class="status" href="{e(base)}/file/{segment}/{cell.day}" title="{e(" · ".join(title))}">'
                f"{e(STATUS_LABEL.get(status, status))}</a>"
            ]
            if cell.codes:
                parts.append(f'<span class="codes">{e(" ".join(abbreviation(c) for c in cell.codes))}</span>')
            if status == "ACCEPTED":
                parts.append(f'<span class="delta">+{f["added_count"] or 0} &minus;{f["fixed_count"] or 0}</span>')
            if cell.later_files:
                parts.append(f'<span class="more">+{cell.later_files}f</span>')
            if cell.email_state == "queued":
                parts.append('<span class="mail queued" title="email queued">&#9993;!</span>')
            elif cell.email_state:
                parts.append('<span class="mail sent" title="email sent">&#9993;</span>')
            key = (f["dag_run_id"], cell.day)
            if key not in runs:
                runs[key] = run_href(f["dag_run_id"], cell.day)
            if runs[key]:
                parts.append(f'<a class="run" href="{e(runs[key])}" data-airflow-link title="DAG run">run</a>')
            parts.append("</td>")
            out.append("".join(parts))
        out.append(f'<td class="num">{"" if row.outstanding is None else f"{row.outstanding:,}"}</td></tr>')
    out.append("</tbody></table>")
    return Markup("".join(out))


def _inside(path: str | None, root: str | None) -> Path | None:
    """``path`` resolved, if it is a file under ``root`` (never follow a path out of the folder)."""
    if not path or not root:
        return None
    resolved, base = Path(path).resolve(), Path(root).resolve()
    if resolved != base and base not in resolved.parents:
        return None
    return resolved if resolved.is_file() else None


def _report_preview(
    path: str | None, archive: str | None, limit: int = 20, count_up_to: int = 100_000
) -> dict[str, Any] | None:
    """The report's header and first rows, and its row count (counted up to ``count_up_to``)."""
    found = _inside(path, archive)
    if found is None:
        return None
    with open(found, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        rows = []
        total = 0
        for row in reader:
            total += 1
            if len(rows) < limit:
                rows.append(row)
            if total >= count_up_to:
                break
    return {"header": header, "rows": rows, "total": total, "more": total >= count_up_to}
