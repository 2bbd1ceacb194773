"""Staging: one delivery (or one bulk part) -> columnar files on disk. CPU only, no warehouse.

Staging is deliberately separate from applying: it is the expensive part (decompress, parse,
validate) and needs no lock, so it can run in parallel (bulk parts in separate tasks or
processes) while the warehouse stays available. Its output directory, keyed by business date
and SHA-256, is also the archive of what each day said: parquet for vehicles, tests, defects and
quarantine plus ``manifest.json``, from which :class:`StagedDelta` is rebuilt in another task.

Within one call, segments are parsed by ``workers`` threads, each with its own single-threaded
in-memory DuckDB, while the calling thread decompresses the next segment: DuckDB's JSON scan is
single-threaded per file, so this is what uses both cores.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from include.atomic import private_temp
from include.mot.files import DeltaRejected, Limits, PartRef, iter_segments, list_parts, sha256_file
from include.mot.parse import QUARANTINE_SCHEMA, SegmentResult, parse_segment, staging_connection

MANIFEST = "manifest.json"


@dataclass
class StagedDelta:
    """Paths and counts of one staged delivery (or bulk part); JSON-serialisable for XCom."""

    business_date: date
    file_name: str
    sha256: str
    kind: str
    directory: str
    vehicles: list[str] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    quarantine: list[str] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)
    records: int = 0
    accepted: int = 0
    quarantined: int = 0
    uncompressed_bytes: int = 0
    stage_seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def quarantine_share(self) -> float:
        """Quarantined records / all records (0 for an empty file)."""
        return self.quarantined / self.records if self.records else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["business_date"] = self.business_date.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StagedDelta:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["business_date"] = date.fromisoformat(str(values["business_date"]))
        return cls(**values)

    @classmethod
    def load(cls, directory: str | Path) -> StagedDelta:
        """Re-read a staged delivery from its directory (the archive is the source of truth)."""
        return cls.from_dict(json.loads((Path(directory) / MANIFEST).read_text(encoding="utf-8")))


def _limits(limits: Limits | None, overrides: dict[str, Any]) -> Limits:
    return replace(limits or Limits(), **overrides)


def staged_directory(staging_dir: str | Path, kind: str, business_date: date, sha256: str) -> Path:
    """Where a delivery's staged files live: one folder per kind, day and content hash."""
    return Path(staging_dir) / kind / business_date.isoformat() / sha256[:16]


def _stage(
    path: Path,
    *,
    kind: str,
    business_date: date,
    staging_dir: str | Path,
    sha256: str | None,
    limits: Limits,
    workers: int,
    parts: list[PartRef] | None,
    part_indexes: list[int] | None,
    suffix: str = "",
) -> StagedDelta:
    started = time.perf_counter()
    sha256 = sha256 or sha256_file(path)
    directory = staged_directory(staging_dir, kind, business_date, sha256)
    if suffix:
        directory = directory / suffix
    manifest = directory / MANIFEST
    if manifest.is_file():
        return StagedDelta.load(directory)  # same bytes already staged: staging is idempotent
    if directory.exists():
        shutil.rmtree(directory)  # leftovers of an interrupted run
    if kind == "delta" and path.stat().st_size > limits.max_file_bytes:
        raise DeltaRejected(f"file is {path.stat().st_size} bytes, over the limit of {limits.max_file_bytes} bytes")
    final, directory = directory, private_temp(directory)  # published by one rename in _publish
    work = directory / "_work"
    work.mkdir(parents=True)
    staged = StagedDelta(business_date, path.name, sha256, kind, str(directory))
    local = threading.local()
    connections: list[duckdb.DuckDBPyConnection] = []
    lock = threading.Lock()

    def worker(segment_) -> SegmentResult:
        con = getattr(local, "con", None)
        if con is None:
            con = local.con = staging_connection(threads=1)
            with lock:
                connections.append(con)
        try:
            return parse_segment(con, segment_, directory, limits, kind=kind)
        finally:
            segment_.path.unlink(missing_ok=True)

    results: list[SegmentResult] = []
    pending: deque[Future[SegmentResult]] = deque()
    seen_parts: list[str] = []
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="mot-stage") as pool:
            try:
                for segment in iter_segments(path, work, limits, parts=parts, part_indexes=part_indexes):
                    staged.uncompressed_bytes += segment.bytes
                    if segment.part not in seen_parts:
                        seen_parts.append(segment.part)
                    pending.append(pool.submit(worker, segment))
                    while len(pending) > workers:
                        results.append(pending.popleft().result())
                while pending:
                    results.append(pending.popleft().result())
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    finally:
        for con in connections:
            con.close()
    shutil.rmtree(work, ignore_errors=True)

    staged.parts = seen_parts
    for result in results:
        staged.records += result.records
        staged.accepted += result.accepted
        staged.quarantined += result.quarantined
        for name in ("vehicles", "tests", "defects"):
            produced = getattr(result, f"{name}_path")
            if produced is not None:
                getattr(staged, name).append(str(produced))
        for step, seconds in result.seconds.items():
            staged.timings[step] = staged.timings.get(step, 0.0) + seconds
    quarantine = [r.quarantine for r in results if r.quarantine.num_rows]
    if quarantine:
        target = directory / "quarantine.parquet"
        pq.write_table(pa.concat_tables(quarantine).cast(QUARANTINE_SCHEMA), target)
        staged.quarantine = [str(target)]
    staged.stage_seconds = time.perf_counter() - started
    return _publish(staged, directory, final)


def _publish(staged: StagedDelta, building: Path, final: Path) -> StagedDelta:
    """Move a finished staging folder into place in one rename.

    Each run stages into a folder of its own, so two runs staging the same delivery at once (a
    backfill overlapping a scheduled run) never see or delete each other's half-written files;
    the first to finish wins and the other uses its result.
    """

    def moved(value: str) -> str:
        return str(final / Path(value).relative_to(building))

    for name in ("vehicles", "tests", "defects", "quarantine"):
        setattr(staged, name, [moved(v) for v in getattr(staged, name)])
    staged.directory = str(final)
    (building / MANIFEST).write_text(json.dumps(staged.to_dict(), indent=2, sort_keys=True), encoding="utf-8")
    try:
        os.rename(building, final)
    except OSError:
        if not (final / MANIFEST).is_file():
            raise
        shutil.rmtree(building, ignore_errors=True)  # another run staged the same bytes first
        return StagedDelta.load(final)
    return staged


def stage_delta(
    path: str | Path,
    business_date: date,
    staging_dir: str | Path,
    *,
    limits: Limits | None = None,
    workers: int = 2,
    sha256: str | None = None,
    **limit_overrides: Any,
) -> StagedDelta:
    """Stage one day's delta (zip of ``.json.gz`` parts, a bare ``.json.gz`` or ``.jsonl``).

    Raises :class:`~include.mot.files.DeltaRejected` (with part and line) when the file is
    structurally unusable; record-level problems are quarantined instead and counted. Limits
    are keyword overrides of :class:`~include.mot.files.Limits`, e.g. ``max_line_bytes=...``.
    """
    return _stage(
        Path(path),
        kind="delta",
        business_date=business_date,
        staging_dir=staging_dir,
        sha256=sha256,
        limits=_limits(limits, limit_overrides),
        workers=workers,
        parts=None,
        part_indexes=None,
    )


def bulk_parts(path: str | Path) -> list[str]:
    """Part names of a bulk zip, in order: fan out one :func:`stage_bulk_part` call per name."""
    return [p.name for p in list_parts(path)]


def stage_bulk_part(
    path: str | Path,
    part_name: str,
    business_date: date,
    staging_dir: str | Path,
    *,
    limits: Limits | None = None,
    workers: int = 1,
    sha256: str | None = None,
    **limit_overrides: Any,
) -> StagedDelta:
    """Stage one part of a bulk file; independent of every other part (run them in parallel).

    Pass the file's ``sha256`` when fanning out so each task does not re-hash tens of GB.
    Records of a bulk file carry no change type: they are staged as CREATED.
    """
    path = Path(path)
    all_parts = list_parts(path)
    names = [p.name for p in all_parts]
    if part_name not in names:
        raise DeltaRejected(f"no part {part_name!r} in {path.name}")
    index = names.index(part_name)
    return _stage(
        path,
        kind="bulk",
        business_date=business_date,
        staging_dir=staging_dir,
        sha256=sha256,
        limits=_limits(limits, limit_overrides),
        workers=workers,
        parts=[all_parts[index]],
        part_indexes=[index],
        suffix=f"part-{index:05d}",
    )


def combine_staged(staged_parts: list[StagedDelta]) -> StagedDelta:
    """One StagedDelta over several staged bulk parts (what :func:`apply_bulk` consumes)."""
    if not staged_parts:
        raise ValueError("no staged parts")
    first = staged_parts[0]
    if len({(s.business_date, s.sha256, s.kind) for s in staged_parts}) != 1:
        raise ValueError("staged parts come from different files")
    combined = StagedDelta(first.business_date, first.file_name, first.sha256, first.kind, first.directory)
    for staged in sorted(staged_parts, key=lambda s: s.directory):
        combined.vehicles += staged.vehicles
        combined.tests += staged.tests
        combined.defects += staged.defects
        combined.parts += staged.parts
        combined.records += staged.records
        combined.accepted += staged.accepted
        combined.quarantined += staged.quarantined
        combined.uncompressed_bytes += staged.uncompressed_bytes
        combined.stage_seconds += staged.stage_seconds
        combined.quarantine += staged.quarantine
    return combined
