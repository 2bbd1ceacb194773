"""The operations page's endpoints, through Airflow's own API app (the plugin mounted at /ops),
against a warehouse built by running the DAGs on the demo's sample data."""

from __future__ import annotations

import html
import re
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from include.ops.publish import publish_after_commit, snapshot_path
from include.warehouse import read_only
from tests.plugins.conftest import USERS
from tools.sample_data import vins

BOLT_CODES = [
    "MISSING_REQUIRED_FIELDS",
    "INCORRECT_DATE_FORMAT",
    "MANUFACTURER_REF_TOO_LONG",
    "INVALID_MANUFACTURER_REF",
]
# acme[0]: fixed on day 2, back on day 3 (outstanding); acme[1]: DVSA reference changed on day 2, fixed on day 3.
ACME_BACK, ACME_FIXED, NEVER_ASKED = vins("LH7", 6, 1)[0], vins("LH7", 6, 1)[1], vins("LH7", 6, 1)[4]


def endpoints(days) -> list[str]:
    d2 = days[1].isoformat()
    return [
        "/ops/",
        f"/ops/?end={days[-1]}",
        "/ops/api/overview",
        f"/ops/file/BOLT/{d2}",
        f"/ops/vin/{ACME_BACK}",
        f"/ops/vin-lookup?vin={ACME_BACK}",
        "/ops/registration?reg=DV26MOT",
        "/ops/mot/quarantine",
        "/ops/data-docs/index.html",
        "/ops/static/ops.js",
    ]


def text(body: str) -> str:
    """What a reader sees: tags removed, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", body))


def overview(api, ops_sample) -> dict:
    response = api.get(f"/ops/api/overview?end={ops_sample.days[-1]}&days=4")
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.reliability(
    "Isolation and secrets",
    "anonymous or forged-token request to an operations page endpoint",
    "401/403 for every endpoint; only a valid Airflow token or UI cookie is served",
)
def test_every_endpoint_refuses_anonymous_and_bad_tokens_and_accepts_the_ui_cookie(api, ops_sample):
    client = api.client
    for url in endpoints(ops_sample.days):
        client.cookies.clear()
        anonymous = client.get(url)
        assert anonymous.status_code == 401, (url, anonymous.text)
        forged = client.get(url, headers={"Authorization": "Bearer not-a-jwt"})
        assert forged.status_code == 403, (url, forged.text)
        assert api.get(url).status_code == 200, url
        client.cookies.set("_token", api.token)  # what the browser sends after logging in to the UI
        assert client.get(url).status_code == 200, url
    client.cookies.clear()
    page = client.get("/ops/", headers={"Accept": "text/html"})
    assert page.status_code == 401 and "Log in to Airflow" in page.text


def test_a_viewer_may_read_the_page(api):
    response = api.client.post("/auth/token", json={"username": "viewer", "password": USERS["viewer"]})
    token = response.json()["access_token"]
    assert api.client.get("/ops/api/overview", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_grid_shows_each_days_outcome_with_codes_emails_and_runs(api, ops_sample):
    d2, d3, d4 = ops_sample.days[1:]
    data = overview(api, ops_sample)
    assert data["days"] == [d.isoformat() for d in ops_sample.days]
    cells = {
        m["code"]: [(c["status"], c["codes"], c["files"], c["email"]) for c in m["cells"]]
        for m in data["manufacturers"]
    }
    assert cells == {
        "ACME": [
            ("ACCEPTED", [], 1, None),
            ("ACCEPTED", [], 1, None),
            ("ACCEPTED", [], 2, "sent"),  # a second file that day: rejected (MULTIPLE_FILES), emailed
            ("ACCEPTED", [], 1, None),
        ],
        "BOLT": [
            ("ACCEPTED", [], 1, None),
            ("REJECTED", BOLT_CODES, 1, "sent"),
            ("ACCEPTED", [], 1, None),
            ("HELD", [], 1, "sent"),
        ],
        "CRUX": [
            ("ACCEPTED", [], 1, None),
            ("REJECTED", ["INFECTED_FILE"], 1, "sent"),
            ("MISSING", [], 1, None),
            ("REJECTED", ["WRONG_FILE_EXTENSION", "SPACES_IN_FILE_NAME"], 1, "sent"),
        ],
    }
    with read_only(ops_sample.warehouse_path) as con:
        outstanding = dict(con.execute("SELECT manufacturer, count(*) FROM outstanding_recalls GROUP BY 1").fetchall())
        run_ids = {r[0] for r in con.execute("SELECT DISTINCT dag_run_id FROM recall_files").fetchall()}
    assert {m["code"]: m["outstanding"] for m in data["manufacturers"]} == outstanding

    page = api.get(f"/ops/?end={d4}")
    assert page.status_code == 200
    body = page.text
    assert body.count('data-status="REJECTED"') == 3 and body.count('data-status="HELD"') == 1
    assert f'data-day="{d3}" data-status="MISSING"' in body
    assert 'data-codes="INFECTED_FILE"' in body
    for run_id in run_ids:  # every cell links to its DAG run in the Airflow UI
        assert html.escape(f"/dags/recalls_daily/runs/{_quote(run_id)}") in body
    assert f'href="/ops/file/BOLT/{d2}"' in body
    # The manufacturer's name holds HTML: shown as text.
    assert "Crux &lt;b&gt;Trucks&lt;/b&gt;" in body and "<b>Trucks</b>" not in body
    assert page.headers["content-security-policy"].startswith("default-src 'none'; script-src 'self'")


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def test_outstanding_and_added_fixed_chart(api, ops_sample):
    body = api.get(f"/ops/?end={ops_sample.days[-1]}&chart_days=30").text
    assert 'id="chart-recalls"' in body and '<rect class="bar"' in body
    with read_only(ops_sample.warehouse_path) as con:
        added = con.execute("SELECT sum(added) FROM recall_daily_changes").fetchone()[0]
        total = con.execute("SELECT count(*) FROM outstanding_recalls").fetchone()[0]
    assert f"Outstanding recalls now: {total:,}" in body
    # The bars' tooltips carry the numbers: the sum over the days equals the history's.
    shown = sum(int(v.replace(",", "")) for v in _tooltips(body, "added"))
    assert shown == added
    acme = api.get(f"/ops/?end={ops_sample.days[-1]}&m=ACME").text
    assert "Recalls added and fixed per day (ACME)" in acme


def _tooltips(body: str, series: str) -> list[str]:
    chart = body[body.index('id="chart-recalls"') :]
    chart = chart[: chart.index("</svg>")]
    return re.findall(rf"<title>[^<]*: {series} ([\d,]+)</title>", chart)


def test_file_detail_has_reasons_row_report_and_email(api, ops_sample):
    d2, d3 = ops_sample.days[1], ops_sample.days[2]
    body = html.unescape(api.get(f"/ops/file/BOLT/{d2}").text)
    assert "bolt_recalls_day2.csv" in body and "REJECTED" in body
    assert "Missing required fields" in body and "Incorrect date format" in body
    assert "Row report" in body and "WB1BADROW0000002" in body
    assert "safety@boltvans.example" in body and ">sent<" in body
    with read_only(ops_sample.warehouse_path) as con:
        upload_id, report = con.execute(
            "SELECT upload_id, report_path FROM recall_files WHERE manufacturer = 'BOLT' AND business_date = ?", [d2]
        ).fetchone()
    download = api.get(f"/ops/file/BOLT/{d2}/{upload_id}/report.csv")
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    assert download.content == Path(report).read_bytes()
    assert api.get(f"/ops/file/BOLT/{d2}/not-an-upload/report.csv").status_code == 404

    two_files = html.unescape(api.get(f"/ops/file/ACME/{d3}").text)
    assert "acme_recalls_day3.csv" in two_files and "acme_recalls_day3_again.csv" in two_files
    assert "Multiple files uploaded" in two_files
    assert api.get(f"/ops/file/ACME/{ops_sample.days[0] - timedelta(days=40)}").status_code == 404


def test_held_snapshot_numbers_and_how_to_release_it(api, ops_sample):
    held = overview(api, ops_sample)["held"]
    assert len(held) == 1
    item = held[0]
    assert (item["manufacturer"], item["business_date"], item["would_fix"], item["outstanding_before"]) == (
        "BOLT",
        ops_sample.days[3].isoformat(),
        1350,
        1500,
    )
    body = html.unescape(api.get(f"/ops/?end={ops_sample.days[-1]}").text)
    command = f'airflow dags trigger recalls_release_held --conf \'{{"sha256": "{item["sha256"]}"}}\''
    assert command in body
    assert f'class="release" data-sha256="{item["sha256"]}" data-dag="recalls_release_held"' in body
    assert "90.0%" in body


def test_vin_api_gives_the_outstanding_recalls_in_the_recalls_api_shape(api, ops_sample):
    response = api.get(f"/ops/vin/{ACME_BACK}")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    with read_only(ops_sample.warehouse_path) as con:
        expected = con.execute(
            "SELECT manufacturer_campaign_reference, dvsa_campaign_reference, recall_campaign_start_date"
            " FROM outstanding_recalls WHERE vin = ?",
            [ACME_BACK],
        ).fetchall()
    assert response.json() == {
        "vin": ACME_BACK,
        "manufacturer": "ACME",
        "manufacturerName": "Acme Motors",
        "recalls": [
            {
                "manufacturer": "ACME",
                "manufacturerRecallCampaignReference": ref,
                "dvsaCampaignReference": dvsa,
                "recallCampaignStartDate": start.isoformat(),
            }
            for ref, dvsa, start in expected
        ],
    }
    assert expected == [("ACME-2026-01", "R/2026/101", date(2026, 1, 15))]
    fixed = api.get(f"/ops/vin/{ACME_FIXED}").json()
    assert fixed == {"vin": ACME_FIXED, "manufacturer": None, "manufacturerName": None, "recalls": []}
    assert api.get("/ops/vin/NOSUCHVIN00000000").json()["recalls"] == []
    assert api.get(f"/ops/vin/{'X' * 65}").status_code == 422


def test_vin_lookup_page_shows_outstanding_and_past_recalls_with_history(api, ops_sample):
    d1, d2, d3, _ = ops_sample.days
    back = html.unescape(api.get(f"/ops/vin-lookup?vin={ACME_BACK}").text)
    assert "1 outstanding, 0 past recall(s)" in back
    assert f"{d1} → {d2}: new, then fixed" in back and f"{d3} → now: reappeared" in back
    fixed = html.unescape(api.get(f"/ops/vin-lookup?vin={ACME_FIXED}").text)
    assert "0 outstanding, 1 past recall(s)" in fixed
    assert f"{d1} → {d2}: new, then changed" in fixed and f"{d2} → {d3}: changed, then fixed" in fixed
    assert "DVSA R/2026/199" in fixed  # the changed reference, in the history


@pytest.mark.reliability(
    "Hostile input",
    "manufacturer name containing HTML, through the real Airflow API app",
    "shown as text, never as markup",
)
def test_values_with_html_render_as_text(api):
    script, image = "<script>alert(1)</script>", "<img src=x onerror=alert(1)>"
    vin = api.get("/ops/vin-lookup", params={"vin": script}).text
    assert script not in vin and "&lt;script&gt;alert(1)&lt;/script&gt;" in vin
    registration = api.get("/ops/registration", params={"reg": image}).text  # normalised: spaces out, upper case
    assert (
        "<IMG" not in registration.upper().replace("&LT;IMG", "") and "&lt;IMGSRC=XONERROR=ALERT(1)&gt;" in registration
    )
    api_answer = api.get(f"/ops/vin/{script.replace('/', '')}")
    assert api_answer.headers["content-type"] == "application/json"


def test_mot_feed_counts_registration_history_and_quarantine(api, ops_sample):
    d2, d4 = ops_sample.days[1], ops_sample.days[3]
    mot = {row["day"]: row for row in overview(api, ops_sample)["mot"]}
    with read_only(ops_sample.warehouse_path) as con:
        files = con.execute(
            "SELECT business_date, created, updated, deleted, quarantined FROM mot_delta_files WHERE status = 'APPLIED'"
        ).fetchall()
    assert len(files) == 3
    for day, created, updated, deleted, quarantined in files:
        assert mot[day.isoformat()] == {
            "day": day.isoformat(),
            "created": created,
            "updated": updated,
            "deleted": deleted,
            "quarantined": quarantined,
        }
    assert mot[d2.isoformat()]["quarantined"] == 1
    assert mot[d4.isoformat()] == {"day": d4.isoformat(), "created": 0, "updated": 0, "deleted": 0, "quarantined": 0}
    page = api.get(f"/ops/?end={d4}").text
    assert 'id="chart-mot"' in page and "delta-light-vehicle_" in page

    history = text(api.get("/ops/registration?reg=dv26 mot").text)  # normalised to DV26MOT
    assert "DV26MOT: 3 version(s)" in history
    assert "Blue" in history and "Red" in history and "deleted" in history
    quarantine = html.unescape(api.get("/ops/mot/quarantine").text)
    assert "registration" in quarantine and d2.isoformat() in quarantine


def test_quality_verdicts_and_data_docs(api, ops_sample):
    body = api.get(f"/ops/?end={ops_sample.days[-1]}").text
    table = body[body.index('id="quality-table"') :]
    assert "recall_state" in table and "mot_history" in table and "passed" in table
    docs = api.get("/ops/data-docs/index.html")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert "script-src" not in docs.headers["content-security-policy"]  # GX's CDN scripts are not loaded
    assert "default-src 'none'" in docs.headers["content-security-policy"]
    assert api.get("/ops/data-docs/..%2F..%2Fwarehouse%2Fwarehouse.duckdb").status_code == 404
    assert api.get("/ops/data-docs/nope.html").status_code == 404


def test_page_works_while_a_dag_task_holds_the_warehouse(api, ops_sample):
    warehouse = ops_sample.warehouse_path
    assert publish_after_commit(warehouse) is not None  # what the DAGs call after each commit
    assert api.get(f"/ops/vin/{ACME_BACK}").status_code == 200  # answer cached for this warehouse state
    script = (
        "import sys, time\n"
        "from include.warehouse import connect, transaction\n"
        "with connect(sys.argv[1]) as con:\n"
        "    with transaction(con):\n"
        "        con.execute('CREATE TABLE IF NOT EXISTS ops_page_test_marker (x INTEGER)')\n"
        "        con.execute('INSERT INTO ops_page_test_marker VALUES (1)')\n"
        "    print('locked', flush=True)\n"
        "    time.sleep(float(sys.argv[2]))\n"
        "print('released', flush=True)\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", script, str(warehouse), "8"], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "locked"
        started = time.monotonic()
        page = api.get(f"/ops/?end={ops_sample.days[-1]}")
        assert time.monotonic() - started < 2.0
        assert page.status_code == 200 and 'data-status="HELD"' in page.text
        assert "A DAG task is writing the warehouse: showing what was published at" in page.text
        assert overview(api, ops_sample)["freshness"] == "busy"

        started = time.monotonic()
        stale = api.get(f"/ops/vin/{ACME_BACK}")  # asked before: the last answer, marked stale
        assert stale.status_code == 200 and stale.headers["x-data-stale"] == "true"
        busy = api.get(f"/ops/vin/{NEVER_ASKED}")  # never asked: a clear refusal, quickly
        assert busy.status_code == 503 and busy.json() == {"detail": "warehouse busy, retry"}
        assert busy.headers["retry-after"] == "5"
        lookup = api.get(f"/ops/vin-lookup?vin={NEVER_ASKED}")
        assert lookup.status_code == 503 and "The warehouse is busy" in lookup.text
        assert time.monotonic() - started < 6.0
        assert writer.poll() is None  # the writer was never disturbed
    finally:
        assert writer.stdout.readline().strip() == "released"
        assert writer.wait(timeout=30) == 0
    # The writer committed without publishing: the page republishes from the warehouse once it is free.
    time.sleep(5.5)  # after a busy answer the page waits a few seconds before trying the warehouse again
    assert overview(api, ops_sample)["freshness"] == "refreshed"
    assert overview(api, ops_sample)["freshness"] == "fresh"
    assert api.get(f"/ops/vin/{NEVER_ASKED}").status_code == 200
    assert snapshot_path(warehouse).exists()


@pytest.mark.parametrize("missing", ["publish"])
def test_publish_after_commit_never_raises(tmp_path, missing):
    assert publish_after_commit(tmp_path / "no-such-warehouse.duckdb") is None
