"""Run one Great Expectations 1.x checkpoint over one small pandas frame.

The GX project is file-based and lives beside the Data Docs folder: for ``docs_dir`` =
``/data/quality/data_docs`` the context is ``/data/quality/gx`` (suites, validation definitions,
checkpoints, and every validation result under ``gx/uncommitted/validations``) and the Data Docs
site is written to ``/data/quality/data_docs`` (``index.html`` at its top). Results accumulate
across runs, so Data Docs show the history of every checkpoint.

Every call re-declares the data source, asset, suite, validation definition and checkpoint under
stable names (created the first time, updated afterwards), so calling it repeatedly is safe and a
change of expectations takes effect on the next run. Runs sharing a project are serialised by a
file lock, because GX rewrites its configuration and the Data Docs index on every run.

``great_expectations`` is imported inside the functions: importing it takes seconds.
"""

from __future__ import annotations

import fcntl
import math
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

SITE_NAME = "local_site"
DATASOURCE_NAME = "warehouse_quality"
BATCH_DEFINITION_NAME = "whole_frame"
ACTION_NAME = "update_data_docs"
GX_DIR_NAME = "gx"
LOCK_NAME = ".gx_quality.lock"
MAX_REPORTED_VALUES = 20

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class ExpectationSpec:
    """A GX expectation described without importing GX.

    ``type`` is the expectation's snake-case type (``expect_column_values_to_be_between``), ``kwargs``
    its arguments, ``description`` the sentence shown in Data Docs and in the failure list.
    """

    type: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def class_name(self) -> str:
        return "".join(part.capitalize() for part in self.type.split("_"))

    def build(self) -> Any:
        import great_expectations as gx

        cls = getattr(gx.expectations, self.class_name(), None)
        if cls is None:
            raise ValueError(f"unknown Great Expectations expectation type {self.type!r}")
        kwargs = dict(self.kwargs)
        if self.description:
            kwargs["description"] = self.description
        return cls(**kwargs)


def docs_index_path(docs_dir: str | Path) -> Path:
    """Where the Data Docs site's index page is written."""
    return Path(docs_dir).resolve() / "index.html"


_VIEWS = "include.quality.gx_views"

# Validation results listed on the Data Docs index page, the most recently run first, over all
# checkpoints (about 50 days when each of the two checkpoints runs once a day; reruns and
# backfills count too). GX loads every listed result from its JSON to draw the index, on every
# run: unlimited, a year of history cost each checkpoint seconds and kept growing. Older results
# keep their pages and JSON files; they are just not linked from the index.
INDEX_RESULTS = 100


def site_config(docs_dir: str | Path) -> dict[str, Any]:
    page_view = {"module_name": _VIEWS, "class_name": "CachedJinjaPageView"}
    return {
        "class_name": "SiteBuilder",
        "site_index_builder": {
            "class_name": "DefaultSiteIndexBuilder",
            "view": {"module_name": _VIEWS, "class_name": "CachedJinjaIndexPageView"},
            "validation_results_limit": INDEX_RESULTS,
        },
        "site_section_builders": {
            section: {"view": page_view} for section in ("expectations", "validations", "profiling")
        },
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(Path(docs_dir).resolve())},
    }


@contextmanager
def _project_lock(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_NAME, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def get_context(docs_dir: str | Path) -> Any:
    """The file-based GX context rooted at ``docs_dir``'s parent, its Data Docs site at ``docs_dir``."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    docs = Path(docs_dir).resolve()
    docs.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(docs.parent))
    bars = context.variables.progress_bars
    bars = dict(bars) if isinstance(bars, Mapping) else vars(bars) if bars is not None else {}
    if bars.get("globally", True) or bars.get("metric_calculations", True):
        # Progress bars only clutter task logs.
        context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        context.variables.save()
    wanted = site_config(docs)
    sites = context.list_data_docs_sites()
    for other in [name for name in sites if name != SITE_NAME]:
        context.delete_data_docs_site(other)
    if SITE_NAME not in sites:
        context.add_data_docs_site(SITE_NAME, wanted)
    elif dict(sites[SITE_NAME]) != wanted:
        context.update_data_docs_site(SITE_NAME, wanted)
    return context


def _batch_definition(context: Any, asset_name: str) -> Any:
    try:
        datasource = context.data_sources.get(DATASOURCE_NAME)
    except (KeyError, ValueError, LookupError):
        datasource = context.data_sources.add_pandas(name=DATASOURCE_NAME)
    try:
        asset = datasource.get_asset(asset_name)
    except LookupError:
        asset = datasource.add_dataframe_asset(name=asset_name)
    try:
        return asset.get_batch_definition(BATCH_DEFINITION_NAME)
    except KeyError:
        return asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION_NAME)


def to_plain(value: Any) -> Any:
    """JSON-friendly (XCom-safe) copy of a GX result value."""
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [to_plain(v) for v in value]
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, int):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return to_plain(value.item())
    if pd.isna(value):
        return None
    return str(value)


def _describe_failure(result: Any, id_column: str | None) -> str:
    config = result.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k not in {"batch_id", "result_format"}}
    what = config.description or f"{config.type}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    details = result.result or {}
    if result.exception_info and result.exception_info.get("raised_exception"):
        return f"{what} [{config.type}]: error: {result.exception_info.get('exception_message')}"
    observed: str
    if "observed_value" in details:
        observed = f"observed {to_plain(details['observed_value'])!r}"
    else:
        values = to_plain(details.get("unexpected_list") or details.get("partial_unexpected_list") or [])
        rows = to_plain(details.get("unexpected_index_list") or details.get("partial_unexpected_index_list") or [])
        if id_column and rows and all(isinstance(row, dict) for row in rows):
            shown = [
                f"{row.get(id_column)}: " + ", ".join(f"{k}={v!r}" for k, v in row.items() if k != id_column)
                for row in rows[:MAX_REPORTED_VALUES]
            ]
            observed = "unexpected rows: " + "; ".join(shown)
        else:
            observed = f"unexpected values {values[:MAX_REPORTED_VALUES]!r}"
        count = details.get("unexpected_count")
        if count is not None:
            observed += f" ({count} of {details.get('element_count')} rows)"
    return f"{what} [{config.type} {kwargs}]: {observed}"


def run_checkpoint(
    docs_dir: str | Path,
    name: str,
    frame: pd.DataFrame,
    expectations: Sequence[ExpectationSpec | Any],
    *,
    id_column: str | None = None,
    run_name: str | None = None,
) -> dict[str, Any]:
    """Validate ``frame`` against ``expectations`` with the checkpoint ``name`` and update Data Docs.

    ``expectations`` are :class:`ExpectationSpec` or GX expectation objects. ``id_column`` names the
    column that identifies a row in failure reports (e.g. ``manufacturer``). Returns::

        {"success": bool, "failed": [str, ...], "docs_index": "/abs/path/index.html",
         "statistics": {"evaluated_expectations": n, "successful_expectations": n,
                        "unsuccessful_expectations": n, "success_percent": x, "rows": n, "seconds": x}}
    """
    if not _NAME.match(name):
        raise ValueError(f"checkpoint name {name!r} must match {_NAME.pattern}")
    if frame.empty:
        raise ValueError("refusing to validate an empty frame; add a placeholder row")
    started = time.monotonic()
    docs = Path(docs_dir).resolve()
    with _project_lock(docs.parent):
        import great_expectations as gx
        from great_expectations.checkpoint import UpdateDataDocsAction
        from great_expectations.core.run_identifier import RunIdentifier

        context = get_context(docs)
        batch_definition = _batch_definition(context, name)
        built = [spec.build() if isinstance(spec, ExpectationSpec) else spec for spec in expectations]
        suite = context.suites.add_or_update(gx.ExpectationSuite(name=name, expectations=built))
        validation = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=name, data=batch_definition, suite=suite)
        )
        result_format: dict[str, Any] = {"result_format": "COMPLETE"}
        if id_column:
            result_format["unexpected_index_column_names"] = [id_column]
        checkpoint = context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=name,
                validation_definitions=[validation],
                actions=[UpdateDataDocsAction(name=ACTION_NAME, site_names=[SITE_NAME])],
                result_format=result_format,
            )
        )
        run_id = RunIdentifier(run_name=run_name or name, run_time=datetime.now(UTC))
        outcome = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=run_id)

    failed: list[str] = []
    totals = {"evaluated_expectations": 0, "successful_expectations": 0, "unsuccessful_expectations": 0}
    for suite_result in outcome.run_results.values():
        for key in totals:
            totals[key] += int(suite_result.statistics.get(key) or 0)
        failed.extend(_describe_failure(r, id_column) for r in suite_result.results if not r.success)
    evaluated = totals["evaluated_expectations"]
    statistics = {
        **totals,
        "success_percent": round(100.0 * totals["successful_expectations"] / evaluated, 2) if evaluated else 100.0,
        "rows": len(frame),
        "seconds": round(time.monotonic() - started, 3),
    }
    return {
        "success": bool(outcome.success),
        "failed": failed,
        "docs_index": str(docs_index_path(docs)),
        "statistics": statistics,
    }
