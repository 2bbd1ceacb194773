"""Data quality checkpoints over the warehouse (Great Expectations 1.x, file-based context).

Each checkpoint computes a few small metric frames in DuckDB (aggregates, never whole tables in
pandas) and validates them with GX, so every run leaves a validation result and an updated Data
Docs site. Nothing here imports Airflow; ``great_expectations`` is imported only when a checkpoint
runs, because importing it takes seconds.
"""

from include.quality.gx_runner import ExpectationSpec, run_checkpoint
from include.quality.mot import run_mot_checkpoint
from include.quality.recalls import run_recall_checkpoint

__all__ = ["ExpectationSpec", "run_checkpoint", "run_mot_checkpoint", "run_recall_checkpoint"]
