"""The caa dashboard (layout only): page choice and global filters, then the chosen page from ui/.

The store is settings.db: `streamlit run dashboard.py -- --db PATH` > CAA_DB > caa.toml >
data/caa.duckdb. The page and the filters live in the URL query parameters (`?page=costs&domains=acme`),
so a link reproduces the view. Every number comes from analytics/ through ui/common.View.load, which
reads the published reader snapshot; data-derived text is never rendered as HTML.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

import streamlit as st

from analytics.filters import LIST_FIELDS, Filters
from core import store
from core.errors import CaaError
from core.settings import load_settings
from ui import cleanup, costs, health, overview, spikes, usage
from ui.common import View

TITLE = "CodeArtifact Analytics"
PAGES = {
    "overview": ("Overview", overview.page),
    "costs": ("Costs", costs.page),
    "usage": ("Usage", usage.page),
    "spikes": ("Spikes", spikes.page),
    "cleanup": ("Cleanup", cleanup.page),
    "health": ("Data health", health.page),
}
LABELS = {"accounts": "Account", "regions": "Region", "domains": "Domain", "repositories": "Repository",
          "formats": "Format"}


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


def filters_ui(view: View) -> Filters:
    """Sidebar filters, initialised from the URL; values not in the store are dropped, never trusted."""
    initial = Filters.from_query({k: st.query_params.get_all(k) for k in (*LIST_FIELDS, "start", "end")})
    opts = view.load("options") or {k: [] for k in LIST_FIELDS}
    chosen: dict[str, tuple[str, ...]] = {}
    with st.sidebar.expander("Filters", expanded=initial.active):
        for name in LIST_FIELDS:
            default = [v for v in getattr(initial, name) if v in opts[name]]
            chosen[name] = tuple(st.multiselect(LABELS[name], opts[name], default=default, key=f"f_{name}"))
        start = st.date_input("From", value=initial.start, key="f_start")
        end = st.date_input("To", value=initial.end, key="f_end")
    return Filters(**chosen, start=start if isinstance(start, date) else None,
                   end=end if isinstance(end, date) else None)


def sync_url(page: str, filters: Filters) -> None:
    want = {"page": page, **filters.to_query()}
    have = {k: (st.query_params.get_all(k) if k in LIST_FIELDS else st.query_params.get(k))
            for k in st.query_params}
    if have != want:
        st.query_params.from_dict(want)


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
        PAGES[page][1](View(base.db, base.version, filters, base.settings_json))
    except CaaError as e:
        st.error(str(e))


if __name__ == "__main__":
    main()
