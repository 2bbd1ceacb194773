"""Shared helpers of the quality tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from include.quality.gx_runner import ExpectationSpec, run_checkpoint


@pytest.fixture
def one_row_checkpoint() -> Callable[..., dict]:
    """Run a checkpoint named ``name`` over one passing row: what the Data Docs tests exercise."""

    def run(docs_dir: Path, name: str, run_name: str | None = None) -> dict:
        return run_checkpoint(
            docs_dir,
            name,
            pd.DataFrame([{"day": run_name or "2026-11-02", "count": 0}]),
            [ExpectationSpec("expect_column_values_to_be_between", {"column": "count", "min_value": 0}, "count >= 0")],
            id_column="day",
            run_name=run_name,
        )

    return run
