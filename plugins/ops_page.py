"""Airflow plugin: the operations page, a FastAPI app at ``/ops/`` with a nav entry "Operations".

The page itself (routes, HTML, charts, data) is ``include.ops.web``; this file adds what needs
Airflow:

* authentication: plugin apps are not protected by Airflow, so every route depends on
  ``authenticate``, which resolves the user from ``Authorization: Bearer <JWT>`` or the UI's
  ``_token`` cookie with Airflow's own ``get_user`` (the auth manager validates the token), then
  requires permission to read ``recalls_daily``'s runs. Anonymous: 401; invalid token: 403;
* the configuration: the Variables ``warehouse_path``, ``archive_path``, ``data_docs_path`` and
  ``manufacturers`` (environment ``AIRFLOW_VAR_*`` or the metadata DB), read in request handlers;
* links: the DAG run of each MOT day, and the release runs of held snapshots.

Every Airflow component imports plugin files (each task does, for macros), so this module imports
nothing heavy: the FastAPI app is built in the API server only, in the background when it starts
(a pass-through root middleware starts the warm-up) or else on the first request.
(No ``from __future__ import annotations`` here: FastAPI reads the dependencies' annotations.)
"""

import json
import logging
import threading
import time
from datetime import date, datetime, timedelta
from datetime import time as clock
from typing import Annotated, Any, ClassVar
from zoneinfo import ZoneInfo

from airflow.plugins_manager import AirflowPlugin

log = logging.getLogger(__name__)

URL_PREFIX = "/ops"
LONDON = ZoneInfo("Europe/London")
GUARDED_DAG = "recalls_daily"  # reading its runs is what the page requires
RELEASE_DAG = "recalls_release_held"
SETTINGS_TTL_SECONDS = 10.0

_settings_lock = threading.Lock()
_settings_cache: tuple[float, Any] | None = None


def _variable(key: str) -> str | None:
    from airflow.models import Variable

    value = Variable.get(key, default_var=None)
    return str(value) if value not in (None, "") else None


def settings() -> Any:
    """The Variables the page needs (an ``include.ops.web.Settings``), re-read every few seconds."""
    from include.ops.web import Settings

    global _settings_cache
    with _settings_lock:
        if _settings_cache and time.monotonic() - _settings_cache[0] < SETTINGS_TTL_SECONDS:
            return _settings_cache[1]
    names: dict[str, str] = {}
    raw = _variable("manufacturers")
    if raw:
        try:
            names = {m["code"]: m.get("name", m["code"]) for m in json.loads(raw)}
        except (ValueError, TypeError, KeyError):
            log.warning("the Variable manufacturers is not a JSON list of {code, name}")
    found = Settings(
        warehouse_path=_variable("warehouse_path"),
        archive_path=_variable("archive_path"),
        data_docs_path=_variable("data_docs_path"),
        manufacturers=names,
    )
    with _settings_lock:
        _settings_cache = (time.monotonic(), found)
    return found


def dag_runs(dag_id: str, first: date, last: date) -> dict[date, str]:
    """Run id of each business day's (latest) run of ``dag_id`` between ``first`` and ``last``."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    start = datetime.combine(first, clock(), LONDON)
    end = datetime.combine(last + timedelta(days=1), clock(), LONDON)
    with create_session() as session:
        rows = session.execute(
            select(DagRun.run_id, DagRun.logical_date)
            .where(DagRun.dag_id == dag_id, DagRun.logical_date >= start, DagRun.logical_date < end)
            .order_by(DagRun.id)
        ).all()
    return {logical.astimezone(LONDON).date(): run_id for run_id, logical in rows if logical is not None}


def release_state() -> dict[str, Any]:
    """Whether the release DAG is paused, and the latest release run of each SHA-256."""
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        paused = session.scalar(select(DagModel.is_paused).where(DagModel.dag_id == RELEASE_DAG))
        rows = session.execute(
            select(DagRun.run_id, DagRun.state, DagRun.conf)
            .where(DagRun.dag_id == RELEASE_DAG)
            .order_by(DagRun.id.desc())
            .limit(500)
        ).all()
    runs: dict[str, dict[str, str]] = {}
    for run_id, state, conf in rows:
        sha256 = conf.get("sha256") if isinstance(conf, dict) else None
        if sha256 and sha256 not in runs:
            runs[sha256] = {"run_id": run_id, "state": str(getattr(state, "value", state))}
    return {"paused": paused, "runs": runs}


def build_app() -> Any:
    """The page's FastAPI app, with Airflow's authentication."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user
    from fastapi import Depends, HTTPException, Request, status
    from fastapi.security import HTTPAuthorizationCredentials

    from include.ops.web import AirflowHooks, create_app

    async def authenticate(
        request: Request, bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
    ) -> Any:
        """The user of the request (JWT from the Bearer header, else the UI's cookie), if allowed."""
        user = await get_user(request, None, bearer)  # Airflow's own resolution: 401 / 403 on failure
        allowed = get_auth_manager().is_authorized_dag(
            method="GET", access_entity=DagAccessEntity.RUN, details=DagDetails(id=GUARDED_DAG), user=user
        )
        if not allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"Reading the runs of {GUARDED_DAG} is required")
        return user

    return create_app(
        settings=settings,
        authenticate=authenticate,
        url_prefix=URL_PREFIX,
        airflow=AirflowHooks(dag_runs=dag_runs, release_state=release_state),
    )


class LazyApp:
    """An ASGI app that builds the real one on its first request (only the API server serves it)."""

    def __init__(self) -> None:
        self._app: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = build_app()
        return self._app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        await self.get()(scope, receive, send)


app = LazyApp()


def _warm_up() -> None:
    started = time.monotonic()
    try:
        app.get().state.warm_up()
    except Exception:  # a cold first request is the only consequence
        log.warning("could not warm up the operations page", exc_info=True)
    else:
        log.info("operations page ready in %.2fs", time.monotonic() - started)


class WarmUp:
    """A pass-through root middleware: Starlette instantiates it when the API server starts, which
    builds the page's app and reads its data in the background, so the first visit is not slow."""

    def __init__(self, asgi_app: Any) -> None:
        self.app = asgi_app
        threading.Thread(target=_warm_up, name="operations-page-warm-up", daemon=True).start()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class OperationsPagePlugin(AirflowPlugin):
    name = "operations_page"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [{"app": app, "url_prefix": URL_PREFIX, "name": "Operations page"}]
    fastapi_root_middlewares: ClassVar[list[dict[str, Any]]] = [
        {"middleware": WarmUp, "name": "Operations page warm-up"}
    ]
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "Operations",
            "href": "ops/",  # relative to Airflow's base URL
            "url_route": "ops",
            "destination": "nav",
            "nav_top_level": True,
        }
    ]
