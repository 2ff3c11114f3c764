"""Cleanup candidates on small hand-built stores: version order, the policy's rules, bytes freed per
domain by sha256, refetchable savings, the backtest, and the report file."""

from __future__ import annotations

import csv
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from analytics import cleanup as C
from analytics.reports import read_table, write_table
from analytics.versions import is_prerelease, major, rank_versions, satisfies
from core import store
from core.errors import ConfigError
from tests.helpers import make_settings, writer

NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)
GIB = 1024**3
A, B = "111111111111", "222222222222"


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


class Estate:
    """Rows for a small store: versions (each with one asset), downloads, dependencies, origin controls."""

    def __init__(self, history_days: int = 1000):
        self.versions: list[tuple] = []
        self.assets: list[tuple] = []
        self.deps: list[tuple] = []
        self.packages: dict[tuple, str] = {}
        self.events: list[tuple] = [  # the store's "now" and the start of its history (not downloads)
            ("anchor-now", NOW, "GetAuthorizationToken", A, "us-east-1", "acme", None, None, None, None, None, None),
            ("anchor-first", ago(history_days), "GetAuthorizationToken", A, "us-east-1", "acme", None, None, None,
             None, None, None)]

    def version(self, package, version, *, repo="libs", fmt="npm", ns=None, status="Published",
                origin="INTERNAL", published=None, size=100, sha=None, domain="acme", region="us-east-1",
                account=A, upstream=None):
        key = (account, region, domain, repo, fmt, ns, package, version)
        self.versions.append((*key, status, origin, published or ago(400)))
        self.assets.append((*key, f"{package}-{version}.bin", size, sha or f"sha-{repo}-{package}-{version}"))
        self.packages[key[:-1]] = upstream or ("ALLOW" if origin == "EXTERNAL" else "BLOCK")
        return key

    def download(self, key, at):
        account, region, domain, repo, fmt, ns, package, version = key
        self.events.append((f"e{len(self.events)}", at, "ReadFromRepository", account, region, domain, repo, fmt,
                            ns, package, version, f"{package}-{version}.bin"))

    def depend(self, key, dep_package, requirement, dep_ns=None):
        self.deps.append((*key, dep_ns, dep_package, "regular", requirement))

    def build(self, path: Path):
        with writer(path) as con:
            con.executemany("INSERT INTO event_rows (event_id, event_at, event_name, account_id, region, domain, "
                            "repository, format, namespace, package, version, asset) VALUES "
                            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", self.events)
            con.executemany("INSERT INTO package_versions (account_id, region, domain, repository, format, "
                            "namespace, package, version, status, origin_type, published_at, first_seen_at, "
                            "last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(), now())", self.versions)
            con.executemany("INSERT INTO assets_rows VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", self.assets)
            if self.deps:
                con.executemany("INSERT INTO package_dependencies VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                self.deps)
            con.executemany("INSERT INTO packages VALUES (?, ?, ?, ?, ?, ?, ?, 'ALLOW', ?, now())",
                            [(*k, up) for k, up in self.packages.items()])
            store.bump_version(con)
        return store.open_reader(path)


@pytest.fixture
def build(tmp_path):
    cons = []

    def make(estate: Estate):
        con = estate.build(tmp_path / f"x{len(cons)}.duckdb")
        cons.append(con)
        return con

    yield make
    for con in cons:
        con.close()


def settings(**prices):
    return make_settings(prices=prices) if prices else make_settings()


def candidates(con, **policy) -> dict[tuple, dict]:
    df = C.evaluate(con, settings(), **policy)
    return {tuple(r[k] for k in C.KEY): r for r in df[df["candidate"]].to_dict(orient="records")}


def versions_of(found: dict) -> set[str]:
    return {k[-1] for k in found}


# ---- version order and ranges ---------------------------------------------------------------------

def order(fmt, vs, published=None):
    ranks = rank_versions(fmt, vs, published or [None] * len(vs))
    return [v for _, v in sorted(zip(ranks, vs, strict=True), reverse=True)]


def test_semver_order_understands_prereleases_per_format():
    assert order("npm", ["1.0.0", "1.0.0-rc.10", "1.0.0-rc.2", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta",
                         "0.9.9", "1.0.1", "10.0.0", "2.0.0"]) == [
        "0.9.9", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta", "1.0.0-rc.2", "1.0.0-rc.10", "1.0.0", "1.0.1",
        "2.0.0", "10.0.0"]
    assert order("pypi", ["1.0", "1.0rc1", "1.0.post1", "1.0a1", "1.0.dev1", "0.9", "2.0b1", "1.10"]) == [
        "0.9", "1.0.dev1", "1.0a1", "1.0rc1", "1.0", "1.0.post1", "1.10", "2.0b1"]
    assert order("maven", ["1.0", "1.0-SNAPSHOT", "1.0-RC1", "1.0-M1", "1.0-alpha-1", "1.0-beta-2", "1.0.1",
                           "32.1.3-jre", "33.0.0-jre", "2.8.0-M1", "1.0-RC2", "1.0.10", "1.0.9"]) == [
        "1.0-alpha-1", "1.0-beta-2", "1.0-M1", "1.0-RC1", "1.0-RC2", "1.0-SNAPSHOT", "1.0", "1.0.1", "1.0.9",
        "1.0.10", "2.8.0-M1", "32.1.3-jre", "33.0.0-jre"]
    assert is_prerelease("maven", "1.0-SNAPSHOT") and not is_prerelease("maven", "33.0.0-jre")
    assert is_prerelease("npm", "2.0.0-rc.1") and is_prerelease("pypi", "2.0rc1")
    assert (major("npm", "2.0.0-rc.1"), major("maven", "33.0.0-jre"), major("pypi", "1!3.2")) == ("2", "33", "1!3")


def test_unparsable_versions_order_the_package_by_published_at():
    vs, pub = ["banana", "1.0.0", "0.1.0"], [ago(10), ago(30), ago(20)]
    assert order("npm", vs, pub) == ["1.0.0", "0.1.0", "banana"]


@pytest.mark.parametrize("fmt,version,requirement,ok", [
    ("npm", "1.2.5", "^1.2.3", True), ("npm", "2.0.0", "^1.2.3", False), ("npm", "0.2.9", "^0.2.3", True),
    ("npm", "0.3.0", "^0.2.3", False), ("npm", "1.2.9", "~1.2.3", True), ("npm", "1.3.0", "~1.2.3", False),
    ("npm", "1.9.0", "1.x", True), ("npm", "2.0.0", "1.x", False), ("npm", "1.2.3", "1.2.3", True),
    ("npm", "1.2.4", "1.2.3", False), ("npm", "2.5.0", ">=2.0.0 <3", True), ("npm", "3.0.0", ">=2.0.0 <3", False),
    ("npm", "1.1.0-rc.1", "^1.0.0", False), ("npm", "1.0.0-rc.2", "^1.0.0-rc.1", True),
    ("npm", "4.1.0", "^3.0.0 || ^4.0.0", True), ("npm", "2.3.9", "1.0.0 - 2.3", True),
    ("npm", "1.0.0", "github:user/repo", True),  # cannot be read: conservatively depended on
    ("pypi", "1.30", ">=1.24,<2", True), ("pypi", "2.0", ">=1.24,<2", False), ("pypi", "1.5", ">=1.24,<2", False),
    ("pypi", "2.0rc1", ">=1.24,<3", False), ("pypi", "1.0", "not a specifier!", True),
    ("maven", "3.2.2", "3.2.2", True), ("maven", "3.2.3", "3.2.2", False), ("maven", "1.5", "[1.0,2.0)", True),
    ("maven", "2.0", "[1.0,2.0)", False), ("maven", "1.1", "(,1.0],[1.2,)", False), ("maven", "1.0", "${v}", True),
])
def test_dependency_ranges(fmt, version, requirement, ok):
    assert satisfies(fmt, version, requirement) is ok


# ---- the policy's rules ---------------------------------------------------------------------------

def test_latest_k_and_newest_release_of_each_major_are_kept(build):
    e = Estate()
    for v in ["1.0.0", "1.1.0", "1.2.0", "2.0.0", "2.1.0", "2.2.0-rc.1", "3.0.0", "3.1.0", "3.2.0"]:
        e.version("lib", v)
    con = build(e)
    found = candidates(con)  # keep_latest=3, keep_latest_per_major=1
    assert versions_of(found) == {"1.0.0", "1.1.0", "2.0.0", "2.2.0-rc.1"}
    assert found[(A, "us-east-1", "acme", "libs", "npm", None, "lib", "1.0.0")]["reason"] == (
        "never downloaded, idle 400 d (> 180); not in latest 3 (rank 9); not newest of major 1; age 400 d (>= 90)")
    assert versions_of(candidates(con, keep_latest=1, keep_latest_per_major=0)) == {
        "1.0.0", "1.1.0", "1.2.0", "2.0.0", "2.1.0", "2.2.0-rc.1", "3.0.0", "3.1.0"}
    # the newest 2 releases of each line; a prerelease only counts when its line has no more releases
    assert versions_of(candidates(con, keep_latest=0, keep_latest_per_major=2)) == {"1.0.0", "2.2.0-rc.1", "3.0.0"}


def test_recent_downloads_and_min_age_and_status_protect(build):
    e = Estate()
    old = e.version("lib", "1.0.0")
    e.download(old, ago(100))
    e.version("lib", "1.1.0", published=ago(30))
    e.version("lib", "1.2.0", status="Disposed")
    gone = e.version("lib", "1.3.0")
    e.download(gone, ago(200))
    e.version("lib", "9.0.0")
    con = build(e)
    found = candidates(con, keep_latest=1, keep_latest_per_major=0)
    assert versions_of(found) == {"1.3.0"}
    assert found[gone]["reason"].startswith("unused 200 d (> 180); not in latest 1 (rank 2)")
    assert versions_of(candidates(con, keep_latest=1, keep_latest_per_major=0, min_age_days=10, unused_days=20)) == {
        "1.0.0", "1.1.0", "1.3.0"}
    assert versions_of(candidates(con, keep_latest=1, keep_latest_per_major=0, unused_days=90)) == {"1.0.0", "1.3.0"}
    kept = C.evaluate(con, settings(), keep_latest=1, keep_latest_per_major=0).set_index("version")["kept_because"]
    assert kept["1.0.0"] == "last download 100 d ago (<= 180)"
    assert kept["1.1.0"] == "never downloaded, idle 30 d (<= 180); age 30 d (< 90)"
    assert kept["1.2.0"].startswith("status Disposed")


def test_a_short_history_never_makes_old_versions_look_unused(build):
    e = Estate(history_days=100)
    e.version("lib", "1.0.0", published=ago(500))
    e.version("lib", "2.0.0", published=ago(500))
    con = build(e)
    assert candidates(con, keep_latest=1, keep_latest_per_major=0) == {}
    assert versions_of(candidates(con, keep_latest=1, keep_latest_per_major=0, unused_days=99)) == {"1.0.0"}


def test_pins_and_globs_protect(build):
    e = Estate()
    for pkg, ns in [("left-pad", None), ("lodash", None), ("ui", "myorg"), ("core", None)]:
        for v in ["1.0.0", "1.1.0", "1.2.0"]:
            e.version(pkg, v, ns=ns)
    e.version("guava", "1.0", fmt="maven", ns="com.google.guava")
    e.version("guava", "2.0", fmt="maven", ns="com.google.guava")
    con = build(e)
    policy = {"keep_latest": 1, "keep_latest_per_major": 0}
    everything = candidates(con, **policy)
    assert len(everything) == 9
    found = candidates(con, **policy, protect=["npm/*/left-*", "lodash", "maven/com.google.*/*"],
                       pins=["@myorg/ui@1.0.0", "core@1.1.0"])
    assert {(k[6], k[7]) for k in found} == {("ui", "1.1.0"), ("core", "1.0.0")}
    kept = C.evaluate(con, settings(), **policy, pins=["myorg/ui@1.1.0"])
    assert kept.set_index(["package", "version"]).loc[("ui", "1.1.0"), "kept_because"] == "pinned by 'myorg/ui@1.1.0'"


def test_kept_internal_versions_protect_what_their_ranges_admit(build):
    e = Estate()
    app = e.version("app", "3.0.0")  # the only app version: kept as the latest
    e.download(app, ago(1))
    for v in ["1.1.0", "1.2.0", "1.2.5", "2.0.0", "5.0.0"]:
        e.version("lib", v)
    for v in ["1.0.0", "1.1.0", "2.0.0"]:
        e.version("util", v)
    for v in ["1.0.0", "2.0.0", "3.0.0"]:
        e.version("weird", v)
    e.depend(app, "lib", "^1.2.0")
    e.depend(app, "weird", "git+https://example.com/weird.git")
    e.depend((A, "us-east-1", "acme", "libs", "npm", None, "lib", "1.2.5"), "util", "1.0.0")  # transitive
    e.depend((A, "us-east-1", "acme", "libs", "npm", None, "lib", "1.1.0"), "util", "1.1.0")  # a candidate's
    con = build(e)
    found = candidates(con, keep_latest=1, keep_latest_per_major=0)
    by_pkg = {(k[6], k[7]) for k in found}
    assert ("lib", "1.2.0") not in by_pkg and ("lib", "1.2.5") not in by_pkg
    assert {("lib", "1.1.0"), ("lib", "2.0.0"), ("util", "1.1.0")} <= by_pkg
    assert ("util", "1.0.0") not in by_pkg  # kept lib 1.2.5 needs it
    assert not any(p == "weird" for p, _ in by_pkg)  # an unreadable range protects every version
    kept = C.evaluate(con, settings(), keep_latest=1, keep_latest_per_major=0).set_index(["package", "version"])
    assert kept.loc[("util", "1.0.0"), "kept_because"] == "lib@1.2.5 needs util 1.0.0"


def test_pypi_dependency_specifiers(build):
    e = Estate()
    app = e.version("svc", "1.0", fmt="pypi")
    for v in ["1.9", "2.0", "2.5", "3.0", "9.0"]:
        e.version("requests", v, fmt="pypi", origin="EXTERNAL")
    e.depend(app, "requests", ">=2.1,<3")
    con = build(e)
    assert {k[7] for k in candidates(con, keep_latest=1, keep_latest_per_major=0) if k[6] == "requests"} == {
        "1.9", "2.0", "3.0"}


# ---- bytes freed per domain by sha256, refetchable savings -------------------------------------------

def test_a_shared_asset_is_freed_only_when_every_holder_goes_and_then_once(build):
    e = Estate()
    one = e.version("lib", "1.0.0", repo="a-repo", sha="shared", size=7 * GIB)
    two = e.version("lib", "1.0.0", repo="b-repo", sha="shared", size=7 * GIB)
    for repo in ("a-repo", "b-repo"):
        e.version("lib", "2.0.0", repo=repo)
    e.version("lib", "1.0.0", repo="libs", domain="other", sha="shared", size=7 * GIB)  # another domain
    e.download(e.version("lib", "2.0.0", repo="libs", domain="other"), ago(1))
    e.download(e.version("lib", "3.0.0", repo="libs", domain="other", sha="shared", size=7 * GIB), ago(1))
    e.download(two, ago(5))  # b-repo still uses its copy
    con = build(e)
    policy = {"keep_latest": 1, "keep_latest_per_major": 0}
    found = candidates(con, **policy)
    assert one in found and two not in found
    assert found[one]["reclaimable_bytes"] == 0 and found[one]["size_bytes"] == 7 * GIB

    found = candidates(con, **policy, unused_days=1)  # now both copies are candidates
    assert found[one]["reclaimable_bytes"] == 7 * GIB  # attributed once, to the first in report order
    assert found[two]["reclaimable_bytes"] == 0
    report = C.report_cleanup(con, settings(), **policy, unused_days=1)
    acme = report[report["domain"] == "acme"]
    assert acme["reclaimable_bytes"].sum() == 7 * GIB  # the domain's total: the shared asset counted once
    # in "other" the same sha256 is still held by its kept lib 3.0.0: deleting its 1.0.0 frees nothing
    assert C.reclaimed_bytes_by_domain(report) == {(A, "us-east-1", "acme"): 7 * GIB, (A, "us-east-1", "other"): 0}


def test_external_versions_are_refetchable_unless_upstream_is_blocked(build):
    e = Estate()
    e.version("react", "1.0.0", origin="EXTERNAL", size=GIB)
    e.version("react", "2.0.0", origin="EXTERNAL")
    e.version("guarded", "1.0.0", origin="EXTERNAL", upstream="BLOCK", size=2 * GIB, repo="store")
    e.version("guarded", "2.0.0", origin="EXTERNAL", upstream="BLOCK", repo="store")
    e.version("mine", "1.0.0", size=4 * GIB)
    e.version("mine", "2.0.0")
    con = build(e)
    report = C.report_cleanup(con, settings(), keep_latest=1, keep_latest_per_major=0)
    flags = dict(zip(report["package"], report["refetchable"], strict=True))
    assert flags == {"react": True, "guarded": False, "mine": False}
    s = C.summary(report)
    assert s["candidates"] == 3 and s["refetchable_candidates"] == 1
    assert s["reclaimable_bytes"] == {"permanent": 6 * GIB, "refetchable": GIB, "total": 7 * GIB}
    assert s["monthly_savings_usd"]["permanent"] == pytest.approx(6 * 0.05)
    assert s["monthly_savings_usd"]["refetchable"] == pytest.approx(0.05)
    assert C.reclaimed_bytes_by_domain(report) == {(A, "us-east-1", "acme"): 6 * GIB}  # permanent only


def test_monthly_savings_follow_the_regional_storage_price(build):
    e = Estate()
    e.version("big", "1.0.0", size=3 * GIB, region="eu-west-1", account=B, domain="beta")
    e.version("big", "2.0.0", region="eu-west-1", account=B, domain="beta")
    e.version("half", "1.0.0", size=GIB // 2)
    e.version("half", "2.0.0")
    con = build(e)
    s = settings(storage_usd_per_gb_month=0.05, regions={"eu-west-1": {"storage_usd_per_gb_month": 0.10}})
    report = C.report_cleanup(con, s, keep_latest=1, keep_latest_per_major=0)
    usd = dict(zip(report["package"], report["monthly_savings_usd"], strict=True))
    assert usd["big"] == pytest.approx(3 * 0.10)  # 3 GiB x $0.10 in eu-west-1
    assert usd["half"] == pytest.approx(0.5 * 0.05)  # 0.5 GiB x $0.05 elsewhere
    assert C.summary(report)["monthly_savings_usd"]["total"] == pytest.approx(0.325)


# ---- backtest ----------------------------------------------------------------------------------

def test_backtest_counts_a_selected_version_downloaded_afterwards_as_a_false_deletion(build):
    e = Estate()
    back = e.version("lib", "1.0.0", size=GIB)
    e.download(back, ago(300))
    e.download(back, ago(30))  # after the replayed "now" (90 days ago): a false deletion
    quiet = e.version("lib", "1.1.0", size=2 * GIB)
    e.download(quiet, ago(300))
    e.version("lib", "1.2.0", published=ago(60))  # did not exist 90 days ago
    latest = e.version("lib", "2.0.0")
    e.download(latest, ago(1))
    con = build(e)
    bt = C.backtest(con, settings(), 90, keep_latest=1, keep_latest_per_major=0)
    # the end of the last whole UTC day at least 90 days back (its queries read whole days from the rollups)
    assert ago(90) == datetime(2026, 4, 1, 12, tzinfo=UTC)
    assert bt["replayed_as_of"] == datetime(2026, 3, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert (bt["selected"], bt["requested_after"], bt["false_deletion_rate"]) == (2, 1, 0.5)
    assert bt["requested_after_permanent"] == 1 and bt["downloads_after"] == 1
    assert bt["reclaimable_bytes"]["total"] == 3 * GIB
    assert [d["version"] for d in bt["false_deletions"]] == ["1.0.0"]
    # today lib 1.0.0 was used 30 days ago and 1.2.0 is 60 days old: only 1.1.0 is selected
    assert versions_of(candidates(con, keep_latest=1, keep_latest_per_major=0)) == {"1.1.0"}


def test_the_backtest_replays_the_end_of_a_day_with_that_days_downloads_before_it(build):
    e = Estate()
    late = e.version("lib", "1.0.0", size=GIB)
    e.download(late, datetime(2026, 3, 31, 23, 59, 59, 999999, tzinfo=UTC))  # the replayed instant itself
    early = e.version("lib", "1.1.0", size=GIB)
    e.download(early, datetime(2026, 3, 29, 12, tzinfo=UTC))
    e.download(early, datetime(2026, 4, 1, 0, 0, tzinfo=UTC))  # just after it: a false deletion if selected
    e.version("lib", "2.0.0")
    con = build(e)
    bt = C.backtest(con, settings(), 90, keep_latest=1, keep_latest_per_major=0, unused_days=1)
    assert bt["replayed_as_of"] == datetime(2026, 3, 31, 23, 59, 59, 999999, tzinfo=UTC)
    # 1.0.0 was downloaded at that instant (in use); 1.1.0 two and a half days before it (unused), and again
    # at the next day's first instant
    assert (bt["selected"], bt["requested_after"], bt["downloads_after"]) == (1, 1, 1)
    assert [d["version"] for d in bt["false_deletions"]] == ["1.1.0"]


# ---- the report file ---------------------------------------------------------------------------

HOSTILE = ['=HYPERLINK("http://x")', "<img src=x onerror=alert(1)>"]


def test_report_columns_and_hostile_names_survive_every_format(build, tmp_path):
    e = Estate()
    for name in HOSTILE:
        e.version(name, "1.0.0")
        e.version(name, "2.0.0")
    con = build(e)
    report = C.report_cleanup(con, settings(), keep_latest=1, keep_latest_per_major=0)
    assert list(report.columns) == C.REPORT_COLUMNS
    assert list(report.columns) == [
        "account_id", "domain", "repository", "format", "namespace", "package", "version", "status",
        "origin_type", "published_at", "last_downloaded_at", "downloads_90d", "size_bytes", "reclaimable_bytes",
        "monthly_savings_usd", "refetchable", "reason", "approve", "generated_at", "policy", "row_key"]
    assert report["approve"].isna().all() and report["reason"].notna().all()
    # the report records what `caa apply` re-judges it by: the store's as-of and the policy's rules
    assert json.loads(report["policy"].iloc[0])["keep_latest"] == 1 and report["policy"].nunique() == 1
    assert report["generated_at"].iloc[0] == report.attrs["as_of"]
    assert sorted(report["package"]) == sorted(HOSTILE)
    for fmt in ("csv", "xlsx", "json", "parquet"):
        out = write_table(report, tmp_path / f"cleanup.{fmt}")
        back = read_table(out)
        assert list(back.columns) == C.REPORT_COLUMNS
        assert sorted(back["package"]) == sorted(HOSTILE), fmt
        assert set(back["policy"]) == set(report["policy"]), fmt  # the JSON survives every format
        # each row's key is the digest of its names as read back, so caa apply finds every row unchanged
        assert [C.row_key(*n) for n in back[C.ROW_NAMES].itertuples(index=False, name=None)] == list(
            back["row_key"]) == list(report["row_key"]), fmt
    with (tmp_path / "cleanup.csv").open(newline="", encoding="utf-8") as fh:
        cells = [c for row in csv.reader(fh) for c in row]
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)
    assert "<f>" not in zipfile.ZipFile(tmp_path / "cleanup.xlsx").read("xl/worksheets/sheet1.xml").decode()
    # the summary reads a reviewed file back (refetchable arrives as text from CSV)
    for fmt in ("csv", "xlsx"):
        assert C.summary(read_table(tmp_path / f"cleanup.{fmt}"))["reclaimable_bytes"] == C.summary(report)[
            "reclaimable_bytes"] == {"permanent": 200, "refetchable": 0, "total": 200}


def test_an_empty_store_and_a_bad_override(build, tmp_path):
    with writer(tmp_path / "empty.duckdb"):
        pass
    con = store.open_reader(tmp_path / "empty.duckdb")
    try:
        report = C.report_cleanup(con, settings())
        assert list(report.columns) == C.REPORT_COLUMNS and len(report) == 0
        assert C.summary(report)["candidates"] == 0 and C.reclaimed_bytes_by_domain(report) == {}
    finally:
        con.close()
    with pytest.raises(ConfigError, match="unknown cleanup policy setting"):
        C.policy(settings(), keep_newest=3)
    with pytest.raises(ConfigError, match="unused_days"):
        C.policy(settings(), unused_days=-1)


def test_a_store_with_events_but_no_inventory_assets_gives_an_empty_report(tmp_path):
    from pathlib import Path

    from core import settings as settings_mod
    from core import store as store_mod
    from tests.fixtures.small_store import build_small_store

    db = tmp_path / "caa.duckdb"
    build_small_store(db)  # events and snapshots, but no assets collected yet
    s = settings_mod.load_settings(Path("/nonexistent/caa.toml"))
    with store_mod.open_reader(db) as con:
        df = C.report_cleanup(con, s)
        assert len(df) == 0 and C.summary(df)["candidates"] == 0
        assert C.backtest(con, s)["selected"] == 0


# ---- names as CodeArtifact stores them --------------------------------------------------------------

def test_a_download_under_a_clients_spelling_keeps_the_version_codeartifact_stores_normalized(build):
    """CodeArtifact stores PyPI names PEP 503-normalized and NuGet names (and versions) lowercased, NuGet's
    versions without leading zeros or a fourth number that is zero, and the inventory lists them so; a download may be recorded as the client spelled it. Such a version is in use,
    not a candidate, today and in the backtest. npm names are compared as spelled."""
    e = Estate()
    keys = {}
    for fmt, stored, sent, version, sent_version in (
            ("pypi", "zope-interface", "Zope.Interface", "1.0", "1.0"),
            ("pypi", "ruamel-yaml-clib", "ruamel.yaml__clib", "1.0", "1.0"),
            ("nuget", "newtonsoft.json", "Newtonsoft.Json", "1.0.0-Beta", "1.0.0-beta"),
            ("nuget", "acme.core", "Acme.Core", "1.1.0", "1.01.0.0"),  # .NET's four parts, a leading zero
            ("npm", "left-pad", "Left-Pad", "1.0", "1.0")):
        e.version(stored, "0.9", fmt=fmt)
        used = e.version(stored, version, fmt=fmt)
        e.version(stored, "2.0", fmt=fmt)  # the latest: kept
        e.download((*used[:6], sent, sent_version), ago(3))
        e.download((*used[:6], sent, sent_version), ago(20))  # after the backtest's replayed "now"
        keys[fmt, stored] = used
    con = build(e)
    found = candidates(con, keep_latest=1, keep_latest_per_major=0)
    by_package = {(k[4], k[6]): set() for k in keys.values()}
    for k in found:
        by_package[k[4], k[6]].add(k[7])
    assert by_package == {("pypi", "zope-interface"): {"0.9"}, ("pypi", "ruamel-yaml-clib"): {"0.9"},
                          ("nuget", "newtonsoft.json"): {"0.9"}, ("nuget", "acme.core"): {"0.9"},
                          ("npm", "left-pad"): {"0.9", "1.0"}}  # npm: `Left-Pad` is another package
    facts = C.evaluate(con, settings()).set_index(C.KEY)
    assert [facts.loc[keys[k], "downloads_30d"] for k in sorted(keys)] == [0, 2, 2, 2, 2]  # npm, nuget x2, pypi x2
    bt = C.backtest(con, settings(), 60, keep_latest=1, keep_latest_per_major=0)
    assert sorted((d["format"], d["package"], d["version"]) for d in bt["false_deletions"]) == [
        ("nuget", "acme.core", "1.1.0"), ("nuget", "newtonsoft.json", "1.0.0-Beta"), ("pypi", "ruamel-yaml-clib", "1.0"),
        ("pypi", "zope-interface", "1.0")]


@pytest.mark.parametrize(("sent", "stored"), [  # CodeArtifact's docs' examples, and their neighbours
    ("1.00", "1.0"), ("1.01.1", "1.1.1"), ("1.00.0.1", "1.0.0.1"), ("1.0.0.0", "1.0.0"), ("1.0.01.0", "1.0.1"),
    ("1.0.7+r3456", "1.0.7"), ("1.0.0-Beta", "1.0.0-beta"), ("01.2.0.0-RC.1+x", "1.2.0-rc.1"), ("1.0.0.1", "1.0.0.1"),
    ("10.20.300", "10.20.300"), ("2", "2"), ("1.x.03", "1.x.3")])
def test_a_nuget_version_is_keyed_as_codeartifact_normalizes_it(sent, stored):
    with duckdb.connect() as con:
        store.migrate(con)
        assert con.execute("SELECT version_key('nuget', ?), version_key('nuget', ?), version_key('npm', ?)",
                           [sent, stored, sent]).fetchone() == (stored, stored, sent)


def test_a_domain_of_the_same_name_in_another_region_or_account_has_its_own_downloads(build):
    """Domain names are unique within an account and Region only: an estate that runs `acme` in two Regions
    (or two accounts) with the same packages has two copies of each version, and a download of one copy is
    not a download of the other."""
    e = Estate()
    copies = {}
    for account, region in ((A, "us-east-1"), (A, "eu-west-1"), (B, "us-east-1")):
        e.version("lib", "1.0", region=region, account=account)
        copies[account, region] = e.version("lib", "1.1", region=region, account=account)
        e.version("lib", "2.0", region=region, account=account)  # the latest: kept
    e.download(copies[A, "us-east-1"], ago(3))
    e.download(copies[A, "us-east-1"], ago(20))  # both after the backtest's replayed "now"
    con = build(e)
    found = candidates(con, keep_latest=1, keep_latest_per_major=0)
    assert sorted((k[0], k[1], k[7]) for k in found) == [
        (A, "eu-west-1", "1.0"), (A, "eu-west-1", "1.1"), (A, "us-east-1", "1.0"), (B, "us-east-1", "1.0"),
        (B, "us-east-1", "1.1")]
    facts = C.evaluate(con, settings()).set_index(C.KEY)
    assert [facts.loc[copies[k], "downloads_total"] for k in sorted(copies)] == [0, 2, 0]
    bt = C.backtest(con, settings(), 60, keep_latest=1, keep_latest_per_major=0)
    assert [(d["account_id"], d["version"]) for d in bt["false_deletions"]] == [(A, "1.1")]
    assert bt["requested_after"] == 1 and bt["downloads_after"] == 2  # its two downloads, not its twins'
