"""The latest Great Expectations verdicts, read from the validation results GX keeps on disk.

``include.quality.gx_runner`` keeps the GX project next to the Data Docs folder: for Data Docs in
``<x>/data_docs`` every validation result is ``<x>/gx/uncommitted/validations/<suite>/<run name>/
<run time>/<batch>.json`` and its Data Docs page ``<x>/data_docs/validations/<suite>/<run name>/
<run time>/<batch>.html``. Run times sort as text. Results are immutable, so parsed ones are cached.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RECENT_RUNS = 14


@dataclass(frozen=True)
class Verdict:
    suite: str
    run_name: str  # the business day the checkpoint ran for
    run_time: str  # 20261122T070342.800732Z
    success: bool
    evaluated: int
    successful: int
    failed: tuple[str, ...]
    docs_page: str | None  # relative to the Data Docs folder

    @property
    def run_time_text(self) -> str:
        t = self.run_time
        return f"{t[0:4]}-{t[4:6]}-{t[6:8]} {t[9:11]}:{t[11:13]}:{t[13:15]} UTC" if len(t) >= 15 else t


@dataclass
class SuiteVerdicts:
    suite: str
    latest: Verdict
    recent: list[Verdict] = field(default_factory=list)  # newest first

    @property
    def recent_failures(self) -> int:
        return sum(1 for v in self.recent if not v.success)


_cache: dict[Path, Verdict] = {}
_cache_lock = threading.Lock()


def _describe(result: dict[str, Any]) -> str:
    config = result.get("expectation_config") or {}
    what = config.get("description") or config.get("type") or "expectation"
    details = result.get("result") or {}
    if "observed_value" in details:
        return f"{what}: observed {details['observed_value']!r}"
    if details.get("unexpected_count") is not None:
        values = details.get("partial_unexpected_list") or []
        return f"{what}: {details['unexpected_count']} unexpected" + (f" ({values[:5]!r})" if values else "")
    return what


def _parse(path: Path, docs_dir: Path, suite: str, run_name: str, run_time: str) -> Verdict:
    with _cache_lock:
        if path in _cache:
            return _cache[path]
    data = json.loads(path.read_text(encoding="utf-8"))
    statistics = data.get("statistics") or {}
    failed = tuple(_describe(r) for r in data.get("results") or [] if not r.get("success"))
    page = Path("validations") / suite / run_name / run_time / f"{path.stem}.html"
    verdict = Verdict(
        suite=suite,
        run_name=run_name,
        run_time=run_time,
        success=bool(data.get("success")),
        evaluated=int(statistics.get("evaluated_expectations") or 0),
        successful=int(statistics.get("successful_expectations") or 0),
        failed=failed,
        docs_page=page.as_posix() if (docs_dir / page).is_file() else None,
    )
    with _cache_lock:
        _cache[path] = verdict
    return verdict


def _subdirs(path: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(path) as entries:
            return [e for e in entries if e.is_dir() and not e.name.startswith(".")]
    except (FileNotFoundError, NotADirectoryError):
        return []


def latest_verdicts(docs_dir: str | Path, recent: int = RECENT_RUNS) -> list[SuiteVerdicts]:
    """Per checkpoint suite: its latest verdict and the ``recent`` latest runs (newest first)."""
    docs = Path(docs_dir).resolve()
    validations = docs.parent / "gx" / "uncommitted" / "validations"
    found = []
    for suite in sorted(_subdirs(validations), key=lambda e: e.name):
        runs = [
            (run_time.name, run_name.name, Path(run_time.path))
            for run_name in _subdirs(Path(suite.path))
            for run_time in _subdirs(Path(run_name.path))
        ]
        runs.sort(reverse=True)
        verdicts = []
        for run_time, run_name, folder in runs[:recent]:
            results = sorted(folder.glob("*.json"))
            if not results:
                continue
            parsed = [_parse(p, docs, suite.name, run_name, run_time) for p in results]
            verdict = parsed[0]
            if len(parsed) > 1:  # several batches in one run: all must pass
                verdict = Verdict(
                    suite.name,
                    run_name,
                    run_time,
                    all(v.success for v in parsed),
                    sum(v.evaluated for v in parsed),
                    sum(v.successful for v in parsed),
                    tuple(f for v in parsed for f in v.failed),
                    parsed[0].docs_page,
                )
            verdicts.append(verdict)
        if verdicts:
            found.append(SuiteVerdicts(suite.name, verdicts[0], verdicts))
    return found
