"""Cleanup page: policy controls that recompute the candidates live, reclaimable GB and $/month split into
permanent and refetchable, the policy's backtest, the candidates, and the CSV/XLSX files that
`caa report cleanup` writes for the same policy (layout only)."""

from __future__ import annotations

from functools import partial

import streamlit as st

from core.settings import Settings
from ui import figures, views
from ui.common import DefaultLoads, Earlier, View, count, gb, no_data, pct, usd

COLUMNS = {
    "account_id": "Account", "domain": "Domain", "repository": "Repository", "format": "Format",
    "namespace": "Namespace", "package": "Package", "version": "Version", "status": "Status",
    "origin_type": "Origin",
    "published_at": st.column_config.DatetimeColumn("Published (UTC)", format="YYYY-MM-DD"),
    "last_downloaded_at": st.column_config.DatetimeColumn("Last download (UTC)", format="YYYY-MM-DD"),
    "downloads_90d": "Downloads (90 d)",
    "size_bytes": st.column_config.NumberColumn("Size (bytes)", format="localized"),
    "reclaimable_bytes": st.column_config.NumberColumn("Reclaimable (bytes)", format="localized"),
    "monthly_savings_usd": st.column_config.NumberColumn("$/month", format="$%.4f"),
    "refetchable": "Refetchable", "reason": st.column_config.TextColumn("Reason", width="large"),
    "approve": None, "row_key": None,  # the file's digest of the names, for caa apply alone
}


def policy_ui(view: View) -> tuple:
    """The policy controls, initialised from settings.cleanup; returns the loader args."""
    c = view.settings.cleanup
    unused, keep, major, age = st.columns(4)
    values = (
        unused.number_input("Unused for more than (days)", min_value=0, value=c.unused_days, step=30,
                            key="cleanup_unused_days"),
        keep.number_input("Keep the newest K versions", min_value=0, value=c.keep_latest, key="cleanup_keep_latest"),
        major.number_input("Keep the newest K per major", min_value=0, value=c.keep_latest_per_major,
                           key="cleanup_keep_latest_per_major"),
        age.number_input("Minimum age (days)", min_value=0, value=c.min_age_days, step=30,
                         key="cleanup_min_age_days"),
    )
    protect = st.text_area("Protect (one glob per line over format/namespace/package, or a package name)",
                           value="\n".join(c.protect), key="cleanup_protect", height=80)
    return views.cleanup_policy(*values, protect)


def totals_ui(summary: dict) -> None:
    n, permanent, refetch, usd_total = st.columns(4)
    g, m = summary["reclaimable_gb"], summary["monthly_savings_usd"]
    n.metric("Candidates", count(summary["candidates"]), border=True,
             help=f"{summary['refetchable_candidates']:,} of them refetchable from upstream.")
    permanent.metric("Reclaimable GB", gb(g["permanent"]), border=True,
                     help="Permanent: assets no kept version in the domain references, freed for good.")
    refetch.metric("Refetchable GB", gb(g["refetchable"]), border=True,
                   help="Upstream-cached versions: the next request fetches them again.")
    usd_total.metric("Savings ($/month)", usd(m["permanent"]), border=True,
                     help=f"Permanent storage savings; plus {usd(m['refetchable'])}/month refetchable, "
                          f"{usd(m['total'])}/month in all.")


def backtest_ui(view: View, policy: tuple) -> None:
    b = view.load(views.cleanup_backtest, *policy)
    if b is None:
        return
    st.subheader(f"Backtest: this policy run {b['days']} days ago")
    selected, requested, rate, saved = st.columns(4)
    selected.metric("Selected then", count(b["selected"]), border=True,
                    help=f"Candidates as of {b['replayed_as_of']:%Y-%m-%d} from the downloads known then.")
    requested.metric("Requested afterwards", count(b["requested_after"]), border=True,
                     help=f"{b['requested_after_permanent']:,} permanent (a broken build), "
                          f"{b['requested_after_refetchable']:,} refetchable (fetched from upstream again).")
    rate.metric("False-deletion rate", pct(b["false_deletion_rate"] * 100), border=True)
    saved.metric("Would have freed (GB)", gb(b["reclaimable_gb"]["permanent"]), border=True,
                 help="Permanently reclaimable GB of the versions selected then.")


def candidates_ui(data: views.CleanupView) -> None:
    st.subheader("Candidates")
    csv, xlsx, _ = st.columns([1, 1, 4])
    # the files are written when a button is clicked (Streamlit calls `data` then), not on every view
    csv.download_button("Download CSV", partial(data.file, "csv"), file_name="cleanup.csv", mime="text/csv",
                        key="cleanup_csv", on_click="ignore")
    xlsx.download_button("Download XLSX", partial(data.file, "xlsx"), file_name="cleanup.xlsx", key="cleanup_xlsx",
                         mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                         on_click="ignore")
    st.caption("The same files as `caa report cleanup` with this policy: fill in `approve` and pass the file "
               "to `caa apply`.")
    st.dataframe(data.report, hide_index=True, column_config=COLUMNS)


def default_loads(settings: Settings, earlier: Earlier) -> DefaultLoads:
    policy = views.settings_policy(settings)  # the policy controls start out as caa.toml's [cleanup]
    yield views.cleanup_view, policy
    yield views.cleanup_backtest, policy


def page(view: View) -> None:
    policy = policy_ui(view)
    data: views.CleanupView | None = view.load(views.cleanup_view, *policy)
    if data is None:
        no_data(view)
        return
    if not data.assets:
        st.caption("The inventory holds no package assets yet, so no version can be judged: "
                   "run `caa collect inventory`.")
    totals_ui(data.summary)
    st.plotly_chart(figures.cleanup_by_domain(data.summary["by_domain"]))
    backtest_ui(view, policy)
    candidates_ui(data)
