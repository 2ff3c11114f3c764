"""The inventory collector end to end: botocore Stubber with multi-page responses, and the demo's fake
CodeArtifact (throttling, access denied, incremental re-runs, shared assets, daily storage snapshots)."""

from __future__ import annotations

import types
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import botocore.endpoint
import pytest
from botocore.stub import Stubber

from analytics import cleanup
from collectors.base import RunContext, run_collectors
from collectors.inventory import SPEC, collect, snapshot_domains
from core import lake, store
from core.aws import Scope
from core.settings import load_settings
from demo.fake_codeartifact import FakeCodeArtifact, FakeCodeArtifactClients, FakeResponseError
from demo.model import Asset, Dependency, Domain, Estate, Package, Repository, Version
from tests.helpers import writer

ACCT = "111111111111"
REGION = "us-east-1"
SCOPE = Scope(ACCT, REGION)
T0 = datetime(2024, 1, 1, tzinfo=UTC)
AS_OF = datetime(2024, 6, 30, 23, 59, 59, tzinfo=UTC)
TABLES = ("domains", "repositories", "packages", "package_versions", "assets", "package_dependencies",
          "storage_snapshots")
RUN_TIME_COLUMNS = {"last_seen_at", "collected_at"}  # when we looked, not what we saw


# -- a tiny hand-built estate ------------------------------------------------------------------------------

def sha(n: int) -> str:
    return f"{n:064x}"


def tiny_estate() -> Estate:
    """Domain corp: npm-store (external connection, caches lodash), app (upstream npm-store, 120 versions of
    @acme/web over 3 pages, and the same lodash file as npm-store), py (one pypi package).
    Domain data: one repository. Plus a version published after AS_OF and a Disposed one."""
    lodash = Package("npm", None, "lodash", "BLOCK", "ALLOW", [
        Version("4.17.21", "Published", "EXTERNAL", T0 + timedelta(days=3), "lo-r1",
                [Asset("lodash-4.17.21.tgz", 300_000, sha(1))])])
    lodash_in_app = Package("npm", None, "lodash", "BLOCK", "ALLOW", [
        Version("4.17.21", "Published", "EXTERNAL", T0 + timedelta(days=4), "lo-r1",
                [Asset("lodash-4.17.21.tgz", 300_000, sha(1))])])
    web = Package("npm", "acme", "web", "ALLOW", "BLOCK", [
        Version(f"1.0.{i}", "Disposed" if i == 0 else "Published", "INTERNAL", T0 + timedelta(days=i),
                f"web-r{i}", [Asset(f"web-1.0.{i}.tgz", 1000 + i, sha(100 + i))],
                [Dependency(None, "lodash", "regular", "^4.17.0"), Dependency("acme", "util", "dev", "1.x")])
        for i in range(120)])
    web.versions.append(Version("2.0.0", "Published", "INTERNAL", AS_OF + timedelta(days=1), "web-r200",
                                [Asset("web-2.0.0.tgz", 5000, sha(900))]))
    requests = Package("pypi", None, "requests", "BLOCK", "ALLOW", [
        Version("2.31.0", "Published", "EXTERNAL", T0 + timedelta(days=10), "rq-r1",
                [Asset("requests-2.31.0-py3-none-any.whl", 62_000, sha(2)),
                 Asset("requests-2.31.0.tar.gz", 110_000, sha(3))])])
    corp = Domain("corp", ACCT, REGION, T0, f"arn:aws:kms:{REGION}:{ACCT}:key/abc", [
        Repository("npm-store", "npmjs cache", ACCT, T0, [], "public:npmjs", {}, [lodash]),
        Repository("app", "team app", ACCT, T0, ["npm-store"], None, {"team": "web", "env": "prod"},
                   [web, lodash_in_app]),
        Repository("py", "python", ACCT, T0, [], "public:pypi", {}, [requests]),
    ])
    data = Domain("data", ACCT, REGION, T0 + timedelta(days=30), f"arn:aws:kms:{REGION}:{ACCT}:key/def", [
        Repository("ml", "ml models", ACCT, T0 + timedelta(days=30), [], None, {}, [
            Package("pypi", None, "model-kit", "ALLOW", "BLOCK", [
                Version("0.1.0", "Unlisted", "INTERNAL", T0 + timedelta(days=40), "mk-r1",
                        [Asset("model_kit-0.1.0.tar.gz", 7_000_000, sha(4))])])])])
    return Estate(1, T0, AS_OF, "o-abc123", [ACCT], [REGION], [corp, data])


# -- fixtures --------------------------------------------------------------------------------------------

@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's retry back-off sleeps, recorded instead of slept (botocore.endpoint only uses time.sleep)."""
    slept: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=slept.append))
    return slept


def settings():
    return load_settings(Path("/nonexistent"), accounts=[{"id": ACCT, "regions": [REGION]}],
                         aws={"retry_mode": "standard", "max_attempts": 10})


def run(db: Path, fake: FakeCodeArtifact, now: datetime = AS_OF) -> int:
    s = settings()
    with writer(db) as con:
        ctx = RunContext(s, con, now=now, clients=FakeCodeArtifactClients(s, fake), show_progress=False)
        return run_collectors([SPEC], ctx)


def tables(db: Path, drop: set[str] = frozenset()) -> dict[str, list[tuple]]:
    with writer(db) as con:
        out = {}
        for t in TABLES:
            cols = [c for (c,) in con.execute("SELECT column_name FROM information_schema.columns "
                                              "WHERE table_name = ? ORDER BY ordinal_position", [t]).fetchall()
                    if c not in drop]
            out[t] = sorted(con.execute(f"SELECT {', '.join(cols)} FROM {t}").fetchall(), key=repr)
        return out


def query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    with writer(db) as con:
        return con.execute(sql, params or []).fetchall()


# -- Stubber: exact calls, multi-page responses ----------------------------------------------------------

class StubClients:
    def __init__(self, client):
        self._client = client

    def client(self, scope, service, region=None):
        return self._client


LOC = {"domain": "corp", "domainOwner": ACCT, "repository": "app"}
REPO_ARN = f"arn:aws:codeartifact:{REGION}:{ACCT}:repository/corp/app"
WEB = {**LOC, "format": "npm", "namespace": "acme", "package": "web"}
REQ = {**LOC, "format": "pypi", "package": "requests"}


def add_listing(stub: Stubber, created: datetime) -> None:
    """The calls every run makes: domains, repositories, packages and versions, some over two pages."""
    summary = {"name": "corp", "owner": ACCT, "arn": f"arn:aws:codeartifact:{REGION}:{ACCT}:domain/corp",
               "status": "Active", "createdTime": created, "encryptionKey": "arn:aws:kms:us-east-1:1:key/k"}
    stub.add_response("list_domains", {"domains": [summary], "nextToken": "d2"}, {})
    stub.add_response("list_domains", {"domains": []}, {"nextToken": "d2"})
    stub.add_response("describe_domain", {"domain": {**summary, "repositoryCount": 1, "assetSizeBytes": 4242,
                                                     "s3BucketArn": "arn:aws:s3:::b"}},
                      {"domain": "corp", "domainOwner": ACCT})
    stub.add_response("list_repositories_in_domain", {"repositories": [{
        "name": "app", "administratorAccount": ACCT, "domainName": "corp", "domainOwner": ACCT,
        "arn": REPO_ARN, "description": "team app", "createdTime": created}]},
        {"domain": "corp", "domainOwner": ACCT})
    stub.add_response("describe_repository", {"repository": {
        "name": "app", "administratorAccount": ACCT, "domainName": "corp", "domainOwner": ACCT, "arn": REPO_ARN,
        "description": "team app", "upstreams": [{"repositoryName": "npm-store"}], "externalConnections": [],
        "createdTime": created}}, LOC)
    stub.add_response("list_tags_for_resource", {"tags": [{"key": "team", "value": "web"}]},
                      {"resourceArn": REPO_ARN})
    stub.add_response("list_packages", {"packages": [{
        "format": "npm", "namespace": "acme", "package": "web",
        "originConfiguration": {"restrictions": {"publish": "ALLOW", "upstream": "BLOCK"}}}], "nextToken": "p2"},
        LOC)
    stub.add_response("list_packages", {"packages": [{
        "format": "pypi", "package": "requests",
        "originConfiguration": {"restrictions": {"publish": "BLOCK", "upstream": "ALLOW"}}}]},
        {**LOC, "nextToken": "p2"})
    internal = {"originType": "INTERNAL", "domainEntryPoint": {"repositoryName": "app"}}
    stub.add_response("list_package_versions", {
        "format": "npm", "namespace": "acme", "package": "web", "nextToken": "v2",
        "versions": [{"version": "1.0.0", "revision": "r1", "status": "Archived", "origin": internal}]}, WEB)
    stub.add_response("list_package_versions", {
        "format": "npm", "namespace": "acme", "package": "web",
        "versions": [{"version": "1.1.0", "revision": "r2", "status": "Published", "origin": internal}]},
        {**WEB, "nextToken": "v2"})


def add_version_details(stub: Stubber, published: datetime) -> None:
    internal = {"originType": "INTERNAL", "domainEntryPoint": {"repositoryName": "app"}}
    for ver, rev, status in (("1.0.0", "r1", "Archived"), ("1.1.0", "r2", "Published")):
        v = {**WEB, "packageVersion": ver}
        stub.add_response("describe_package_version", {"packageVersion": {
            "format": "npm", "namespace": "acme", "packageName": "web", "version": ver, "revision": rev,
            "status": status, "publishedTime": published, "origin": internal}}, v)
        stub.add_response("list_package_version_assets", {
            "format": "npm", "namespace": "acme", "package": "web", "version": ver, "versionRevision": rev,
            "assets": [{"name": f"web-{ver}.tgz", "size": 1234, "hashes": {"SHA-256": sha(7), "MD5": "0" * 32}}]}, v)
        stub.add_response("list_package_version_dependencies", {
            "format": "npm", "namespace": "acme", "package": "web", "version": ver, "versionRevision": rev,
            "dependencies": [{"package": "lodash", "dependencyType": "regular", "versionRequirement": "^4"}]}, v)


def add_requests_listing(stub: Stubber, with_details: bool, published: datetime) -> None:
    ext = {"originType": "EXTERNAL", "domainEntryPoint": {"externalConnectionName": "public:pypi"}}
    stub.add_response("list_package_versions", {"format": "pypi", "package": "requests", "versions": [
        {"version": "2.31.0", "revision": "q1", "status": "Published", "origin": ext}]}, REQ)
    if with_details:
        v = {**REQ, "packageVersion": "2.31.0"}
        stub.add_response("describe_package_version", {"packageVersion": {
            "format": "pypi", "packageName": "requests", "version": "2.31.0", "revision": "q1",
            "status": "Published", "publishedTime": published, "origin": ext}}, v)
        stub.add_response("list_package_version_assets", {
            "format": "pypi", "package": "requests", "version": "2.31.0", "versionRevision": "q1", "assets": [
                {"name": "requests-2.31.0.tar.gz", "size": 110000, "hashes": {"SHA-256": sha(3)}}]}, v)


def test_stubbed_multi_page_run_writes_rows_and_second_run_skips_version_calls(tmp_path):
    db = tmp_path / "caa.duckdb"
    client = boto3.client("codeartifact", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    created, published = datetime(2023, 5, 1, tzinfo=UTC), datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC)
    s = settings()
    with writer(db) as con, Stubber(client) as stub:
        add_listing(stub, created)
        add_version_details(stub, published)
        add_requests_listing(stub, True, published)
        first = AS_OF - timedelta(hours=1)
        result = collect(RunContext(s, con, now=first, clients=StubClients(client), show_progress=False), SCOPE)
        stub.assert_no_pending_responses()
        assert (result.rows, result.window) == (3, "2024-06-30")

        # An unchanged repository: only listings, no describe/assets/dependencies calls (the Stubber
        # fails on any call not queued here).
        add_listing(stub, created)
        add_requests_listing(stub, False, published)
        later = AS_OF
        collect(RunContext(s, con, now=later, clients=StubClients(client), show_progress=False), SCOPE)
        stub.assert_no_pending_responses()

    assert query(db, "SELECT account_id, region, domain, status, repository_count, asset_size_bytes "
                     "FROM domains") == [(ACCT, REGION, "corp", "Active", 1, 4242)]
    assert query(db, "SELECT repository, upstreams, tags FROM repositories") == [
        ("app", ["npm-store"], {"team": "web"})]
    assert query(db, "SELECT format, namespace, package, origin_publish, origin_upstream FROM packages "
                     "ORDER BY package") == [("pypi", None, "requests", "BLOCK", "ALLOW"),
                                             ("npm", "acme", "web", "ALLOW", "BLOCK")]
    assert query(db, "SELECT package, version, status, revision, origin_type, published_at, first_seen_at, "
                     "last_seen_at FROM package_versions ORDER BY version") == [
        ("web", "1.0.0", "Archived", "r1", "INTERNAL", published, first, later),
        ("web", "1.1.0", "Published", "r2", "INTERNAL", published, first, later),
        ("requests", "2.31.0", "Published", "q1", "EXTERNAL", published, first, later)]
    assert query(db, "SELECT version, asset, size_bytes, sha256 FROM assets ORDER BY version") == [
        ("1.0.0", "web-1.0.0.tgz", 1234, sha(7)), ("1.1.0", "web-1.1.0.tgz", 1234, sha(7)),
        ("2.31.0", "requests-2.31.0.tar.gz", 110000, sha(3))]
    assert query(db, "SELECT version, dependency_package, dependency_type, version_requirement "
                     "FROM package_dependencies ORDER BY version") == [
        ("1.0.0", "lodash", "regular", "^4"), ("1.1.0", "lodash", "regular", "^4")]
    assert query(db, "SELECT snapshot_date::VARCHAR, domain, asset_size_bytes, collected_at "
                     "FROM storage_snapshots") == [("2024-06-30", "corp", 4242, later)]


# -- the demo's fake CodeArtifact ---------------------------------------------------------------------------

def test_throttled_run_completes_with_botocore_retries_and_matches_a_clean_run(tmp_path, sleeps):
    throttled = FakeCodeArtifact(tiny_estate(), AS_OF, throttle_rate=0.3, seed=7)
    assert run(tmp_path / "t.duckdb", throttled) == 0
    assert run(tmp_path / "c.duckdb", FakeCodeArtifact(tiny_estate(), AS_OF)) == 0
    assert sum(throttled.throttled.values()) > 20 and len(sleeps) == sum(throttled.throttled.values())
    assert tables(tmp_path / "t.duckdb") == tables(tmp_path / "c.duckdb")


def test_access_denied_fails_the_scope_naming_the_iam_action(tmp_path, capsys):
    db = tmp_path / "caa.duckdb"
    assert run(db, FakeCodeArtifact(tiny_estate(), AS_OF, deny={"ListPackages"})) == 1
    err = capsys.readouterr().err
    assert "codeartifact:ListPackages" in err and len(err.strip().splitlines()) == 1
    [(status, error)] = query(db, "SELECT status, error FROM collector_runs")
    assert status == "failed" and "allow codeartifact:ListPackages" in error


def test_inventory_contents_follow_the_estate_as_of(tmp_path):
    db = tmp_path / "caa.duckdb"
    estate = tiny_estate()
    assert run(db, FakeCodeArtifact(estate, AS_OF)) == 0
    counts = dict(query(db, "SELECT repository, count(*) FROM package_versions GROUP BY ALL"))
    assert counts == {"npm-store": 1, "app": 121, "py": 1, "ml": 1}  # 2.0.0 is published after AS_OF
    assert query(db, "SELECT count(*) FROM assets WHERE version = '1.0.0'") == [(0,)]  # Disposed
    assert query(db, "SELECT count(*) FROM package_dependencies") == [(120 * 2,)]  # INTERNAL versions only
    assert query(db, "SELECT domain, asset_size_bytes FROM domains ORDER BY domain") == [
        ("corp", estate.domains[0].asset_size_bytes(AS_OF)), ("data", 7_000_000)]
    assert query(db, "SELECT tags, external_connections FROM repositories WHERE repository = 'app'") == [
        ({"env": "prod", "team": "web"}, [])]


def test_second_run_over_an_unchanged_estate_reuses_stored_versions(tmp_path):
    db = tmp_path / "caa.duckdb"
    estate = tiny_estate()
    assert run(db, FakeCodeArtifact(estate, AS_OF), now=AS_OF - timedelta(hours=2)) == 0
    first = tables(db, drop=RUN_TIME_COLUMNS)
    again = FakeCodeArtifact(estate, AS_OF)
    assert run(db, again, now=AS_OF) == 0
    for op in ("DescribePackageVersion", "ListPackageVersionAssets", "ListPackageVersionDependencies"):
        assert again.calls[op] == 0, op
    # Calls in proportion to domains, repositories, packages and pages: app/web lists 121 versions in 3 pages.
    assert dict(again.calls) == {"ListDomains": 1, "DescribeDomain": 2, "ListRepositoriesInDomain": 2,
                                 "DescribeRepository": 4, "ListTagsForResource": 4, "ListPackages": 4,
                                 "ListPackageVersions": 3 + 4}
    assert tables(db, drop=RUN_TIME_COLUMNS) == first
    assert query(db, "SELECT DISTINCT last_seen_at FROM package_versions") == [(AS_OF,)]


def test_new_and_vanished_versions_and_repositories(tmp_path):
    db = tmp_path / "caa.duckdb"
    estate = tiny_estate()
    assert run(db, FakeCodeArtifact(estate, AS_OF)) == 0
    web = estate.domains[0].repositories[1].packages[0]
    del web.versions[5]  # 1.0.5 deleted
    estate.domains[1].repositories.clear()  # repository ml deleted
    later = AS_OF + timedelta(days=2)  # 2.0.0 now published
    fake = FakeCodeArtifact(estate, later)
    assert run(db, fake, now=later) == 0
    assert (fake.calls["DescribePackageVersion"], fake.calls["ListPackageVersionAssets"]) == (1, 1)
    versions = {v for (v,) in query(db, "SELECT version FROM package_versions WHERE package = 'web'")}
    assert "2.0.0" in versions and "1.0.5" not in versions and len(versions) == 120
    assert query(db, "SELECT count(*) FROM assets WHERE version = '1.0.5'") == [(0,)]
    assert query(db, "SELECT count(*) FROM package_versions WHERE repository = 'ml'") == [(0,)]
    assert query(db, "SELECT count(*) FROM repositories") == [(3,)]
    assert query(db, "SELECT first_seen_at FROM package_versions WHERE version = '2.0.0'") == [(later,)]
    assert query(db, "SELECT DISTINCT first_seen_at FROM package_versions WHERE version = '1.0.4'") == [(AS_OF,)]


def test_shared_assets_are_stored_under_both_repositories(tmp_path):
    db = tmp_path / "caa.duckdb"
    assert run(db, FakeCodeArtifact(tiny_estate(), AS_OF)) == 0
    assert query(db, "SELECT repository, asset, size_bytes FROM assets WHERE sha256 = ? ORDER BY repository",
                 [sha(1)]) == [("app", "lodash-4.17.21.tgz", 300_000), ("npm-store", "lodash-4.17.21.tgz", 300_000)]


def test_storage_snapshots_one_row_per_domain_per_day(tmp_path):
    db = tmp_path / "caa.duckdb"
    estate = tiny_estate()
    fake = FakeCodeArtifact(estate, AS_OF)
    s = settings()
    clients = FakeCodeArtifactClients(s, fake)
    client = clients.client(SCOPE, "codeartifact")
    days = [datetime(2024, 1, 30, 23, 59, 59, tzinfo=UTC) + timedelta(days=i) for i in range(4)]
    with writer(db) as con:
        for day in [*days, days[-1]]:  # the last day twice: its row is replaced, not added
            fake.as_of = day
            assert snapshot_domains(RunContext(s, con, now=day, clients=clients), SCOPE, client) == (
                1 if day < estate.domains[1].created_at else 2)
    rows = query(db, "SELECT snapshot_date, domain, asset_size_bytes FROM storage_snapshots ORDER BY ALL")
    expected = sorted((day.date(), d.name, d.asset_size_bytes(day)) for day in days for d in estate.domains
                      if d.created_at <= day)
    assert rows == expected and len(rows) == 1 + 2 * 3
    assert rows[1][2] < rows[3][2]  # corp grows as versions are published


def test_fake_rejects_responses_that_break_the_botocore_model():
    estate = tiny_estate()
    estate.domains[1].repositories[0].packages[0].versions[0].assets[0].size_bytes = "7 MB"
    client = FakeCodeArtifact(estate, AS_OF).attach(boto3.client("codeartifact", region_name=REGION))
    with pytest.raises(FakeResponseError, match=r"(?s)invalid ListPackageVersionAssets response.*assets\[0\]\.size"):
        client.list_package_version_assets(domain="data", repository="ml", format="pypi", package="model-kit",
                                           packageVersion="0.1.0")


def test_fake_answers_unknown_resources_with_the_modeled_404():
    client = FakeCodeArtifact(tiny_estate(), AS_OF).attach(boto3.client("codeartifact", region_name=REGION))
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.describe_repository(domain="corp", repository="missing")


# -- each version's size, kept in its row (migration 025) -------------------------------------------------

def estate_sizes(estate: Estate, as_of: datetime) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(repository, package, version) -> (bytes, assets) of every version the inventory lists at `as_of`, from
    the estate itself: a Disposed version's assets are no longer stored."""
    return {(repo.name, pkg.name, ver.version):
            (0, 0) if ver.status == "Disposed" else (sum(a.size_bytes for a in ver.assets), len(ver.assets))
            for dom in estate.domains for repo in dom.repositories for pkg in repo.packages for ver in pkg.versions
            if ver.published_at <= as_of}


def report_sizes(con, as_of: datetime) -> dict[tuple[str, str, str], tuple[int, int]]:
    df = cleanup.facts(con, as_of=as_of).df
    return {(r.repository, r.package, r.version): (r.size_bytes, r.asset_count) for r in df.itertuples()}


def test_the_cleanup_report_reads_each_versions_size_from_its_row_and_it_follows_the_inventory(tmp_path):
    """Migration 025: each version's assets summed are kept in its package_versions row (assets_bytes,
    assets_count) by the publish that writes the assets, so the cleanup report reads them instead of summing
    every asset each time it opens. After each inventory run the report's sizes are the estate's: a version
    given another asset, and one disposed (its assets gone), change size."""
    db = tmp_path / "caa.duckdb"
    estate = tiny_estate()
    assert run(db, FakeCodeArtifact(estate, AS_OF)) == 0
    with store.open_reader(db) as con:
        assert lake.versions_sized(con)  # what the report reads: the rows' sums
        got = report_sizes(con, AS_OF)
    assert got == estate_sizes(estate, AS_OF)
    assert got["py", "requests", "2.31.0"] == (172_000, 2) and got["app", "web", "1.0.0"] == (0, 0)

    later = AS_OF + timedelta(days=2)
    requests = estate.domains[0].repositories[2].packages[0].versions[0]
    requests.revision = "rq-r2"  # a wheel for another platform
    requests.assets.append(Asset("requests-2.31.0-py2-none-any.whl", 61_000, sha(5)))
    web = estate.domains[0].repositories[1].packages[0].versions[7]
    web.status, web.revision = "Disposed", "web-r7b"
    assert run(db, FakeCodeArtifact(estate, later), now=later) == 0
    with store.open_reader(db) as con:
        assert lake.versions_sized(con)
        got = report_sizes(con, later)
    assert got == estate_sizes(estate, later)
    assert got["py", "requests", "2.31.0"] == (233_000, 3) and got["app", "web", "1.0.7"] == (0, 0)


def test_while_an_inventory_session_replaces_assets_the_report_sums_them_itself(tmp_path):
    """In a write session that has taken the assets back into the store file and changed them (as the inventory
    does before its publish), the versions' rows still hold the old sums: the report reads the assets
    themselves there, and the publish that ends the session puts the new sums in the rows."""
    db = tmp_path / "caa.duckdb"
    estate = tiny_estate()
    assert run(db, FakeCodeArtifact(estate, AS_OF)) == 0
    with writer(db) as con:
        with store.transaction(con):
            lake.thaw(con)
            con.execute("DELETE FROM assets_rows WHERE package = 'requests'")
            store.bump_version(con)
        assert not lake.versions_sized(con)
        assert con.execute("SELECT assets_bytes FROM package_versions WHERE package = 'requests'").fetchall() == [
            (172_000,)]  # the row's sum, no longer the assets'
        assert report_sizes(con, AS_OF)["py", "requests", "2.31.0"] == (0, 0)
    with store.open_reader(db) as con:
        assert lake.versions_sized(con)
        assert report_sizes(con, AS_OF)["py", "requests", "2.31.0"] == (0, 0)
        assert con.execute("SELECT assets_bytes, assets_count FROM package_versions WHERE package = 'requests'"
                           ).fetchall() == [(0, 0)]


def test_a_store_from_before_025_gets_its_versions_sizes_at_its_next_publish_and_reads_without(tmp_path,
                                                                                             monkeypatch):
    """A store an older caa (024) wrote has no assets_bytes or assets_count. Read as published (a snapshot this
    process could not upgrade) its cleanup report sums the assets itself; the first write session adds the
    columns and its publish fills them, and the report reads the same sizes from them."""
    from analytics import rollups
    from tests.integration.test_rollups import schema_up_to

    db = tmp_path / "caa.duckdb"
    estate = tiny_estate()
    monkeypatch.setattr(store, "SCHEMA_DIR", schema_up_to(tmp_path, 24))  # the code of 024
    assert run(db, FakeCodeArtifact(estate, AS_OF)) == 0
    monkeypatch.undo()
    with store.open_reader(db) as con:
        assert not lake.sizes_held(con) and not lake.versions_sized(con)
        assert report_sizes(con, AS_OF) == estate_sizes(estate, AS_OF)
    rollups.upgrade(db)
    with store.open_reader(db) as con:
        assert lake.versions_sized(con)
        assert report_sizes(con, AS_OF) == estate_sizes(estate, AS_OF)
