"""The operations page in a real browser (Debian's chromium driven by Playwright) inside a running
Airflow API server: log in, open the "Operations" nav entry, check the grid, a chart, a VIN lookup,
release the held snapshot through Airflow's API, follow a DAG-run link, and save screenshots to
``test-artifacts/``."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.plugins.conftest import USERS
from tools.sample_data import vins
from tools.services.net import free_port

PROJECT = Path(__file__).resolve().parents[2]
ARTIFACTS = PROJECT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ACME_BACK = vins("LH7", 6, 1)[0]


@pytest.fixture(scope="module")
def api_server(ops_sample, auth_env, airflow_db, tmp_path_factory):
    """``airflow api-server`` on a free port, on the session's metadata DB and the sample warehouse."""
    port = free_port("127.0.0.1")
    logs = tmp_path_factory.mktemp("ops-api-server")
    env = {**os.environ, **ops_sample.env, **auth_env, "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}"}
    with open(logs / "api-server.log", "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "airflow", "api-server", "--port", str(port), "--host", "127.0.0.1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/v2/monitor/health", timeout=3) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None, (logs / "api-server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, f"api-server did not start; see {logs}"
            time.sleep(1)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_operations_page_in_the_airflow_ui(api_server, ops_sample):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run tools/bootstrap_system.sh --with-chromium", pytrace=False)
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            external = []
            ours = (api_server, "data:", "about:", "blob:")
            page.on("request", lambda r: None if r.url.startswith(ours) else external.append(r.url))

            # Anonymous: the page is refused.
            assert page.goto(f"{api_server}/ops/").status == 401

            # Log in through the simple auth manager's form.
            page.goto(f"{api_server}/")
            page.wait_for_url("**/auth/login**")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", USERS["admin"])
            page.click("button[type=submit]")
            page.wait_for_url(f"{api_server}/**")
            expect(page.get_by_role("link", name="Operations")).to_be_visible(timeout=30_000)

            # The nav entry opens the page inside the UI (an iframe served by the plugin).
            page.get_by_role("link", name="Operations").click()
            page.wait_for_url("**/plugin/ops**")
            frame = page.frame_locator('iframe[title="Operations"]')
            grid = frame.locator("#recall-grid")
            expect(grid).to_be_visible(timeout=30_000)
            d2, d3, d4 = (d.isoformat() for d in ops_sample.days[1:])
            expect(grid.locator("td[data-status=HELD]")).to_have_count(1)
            expect(grid.locator("td[data-status=REJECTED]")).to_have_count(3)
            expect(grid.locator(f'tr[data-manufacturer=CRUX] td[data-day="{d3}"]')).to_have_attribute(
                "data-status", "MISSING"
            )
            expect(grid.locator(f'tr[data-manufacturer=CRUX] td[data-day="{d2}"] .codes')).to_have_text("IF")
            expect(grid.locator("tr[data-manufacturer=CRUX] th .name")).to_have_text("Crux <b>Trucks</b>")

            # Charts: real SVG bars with tooltips.
            chart = frame.locator("svg#chart-recalls")
            expect(chart).to_be_visible()
            assert chart.locator("rect.bar").count() > 0
            assert frame.locator("svg#chart-mot rect.bar").count() > 0
            page.screenshot(path=str(ARTIFACTS / "operations-page.png"))

            # Release the held snapshot: two clicks, then Airflow's REST API answers with the run.
            held = frame.locator("#held-table button.release")
            held.click()
            expect(held).to_have_text("Confirm release")
            held.click()
            result = frame.locator("#held-table output.release-result")
            expect(result).to_contain_text("Triggered: release run manual__", timeout=30_000)

            # VIN lookup: outstanding and past recalls with the history.
            frame.locator("#vin-form input[name=vin]").fill(ACME_BACK)
            frame.locator("#vin-form button").click()
            expect(frame.locator("#vin-result")).to_contain_text("1 outstanding, 0 past recall(s)", timeout=30_000)
            expect(frame.locator("#vin-outstanding ol.history li")).to_have_count(2)
            page.screenshot(path=str(ARTIFACTS / "operations-page-vin.png"))

            # A DAG-run link moves the Airflow UI itself (not the frame) to the run.
            page.goto(f"{api_server}/plugin/ops")
            frame = page.frame_locator('iframe[title="Operations"]')
            frame.locator(f'#recall-grid tr[data-manufacturer=BOLT] td[data-day="{d4}"] a.run').click()
            page.wait_for_url("**/dags/recalls_daily/runs/**", timeout=30_000)

            # The whole page on its own, for the record.
            page.goto(f"{api_server}/ops/")
            expect(page.locator("#recall-grid")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "operations-page-full.png"), full_page=True)
            timing = page.evaluate(
                "() => { const t = performance.getEntriesByType('navigation')[0];"
                " return t.responseEnd - t.requestStart; }"
            )
            print(f"operations page: server response in {timing:.0f} ms")
            assert timing < 1000
            assert external == []  # nothing fetched from outside Airflow, charts included
        finally:
            browser.close()
    if os.environ.get("OPS_PAGE_UPDATE_DOCS_SCREENSHOT"):
        shutil.copy(ARTIFACTS / "operations-page.png", PROJECT / "docs" / "operations-page.png")
