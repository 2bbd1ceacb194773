"""Data Docs page views whose Jinja templates are compiled once per machine, not once per run.

GX builds a new Jinja environment for every page it renders, so each checkpoint run compiled
the same ~50 templates again (about half a second of every quality task). Jinja's file-system
bytecode cache (a private per-user directory under the system temp dir, keyed by each
template's source checksum) keeps the compiled code between runs and processes; a template
changed by a GX upgrade simply compiles again; if that directory is not safely ours, pages are
compiled as before. The views are named in :func:`gx_runner.site_config`, which GX resolves by
module and class name when it builds the site.
"""

from __future__ import annotations

from typing import Any

from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import FileSystemBytecodeCache


def _bytecode_cache() -> FileSystemBytecodeCache | None:
    """The shared cache, or None (compile as before) if its directory is not safely ours."""
    try:
        return FileSystemBytecodeCache()
    except (OSError, RuntimeError):  # Jinja refuses a directory another user owns or can write
        return None


_BYTECODE = _bytecode_cache()


class _CachedTemplates:
    """Mixin for GX's Jinja views: their environment loads compiled templates from ``_BYTECODE``."""

    env: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.env.bytecode_cache = _BYTECODE


class CachedJinjaPageView(_CachedTemplates, DefaultJinjaPageView):
    """The page view of suites and validation results."""


class CachedJinjaIndexPageView(_CachedTemplates, DefaultJinjaIndexPageView):
    """The index page view."""
