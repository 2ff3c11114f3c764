"""Hostile names through the dashboard (AppTest): a store collected with the real collectors whose package,
namespace, repository, principal, user-agent and skipped-file names come from tests/fixtures/hostile.py.

Every page renders without an exception; every hostile name it shows in a dataframe or a filter is the
stored string exactly (not escaped, truncated or re-encoded); no markdown-rendered element (markdown,
caption, title, headers, alerts, metric labels and help) carries markup from the data; and no file of the
dashboard opts into HTML (`unsafe_allow_html=True`, st.html, components.html).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import PAGES
from tests.fixtures.hostile import HOSTILE, REPOSITORY_SAFE
from tests.fixtures.hostile_store import (
    BAD_FILE,
    LABELS,
    SPIKE_AGENT,
    SPIKE_PACKAGE,
    SPIKE_PRINCIPAL,
    build_hostile_store,
    principal,
)
from tests.helpers import rows, run_page

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "dashboard.py")
MARKUP = re.compile(r"<script|onerror\s*=|onload\s*=|<img|<svg", re.IGNORECASE)
# dataframe columns that hold a name from the store (each cell must be a stored string, exactly)
NAME_COLUMNS = {"domain", "repository", "namespace", "package", "version", "principal_arn", "value", "team"}
LIST_COLUMNS = {"top_principals", "top_user_agents", "top_source_ips"}  # "value (share%)", ", "-joined
TOP20 = [HOSTILE[label] for label in LABELS[:20]]  # package i has 22 - i downloads: the last is not in the top 20


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory) -> tuple[Path, set[str], Path]:
    folder = tmp_path_factory.mktemp("hostile")
    db = folder / "caa.duckdb"
    names = build_hostile_store(db)
    config = folder / "caa.toml"
    config.write_text("")
    return db, names, config


@pytest.fixture
def hostile(hostile_db, monkeypatch) -> tuple[Path, set[str]]:
    db, names, config = hostile_db
    monkeypatch.setenv("CAA_DB", str(db))
    monkeypatch.setenv("CAA_CONFIG", str(config))
    return db, names


def shown_names(at: AppTest) -> dict[str, set[str]]:
    """{column: every string cell} over the name columns of every dataframe (main and sidebar)."""
    out: dict[str, set[str]] = {}
    for df in at.dataframe:
        value: pd.DataFrame = df.value
        for col in value.columns:
            if col in NAME_COLUMNS:
                out.setdefault(col, set()).update(v for v in value[col] if isinstance(v, str))
            elif col in LIST_COLUMNS:  # spikes table: flatten_lists joins "value (NN%)" with ", "
                cells = [v for v in value[col] if isinstance(v, str)]
                out.setdefault(col, set()).update(cells)
    return out


def markdown_texts(at: AppTest) -> list[str]:
    """The text of every element Streamlit renders as markdown (or as plain text next to it)."""
    texts = [e.value for kind in ("markdown", "caption", "title", "header", "subheader", "info", "warning",
                                  "error", "success", "text", "toast") for e in getattr(at, kind)]
    for m in at.metric:
        texts += [m.label, m.value, m.proto.delta, m.proto.help]
    for w in (*at.selectbox, *at.radio, *at.multiselect, *at.number_input, *at.text_area, *at.date_input,
              *at.download_button, *at.expander):
        texts += [w.label, getattr(w.proto, "help", "")]
    return [t for t in texts if isinstance(t, str)]


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_shows_hostile_names_exactly_and_never_as_markup(hostile, page):
    db, names = hostile
    at = run_page(page=page)
    if page == "cleanup":  # two versions a package and 6 weeks of history: keep none, unused for 30 days
        for key, value in (("cleanup_keep_latest", 0), ("cleanup_keep_latest_per_major", 0),
                           ("cleanup_unused_days", 30)):
            at.number_input(key=key).set_value(value)
        at.run(timeout=60)
        assert not at.exception
    assert at.sidebar.radio[0].value == page
    assert not [i for i in at.info if "No data yet" in i.value]
    assert not at.error, [e.value for e in at.error]
    assert not at.html  # nothing rendered as raw HTML
    for text in markdown_texts(at):
        assert not MARKUP.search(text), f"data reached a markdown element: {text!r}"
    shown = shown_names(at)
    skipped = {item for (items,) in rows(db, "SELECT skipped_items FROM collector_runs") for item in items or []}
    for col, values in shown.items():
        if col in NAME_COLUMNS:
            assert values <= names, f"{col}: not a stored name (escaped or cut?): {sorted(values - names)!r}"
        else:  # "name (NN%)" items, joined with ", "
            for cell in values:
                assert any(cell.startswith(n + " (") for n in names), cell
    if page == "usage":
        assert set(TOP20) <= shown["package"]
        assert {principal(v) for v in TOP20} <= shown["principal_arn"]
        assert set(REPOSITORY_SAFE.values()) <= shown["repository"]
        assert set(HOSTILE.values()) & shown["namespace"]
    if page == "spikes":
        assert SPIKE_PACKAGE in shown["package"]
        assert principal(HOSTILE["html-img"]) in shown["principal_arn"]  # the auth burst
        assert f"{principal(SPIKE_PRINCIPAL)} (100%)" in shown["top_principals"]
        assert f"{SPIKE_AGENT} (100%)" in shown["top_user_agents"]
        assert {principal(SPIKE_PRINCIPAL), SPIKE_AGENT} <= shown["value"]  # the drivers of spike #1
    if page == "cleanup":
        assert set(HOSTILE.values()) & shown["package"], "no hostile cleanup candidate shown"
        assert HOSTILE["formula-at"] in shown["version"]
    if page == "health":
        items = {v for df in at.dataframe if "item" in df.value.columns for v in df.value["item"]}
        assert items == skipped and any(BAD_FILE in i for i in items)


def test_filter_options_are_the_stored_names_exactly(hostile):
    at = run_page(page="overview")
    repos = at.sidebar.multiselect(key="f_repositories").options
    assert set(REPOSITORY_SAFE.values()) <= set(repos)
    assert set(repos) <= hostile[1]


@pytest.mark.parametrize("label", list(REPOSITORY_SAFE), ids=list(REPOSITORY_SAFE))
def test_a_hostile_repository_in_the_url_filters_to_exactly_that_repository(hostile, label):
    name = REPOSITORY_SAFE[label]
    at = run_page(page="usage", repositories=[name])
    assert at.sidebar.multiselect(key="f_repositories").value == [name]
    assert shown_names(at)["repository"] == {name}
    assert at.query_params["repositories"] in (name, [name])


def test_costs_by_package_shows_the_hostile_packages_exactly(hostile):
    at = run_page(page="costs")
    at.selectbox(key="cost_level").set_value("package").run(timeout=60)
    assert not at.exception
    shown = shown_names(at)
    assert shown["package"] <= hostile[1]
    assert set(HOSTILE.values()) <= shown["package"]  # every hostile package has a modeled cost
    for text in markdown_texts(at):
        assert not MARKUP.search(text), text


def test_no_dashboard_file_renders_html():
    files = [ROOT / "dashboard.py", *sorted((ROOT / "ui").glob("*.py"))]
    offenders = [f"{f.name}:{n}: {line.strip()}" for f in files
                 for n, line in enumerate(f.read_text().splitlines(), 1)
                 if re.search(r"unsafe_allow_html\s*=\s*True|st\.html\(|components\.v1|components\.html", line)]
    assert offenders == []
