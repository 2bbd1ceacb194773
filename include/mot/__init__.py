"""MOT history delta ingest: plain Python, no Airflow (the DAG calls these functions).

Flow for one business day D::

    path = find_delta_file(landing, D)                   # or record_missing(...)
    staged = stage_delta(path, D, staging_dir)           # CPU only; raises DeltaRejected
    with warehouse.connect(db) as con:
        apply_delta(con, staged, sha256=staged.sha256, file_name=path.name)

A bulk file fans out: ``bulk_parts(path)`` -> one ``stage_bulk_part`` per part (in parallel,
no warehouse) -> ``apply_bulk(con, staged_parts, ...)`` takes the write lock once.
"""

from include.mot.files import (
    DeltaRejected,
    Limits,
    bulk_file_name,
    business_date_from_name,
    delta_candidate_names,
    delta_file_name,
    find_delta_file,
    sha256_file,
)
from include.mot.stage import StagedDelta, bulk_parts, combine_staged, stage_bulk_part, stage_delta
from include.mot.versioning import (
    DEFAULT_MAX_QUARANTINE_SHARE,
    ApplyResult,
    apply_bulk,
    apply_delta,
    audit_status,
    hold,
    record_missing,
    reject,
)

__all__ = [
    "DEFAULT_MAX_QUARANTINE_SHARE",
    "ApplyResult",
    "DeltaRejected",
    "Limits",
    "StagedDelta",
    "apply_bulk",
    "apply_delta",
    "audit_status",
    "bulk_file_name",
    "bulk_parts",
    "business_date_from_name",
    "combine_staged",
    "delta_candidate_names",
    "delta_file_name",
    "find_delta_file",
    "hold",
    "record_missing",
    "reject",
    "sha256_file",
    "stage_bulk_part",
    "stage_delta",
]
