"""The sidebar's global filters (layout only): initialised from the URL, kept in it, so a link reproduces
the view. Values not in the store are dropped, never trusted.

Reads: the store's filter choices (ui/views.filter_options), the URL. Writes: the URL's query.
"""

from __future__ import annotations

from datetime import date

import streamlit as st

from analytics.filters import LIST_FIELDS, Filters
from core.settings import Settings
from ui import views
from ui.common import DefaultLoads, Earlier, View

LABELS = {"accounts": "Account", "regions": "Region", "domains": "Domain", "repositories": "Repository",
          "formats": "Format"}


def default_loads(settings: Settings, earlier: Earlier) -> DefaultLoads:
    yield views.filter_options, ()  # the choices, on every page (they never depend on the filters)


def filters_ui(view: View) -> Filters:
    initial = Filters.from_query({k: st.query_params.get_all(k) for k in (*LIST_FIELDS, "start", "end")})
    opts = view.load(views.filter_options) or {k: [] for k in LIST_FIELDS}
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
