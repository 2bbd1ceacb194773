"""The Data Docs views: GX's page templates are compiled once and then loaded from Jinja's bytecode cache."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from jinja2 import FileSystemBytecodeCache

from include.quality import gx_views


def test_pages_are_rendered_through_the_bytecode_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_row_checkpoint: Callable[..., dict]
) -> None:
    cache_dir = tmp_path / "jinja"
    cache_dir.mkdir()
    monkeypatch.setattr(gx_views, "_BYTECODE", FileSystemBytecodeCache(str(cache_dir)))

    first = one_row_checkpoint(tmp_path / "docs", "views_check")
    compiled = {p.name: p.stat().st_mtime_ns for p in cache_dir.iterdir()}
    second = one_row_checkpoint(tmp_path / "docs", "views_check")

    assert first["success"] and second["success"]
    assert Path(second["docs_index"]).is_file()
    assert len(compiled) >= 10  # the validation page, the index and the partials they include
    # the second run loaded every template it needed from the cache: nothing was written again
    assert {p.name: p.stat().st_mtime_ns for p in cache_dir.iterdir()} == compiled


def test_an_unsafe_cache_directory_means_no_cache_not_a_failed_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_row_checkpoint: Callable[..., dict]
) -> None:
    # Jinja's per-user directory under the temp dir, planted as a symlink: Jinja refuses to use it
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / f"_jinja2-cache-{os.getuid()}").symlink_to(elsewhere)

    assert gx_views._bytecode_cache() is None

    monkeypatch.setattr(gx_views, "_BYTECODE", None)
    result = one_row_checkpoint(tmp_path / "docs", "views_check")
    assert result["success"]
    assert Path(result["docs_index"]).is_file()
    assert list(elsewhere.iterdir()) == []
