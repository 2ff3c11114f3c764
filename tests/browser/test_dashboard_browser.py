"""The dashboard in a real headless browser (Debian chromium via playwright) over the demo estate.

Screenshots land in data/screenshots/ (git-ignored) so a person can look at what the tests saw.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dashboard import PAGES

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
SHOTS = ROOT / "data" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(demo_store, tmp_path_factory):
    db, truth = demo_store(11, 20_000)
    port = _free_port()
    config = tmp_path_factory.mktemp("cfg") / "caa.toml"
    config.write_text("")
    env = dict(os.environ, CAA_DB=str(db), CAA_CONFIG=str(config))
    proc = subprocess.Popen([sys.executable, "-m", "cli", "dashboard", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail(f"the dashboard did not start: {proc.stdout.read()[-2000:]}")
    yield url, db
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test`, which installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_overview_renders_its_numbers_and_chart_without_an_exception(served, browser):
    url, db = served
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    page.get_by_text("CodeArtifact Analytics").first.wait_for(timeout=30_000)
    page.locator('[data-testid="stMetric"]').first.wait_for(timeout=30_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    metrics = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
    from tests.helpers import rows

    (downloads,), = rows(db, "SELECT count(*) FROM downloads WHERE event_at >= (SELECT max(event_at)::DATE - 29 "
                             "FROM events)")
    assert f"{downloads:,}" in metrics
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "overview.png"), full_page=True)
    page.close()


CHARTLESS = {"health"}  # pages whose main element is a table


def settled(page, timeout_s: float = 60) -> None:  # noqa: ANN001 - a playwright Page
    """Wait until the script run has finished: no spinner and no running-status widget, twice in a row."""
    busy = "() => !!document.querySelector('[data-testid=\"stSpinner\"], [data-testid=\"stStatusWidget\"]')"
    deadline, quiet = time.monotonic() + timeout_s, 0
    while quiet < 2:
        assert time.monotonic() < deadline, "the page did not finish loading"
        quiet = 0 if page.evaluate(busy) else quiet + 1
        page.wait_for_timeout(500)


def shoot(page, name: str) -> None:  # noqa: ANN001 - a playwright Page
    """A PNG of the whole page: Streamlit scrolls inside its main block, so grow the viewport to fit it."""
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": min(max(height, 1000), 8000)})
    page.wait_for_timeout(500)  # plotly redraws on resize
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("key", list(PAGES))
def test_every_page_renders_in_the_browser(served, browser, key):
    url, _ = served
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/?page={key}")
    page.get_by_text("CodeArtifact Analytics").first.wait_for(timeout=30_000)
    page.locator("h2").filter(has_text=PAGES[key][0]).first.wait_for(timeout=30_000)
    main = '[data-testid="stDataFrame"]' if key in CHARTLESS else ".js-plotly-plot"
    page.locator(main).first.wait_for(timeout=60_000)
    page.locator('[data-testid="stMetric"]').first.wait_for(timeout=30_000)
    settled(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    if key not in CHARTLESS:  # each chart drew its SVG (an empty plotly div means a broken figure)
        for chart in page.locator(".js-plotly-plot").all():
            assert chart.locator(".main-svg").count() > 0
    shoot(page, key)
    page.close()


def test_changing_a_filter_changes_the_url_and_the_numbers(served, browser):
    url, db = served
    from tests.helpers import rows

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    downloads = page.locator('[data-testid="stMetricValue"]').nth(1)
    downloads.wait_for(timeout=30_000)
    before = downloads.inner_text()
    page.get_by_text("Filters").first.click()
    page.locator('[data-testid="stMultiSelect"]').filter(has_text="Domain").locator("input").click()
    page.keyboard.type("data-platform")
    page.keyboard.press("Enter")
    page.wait_for_url("**domains=data-platform**", timeout=30_000)
    (expected,), = rows(db, "SELECT count(*) FROM downloads WHERE domain = 'data-platform' AND event_at >= "
                            "(SELECT max(event_at)::DATE - 29 FROM events WHERE domain = 'data-platform')")
    page.wait_for_function("([el, want]) => el.innerText === want",
                           arg=[downloads.element_handle(), f"{expected:,}"], timeout=30_000)
    assert downloads.inner_text() == f"{expected:,}" != before
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()
