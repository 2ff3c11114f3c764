"""What the browser tests share: serving the dashboard over a store on a free 127.0.0.1 port, and
waiting for / photographing a Streamlit page in Debian chromium (playwright; never a downloaded browser)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import process_group

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
SHOTS = ROOT / "data" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_dashboard(db: Path, folder: Path) -> Iterator[str]:
    """`caa dashboard` over `db` (default settings) on a free port; yields its URL once it answers."""
    config = folder / "caa.toml"
    config.write_text("")
    port = free_port()
    env = dict(os.environ, CAA_DB=str(db), CAA_CONFIG=str(config))
    url = f"http://127.0.0.1:{port}"
    log = folder / "dashboard.log"  # a file, not a pipe nobody reads: a full pipe would stall the server
    with open(log, "w") as out, process_group([sys.executable, "-m", "cli", "dashboard", "--port", str(port)],
                                              cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail(f"the dashboard did not start: {log.read_text()[-2000:]}")
        yield url


def settled(page, timeout_s: float = 60) -> None:  # noqa: ANN001 - a playwright Page
    """Wait until the script run has finished: no spinner and no running-status widget, twice in a row."""
    busy = """() => !!document.querySelector('[data-testid="stSpinner"], [data-testid="stStatusWidget"]')"""
    deadline, quiet = time.monotonic() + timeout_s, 0
    while quiet < 2:
        assert time.monotonic() < deadline, "the page did not finish loading"
        quiet = 0 if page.evaluate(busy) else quiet + 1
        page.wait_for_timeout(500)


def shoot(page, name: str) -> None:  # noqa: ANN001 - a playwright Page
    """A PNG of the whole page: Streamlit scrolls inside its main block, so grow the viewport to fit it."""
    height = page.evaluate("""document.querySelector('[data-testid="stMain"]').scrollHeight""")
    page.set_viewport_size({"width": 1400, "height": min(max(height, 1000), 8000)})
    page.wait_for_timeout(500)  # plotly redraws on resize
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def open_filters(page) -> None:  # noqa: ANN001 - a playwright Page
    """Open the sidebar's Filters expander (if it is not open already: a filter in the URL opens it) and
    wait until its opening animation has ended. A click during that half second focuses a multiselect
    without opening its list, so the pick that follows is lost (a person clicking that fast loses it too);
    clicking the header of an open expander closes it and hides its chips."""
    expander = page.locator('[data-testid="stSidebar"] [data-testid="stExpander"] details')
    expander.first.wait_for(state="attached", timeout=30_000)
    if expander.first.get_attribute("open") is None:
        page.get_by_text("Filters").first.click()
    page.wait_for_function("""() => document.querySelector('[data-testid="stSidebar"] [data-testid="stExpander"] '
                                   + 'details[open]') && document.getAnimations().every(a => a.playState !== 'running')""",
                           timeout=10_000)
