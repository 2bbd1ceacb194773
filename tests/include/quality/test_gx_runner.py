"""The shared GX runner: what the Data Docs index lists as validation results accumulate."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from include.quality import gx_runner


def test_the_index_lists_only_the_newest_results_and_keeps_every_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_row_checkpoint: Callable[..., dict]
) -> None:
    """GX reads every result it lists on the index, on every run: the list is capped so a
    checkpoint does not get slower with each day of history, and older pages stay on disk."""
    monkeypatch.setattr(gx_runner, "INDEX_RESULTS", 2)
    docs = tmp_path / "docs"
    for day in ("2026-11-01", "2026-11-02", "2026-11-03"):
        assert one_row_checkpoint(docs, "index_check", day)["success"]

    pages = sorted(p.relative_to(docs).parts[2] for p in (docs / "validations" / "index_check").rglob("*.html"))
    assert pages == ["2026-11-01", "2026-11-02", "2026-11-03"]
    index = (docs / "index.html").read_text(encoding="utf-8")
    linked = set(re.findall(r"validations/index_check/([0-9-]+)/", index))
    assert linked == {"2026-11-02", "2026-11-03"}
