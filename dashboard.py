"""The caa dashboard (layout only): page choice and global filters (ui/sidebar.py), then the chosen page
(ui/pages.py).

The store is settings.db: `streamlit run dashboard.py -- --db PATH` > CAA_DB > caa.toml >
data/caa.duckdb. The page and the filters live in the URL query parameters (`?page=costs&domains=acme`),
so a link reproduces the view. Every number comes from analytics/ through ui/common.View.load, which
reads the published reader snapshot; data-derived text is never rendered as HTML.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import streamlit as st

from analytics.filters import Filters
from core import store
from core.errors import CaaError
from core.settings import load_settings
from ui.common import View
from ui.pages import PAGES
from ui.sidebar import filters_ui, sync_url

TITLE = "CodeArtifact Analytics"


def db_argument(argv: list[str]) -> Path | None:
    """The --db PATH given after `--` on the streamlit command line, if any (other arguments ignored)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--db", type=Path)
    args, _ = parser.parse_known_args(argv)
    return args.db


def page_ui() -> str:
    keys = list(PAGES)
    wanted = st.query_params.get("page", keys[0])
    return st.sidebar.radio("Page", keys, index=keys.index(wanted) if wanted in keys else 0,
                            format_func=lambda k: PAGES[k][0], key="page")


def main(argv: list[str] | None = None) -> None:
    st.set_page_config(page_title=TITLE, layout="wide")
    st.title(TITLE)
    try:
        settings = load_settings(db=db_argument(sys.argv[1:] if argv is None else argv))
    except CaaError as e:
        st.error(str(e))
        return
    page = page_ui()
    base = View(str(settings.db), store.reader_version(settings.db), Filters(), settings.model_dump_json())
    st.header(PAGES[page][0])
    try:
        filters = filters_ui(base)
        sync_url(page, filters)
        PAGES[page][1].page(View(base.db, base.version, filters, base.settings_json))
    except CaaError as e:
        st.error(str(e))


if __name__ == "__main__":
    main()
