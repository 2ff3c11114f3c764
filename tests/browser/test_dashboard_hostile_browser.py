"""Hostile names through the dashboard in a real browser (Debian chromium via playwright): the dashboard
serves the store of tests/fixtures/hostile_store.py (package, namespace, repository, principal, user-agent
and trail-file names from the hostile corpus, collected with the real collectors).

On every page, and with a hostile repository filter in the URL: no dialog ever opens (every payload in the
corpus calls alert()), no element from the data exists in the DOM (<img src=x>, an onerror/onload
attribute, a <script> or <svg> carrying alert), no Streamlit exception. One screenshot per page lands in
data/screenshots/hostile-<page>.png (git-ignored).
"""

from __future__ import annotations

import urllib.parse
import urllib.request

import pytest

from dashboard import PAGES
from tests.browser.support import SHOTS, open_filters, serve_dashboard, settled
from tests.fixtures.hostile import HOSTILE, REPOSITORY_SAFE
from tests.fixtures.hostile_store import build_hostile_store

INJECTED = {  # selector -> what its presence would mean
    "img[src='x']": "the html-img payload became an <img>",
    "[onerror]": "an element with an onerror handler",
    "[onload]": "an element with an onload handler (the html-attr <svg/onload>)",
    "script:has-text('alert(')": "the html-script payload became a <script>",
}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile-browser")
    db = folder / "caa.duckdb"
    build_hostile_store(db)
    with serve_dashboard(db, folder) as url:
        yield url


def visit(browser, url: str, header: str):  # noqa: ANN001, ANN201 - playwright Browser, Page
    """A new page at `url` with every dialog recorded (and dismissed), settled on the page `header`."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.dialogs = []

    def on_dialog(d) -> None:  # noqa: ANN001 - a playwright Dialog
        page.dialogs.append(f"{d.type}: {d.message}")
        d.dismiss()

    page.on("dialog", on_dialog)
    page.goto(url)
    page.get_by_text("CodeArtifact Analytics").first.wait_for(timeout=30_000)
    page.locator("h2").filter(has_text=header).first.wait_for(timeout=30_000)
    page.locator('[data-testid="stMetric"], [data-testid="stDataFrame"]').first.wait_for(timeout=60_000)
    settled(page)
    return page


def assert_inert(page) -> None:  # noqa: ANN001 - a playwright Page
    page.wait_for_timeout(300)  # let a late onerror/onload fire, if any
    assert page.dialogs == []
    for selector, meaning in INJECTED.items():
        assert page.locator(selector).count() == 0, meaning
    assert page.locator('[data-testid="stException"]').count() == 0


@pytest.mark.parametrize("key", list(PAGES))
def test_every_page_renders_hostile_names_as_inert_text(served, browser, key):
    page = visit(browser, f"{served}/?page={key}", PAGES[key][0])
    if key not in ("health",):  # each chart drew its SVG with the names as text
        for chart in page.locator(".js-plotly-plot").all():
            assert chart.locator(".main-svg").count() > 0
    assert_inert(page)
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": min(max(height, 1000), 8000)})
    page.wait_for_timeout(500)  # plotly redraws on resize
    assert_inert(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"hostile-{key}.png"), full_page=True)
    page.close()


def test_a_hostile_repository_in_the_url_is_applied_as_text(served, browser):
    name = REPOSITORY_SAFE["html-script"]
    page = visit(browser, f"{served}/?page=usage&{urllib.parse.urlencode({'repositories': name})}", "Usage")
    open_filters(page)  # already open: the URL sets a filter
    chosen = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Repository")
    chosen.get_by_text(name, exact=True).first.wait_for(timeout=10_000)  # the chip shows the name as text
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)["repositories"] == [name]
    assert_inert(page)
    page.close()


def test_the_html_payloads_are_visible_as_text_in_a_chart(served, browser):
    """Plotly draws names into its SVG: the spike drivers chart shows the payloads verbatim, not as tags."""
    page = visit(browser, f"{served}/?page=spikes", "Spikes")
    svg_text = " ".join(page.locator(".js-plotly-plot text").all_text_contents())
    assert HOSTILE["html-img"] in svg_text or HOSTILE["html-attr"] in svg_text, svg_text[:2000]
    assert_inert(page)
    page.close()
