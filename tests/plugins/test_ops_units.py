"""The operations page's parts on their own (no Airflow): publishing, the readers' manners towards
writers, escaping, charts, Great Expectations verdicts, and the page's speed with a year of history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient

from include.ops.charts import Series, bar_chart, hbar_chart, nice_ticks
from include.ops.gx import latest_verdicts
from include.ops.publish import publish, publish_after_commit, snapshot_path, warehouse_state
from include.ops.readers import StateCache, WarehouseBusy, gentle_reader
from include.ops.web import Settings, create_app
from include.warehouse import connect, transaction
from tests.plugins.bench_ops_page import build_year

PROJECT = Path(__file__).resolve().parents[2]
DAY = date(2026, 11, 2)
EVIL = '<img src=x onerror="alert(1)">'


def small_warehouse(path: Path) -> Path:
    with connect(path) as con, transaction(con):
        con.execute(
            "INSERT INTO recall_files (manufacturer, business_date, upload_id, sha256, file_name, status, error_codes,"
            " remote_mtime, hold_reason, row_count)"
            " VALUES ('EVIL', $day, 'u1', $sha, $name, 'HELD', [$code], now(), $reason, 3),"
            "        ('ACME', $day, 'u2', 'abc', 'ok.csv', 'ACCEPTED', [], now(), NULL, 2)",
            {"day": DAY, "sha": '"><script>alert(1)</script>', "name": f"{EVIL}.csv", "code": EVIL, "reason": EVIL},
        )
        con.execute(
            "INSERT INTO outbox (message_key, recipients, subject, body_text) VALUES ($key, [$to], $subject, 'x')",
            {"key": f"recall:EVIL:held:{DAY}:u1", "to": EVIL, "subject": EVIL},
        )
        con.execute(
            "INSERT INTO recalls VALUES ('EVIL', $vin, $ref, NULL, DATE '2026-01-01', 'OUTSTANDING', $day, NULL, $day)",
            {"vin": EVIL, "ref": EVIL, "day": DAY},
        )
        con.execute(
            "INSERT INTO recall_history VALUES ('EVIL', $vin, $ref, NULL, DATE '2026-01-01', $day, NULL, 'NEW', NULL)",
            {"vin": EVIL, "ref": EVIL, "day": DAY},
        )
    return path


def page_client(warehouse: Path, names: dict[str, str] | None = None, docs: Path | None = None) -> TestClient:
    settings = Settings(str(warehouse), str(warehouse.parent / "archive"), str(docs) if docs else None, names or {})
    app = create_app(settings=lambda: settings, authenticate=lambda: None, today=lambda: DAY + timedelta(days=1))
    return TestClient(app)


def test_publish_replaces_the_snapshot_atomically(tmp_path):
    warehouse = small_warehouse(tmp_path / "w" / "warehouse.duckdb")
    first = publish(warehouse)
    assert first.path == snapshot_path(warehouse) == tmp_path / "w" / "warehouse.ops.duckdb"
    assert first.source_state == warehouse_state(warehouse)
    reader = duckdb.connect(":memory:")
    reader.execute(f"ATTACH '{first.path}' AS old (READ_ONLY)")
    with connect(warehouse) as con:
        con.execute("DELETE FROM recall_files WHERE manufacturer = 'ACME'")
    second = publish(warehouse)
    assert second.source_state != first.source_state
    # A reader of the old file keeps a consistent old view; a new reader sees the new one.
    assert reader.execute("SELECT count(*) FROM old.recall_files").fetchone()[0] == 2
    fresh = duckdb.connect(":memory:")
    fresh.execute(f"ATTACH '{second.path}' AS new (READ_ONLY)")
    assert fresh.execute("SELECT count(*) FROM new.recall_files").fetchone()[0] == 1
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["warehouse.duckdb", "warehouse.ops.duckdb"]


def test_publish_after_commit_never_raises(tmp_path, caplog):
    assert publish_after_commit(tmp_path / "missing.duckdb") is None
    assert "could not publish" in caplog.text


def test_page_readers_never_starve_a_writer(tmp_path):
    """Page readers hammering the warehouse leave it free often enough for a writer's retries."""
    warehouse = small_warehouse(tmp_path / "warehouse.duckdb")
    stop = time.monotonic() + 7
    reads = {"done": 0, "busy": 0}

    def hammer() -> None:
        while time.monotonic() < stop:
            try:
                with gentle_reader(warehouse, wait_seconds=0.5) as con:
                    con.execute("SELECT count(*) FROM range(2000000)").fetchone()  # ~20-50 ms holding the file
                reads["done"] += 1
            except WarehouseBusy:
                reads["busy"] += 1

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(1)
    script = (
        "import sys, time\n"
        "from include.warehouse import connect, transaction\n"
        "started = time.monotonic()\n"
        "with connect(sys.argv[1], wait_seconds=10) as con, transaction(con):\n"
        "    con.execute(\"UPDATE recall_files SET row_count = 9 WHERE manufacturer = 'ACME'\")\n"
        "print(round(time.monotonic() - started, 3))\n"
    )
    writer = subprocess.run(
        [sys.executable, "-c", script, str(warehouse)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
        timeout=60,
    )
    for thread in threads:
        thread.join()
    assert writer.returncode == 0, writer.stderr[-2000:]
    assert float(writer.stdout.strip()) < 5.0
    assert reads["done"] > 20


def test_state_cache_answers_from_cache_and_marks_stale_when_busy(tmp_path, monkeypatch):
    warehouse = small_warehouse(tmp_path / "warehouse.duckdb")
    cache = StateCache()
    calls = []

    def query(con):
        calls.append(1)
        return con.execute("SELECT count(*) FROM recalls").fetchone()[0]

    assert cache.read(warehouse, ("n",), query, wait=1) == (1, False)
    assert cache.read(warehouse, ("n",), query, wait=1) == (1, False)
    assert len(calls) == 1  # unchanged warehouse: no second read
    with connect(warehouse) as con:
        con.execute("DELETE FROM recalls")

    import include.ops.readers as readers

    def busy(*args, **kwargs):
        raise WarehouseBusy("test")

    monkeypatch.setattr(readers, "gentle_reader", busy)
    assert cache.read(warehouse, ("n",), query, wait=1) == (1, True)  # changed, but busy: last answer, stale
    with pytest.raises(WarehouseBusy):
        cache.read(warehouse, ("other",), query, wait=1)


@pytest.mark.reliability(
    "Hostile input",
    "HTML/script in file names, codes, VINs, references, hold reasons shown on the operations page",
    "rendered as escaped text on every page",
)
def test_values_with_html_render_as_text_everywhere(tmp_path):
    warehouse = small_warehouse(tmp_path / "warehouse.duckdb")
    client = page_client(warehouse, {"EVIL": f"Evil {EVIL}"})
    pages = [
        client.get(f"/?end={DAY}"),
        client.get(f"/file/EVIL/{DAY}"),
        client.get("/vin-lookup", params={"vin": EVIL}),
        client.get("/registration", params={"reg": EVIL}),
        client.get("/mot/quarantine"),
    ]
    for page in pages:
        assert page.status_code == 200, page.text
        assert "<img" not in page.text.lower() and "<script>alert" not in page.text
    index, detail, vin = pages[0].text, pages[1].text, pages[2].text
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;.csv" in detail  # the file name, as text
    assert "Evil &lt;img" in index and "&lt;img src=x" in index  # name and hold reason
    assert "1 outstanding, 0 past recall(s)" in vin
    api = client.get(f"/vin/{EVIL.replace('/', '')}")
    assert api.headers["content-type"] == "application/json"


@pytest.mark.reliability(
    "Hostile input",
    "markup in chart labels",
    "SVG charts carry escaped text",
)
def test_charts_are_svg_with_escaped_text():
    chart = bar_chart(
        ["1 Nov", "<b>2 Nov</b>"],
        [Series("added", [3, 5], "#0a0"), Series("<i>fixed</i>", [1, 0], "#00a")],
        title="<script>",
        chart_id="c",
    )
    assert chart.startswith("<svg") and chart.count('<rect class="bar"') == 3
    assert "<b>" not in chart and "<i>" not in chart and "<script>" not in chart
    assert "&lt;b&gt;2 Nov&lt;/b&gt;: added 5" in chart
    stacked = bar_chart(["a"], [Series("x", [2], "#000"), Series("y", [3], "#111")], title="t", stacked=True)
    assert stacked.count('<rect class="bar"') == 2
    assert hbar_chart(["A", "B"], [10, 0], title="t").count('<rect class="bar"') == 2
    assert nice_ticks(0) == [0.0, 1.0] and nice_ticks(1350)[-1] >= 1350


def test_latest_verdicts_pick_the_newest_run_and_list_failures(tmp_path):
    docs = tmp_path / "data_docs"
    validations = tmp_path / "gx" / "uncommitted" / "validations" / "recall_state"
    runs = [("2026-11-01", "20261102T010000.000000Z", True), ("2026-10-30", "20261102T020000.000000Z", False)]
    for run_name, run_time, success in runs:
        folder = validations / run_name / run_time
        folder.mkdir(parents=True)
        results = [
            {"success": success, "expectation_config": {"description": "keys unique"}, "result": {"observed_value": 3}}
        ]
        (folder / "warehouse_quality-recall_state.json").write_text(
            json.dumps({"success": success, "statistics": {"evaluated_expectations": 1}, "results": results})
        )
        page = docs / "validations" / "recall_state" / run_name / run_time
        page.mkdir(parents=True)
        (page / "warehouse_quality-recall_state.html").write_text("<html></html>")
    [suite] = latest_verdicts(docs)
    # The backfilled day ran last: its verdict is the latest, whatever its business day.
    assert (suite.latest.run_name, suite.latest.success) == ("2026-10-30", False)
    assert suite.latest.failed == ("keys unique: observed 3",)
    assert suite.latest.docs_page == (
        "validations/recall_state/2026-10-30/20261102T020000.000000Z/warehouse_quality-recall_state.html"
    )
    assert [v.success for v in suite.recent] == [False, True] and suite.recent_failures == 1


def test_page_renders_a_year_of_history_for_50_manufacturers(tmp_path):
    """50 manufacturers x 365 days of recall files, emails, MOT deliveries and GX results.

    How fast it loads is measured by the benchmark (tests/plugins/bench_ops_page.py, bigger
    tables; results in docs/operations-page.md), not asserted here: a wall-clock bound in a unit
    test fails on a busy machine without anything being wrong.
    """
    year = build_year(tmp_path, recalls=100_000, vehicles=30_000)
    assert publish_after_commit(year.warehouse) is not None
    settings = Settings(str(year.warehouse), str(year.archive), str(year.docs), year.manufacturers)
    with TestClient(create_app(settings=lambda: settings, authenticate=lambda: None)) as client:
        for _ in range(2):  # the first request attaches the snapshot; the second is served warm
            page = client.get("/")
            assert page.status_code == 200
            assert page.text.count('class="cell ') >= 50 * 30
            assert 'id="chart-recalls"' in page.text and 'id="chart-mot"' in page.text
        assert client.get(f"/vin/{year.sample_vin}").status_code == 200
