"""Benchmark of the operations page with a year of history for 50 manufacturers.

    .venv/bin/python -m tests.plugins.bench_ops_page [--recalls 5000000] [--vehicles 1000000] [--work DIR]

Builds a warehouse with the project's schema (migrations) holding 365 business days x 50
manufacturers of recall files (accepted with counts, rejected with codes and emails, missing,
second files of a day, held snapshots), ``--recalls`` recall keys with their history, a year of
MOT deliveries with quarantined records, ``--vehicles`` versioned vehicles, and a year of Great
Expectations results for both checkpoints. Then it measures, in this process:

* ``publish``: :func:`include.ops.publish.publish_after_commit` (what the DAGs call after a commit);
* ``page cold``: the first ``GET /`` of a new app (attaches the snapshot, scans the GX results);
* ``page warm``: later ``GET /`` (median and max of 20);
* ``page first after a publish``: the first ``GET /`` after each of 5 publishes (new snapshot);
* ``page with a year's chart``: a manufacturer's added/fixed chart over 366 days, first request;
* ``overview json``: the grid of the whole year as JSON;
* ``vin lookup`` (warehouse, uncached / cached) and ``registration lookup``.

The page is served by the same FastAPI app the plugin mounts, with authentication stubbed (Airflow's
token check adds about a millisecond). Nothing here is Airflow-specific.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")
MANUFACTURERS = 50
DAYS = 365


@dataclass
class Year:
    warehouse: Path
    archive: Path
    docs: Path
    manufacturers: dict[str, str]
    first: date
    last: date
    sample_vin: str
    sample_registration: str


def build_year(
    work: Path, *, recalls: int = 200_000, vehicles: int = 50_000, manufacturers: int = MANUFACTURERS, days: int = DAYS
) -> Year:
    """A warehouse (and GX results) with ``days`` days of history ending yesterday in London."""
    from include.warehouse import connect

    work.mkdir(parents=True, exist_ok=True)
    warehouse = work / "warehouse" / "warehouse.duckdb"
    for stale in (warehouse, Path(f"{warehouse}.wal")):
        stale.unlink(missing_ok=True)
    last = datetime.now(LONDON).date() - timedelta(days=1)
    first = last - timedelta(days=days - 1)
    codes = {f"M{i:02d}": f"Manufacturer {i:02d}" for i in range(manufacturers)}
    params = {"first": first, "days": days, "makers": manufacturers, "recalls": recalls, "vehicles": vehicles}
    with connect(warehouse) as raw:
        con = _Bound(raw, params)
        con.execute("CREATE TEMP TABLE makers AS SELECT i, printf('M%02d', i) AS code FROM range($makers) t(i)")
        con.execute(
            "CREATE TEMP TABLE cells AS SELECT m.code, m.i, d.n, CAST($first AS DATE) + CAST(d.n AS INTEGER) AS day,"
            " abs(hash(m.code, d.n)) % 1000 AS roll FROM makers m, range($days) d(n)"
        )
        # First file of each day: 92% accepted, 4% rejected, 3% missing, the rest held.
        con.execute(
            """
            INSERT INTO recall_files (manufacturer, business_date, upload_id, sha256, file_name, status, error_codes,
                warning_codes, row_count, warning_count, size_bytes, remote_mtime, received_at, scanner_verdict,
                scanner_name, added_count, fixed_count, changed_count, outstanding_count, hold_reason,
                validation_seconds, apply_seconds, dag_run_id)
            SELECT code, day,
                   CASE WHEN roll BETWEEN 920 AND 949 THEN NULL
                        ELSE printf('%015d-%s-00000000', n, left(sha256(code || day), 16)) END,
                   CASE WHEN roll BETWEEN 920 AND 949 THEN NULL ELSE sha256(code || day) END,
                   CASE WHEN roll BETWEEN 920 AND 949 THEN NULL ELSE lower(code) || '_recalls_' || day || '.csv' END,
                   CASE WHEN roll < 920 THEN 'ACCEPTED' WHEN roll < 950 THEN 'MISSING'
                        WHEN roll < 998 THEN 'REJECTED' ELSE 'HELD' END,
                   CASE WHEN roll BETWEEN 950 AND 969 THEN ['MISSING_REQUIRED_FIELDS', 'INCORRECT_DATE_FORMAT']
                        WHEN roll BETWEEN 970 AND 989 THEN ['INFECTED_FILE'] ELSE [] END,
                   [], 70000 + roll, 0, 3000000 + roll,
                   CAST(day AS TIMESTAMP) + INTERVAL 9 HOUR, CAST(day AS TIMESTAMP) + INTERVAL 25 HOUR,
                   'CLEAN', 'clamd',
                   CASE WHEN roll < 920 THEN roll % 40 END, CASE WHEN roll < 920 THEN roll % 37 END,
                   CASE WHEN roll < 920 THEN roll % 5 END, CASE WHEN roll < 920 THEN 70000 + roll END,
                   CASE WHEN roll >= 998 THEN 'the snapshot would mark 60,000 of 70,000 outstanding recalls fixed'
                        || ' (85.7%); the limits are 50% and 1,000' END,
                   1.5, 2.5, 'scheduled__' || strftime(CAST(day AS TIMESTAMP), '%Y-%m-%dT00:00:00+00:00')
            FROM cells
            """
        )
        # 2% of days have a second, rejected file.
        con.execute(
            """
            INSERT INTO recall_files (manufacturer, business_date, upload_id, sha256, file_name, status, error_codes,
                remote_mtime, received_at, dag_run_id)
            SELECT code, day, printf('%015d-%s-11111111', n, left(sha256(code || day || 'b'), 16)),
                   sha256(code || day || 'b'),
                   lower(code) || '_again_' || day || '.csv', 'REJECTED', ['MULTIPLE_FILES'],
                   CAST(day AS TIMESTAMP) + INTERVAL 15 HOUR, CAST(day AS TIMESTAMP) + INTERVAL 25 HOUR,
                   'scheduled__' || strftime(CAST(day AS TIMESTAMP), '%Y-%m-%dT00:00:00+00:00')
            FROM cells WHERE roll % 50 = 7
            """
        )
        con.execute(
            """
            INSERT INTO outbox (message_key, recipients, subject, body_text, created_at, sent_at, attempts)
            SELECT 'recall:' || manufacturer || ':' || CASE status WHEN 'HELD' THEN 'held' ELSE 'rejected' END || ':'
                       || business_date || ':' || upload_id,
                   ['team@' || lower(manufacturer) || '.example'], 'Recall file ' || status || ': ' || file_name,
                   repeat('Problem report line. ', 40), CAST(business_date AS TIMESTAMP) + INTERVAL 26 HOUR,
                   CASE WHEN hash(upload_id) % 20 = 0 THEN NULL
                        ELSE CAST(business_date AS TIMESTAMP) + INTERVAL 26 HOUR END, 1
            FROM recall_files WHERE status IN ('REJECTED', 'HELD')
            """
        )
        con.execute(
            """
            INSERT INTO recall_history
            SELECT printf('M%02d', i % $makers), printf('VIN%014d', i // 2), 'CAMP-' || (i % 997),
                   CASE WHEN i % 5 = 0 THEN NULL ELSE 'R/2026/' || (i % 500) END,
                   DATE '2026-01-01' + CAST(i % 300 AS INTEGER),
                   CAST($first AS DATE) + CAST(i % $days AS INTEGER),
                   CASE WHEN i % 4 = 0 THEN CAST($first AS DATE) + CAST(i % $days AS INTEGER) + 3 END,
                   'NEW', CASE WHEN i % 4 = 0 THEN 'FIXED' END
            FROM range($recalls) t(i)
            """,
        )
        con.execute(
            """
            INSERT INTO recalls
            SELECT manufacturer, vin, manufacturer_campaign_reference, dvsa_campaign_reference,
                   recall_campaign_start_date,
                   CASE WHEN valid_to IS NULL THEN 'OUTSTANDING' ELSE 'FIXED' END, valid_from, valid_to,
                   coalesce(valid_to, valid_from)
            FROM recall_history
            """
        )
        con.execute(
            """
            INSERT INTO mot_delta_files (business_date, kind, file_name, sha256, status, records, created, updated,
                deleted, unchanged, quarantined, superseded, quarantine_share, recorded_at, applied_at)
            SELECT CAST($first AS DATE) + CAST(n AS INTEGER), 'delta',
                   'delta-light-vehicle_' || strftime(CAST($first AS DATE) + CAST(n AS INTEGER), '%d-%m-%Y') || '.zip',
                   sha256('mot' || n), CASE WHEN n % 97 = 5 THEN 'REJECTED' ELSE 'APPLIED' END,
                   400000 + n, 20000 + n, 370000, 1500, 8000, 100, 0, 100.0 / (400000 + n),
                   CAST($first AS DATE) + CAST(n AS INTEGER) + INTERVAL 30 HOUR,
                   CAST($first AS DATE) + CAST(n AS INTEGER) + INTERVAL 30 HOUR
            FROM range($days) t(n)
            """,
        )
        con.execute(
            """
            INSERT INTO mot_quarantine (business_date, file_name, sha256, part, line, registration, reason, record)
            SELECT CAST($first AS DATE) + CAST(n // 100 AS INTEGER), 'delta.zip', sha256('mot' || (n // 100)),
                   'part-001.json.gz', n % 100 + 1, printf('Q%06d', n), 'vehicle: registration not_nullable',
                   '{"registration": null, "make": "FORD"}'
            FROM range($days * 100) t(n)
            """,
        )
        con.execute(
            """
            INSERT INTO vehicles
            SELECT printf('REG%07d', i // 3), 'FORD', 'FOCUS',
                   CASE i % 3 WHEN 0 THEN 'Blue' WHEN 1 THEN 'Red' ELSE 'Silver' END,
                   NULL, 'Petrol', '1596', DATE '2015-03-01', DATE '2015-03-01', DATE '2015-02-01',
                   TIMESTAMP '2025-03-01 10:00:00', 'dvsa',
                   CAST($first AS DATE) + CAST((i % 3) * 100 AS INTEGER),
                   CASE WHEN i % 3 < 2 THEN CAST($first AS DATE) + CAST((i % 3 + 1) * 100 AS INTEGER) END,
                   i % 3 = 2, false, CASE i % 3 WHEN 0 THEN 'CREATED' ELSE 'UPDATED' END
            FROM range($vehicles) t(i)
            """,
        )
        con.execute(
            "INSERT INTO mot_vehicle_events (registration, business_date, source_rank, modification, sha256)"
            " SELECT registration, valid_from, 1, modification, sha256(registration) FROM vehicles"
        )
        con.execute(
            "INSERT INTO mot_tests (mot_test_number, registration, completed_date, test_result, record_date)"
            " SELECT row_number() OVER (), registration, TIMESTAMP '2025-03-01 10:00:00', 'PASSED', valid_from"
            " FROM vehicles WHERE is_current"
        )
    docs = work / "data_docs"
    _gx_year(work, docs, first, days)
    return Year(
        warehouse,
        work / "archive",
        docs,
        codes,
        first,
        last,
        f"VIN{(recalls // 2 - 7):014d}",
        f"REG{vehicles // 6:07d}",
    )


class _Bound:
    """Executes statements with only the named parameters each one uses (DuckDB wants exactly those)."""

    def __init__(self, con, params: dict) -> None:
        self.con, self.params = con, params

    def execute(self, sql: str):
        used = {k: v for k, v in self.params.items() if f"${k}" in sql}
        return self.con.execute(sql, used) if used else self.con.execute(sql)


def _gx_year(work: Path, docs: Path, first: date, days: int) -> None:
    """A year of validation results for both checkpoints, laid out as include.quality.gx_runner does."""
    shutil.rmtree(work / "gx", ignore_errors=True)
    shutil.rmtree(docs, ignore_errors=True)
    docs.mkdir(parents=True)
    (docs / "index.html").write_text("<html><body><h1>Data Docs</h1></body></html>")
    result = {
        "success": True,
        "statistics": {"evaluated_expectations": 13, "successful_expectations": 13},
        "results": [
            {"success": True, "expectation_config": {"type": "expect_column_values_to_be_between", "description": "x"}}
        ]
        * 13,
    }
    for suite in ("recall_state", "mot_history"):
        for n in range(days):
            day = first + timedelta(days=n)
            run_time = f"{day + timedelta(days=1):%Y%m%d}T013000.000000Z"
            folder = work / "gx" / "uncommitted" / "validations" / suite / day.isoformat() / run_time
            folder.mkdir(parents=True)
            (folder / f"warehouse_quality-{suite}.json").write_text(json.dumps(result))
            page = docs / "validations" / suite / day.isoformat() / run_time
            page.mkdir(parents=True)
            (page / f"warehouse_quality-{suite}.html").write_text("<html></html>")


def _timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def measure(year: Year, *, warm_runs: int = 20) -> dict[str, float]:
    from fastapi.testclient import TestClient

    from include.ops.publish import publish_after_commit
    from include.ops.web import Settings, create_app

    results: dict[str, float] = {}
    publishes = [_timed(lambda: publish_after_commit(year.warehouse)) for _ in range(5)]
    results["publish median s"] = statistics.median(publishes)
    results["publish max s"] = max(publishes)
    settings = Settings(str(year.warehouse), str(year.archive), str(year.docs), year.manufacturers)
    app = create_app(settings=lambda: settings, authenticate=lambda: None)
    with TestClient(app) as client:

        def page() -> None:
            response = client.get("/")
            assert response.status_code == 200, response.text[:500]
            results["page bytes"] = len(response.content)

        results["page cold (new process) s"] = _timed(page)
        warm = [_timed(page) for _ in range(warm_runs)]
        results["page warm median s"] = statistics.median(warm)
        results["page warm max s"] = max(warm)
        after_commit = []
        for _ in range(5):
            publish_after_commit(year.warehouse)  # a commit: the next visit reads the new snapshot
            after_commit.append(_timed(page))
        results["page first after a publish median s"] = statistics.median(after_commit)
        results["page first after a publish max s"] = max(after_commit)
        year_chart = [_timed(lambda m=m: client.get(f"/?chart_days=366&m=M{m:02d}")) for m in range(5)]
        results["page with a year's chart (uncached) median s"] = statistics.median(year_chart)
        overview = [_timed(lambda: client.get("/api/overview?days=366")) for _ in range(5)]
        results["overview json (366 days) median s"] = statistics.median(overview)
        vin_cold = _timed(lambda: client.get(f"/vin/{year.sample_vin}"))
        results["vin lookup uncached s"] = vin_cold
        results["vin lookup cached s"] = _timed(lambda: client.get(f"/vin/{year.sample_vin}"))
        results["vin page uncached s"] = _timed(lambda: client.get(f"/vin-lookup?vin={year.sample_vin[:-1]}1"))
        results["registration lookup uncached s"] = _timed(
            lambda: client.get(f"/registration?reg={year.sample_registration}")
        )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recalls", type=int, default=5_000_000, help="recall history rows (default 5,000,000)")
    parser.add_argument("--vehicles", type=int, default=1_000_000, help="vehicle version rows (default 1,000,000)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the generated data (default: temp)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="ops-page-bench-"))
    started = time.perf_counter()
    year = build_year(work, recalls=args.recalls, vehicles=args.vehicles)
    print(f"generated {MANUFACTURERS} manufacturers x {DAYS} days in {time.perf_counter() - started:.1f}s ({work})")
    from include.warehouse import read_only

    with read_only(year.warehouse) as con:
        for table in (
            "recall_files",
            "outbox",
            "recalls",
            "recall_history",
            "mot_delta_files",
            "mot_quarantine",
            "vehicles",
        ):
            print(f"  {table:16} {con.execute(f'SELECT count(*) FROM {table}').fetchone()[0]:>12,} rows")
    for name, value in measure(year).items():
        print(f"{name:46} {value:>10,.3f}" if "bytes" not in name else f"{name:46} {value:>10,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
