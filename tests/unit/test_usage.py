"""Usage report numbers on a small hand-built store, worked out by hand.

Window [2026-03-01, 2026-03-08), previous window [2026-02-22, 2026-03-01); account 111111111111 us-east-1,
domain acme; repositories r1, r2, r3 in the inventory.
  r1 npm left-pad 1.0.0 (INTERNAL): window 10 downloads (alice 5, bob 5); previous window 5 (alice)
      -> package left-pad (over all repositories, with r2's one): downloads 10, prev 6, growth +66.7%
  r1 pypi requests 2.0 (EXTERNAL): window 4 (alice), previous 0 -> growth NULL; its only consumer is alice
  r2: only a download of left-pad in the previous window -> idle in the window
  r3: no events at all -> idle
  origin share: INTERNAL 10 / 14 = 71.43%, EXTERNAL 4 / 14 = 28.57%
  repositories: r1 14 downloads vs 5 -> +180%; consumers: alice 9 (prev 6 -> +50%), bob 5 (prev 0)
  single-consumer versions in the window: requests 2.0 (alice, 4); left-pad has two consumers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from analytics.usage import KEYS, usage_report
from core import store
from core.settings import load_settings
from tests.fixtures.events import insert_events
from tests.helpers import writer

A = "111111111111"
ALICE, BOB = f"arn:aws:iam::{A}:user/alice", f"arn:aws:iam::{A}:user/bob"


def _dl(n, at, repo, fmt, package, version, who):
    return (f"u{n}", at, "ReadFromRepository", A, "us-east-1", "acme", A, repo, fmt, None, package, version,
            "f", who, "IAMUser", "10.0.0.1", "ua", None, "/x")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    t = datetime(2026, 3, 2, 12, tzinfo=UTC)
    p = datetime(2026, 2, 25, 12, tzinfo=UTC)
    rows = [(t + timedelta(minutes=i), "r1", "npm", "left-pad", "1.0.0", ALICE if i < 5 else BOB) for i in range(10)]
    rows += [(t + timedelta(hours=1, minutes=i), "r1", "pypi", "requests", "2.0", ALICE) for i in range(4)]
    rows += [(p + timedelta(minutes=i), "r1", "npm", "left-pad", "1.0.0", ALICE) for i in range(5)]
    rows += [(p, "r2", "npm", "left-pad", "1.0.0", ALICE)]
    path = tmp_path_factory.mktemp("usage") / "x.duckdb"
    with writer(path) as w:
        insert_events(w, [_dl(i, *r) for i, r in enumerate(rows)])
        for repo in ("r1", "r2", "r3"):
            w.execute("INSERT INTO repositories (account_id, region, domain, repository, last_seen_at) "
                      "VALUES (?, 'us-east-1', 'acme', ?, ?)", [A, repo, t])
        for pkg, fmt, version, origin in (("left-pad", "npm", "1.0.0", "INTERNAL"), ("requests", "pypi", "2.0", "EXTERNAL")):
            w.execute("INSERT INTO package_versions (account_id, region, domain, repository, format, package, version,"
                      " status, origin_type, first_seen_at, last_seen_at) VALUES (?, 'us-east-1', 'acme', 'r1', ?, ?, ?,"
                      " 'Published', ?, ?, ?)", [A, fmt, pkg, version, origin, t, t])
    con = store.open_reader(path)
    yield usage_report(con, load_settings(path.with_name("absent.toml")), date(2026, 3, 1), date(2026, 3, 8))
    con.close()


def test_every_table_is_there(report):
    assert tuple(report) == KEYS


def test_top_packages_with_growth(report):
    p = report["packages"].set_index("package")
    assert p.loc["left-pad", ["downloads", "prev_downloads", "principals", "repositories"]].tolist() == [10, 6, 2, 1]
    assert p.loc["left-pad", "growth_pct"] == pytest.approx(100 * (10 - 6) / 6)
    assert p.loc["requests", "downloads"] == 4 and pd.isna(p.loc["requests", "growth_pct"])
    assert list(report["packages"]["package"]) == ["left-pad", "requests"]  # by downloads


def test_top_versions_repositories_consumers(report):
    assert report["versions"][["package", "version", "downloads"]].values.tolist() == [
        ["left-pad", "1.0.0", 10], ["requests", "2.0", 4]]
    r = report["repositories"]
    assert r[["repository", "downloads", "prev_downloads"]].values.tolist() == [["r1", 14, 5]]
    assert r["growth_pct"].iloc[0] == pytest.approx(180.0)
    c = report["consumers"].set_index("principal_arn")
    assert c.loc[ALICE, ["downloads", "prev_downloads"]].tolist() == [9, 6]
    assert c.loc[ALICE, "growth_pct"] == pytest.approx(50.0)
    assert c.loc[BOB, "downloads"] == 5 and pd.isna(c.loc[BOB, "growth_pct"])


def test_origin_share(report):
    o = report["origin_share"].set_index("origin_type")
    assert o["downloads"].to_dict() == {"INTERNAL": 10, "EXTERNAL": 4}
    assert o.loc["INTERNAL", "share_pct"] == pytest.approx(100 * 10 / 14)


def test_idle_repositories(report):
    idle = report["idle_repositories"]
    assert list(idle["repository"]) == ["r2", "r3"]
    assert pd.isna(idle.set_index("repository").loc["r3", "last_event_at"])


def test_single_consumer_versions(report):
    s = report["single_consumer_versions"]
    assert s[["package", "version", "principal_arn", "downloads"]].values.tolist() == [["requests", "2.0", ALICE, 4]]


def test_a_download_under_a_clients_spelling_has_the_stored_versions_origin(tmp_path):
    """The inventory lists PyPI names PEP 503-normalized (`zope-interface`) and NuGet's lowercased; pip and
    NuGet may fetch `Zope.Interface` and `1.0.0-beta`, and CloudTrail records that. Such downloads are the
    stored version's, not NOT_IN_INVENTORY; npm names compare as spelled."""
    t = datetime(2026, 3, 2, 12, tzinfo=UTC)
    sent = [("pypi", "Zope.Interface", "5.0"), ("pypi", "zope_interface", "5.0"), ("nuget", "Acme.Core", "1.0.0-beta"),
            ("npm", "Left-Pad", "1.0.0")]
    path = tmp_path / "x.duckdb"
    with writer(path) as w:
        insert_events(w, [_dl(i, t + timedelta(minutes=i), "r1", fmt, pkg, v, ALICE)
                          for i, (fmt, pkg, v) in enumerate(sent)])
        for fmt, pkg, version, origin in (("pypi", "zope-interface", "5.0", "EXTERNAL"),
                                          ("nuget", "acme.core", "1.0.0-Beta", "INTERNAL"),
                                          ("npm", "left-pad", "1.0.0", "INTERNAL")):
            w.execute("INSERT INTO package_versions (account_id, region, domain, repository, format, package, version,"
                      " status, origin_type, first_seen_at, last_seen_at) VALUES (?, 'us-east-1', 'acme', 'r1', ?, ?, ?,"
                      " 'Published', ?, ?, ?)", [A, fmt, pkg, version, origin, t, t])
    con = store.open_reader(path)
    try:
        got = usage_report(con, load_settings(path.with_name("absent.toml")), date(2026, 3, 1), date(2026, 3, 8))
    finally:
        con.close()
    assert got["origin_share"].set_index("origin_type")["downloads"].to_dict() == {
        "EXTERNAL": 2, "INTERNAL": 1, "NOT_IN_INVENTORY": 1}


def test_two_spellings_of_one_package_are_one_package_in_every_usage_table(tmp_path):
    """CloudTrail records the name a client sent (pip's `Zope.Interface`, another's `zope_interface`, NuGet's
    `Acme.Core` and `acme.core`): the usage tables count packages and versions as CodeArtifact compares names, so
    two spellings are one package, its consumers add up, and it shows its most downloaded spelling."""
    t = datetime(2026, 3, 2, 12, tzinfo=UTC)
    sent = ([("r1", "pypi", "Zope.Interface", "5.0", ALICE)] * 3 + [("r1", "pypi", "zope_interface", "5.0", BOB)] * 2
            + [("r2", "nuget", "Acme.Core", "1.0.0-Beta", ALICE)] + [("r2", "nuget", "acme.core", "1.0.0-beta", ALICE)] * 2)
    path = tmp_path / "x.duckdb"
    with writer(path) as w:
        insert_events(w, [_dl(i, t + timedelta(minutes=i), *row) for i, row in enumerate(sent)])
    con = store.open_reader(path)
    try:
        got = usage_report(con, load_settings(path.with_name("absent.toml")), date(2026, 3, 1), date(2026, 3, 8))
    finally:
        con.close()
    packages = got["packages"][["format", "package", "downloads", "principals", "repositories"]]
    assert packages.values.tolist() == [["pypi", "Zope.Interface", 5, 2, 1], ["nuget", "acme.core", 3, 1, 1]]
    versions = got["versions"][["package", "version", "downloads", "principals"]]
    assert versions.values.tolist() == [["Zope.Interface", "5.0", 5, 2], ["acme.core", "1.0.0-beta", 3, 1]]
    # zope has two consumers, so it is not a single-consumer version; acme.core's one consumer is alice
    single = got["single_consumer_versions"][["package", "version", "principal_arn", "downloads"]]
    assert single.values.tolist() == [["acme.core", "1.0.0-beta", ALICE, 3]]
    assert dict(zip(got["consumers"]["principal_arn"], got["consumers"]["packages"], strict=True)) == {ALICE: 2, BOB: 1}
    assert dict(zip(got["repositories"]["repository"], got["repositories"]["packages"], strict=True)) == {"r1": 1, "r2": 1}
