"""The operations page's data: what the writers publish after each commit, and the lookups.

DuckDB lets one process write the warehouse and blocks every other process, readers included,
while it does. The operations page therefore never reads the warehouse for its overview: after
each commit a writer calls :func:`publish_after_commit`, which copies the small aggregates the page
shows (recall files, outstanding counts, emails, MOT deliveries, recent quarantine) into a separate
DuckDB file next to the warehouse, written to a temporary name and atomically renamed. The page
reads that file; only the VIN and registration lookups open the warehouse, read-only, briefly.

Plain Python (DuckDB, FastAPI, Jinja2), no Airflow imports: the Airflow plugin in
``plugins/ops_page.py`` only adds authentication and reads the Variables.
"""

from include.ops.publish import publish_after_commit, snapshot_path

__all__ = ["publish_after_commit", "snapshot_path"]
