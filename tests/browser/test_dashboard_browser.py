"""The dashboard in a real headless browser (Debian chromium via playwright) over the demo estate.

Screenshots land in data/screenshots/ (git-ignored) so a person can look at what the tests saw.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from dashboard import PAGES
from tests.browser.support import SHOTS, open_filters, serve_dashboard, settled, shoot

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served(demo_store, tmp_path_factory):
    db, _ = demo_store(11, 20_000)
    with serve_dashboard(db, tmp_path_factory.mktemp("cfg")) as url:
        yield url, db


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
    downloads = page.locator('[data-testid="stMetric"]').filter(has_text="Downloads (30 d)").locator(
        '[data-testid="stMetricValue"]')
    downloads.wait_for(timeout=30_000)
    settled(page)  # a click during a rerun can land on a widget that is about to be replaced
    before = downloads.inner_text()
    open_filters(page)
    page.locator('[data-testid="stMultiSelect"]').filter(has_text="Domain").locator("input").click()
    page.keyboard.type("data-platform")
    page.get_by_role("option", name="data-platform").click(timeout=5_000)  # once the list offers it
    page.wait_for_url("**domains=data-platform**", timeout=10_000)
    (expected,), = rows(db, "SELECT count(*) FROM downloads WHERE domain = 'data-platform' AND event_at >= "
                            "(SELECT max(event_at)::DATE - 29 FROM events WHERE domain = 'data-platform')")
    # The rerun may lay the Overview out differently (on the 1st of a month the filtered page has other
    # blocks above the metric), so the metric can be a new node: an element handle taken before would watch
    # the old one for ever, and while the run lasts the old one stands beside it, marked stale. So the
    # current metric is the one outside stale containers, found anew on each poll.
    current = page.locator('[data-testid="stElementContainer"]:not([data-stale="true"])').locator(
        '[data-testid="stMetric"]').filter(has_text="Downloads (30 d)").locator('[data-testid="stMetricValue"]')
    expect(current).to_have_text(f"{expected:,}", timeout=30_000)
    assert current.inner_text() == f"{expected:,}" != before
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()


def test_the_cleanup_download_button_downloads_the_file_caa_report_cleanup_writes(served, browser, tmp_path):
    """The CSV is written when the button is clicked (a deferred download: the browser asks the server for
    it then), and it is the file `caa report cleanup` writes for the same (default) policy."""
    url, db = served
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page.goto(f"{url}/?page=cleanup")
    button = page.get_by_role("button", name="Download CSV")
    button.wait_for(timeout=60_000)
    settled(page)
    with page.expect_download(timeout=60_000) as got:
        button.click()
    got.value.save_as(tmp_path / "page.csv")
    page.close()
    config = tmp_path / "caa.toml"
    config.write_text("")  # the dashboard's settings: the defaults
    out = tmp_path / "cli.csv"
    res = subprocess.run([sys.executable, "-m", "cli", "report", "cleanup", "--format", "csv", "--out", str(out),
                          "--db", str(db)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "CAA_CONFIG": str(config)}, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "page.csv").read_bytes() == out.read_bytes()
    assert out.read_bytes().count(b"\n") > 1  # candidates, not only the header
