"""The caa dashboard (layout only): the Overview page.

Reads the store's published reader snapshot through analytics.overview, never SQL directly, and
writes nothing. The store is settings.db: `streamlit run dashboard.py -- --db PATH` > CAA_DB > caa.toml
> data/caa.duckdb. Loaders are cached on `store.reader_version(db)`, so a new collection shows on the
next rerun without a restart, and each opens and closes its own read-only connection.
Data-derived text (domain, package and format names) is shown only through st.dataframe, st.metric
and plotly, never as HTML.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import streamlit as st

from analytics import figures, overview
from collectors import store
from collectors.errors import CaaError
from settings import Prices, load_settings

TITLE = "CodeArtifact Analytics"
NO_DATA = "No data yet: run `make demo` or `caa collect`."


def db_argument(argv: list[str]) -> Path | None:
    """The --db PATH given after `--` on the streamlit command line, if any (other arguments ignored)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--db", type=Path)
    args, _ = parser.parse_known_args(argv)
    return args.db


@st.cache_data(show_spinner="Loading the store...", max_entries=8)
def load_overview(db: str, version: tuple[int, int] | None, prices_json: str) -> overview.Overview | None:
    """The Overview page's data from the snapshot of `db`; `version` is only the cache key."""
    con = store.open_reader(Path(db))
    if con is None:
        return None
    with con:
        return overview.overview(con, Prices.model_validate_json(prices_json))


def gb(value: float) -> str:
    return f"{value:,.2f}"


def count(value: int) -> str:
    return f"{value:,}"


def usd(value: float) -> str:
    return f"${value:,.2f}"


def as_of_ui(data: overview.Overview) -> None:
    when = data.as_of
    st.caption(
        f"As of {when.latest_event_at:%Y-%m-%d %H:%M} UTC, the newest event in the store. "
        f"Last 30 days = {when.window_first_day:%Y-%m-%d} to {when.day:%Y-%m-%d}; "
        f"this month = {when.month_start:%B %Y} to date."
    )


def kpis_ui(data: overview.Overview) -> None:
    storage, downloads, requests, cost = st.columns(4)
    storage.metric("Storage (GB)", gb(data.storage_gb), border=True,
                   help="Latest size of every domain; GB = bytes / 1024³, as AWS bills it.")
    downloads.metric("Downloads (30 d)", count(data.downloads_30d), border=True,
                     help="Successful package asset fetches in the last 30 days.")
    requests.metric("Requests this month", count(data.requests_this_month), border=True,
                    help="Successful CodeArtifact API requests (CloudTrail events without an error code).")
    cost.metric("Modeled cost month-to-date", usd(data.cost.total_usd), border=True,
                help=f"Storage {usd(data.cost.storage_usd)} + requests {usd(data.cost.requests_usd)}, "
                     "from the price table in settings (free tier taken off); not the AWS bill.")


def storage_ui(data: overview.Overview) -> None:
    st.subheader("Storage by domain")
    if data.storage.empty:
        st.caption("No storage snapshots yet: run `caa collect inventory`.")
        return
    st.dataframe(
        data.storage[["domain", "account_id", "region", "storage_gb", "snapshot_date"]],
        hide_index=True,
        column_config={
            "domain": "Domain", "account_id": "Account", "region": "Region",
            "storage_gb": st.column_config.NumberColumn("Storage (GB)", format="%.2f"),
            "snapshot_date": st.column_config.DateColumn("Snapshot"),
        },
    )


def downloads_ui(data: overview.Overview) -> None:
    st.subheader("Downloads per day by format")
    st.plotly_chart(figures.downloads_over_time(data.downloads_by_day))


def freshness_ui(data: overview.Overview) -> None:
    with st.sidebar:
        st.subheader("Data freshness")
        if data.freshness.empty:
            st.caption("No collector runs recorded.")
            return
        st.dataframe(
            data.freshness[["collector", "status", "last_finished_at", "failing_scopes", "scopes", "error"]],
            hide_index=True,
            column_config={
                "collector": "Collector", "status": "Status",
                "last_finished_at": st.column_config.DatetimeColumn("Last finished (UTC)",
                                                                    format="YYYY-MM-DD HH:mm"),
                "failing_scopes": "Failing", "scopes": "Scopes", "error": "Error",
            },
        )


def main(argv: list[str] | None = None) -> None:
    st.set_page_config(page_title=TITLE, layout="wide")
    st.title(TITLE)
    try:
        settings = load_settings(db=db_argument(sys.argv[1:] if argv is None else argv))
        data = load_overview(str(settings.db), store.reader_version(settings.db),
                             settings.prices.model_dump_json())
    except CaaError as e:
        st.error(str(e))
        return
    if data is None:
        st.info(NO_DATA)
        return
    as_of_ui(data)
    kpis_ui(data)
    storage_ui(data)
    downloads_ui(data)
    freshness_ui(data)


if __name__ == "__main__":
    main()
