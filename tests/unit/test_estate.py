"""The seeded demo estate and its CloudTrail files: shape, determinism, and a ground truth that holds.

Reads nothing from the repo; writes small trail sets (about 20k events) under pytest's tmp dirs.
The ground-truth counts are recomputed here independently by reading the written files back.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from core.clock import pinned_clock
from demo.estate import build_estate
from demo.trails import write_trails

END = datetime(2026, 6, 1, tzinfo=UTC)
EVENTS = 20_000
CA = "codeartifact.amazonaws.com"
KEY = re.compile(r"^AWSLogs/(?:(o-a1b2c3d4e5)/)?(\d{12})/CloudTrail/([a-z0-9-]+)/(\d{4})/(\d{2})/(\d{2})/"
                 r"\2_CloudTrail_\3_(\d{8})T\d{4}Z_[A-Za-z0-9]{16}\.json\.gz$")
DIGEST = re.compile(r"^AWSLogs/(?:o-a1b2c3d4e5/)?(\d{12})/CloudTrail-Digest/([a-z0-9-]+)/\d{4}/\d{2}/\d{2}/"
                    r"\1_CloudTrail-Digest_\2_[\w-]+_\2_\d{8}T\d{6}Z\.json\.gz$")


def _hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def estate():
    return build_estate(seed=7, end=END)


@pytest.fixture(scope="module")
def run(estate, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    truth = write_trails(estate, out, target_events=EVENTS, workers=2)
    return out, truth


@pytest.fixture(scope="module")
def trail(run):
    """Every record of every trail file, read back: [(key, match, records)], plus the digest keys."""
    out, _ = run
    root = out / "trails"
    files, digests = [], []
    for p in sorted(root.rglob("*.json.gz")):
        key = p.relative_to(root).as_posix()
        doc = orjson.loads(gzip.decompress(p.read_bytes()))
        if "/CloudTrail-Digest/" in key:
            digests.append((key, doc))
        else:
            files.append((key, KEY.match(key), doc["Records"]))
    return files, digests


def _versions(estate):
    out = {}
    for d in estate.domains:
        for r in d.repositories:
            for p in r.packages:
                for v in p.versions:
                    out[(d.name, r.name, p.format, p.namespace, p.name, v.version)] = v
    return out


def _unique(files) -> dict[str, dict]:
    seen: dict[str, dict] = {}
    for _, _, records in files:
        for rec in records:
            seen.setdefault(rec["eventID"], rec)
    return seen


def _is_download(rec: dict) -> bool:
    return (rec["eventSource"] == CA and rec["eventName"] == "ReadFromRepository" and "errorCode" not in rec
            and "packageVersion" in rec["requestParameters"])


def test_estate_has_the_promised_shape(estate):
    assert len(estate.accounts) >= 2 and len(estate.regions) >= 2
    assert estate.start == datetime(2025, 5, 1, tzinfo=UTC) and estate.end == END
    assert len(estate.domains) >= 3
    assert len({d.owner for d in estate.domains}) >= 2 and len({d.region for d in estate.domains}) >= 2
    assert all(re.fullmatch(r"[a-z][a-z0-9-]{0,48}[a-z0-9]", d.name) for d in estate.domains)
    assert sum(len(d.repositories) for d in estate.domains) >= 10
    for d in estate.domains:
        repos = {r.name: r for r in d.repositories}
        for r in d.repositories:
            assert r.administrator_account == d.owner and r.tags.get("cost-center")
            todo, ends = [r.name], set()
            while todo:  # every upstream chain ends in an external connection
                cur = repos[todo.pop()]
                assert cur.upstreams or cur.external_connection, f"{d.name}/{cur.name} is a dead end"
                if cur.external_connection:
                    ends.add(cur.external_connection)
                todo.extend(cur.upstreams)
            assert ends <= {"public:npmjs", "public:pypi", "public:maven-central"} and ends


def test_estate_packages_versions_and_assets(estate):
    versions = _versions(estate)
    assert 3000 <= len(versions) <= 6000
    keys = set(versions)
    assert any(k[2] == "npm" and k[3] == "acme" for k in keys)  # @acme/... scoped, stored without '@'
    assert any(k[2] == "maven" and k[3] and "." in k[3] for k in keys)  # groupIds
    assert all(k[3] is None for k in keys if k[2] == "pypi")
    assert not any(k[3] and k[3].startswith("@") for k in keys)
    names = [k[5] for k in keys]
    assert any("-beta." in v or "-rc." in v for v in names) and any(re.search(r"\drc\d", v) for v in names)
    statuses = Counter(v.status for v in versions.values())
    assert statuses["Published"] > 0.8 * len(versions)
    assert statuses["Unlisted"] and statuses["Archived"] and statuses["Disposed"]
    assert all(estate.start <= v.published_at < estate.end for v in versions.values())
    internal = [v for v in versions.values() if v.origin_type == "INTERNAL"]
    assert any(dep.namespace == "acme" for v in internal for dep in v.dependencies)
    assert any(dep.namespace is None and dep.package == "react" for v in internal for dep in v.dependencies)
    sizes = [a.size_bytes for v in versions.values() for a in v.assets]
    assert sorted(sizes)[len(sizes) // 2] < 5_000_000 and max(sizes) >= 50_000_000
    for d in estate.domains:
        gb = d.asset_size_bytes(estate.end) / 1e9
        assert 5 < gb < 500, (d.name, gb)


def test_assets_are_shared_across_repositories_of_a_domain(estate):
    for d in estate.domains:
        holders: dict[str, set[str]] = defaultdict(set)
        sizes: dict[str, set[int]] = defaultdict(set)
        for r in d.repositories:
            for p in r.packages:
                for v in p.versions:
                    for a in v.assets:
                        holders[a.sha256].add(r.name)
                        sizes[a.sha256].add(a.size_bytes)
        shared = [sha for sha, repos in holders.items() if len(repos) > 1]
        assert shared, d.name
        assert any({"npm-store", "pypi-store", "maven-store"} & holders[sha] for sha in shared)
        assert all(len(s) == 1 for s in sizes.values())
        unique_bytes = sum(next(iter(s)) for s in sizes.values())
        assert d.asset_size_bytes(estate.end + timedelta(days=1)) <= unique_bytes


@pytest.mark.parametrize("now, end, start", [
    ("2026-12-01T00:05:00+00:00", datetime(2026, 12, 1, tzinfo=UTC), datetime(2025, 11, 1, tzinfo=UTC)),
    ("2028-02-29T23:55:00+00:00", datetime(2028, 2, 29, tzinfo=UTC), datetime(2027, 1, 29, tzinfo=UTC)),
    # 00:30 UTC in the night of Europe's DST change; 13 months back, the 29th is clamped to Feb 28
    ("2026-03-29T01:30:00+01:00", datetime(2026, 3, 29, tzinfo=UTC), datetime(2025, 2, 28, tzinfo=UTC)),
])
def test_estate_ends_at_the_clocks_utc_midnight_by_default(now, end, start):
    with pinned_clock(datetime.fromisoformat(now)):
        e = build_estate()
    assert (e.start, e.end) == (start, end)


def test_estate_is_deterministic_per_seed():
    a, b, c = build_estate(3, END), build_estate(3, END), build_estate(4, END)
    assert a == b
    assert a != c


def test_same_seed_writes_identical_files_and_another_seed_does_not(estate, run, tmp_path):
    out, truth = run
    again = write_trails(build_estate(7, END), tmp_path / "again", target_events=EVENTS, workers=1)
    assert _hashes(out) == _hashes(tmp_path / "again")
    assert again == truth
    write_trails(build_estate(8, END), tmp_path / "other", target_events=EVENTS, workers=1)
    assert _hashes(tmp_path / "other" / "trails") != _hashes(out / "trails")


def test_files_follow_the_cloudtrail_layout(run, trail):
    _, truth = run
    files, digests = trail
    assert all(m for _, m, _ in files), [k for k, m, _ in files if not m][:3]
    assert len(files) == truth["files"] and len(digests) == truth["digest_files"] >= 1
    assert all(DIGEST.match(k) and "Records" not in doc and doc["logFiles"] for k, doc in digests)
    accounts_in_org = {m.group(2) for _, m, _ in files if m.group(1)}
    accounts_plain = {m.group(2) for _, m, _ in files if not m.group(1)}
    assert len(accounts_in_org) == 2 and len(accounts_plain) == 1
    crossed = 0
    for _, m, records in files:
        assert 1 <= len(records) <= 2000 + 20
        for rec in records:  # a record lives in the trail of its recipient account and region
            assert (rec["recipientAccountId"], rec["awsRegion"]) == (m.group(2), m.group(3))
            assert rec["eventType"] == "AwsApiCall" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
                                                                      rec["eventTime"])
        newest = max(rec["eventTime"] for rec in records)
        assert newest[:10].replace("-", "") <= m.group(7)  # delivered after its last record
        crossed += newest[:10].replace("-", "") < m.group(7)
    assert crossed  # some files are delivered the day after their records


def test_records_have_the_documented_shape(estate, trail):
    files, _ = trail
    versions = _versions(estate)
    seen = _unique(files)
    kinds = Counter()
    for rec in seen.values():
        ident = rec["userIdentity"]
        assert ident["type"] in ("AssumedRole", "IAMUser") and ident["accountId"] == ident["arn"].split(":")[4]
        if ident["type"] == "AssumedRole":
            assert ident["sessionContext"]["sessionIssuer"]["type"] == "Role"
        if rec["eventSource"] != CA:
            kinds["other"] += 1
            continue
        rp = rec["requestParameters"]
        kinds[rec["eventName"]] += 1
        assert rec["managementEvent"] is True and rec["eventCategory"] == "Management"
        assert rec["eventVersion"] in ("1.08", "1.09") and rec["responseElements"] is None
        if rec["eventName"] == "GetAuthorizationToken":
            assert set(rp) == {"domainName", "domainOwner", "durationSeconds"} and rec["readOnly"] is False
        if rec["eventName"] != "ReadFromRepository":
            continue
        assert rec["readOnly"] is True and rec["additionalEventData"]["httpMethod"] == "GET"
        uri = rec["additionalEventData"]["requestUri"]
        assert uri.startswith(f"/{rp['packageFormat']}/{rp['repositoryName']}/")
        assert "@" not in rp.get("packageNamespace", "")
        if "packageVersion" not in rp:
            kinds["metadata"] += 1
            assert uri.endswith(("/maven-metadata.xml", f"/{rp['packageName']}/", f"/{rp['packageName']}"))
            continue
        key = (rp["domainName"], rp["repositoryName"], rp["packageFormat"], rp.get("packageNamespace"),
               rp["packageName"], rp["packageVersion"])
        assert uri.rsplit("/", 1)[1] in {a.name for a in versions[key].assets}, uri
        if rp["packageFormat"] == "npm" and "packageNamespace" in rp:
            kinds["scoped"] += 1
            assert f"/@{rp['packageNamespace']}/{rp['packageName']}/-/" in uri
        if "errorCode" not in rec:
            v = versions[key]
            assert v.status in ("Published", "Unlisted")
            assert v.published_at <= datetime.fromisoformat(rec["eventTime"].replace("Z", "+00:00"))
    for name in ("ReadFromRepository", "GetAuthorizationToken", "PublishPackageVersion", "ListPackageVersions",
                 "DescribePackageVersion", "metadata", "scoped", "other"):
        assert kinds[name], name


def test_ground_truth_matches_a_recount_of_the_files(estate, run, trail):
    _, truth = run
    files, _ = trail
    seen = _unique(files)
    records = sum(len(r) for _, _, r in files)
    ca = [r for r in seen.values() if r["eventSource"] == CA]
    downloads = [r for r in ca if _is_download(r)]
    assert truth["events_unique"] == len(ca)
    assert truth["downloads_unique"] == len(downloads) > 0
    assert truth["duplicate_deliveries"] == records - len(seen) > 0
    assert truth["non_codeartifact_records"] == sum(r["eventSource"] != CA for _, _, rs in files for r in rs)
    by_day = Counter(r["eventTime"][:10] for r in downloads)
    assert truth["downloads_by_day"] == {d: by_day.get(d, 0) for d in truth["downloads_by_day"]}
    assert sum(truth["downloads_by_day"].values()) == len(downloads)
    by_pkg = Counter((r["requestParameters"]["domainName"], r["requestParameters"]["repositoryName"],
                      r["requestParameters"]["packageFormat"], r["requestParameters"].get("packageNamespace"),
                      r["requestParameters"]["packageName"]) for r in downloads)
    assert {(x["domain"], x["repository"], x["format"], x["namespace"], x["package"]): x["downloads"]
            for x in truth["downloads_by_package"] if x["downloads"]} == dict(by_pkg)
    fetched = {(r["requestParameters"]["domainName"], r["requestParameters"]["repositoryName"],
                r["requestParameters"]["packageFormat"], r["requestParameters"].get("packageNamespace"),
                r["requestParameters"]["packageName"], r["requestParameters"]["packageVersion"]) for r in downloads}
    assert truth["never_downloaded_versions"] == len(set(_versions(estate)) - fetched) > 0
    last: dict[tuple, str] = {}
    for r in downloads:
        rp = r["requestParameters"]
        key = (rp["domainName"], rp["repositoryName"], rp.get("packageNamespace"), rp["packageName"],
               rp["packageVersion"])
        last[key] = max(last.get(key, ""), r["eventTime"])
    cutoff = (estate.end - timedelta(days=180)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert truth["stale_downloaded_versions_180d"] == sum(t < cutoff for t in last.values()) > 0


def test_duplicates_are_cross_account_copies_and_redeliveries(trail):
    files, _ = trail
    where: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key, _, records in files:
        for rec in records:
            where[rec["eventID"]].append((rec["recipientAccountId"], key))
    cross = [v for v in where.values() if len({acct for acct, _ in v}) > 1]
    again = [v for v in where.values() if len(v) > len({acct for acct, _ in v})]
    assert cross and again
    assert all(len({key for _, key in v}) == len(v) for v in again)  # re-delivered in another file


def test_spikes_and_auth_bursts_are_listed_and_present(run, trail):
    _, truth = run
    files, _ = trail
    seen = _unique(files)
    assert len(truth["download_spikes"]) >= 6 and len(truth["auth_bursts"]) >= 4
    for spike in truth["download_spikes"]:
        inside = [r for r in seen.values() if _is_download(r) and spike["start"] <= r["eventTime"] <= spike["end"]
                  and r["requestParameters"]["packageName"] == spike["package"]
                  and r["requestParameters"]["repositoryName"] == spike["repository"]]
        driver = [r for r in inside if r["userIdentity"]["arn"] == spike["principal_arn"]
                  and r["sourceIPAddress"] == spike["source_ip"] and r["userAgent"] == spike["user_agent"]]
        assert len(inside) >= spike["excess_downloads"] >= 20
        assert len(driver) >= 0.7 * spike["excess_downloads"]
    for burst in truth["auth_bursts"]:
        failed = [r for r in seen.values() if r.get("errorCode") and r["userIdentity"]["arn"] == burst["principal_arn"]
                  and burst["start"] <= r["eventTime"] <= burst["end"]]
        assert len(failed) == burst["events"] and 30 <= burst["events"] <= 500
        assert {r["errorCode"] for r in failed} == {"AccessDenied", "AccessDeniedException"}
        assert all("not authorized to perform" in r["errorMessage"] for r in failed)


def test_billing_covers_every_domain_pair_every_day(estate, run, trail):
    _, truth = run
    files, _ = trail
    pairs = {(d.owner, d.region) for d in estate.domains}
    days = sorted({row["date"] for row in truth["billing"]})
    assert len(days) == (estate.end - estate.start).days == len(truth["downloads_by_day"])
    assert len(truth["billing"]) == len(days) * len(pairs)
    requests = Counter((r["eventTime"][:10], r["requestParameters"]["domainOwner"], r["awsRegion"])
                       for r in _unique(files).values() if r["eventSource"] == CA and "errorCode" not in r)
    for row in truth["billing"]:
        assert row["requests"] == requests.get((row["date"], row["account_id"], row["region"]), 0)
    for day in (days[0], days[len(days) // 2], days[-1]):
        as_of = datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(hours=23, minutes=59, seconds=59)
        for owner, region in pairs:
            want = sum(d.asset_size_bytes(as_of) for d in estate.domains if (d.owner, d.region) == (owner, region))
            row = next(r for r in truth["billing"] if (r["date"], r["account_id"], r["region"]) == (day, owner, region))
            assert row["storage_byte_hours"] == want * 24
    first, last = (sum(r["storage_byte_hours"] for r in truth["billing"] if r["date"] == d) for d in (days[0], days[-1]))
    assert last > 2 * first > 0  # storage grows as versions are published and cached
