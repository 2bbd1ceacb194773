"""Run ONE benchmark case in this process and print its measurements as JSON.

    python -m bench.case CASE IMPL --input PATH --work DIR [options]

IMPL is ``ours`` (the project's code), ``floor`` (DuckDB's plain read of the same input into a
table) or ``peer`` (the straightforward pandas + pandera job in ``bench/peers``). Set-up (imports,
copying a prepared warehouse into place) is done first and is not timed; then the peak-RSS mark is
reset and the job runs. Printed (last line, prefixed ``BENCH-RESULT``): wall and CPU seconds
(user + system, all threads, plus any child processes), peak RSS of this process during the job
(MB; it includes the interpreter and the libraries already loaded, as a task process would),
rows and bytes processed, and case-specific details. ``--profile FILE`` runs the job under
pyinstrument instead (if installed) and writes its report and hot spots.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

MARKER = "BENCH-RESULT "
MANUFACTURER = "ACME"
RECALL_DAY0 = date(2026, 10, 1)
MOT_BASE_DAY = date(2026, 11, 1)
MOT_DAY = date(2026, 11, 2)


# ----------------------------------------------------------------------------------- memory / cpu


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as handle:
        match = re.search(rf"^{field}:\s+(\d+) kB", handle.read(), re.MULTILINE)
    return int(match.group(1)) / 1024 if match else float("nan")


def reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark to its current RSS (Linux ``clear_refs`` 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    hwm = _status_mb("VmHWM")
    if hwm == hwm:  # not NaN
        return hwm
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> tuple[float, float]:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + kids.ru_utime, me.ru_stime + kids.ru_stime


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _fresh(directory: Path) -> Path:
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


def _copy_warehouse(source: str | None, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", ".wal"):
        Path(str(target) + suffix).unlink(missing_ok=True)
        if source and Path(source + suffix).exists():
            shutil.copyfile(source + suffix, str(target) + suffix)
    return target


def _literal(path: str | Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


class TimedConnection:
    """Forwards to a DuckDB connection and times each ``execute`` by statement (profile runs only)."""

    def __init__(self, con: Any, timings: dict[str, float]) -> None:
        self._con = con
        self._timings = timings

    def execute(self, query: str, *args: Any, **kwargs: Any) -> Any:
        lines = [ln.strip() for ln in str(query).splitlines() if ln.strip() and not ln.strip().startswith("--")]
        key = " ".join(lines)[:110]
        started = time.perf_counter()
        try:
            return self._con.execute(query, *args, **kwargs)
        finally:
            self._timings[key] = self._timings.get(key, 0.0) + time.perf_counter() - started

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def warm_pandera() -> None:
    """Pandera registers its pandas backends (importing hypothesis) on the first validate: do it now."""
    import pandas as pd
    import pandera.pandas as pa

    pa.DataFrameSchema({"a": pa.Column(int)}).validate(pd.DataFrame({"a": [1]}))


def warm_mot_staging(work: Path) -> None:
    """Stage a two-vehicle delta once, so imports and first-use costs fall outside the clock."""
    from bench.gen_mot import write_mot_zip
    from include.mot.stage import stage_delta

    warm = _fresh(work / "warm")
    path = write_mot_zip(warm / "delta-light-vehicle_01-11-2026.zip", count=2, processes=1)
    del path
    stage_delta(warm / "delta-light-vehicle_01-11-2026.zip", MOT_BASE_DAY, warm / "staged")
    shutil.rmtree(warm, ignore_errors=True)


class InlineExecutor:
    """A ThreadPoolExecutor stand-in that runs each task at once in the calling thread.

    pyinstrument samples only the thread that started it; profile runs of MOT staging swap the
    segment pool for this so the parse, flatten and validate steps show up in the profile.
    """

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    def __enter__(self) -> InlineExecutor:
        return self

    def __exit__(self, *_exc: Any) -> None:
        return None

    def submit(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        from concurrent.futures import Future

        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # delivered through the future, as the pool does
            future.set_exception(exc)
        return future


def _inline_staging_for_profile(args: argparse.Namespace) -> None:
    if args.profile:
        import include.mot.stage as stage

        stage.ThreadPoolExecutor = InlineExecutor


# ----------------------------------------------------------------------------------- jobs
# Each builder does the untimed set-up and returns the job to time; the job returns
# {"rows": ..., "bytes": ..., ...details}.

Job = Callable[[], dict]


def recall_intake(args: argparse.Namespace) -> Job:
    path = Path(args.input)
    size = path.stat().st_size
    work = _fresh(Path(args.work))
    if args.impl == "floor":
        import duckdb

        con = duckdb.connect()

        def floor() -> dict:
            con.execute(
                f"CREATE TABLE t AS SELECT * FROM read_csv({_literal(path)}, header = true, all_varchar = true,"
                " ignore_errors = true)"
            )
            return {"rows": con.execute("SELECT count(*) FROM t").fetchone()[0], "bytes": size}

        return floor
    if args.impl == "peer":
        from bench.peers import recalls as peer

        peer.warm_up()
        warm_pandera()
        return lambda: {"bytes": size, **peer.intake(path, work)}

    # ours: include/recalls/intake.py check_file (validate + stage), the clamd scan stubbed out
    import duckdb
    import pandera.pandas  # noqa: F401
    import pyarrow.parquet

    import include.recalls.intake as intake
    from include.landing.archive import Archive, ReceivedFile
    from include.recalls.validation import validate_recall_file
    from include.scanning.clamd import ScanResult

    warm = validate_recall_file(
        b"VIN,ManufacturerRecallCampaignReference,DVSACampaignReference,RecallCampaignStartDate\n"
        b"SAJAA00A0AA000001,ACME-2024-001,,2024-01-02\n",
        "warm.csv",
    )
    pyarrow.parquet.write_table(warm.snapshot, work / "warm.parquet")
    archive = Archive(work / "archive")
    sha = sha256_of(path)
    stored = archive.object_path(sha)
    stored.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(path, stored)
    except OSError:
        shutil.copyfile(path, stored)
    received = ReceivedFile(
        feed="recalls",
        source=MANUFACTURER,
        business_date=RECALL_DAY0.isoformat(),
        original_name=path.name,
        remote_path=f"/upload/{path.name}",
        size=size,
        remote_mtime=time.time(),
        sha256=sha,
        received_at="2026-10-01T09:00:00Z",
    )
    intake.scan_file = lambda *_a, **_k: ScanResult(False, None, "bench: scan measured separately")

    def ours() -> dict:
        outcome = intake.check_file(archive, received, first_of_day=True, clamd_host="127.0.0.1", clamd_port=1)
        return {
            "rows": outcome.row_count,
            "bytes": size,
            "status": outcome.status,
            "problems": {p["code"]: p["rows"] for p in outcome.problems},
            "warnings": {p["code"]: p["rows"] for p in outcome.warnings},
        }

    return ours


def recall_scan(args: argparse.Namespace) -> Job:
    """clamd INSTREAM of the file, as check_file does before validating (ours only)."""
    from include.scanning.clamd import scan_file

    path = Path(args.input)
    host, port = args.clamd.rsplit(":", 1)

    def clamd_cpu() -> float:
        if not args.clamd_pid:
            return 0.0
        fields = Path(f"/proc/{args.clamd_pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def ours() -> dict:
        before = clamd_cpu()
        result = scan_file(path, host, int(port))
        return {
            "rows": args.rows or 0,
            "bytes": path.stat().st_size,
            "verdict": result.verdict,
            "scanner": result.scanner,
            "clamd_cpu_s": round(clamd_cpu() - before, 3),
        }

    return ours


def _snapshots(args: argparse.Namespace) -> list[dict]:
    listed = json.loads(Path(args.snapshots).read_text())
    return [s for s in listed if s["day"] > 0][: args.days or None]


def recall_apply(args: argparse.Namespace) -> Job:
    """Apply the listed snapshots (one transaction each, in date order) to a prepared warehouse."""
    work = _fresh(Path(args.work))
    snaps = _snapshots(args)
    total_rows = sum(s["rows"] for s in snaps)
    total_bytes = sum(s["bytes"] for s in snaps)
    if args.impl == "floor":
        import duckdb

        con = duckdb.connect(str(work / "floor.duckdb"))

        def floor() -> dict:
            per_day = []
            for snap in snaps:
                started = time.perf_counter()
                con.execute(f"CREATE OR REPLACE TABLE snapshot AS SELECT * FROM read_parquet({_literal(snap['path'])})")
                per_day.append(time.perf_counter() - started)
            con.close()
            return {"rows": total_rows, "bytes": total_bytes, "per_day_s": per_day}

        return floor
    if args.impl == "peer":
        from bench.peers import recalls as peer

        state = work / "peer-state"
        shutil.copytree(args.base, state)

        def run_peer() -> dict:
            per_day, changes = [], []
            for snap in snaps:
                started = time.perf_counter()
                changes.append(peer.apply(state, RECALL_DAY0 + timedelta(days=snap["day"]), snap["path"]))
                per_day.append(time.perf_counter() - started)
            return {"rows": total_rows, "bytes": total_bytes, "per_day_s": per_day, "changes": changes[:3]}

        return run_peer

    import duckdb

    from include.recalls.state import apply_snapshot
    from include.warehouse import connect, transaction

    warehouse = _copy_warehouse(args.base, work / "warehouse.duckdb")
    shas = {s["path"]: hashlib.sha256(s["path"].encode()).hexdigest() for s in snaps}
    timings: dict[str, float] = {}

    def ours() -> dict:
        per_day, changes = [], []
        with connect(warehouse) as raw:
            con = TimedConnection(raw, timings) if args.profile else raw
            for snap in snaps:
                day = RECALL_DAY0 + timedelta(days=snap["day"])
                started = time.perf_counter()
                with transaction(con):
                    change = apply_snapshot(con, MANUFACTURER, day, shas[snap["path"]], snap["path"], snap["rows"])
                per_day.append(time.perf_counter() - started)
                changes.append(change.__dict__)
        result = {"rows": total_rows, "bytes": total_bytes, "per_day_s": per_day, "changes": changes[:3]}
        if timings:
            result["sql_seconds"] = timings
        return result

    return ours


def prepare_recall_base(args: argparse.Namespace) -> Job:
    """Untimed preparation: the warehouse (ours) or peer state holding the day-0 snapshot."""
    snap = json.loads(Path(args.snapshots).read_text())[0]
    target = Path(args.base)
    if args.impl == "peer":
        from bench.peers import recalls as peer

        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        return lambda: {"rows": snap["rows"], "bytes": snap["bytes"], **peer.apply(target, RECALL_DAY0, snap["path"])}
    from include.recalls.state import apply_snapshot
    from include.warehouse import connect, transaction

    _copy_warehouse(None, target)

    def run() -> dict:
        with connect(target) as con, transaction(con):
            change = apply_snapshot(con, MANUFACTURER, RECALL_DAY0, "0" * 64, snap["path"], snap["rows"])
        with connect(target) as con:
            con.execute("CHECKPOINT")
        return {"rows": snap["rows"], "bytes": snap["bytes"], "change": change.__dict__}

    return run


def _mot_meta(args: argparse.Namespace) -> dict:
    return json.loads(Path(args.input + ".json").read_text())


def mot_delta(args: argparse.Namespace) -> Job:
    """stage_delta, apply_delta into a warehouse holding the base load, then the MOT GX checkpoint
    (the DAG's stage, apply and quality_checks tasks)."""
    path = Path(args.input)
    meta = _mot_meta(args)
    work = _fresh(Path(args.work))
    rows, size = meta["vehicles"], meta["uncompressed_bytes"]
    if args.impl == "floor":
        import zipfile

        import duckdb

        con = duckdb.connect()

        def floor() -> dict:
            with zipfile.ZipFile(path) as zf:
                parts = [zf.extract(name, work) for name in zf.namelist()]
            listing = "[" + ", ".join(_literal(p) for p in parts) + "]"
            con.execute(
                f"CREATE TABLE t AS SELECT * FROM read_json({listing}, format = 'newline_delimited',"
                " compression = 'gzip', maximum_object_size = 67108864)"
            )
            return {"rows": con.execute("SELECT count(*) FROM t").fetchone()[0], "bytes": size}

        return floor
    if args.impl == "peer":
        from bench.peers import mot as peer

        state = work / "peer-state"
        if args.base:
            shutil.copytree(args.base, state)
        else:
            state.mkdir()
        peer.warm_up()
        warm_pandera()

        def run_peer() -> dict:
            started = time.perf_counter()
            staged = peer.stage(path, work / "staged")
            stage_s = time.perf_counter() - started
            applied = peer.apply(state, staged)
            return {
                "rows": rows,
                "bytes": size,
                "stage_s": stage_s,
                "apply_s": time.perf_counter() - started - stage_s,
                **staged["counts"],
                **applied,
            }

        return run_peer

    import duckdb
    import pandera.pandas  # noqa: F401

    from include.mot.stage import stage_delta
    from include.mot.versioning import apply_delta
    from include.quality.mot import run_mot_checkpoint
    from include.warehouse import connect

    warm_mot_staging(work)
    _inline_staging_for_profile(args)
    warehouse = _copy_warehouse(args.base, work / "warehouse.duckdb")
    sha = sha256_of(path)
    timings: dict[str, float] = {}
    # The DAG's quality_checks task runs after every apply, so the checkpoint is part of the
    # ingest. Its first run imports great_expectations and creates the file-based GX project
    # (a task process pays the import once, and the project persists between days): done here,
    # on the base day, outside the clock.
    docs = work / "data_docs"
    run_mot_checkpoint(str(warehouse), MOT_BASE_DAY, str(docs))

    def ours() -> dict:
        started = time.perf_counter()
        staged = stage_delta(path, MOT_DAY, work / "staged", sha256=sha, workers=args.workers)
        stage_s = time.perf_counter() - started
        stage_peak = peak_rss_mb()
        reset_peak_rss()
        with connect(warehouse) as raw:
            con = TimedConnection(raw, timings) if args.profile else raw
            result = apply_delta(con, staged, sha256=sha, file_name=path.name)
        applied = time.perf_counter()
        apply_peak = peak_rss_mb()
        quality = run_mot_checkpoint(str(warehouse), MOT_DAY, str(docs))
        if not quality["success"]:
            raise RuntimeError(f"MOT checkpoint failed on the bench delta: {quality['failed']}")
        out = {
            "rows": rows,
            "bytes": size,
            "stage_s": stage_s,
            "apply_s": applied - started - stage_s,
            "gx_s": time.perf_counter() - applied,
            "gx_expectations": quality["statistics"]["evaluated_expectations"],
            "stage_peak_rss_mb": stage_peak,
            "apply_peak_rss_mb": apply_peak,
            "stage_timings": staged.timings,
            "status": result.status,
            "records": result.records,
            "created": result.created,
            "updated": result.updated,
            "deleted": result.deleted,
            "quarantined": result.quarantined,
            "tests": meta["tests"],
            "defects": meta["defects"],
        }
        if timings:
            out["sql_seconds"] = timings
        return out

    return ours


def prepare_mot_base(args: argparse.Namespace) -> Job:
    """Untimed preparation: the warehouse (ours) or peer state holding the base load."""
    path = Path(args.input)
    work = _fresh(Path(args.work))
    target = Path(args.base)
    if args.impl == "peer":
        from bench.peers import mot as peer

        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)

        def run_peer() -> dict:
            return peer.apply(target, peer.stage(path, work / "staged"))

        return run_peer
    from include.mot.stage import stage_delta
    from include.mot.versioning import apply_delta
    from include.warehouse import connect

    _copy_warehouse(None, target)

    def run() -> dict:
        staged = stage_delta(path, MOT_BASE_DAY, work / "staged")
        with connect(target) as con:
            result = apply_delta(con, staged, sha256=staged.sha256, file_name=path.name)
            con.execute("CHECKPOINT")
        shutil.rmtree(work / "staged", ignore_errors=True)
        return {"status": result.status, "records": result.records}

    return run


def mot_bulk_part(args: argparse.Namespace) -> Job:
    """stage_bulk_part of one part (workers=1): one Celery task's share of the weekly bulk."""
    path = Path(args.input)
    meta = _mot_meta(args)
    part = next(p for p in meta["part_stats"] if p["name"] == args.part)
    part_rows, part_bytes = part["vehicles"], part["uncompressed_bytes"]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.impl == "floor":
        import zipfile

        import duckdb

        con = duckdb.connect(config={"threads": 1})

        def floor() -> dict:
            with zipfile.ZipFile(path) as zf:
                extracted = zf.extract(args.part, _fresh(work / "floor"))
            con.execute(
                f"CREATE TABLE t AS SELECT * FROM read_json({_literal(extracted)}, format = 'newline_delimited',"
                " compression = 'gzip', maximum_object_size = 67108864)"
            )
            return {"rows": con.execute("SELECT count(*) FROM t").fetchone()[0], "bytes": part_bytes}

        return floor
    if args.impl == "peer":
        from bench.peers import mot as peer

        peer.warm_up()
        warm_pandera()

        def run_peer() -> dict:
            staged = peer.stage(path, _fresh(work / "peer"), parts=[args.part])
            return {"rows": part_rows, "bytes": part_bytes, **staged["counts"]}

        return run_peer

    import duckdb
    import pandera.pandas  # noqa: F401

    from include.mot.stage import stage_bulk_part, staged_directory

    warm_mot_staging(work)
    _inline_staging_for_profile(args)
    sha = meta["sha256"]
    staging = work / "staged"
    index = [p["name"] for p in meta["part_stats"]].index(args.part)
    shutil.rmtree(staged_directory(staging, "bulk", MOT_DAY, sha) / f"part-{index:05d}", ignore_errors=True)

    def ours() -> dict:
        staged = stage_bulk_part(path, args.part, MOT_DAY, staging, workers=1, sha256=sha)
        staged_bytes = sum(f.stat().st_size for f in Path(staged.directory).rglob("*") if f.is_file())
        return {
            "rows": staged.records,
            "bytes": staged.uncompressed_bytes,
            "staged_bytes": staged_bytes,
            "directory": staged.directory,
            "stage_timings": staged.timings,
            "quarantined": staged.quarantined,
        }

    return ours


def mot_bulk_apply(args: argparse.Namespace) -> Job:
    """apply_bulk of every staged part into an empty warehouse: the single writer's share."""
    meta = _mot_meta(args)
    work = _fresh(Path(args.work))
    from include.mot.stage import StagedDelta
    from include.mot.versioning import apply_bulk
    from include.warehouse import connect

    staged = [StagedDelta.load(d) for d in args.staged]
    warehouse = _copy_warehouse(None, work / "warehouse.duckdb")
    timings: dict[str, float] = {}

    def ours() -> dict:
        with connect(warehouse) as raw:
            con = TimedConnection(raw, timings) if args.profile else raw
            result = apply_bulk(con, staged, sha256=meta["sha256"], file_name=Path(args.input).name)
        out = {
            "rows": sum(s.records for s in staged),
            "bytes": sum(s.uncompressed_bytes for s in staged),
            "status": result.status,
            "records": result.records,
        }
        if timings:
            out["sql_seconds"] = timings
        return out

    return ours


def dag_parse(args: argparse.Namespace) -> Job:
    """runpy of one DAG file in an interpreter that has already imported airflow.sdk."""
    import runpy

    import airflow.sdk  # noqa: F401  (the DAG processor has it loaded)

    path = Path(args.input)
    before = set(sys.modules)

    def run() -> dict:
        runpy.run_path(str(path))
        added = sorted(set(sys.modules) - before)
        heavy = [m for m in ("pandas", "pandera", "duckdb", "pyarrow", "great_expectations") if m in added]
        return {
            "rows": 0,
            "bytes": 0,
            "file_bytes": path.stat().st_size,
            "modules_imported": len(added),
            "heavy_imports": heavy,
        }

    return run


def cold_start(args: argparse.Namespace) -> Job:
    """What a fresh task process pays before its first row: imports and first-use set-up.

    Run in a new interpreter (not forked from the warm server). ``--input`` is ``recall`` or ``mot``.
    """
    work = _fresh(Path(args.work))

    def ours() -> dict:
        if args.input == "recall":
            import pyarrow.parquet as pq

            import include.recalls.intake  # noqa: F401  (the task module)
            from include.recalls.validation import validate_recall_file

            verdict = validate_recall_file(
                b"VIN,ManufacturerRecallCampaignReference,DVSACampaignReference,RecallCampaignStartDate\n"
                b"SAJAA00A0AA000001,ACME-2024-001,,2024-01-02\n",
                "warm.csv",
            )
            pq.write_table(verdict.snapshot, work / "warm.parquet")
        else:
            warm_mot_staging(work)
        return {"rows": 0, "bytes": 0}

    def floor() -> dict:
        import duckdb

        duckdb.connect().execute("SELECT 1").fetchall()
        return {"rows": 0, "bytes": 0}

    def peer() -> dict:
        if args.input == "recall":
            from bench.peers import recalls as module
        else:
            from bench.peers import mot as module
        module.warm_up()
        warm_pandera()
        return {"rows": 0, "bytes": 0}

    return {"ours": ours, "floor": floor, "peer": peer}[args.impl]


BUILDERS: dict[str, Callable[[argparse.Namespace], Job]] = {
    "cold_start": cold_start,
    "recall_intake": recall_intake,
    "recall_scan": recall_scan,
    "recall_apply": recall_apply,
    "prepare_recall_base": prepare_recall_base,
    "mot_delta": mot_delta,
    "prepare_mot_base": prepare_mot_base,
    "mot_bulk_part": mot_bulk_part,
    "mot_bulk_apply": mot_bulk_apply,
    "dag_parse": dag_parse,
}


# ----------------------------------------------------------------------------------- profiling


PROJECT_PREFIXES = ("include/", "dags/", "bench/peers/")


def hot_spots(root: Any, total: float, top: int = 10) -> list[dict]:
    """Time per function of the project: its own time plus the library code it calls directly.

    Each sample is charged to the nearest enclosing project function (``include/``, ``dags/``,
    ``bench/peers/``), so a DuckDB ``execute`` or a pandera ``validate`` shows up as the line of
    our code that asked for it.
    """
    charged: dict[tuple[str, str, int], float] = {}

    def walk(frame: Any, owner: tuple[str, str, int] | None) -> None:
        path = (frame.file_path_short or "").replace("\\", "/")
        if any(path.startswith(p) for p in PROJECT_PREFIXES):
            owner = (frame.function, path, frame.line_no or 0)
        if owner is not None:
            charged[owner] = charged.get(owner, 0.0) + frame.total_self_time  # includes [self] children
        for child in frame.children:
            if not child.is_synthetic:
                walk(child, owner)

    if root is not None:
        walk(root, None)
    ranked = sorted(charged.items(), key=lambda kv: kv[1], reverse=True)[:top]
    return [
        {"function": f, "file": p, "line": ln, "seconds": round(t, 3), "share": round(t / total, 3)}
        for (f, p, ln), t in ranked
    ]


def profile(job: Job, target: Path) -> dict:
    """Run ``job`` under pyinstrument; write the call tree and return the hot spots."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return {"profile_error": "pyinstrument is not installed (make install puts it in the venv)"}
    profiler = Profiler(interval=0.002)
    profiler.start()
    try:
        out = job()
    finally:
        profiler.stop()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(profiler.output_text(unicode=False, color=False, show_all=False), encoding="utf-8")
    session = profiler.last_session
    out["hot_spots"] = hot_spots(session.root_frame(), session.duration or 1.0)
    out["profile_file"] = str(target)
    return out


# ----------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case", choices=sorted(BUILDERS))
    parser.add_argument("impl", choices=["ours", "floor", "peer"])
    parser.add_argument("--input", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--rows", type=int, default=0)
    parser.add_argument("--base", help="prepared warehouse (ours) or peer state directory")
    parser.add_argument("--snapshots", help="JSON list of staged snapshots (recall apply)")
    parser.add_argument("--days", type=int, default=0, help="how many days after day 0 to apply")
    parser.add_argument("--workers", type=int, default=2, help="stage_delta workers (the DAG's default)")
    parser.add_argument("--part", help="bulk part name")
    parser.add_argument("--staged", nargs="*", default=[], help="staged bulk part directories")
    parser.add_argument("--clamd", default="127.0.0.1:3310")
    parser.add_argument("--clamd-pid", type=int, default=0)
    parser.add_argument("--profile", help="write a pyinstrument profile here instead of measuring")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    job = BUILDERS[args.case](args)
    setup_s = time.perf_counter() - started
    base_rss = _status_mb("VmRSS")
    if args.profile:
        result = profile(job, Path(args.profile))
        result.update(case=args.case, impl=args.impl, setup_s=setup_s, profiled=True)
        print(MARKER + json.dumps(result, default=str), flush=True)
        return result
    resettable = reset_peak_rss()
    user0, sys0 = _cpu()
    t0 = time.perf_counter()
    out = job()
    wall = time.perf_counter() - t0
    user1, sys1 = _cpu()
    result = {
        "case": args.case,
        "impl": args.impl,
        "wall_s": wall,
        "cpu_s": (user1 - user0) + (sys1 - sys0),
        "user_s": user1 - user0,
        "sys_s": sys1 - sys0,
        "peak_rss_mb": peak_rss_mb(),
        "base_rss_mb": base_rss,
        "peak_reset_before_job": resettable,
        "setup_s": setup_s,
        **out,
    }
    rows, size = result.get("rows") or 0, result.get("bytes") or 0
    result["rows_per_s"] = rows / wall if wall and rows else None
    result["mb_per_s"] = size / 1e6 / wall if wall and size else None
    print(MARKER + json.dumps(result, default=str), flush=True)
    return result


if __name__ == "__main__":
    main()
