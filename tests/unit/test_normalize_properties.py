"""Property tests: every collector's normalize over hostile input never crashes and loses nothing.

- cloudtrail: arbitrary JSON in any field of a record, unknown fields, junk elements in Records. Every
  CodeArtifact record becomes exactly one row (normalize_records), and load_files stores it or counts it
  as rejected (no eventID, eventTime or eventName).
- inventory, cloudwatch, costs: payloads generated from the botocore output shapes (exactly what boto3
  can hand to normalize), with hostile strings (tests/fixtures/hostile.py) and arbitrary text in every
  string. Members that identify a row (names, owners, formats, versions, statuses, Ids, keys) are
  always present, as the services always send them; every other optional member may be missing. Formats
  the services guarantee (Cost Explorer dates and decimal amounts, GetMetricData's Id/Timestamps/Values
  pairing) are kept; an out-of-contract page fails its scope with a one-line error, it is not guessed at.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest
from botocore.validate import validate_parameters
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors import cloudwatch, costexplorer
from collectors.cloudtrail_load import load_files, normalize_records
from collectors.inventory_normalize import (
    KnownVersion,
    RepositoryPayload,
    domain_row,
    package_key,
    repository_row,
    repository_rows,
    snapshot_row,
)
from core import lake, store
from tests.fixtures.hostile import HOSTILE
from tests.fixtures.trails import record

PROPS = settings(max_examples=120, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
CA = "codeartifact.amazonaws.com"

names = st.sampled_from(list(HOSTILE.values())) | st.text(min_size=1, max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | names,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)


# -- cloudtrail ----------------------------------------------------------------------------------------------

FIELDS = ["eventVersion", "eventID", "eventTime", "eventSource", "eventName", "awsRegion", "sourceIPAddress",
          "userAgent", "errorCode", "recipientAccountId", "userIdentity", "requestParameters",
          "additionalEventData"]
NESTED = {"userIdentity": ["type", "arn", "accountId"],
          "requestParameters": ["domainName", "domainOwner", "repositoryName", "packageFormat", "packageNamespace",
                                "packageName", "packageVersion", "asset", "domain", "repository", "package",
                                "namespace", "format"],
          "additionalEventData": ["requestUri"]}


@st.composite
def hostile_record(draw: Any, i: int = 0) -> dict:
    """A real ReadFromRepository record with some fields (top-level or nested) replaced by arbitrary JSON,
    some removed, and unknown fields added; sometimes eventSource is something else."""
    rec = record(i, NOW - timedelta(minutes=i), package=draw(names), version=draw(names))
    for f in draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
        if f == "eventSource" and draw(st.booleans()):
            rec[f] = draw(st.sampled_from(["kms.amazonaws.com", CA.upper(), f" {CA}"]) | json_values)
        elif draw(st.booleans()):
            rec.pop(f, None)
        else:
            rec[f] = draw(json_values)
    for parent, keys in NESTED.items():
        if isinstance(rec.get(parent), dict):
            for k in draw(st.lists(st.sampled_from(keys), max_size=3, unique=True)):
                rec[parent][k] = draw(json_values)
    rec.update(draw(st.dictionaries(st.text(min_size=1, max_size=10).filter(lambda k: k not in FIELDS),
                                    json_values, max_size=2)))
    return rec


records = st.lists(hostile_record(), min_size=1, max_size=6)


def is_codeartifact(rec: Any) -> bool:
    return isinstance(rec, dict) and rec.get("eventSource") == CA


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    store.migrate(c)
    yield c
    c.close()


@PROPS
@given(recs=records)
def test_every_codeartifact_record_becomes_one_row_in_order_and_strings_survive(con, recs):
    rows = normalize_records(recs, con)
    kept = [r for r in recs if is_codeartifact(r)]
    assert len(rows) == len(kept)
    for rec, row in zip(kept, rows, strict=True):
        if isinstance(rec.get("eventID"), str):
            assert row["event_id"] == rec["eventID"]
        params = rec.get("requestParameters")
        if isinstance(params, dict) and isinstance(params.get("repositoryName"), str):
            assert row["repository"] == params["repositoryName"]
        ident = rec.get("userIdentity")
        if isinstance(ident, dict) and isinstance(ident.get("arn"), str):
            assert row["principal_arn"] == ident["arn"]
        if isinstance(rec.get("userAgent"), str):
            assert row["user_agent"] == rec["userAgent"]
        if rec.get("eventTime") == record(0, NOW)["eventTime"]:
            assert row["event_at"] == NOW


@PROPS
@given(recs=records, junk=st.lists(json_values.filter(lambda v: not isinstance(v, dict)), max_size=3))
def test_load_files_stores_or_rejects_every_codeartifact_record(con, recs, junk):
    for n, rec in enumerate(recs):  # unique ids (or none): a duplicate is neither stored nor rejected
        if rec.get("eventID") is not None:
            rec["eventID"] = f"id-{n}"
    con.execute("DELETE FROM event_rows")  # an empty store for each example: no rows, no lake files
    con.execute("DELETE FROM lake_files")
    lake.rebuild_view(con)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "t.json.gz")
        Path(path).write_bytes(gzip.compress(json.dumps({"Records": [*junk, *recs]}).encode()))
        got = load_files(con, [path], {path: ("src", "key", "etag", 1, None)})
    assert got.bad == {}
    assert got.new_events + got.rejected == sum(map(is_codeartifact, recs))
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == got.new_events


# -- botocore shapes -> payload strategies -----------------------------------------------------------------

IDENTITY = {"name", "owner", "domainName", "domainOwner", "repositoryName", "externalConnectionName", "format",
            "package", "version", "status", "key", "value", "Name", "Value", "MetricName", "Namespace", "Id",
            "revision"}
timestamps = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),  # noqa: DTZ001
                          timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                                                     timezone(timedelta(hours=-8))]))


def from_shape(shape: Any, depth: int = 0) -> st.SearchStrategy:
    """Any value botocore's model accepts for `shape` (identity members always present)."""
    t = shape.type_name
    if t == "structure":
        required = set(shape.required_members) | (IDENTITY & set(shape.members))
        optional = {k: from_shape(v, depth + 1) for k, v in shape.members.items() if k not in required}
        if depth > 4:
            optional = {}
        return st.fixed_dictionaries({k: from_shape(shape.members[k], depth + 1) for k in required},
                                     optional=optional)
    if t == "list":
        return st.lists(from_shape(shape.member, depth + 1), max_size=3 if depth < 3 else 1)
    if t == "map":
        return st.dictionaries(from_shape(shape.key, depth + 1), from_shape(shape.value, depth + 1), max_size=2)
    if t == "string":
        if shape.enum:
            return st.sampled_from(shape.enum)
        lo = shape.metadata.get("min", 0)
        return (names | st.text(max_size=20)).filter(lambda s: len(s) >= lo)
    if t in ("integer", "long"):
        return st.integers(min_value=shape.metadata.get("min", 0), max_value=2**53)
    if t == "timestamp":
        return timestamps
    if t == "boolean":
        return st.booleans()
    if t in ("double", "float"):
        return st.floats(allow_nan=False, allow_infinity=False, width=32)
    raise NotImplementedError(t)


def output(service: str, operation: str, member: str | None = None) -> tuple[st.SearchStrategy, Any]:
    shape = boto3.client(service, region_name="us-east-1").meta.service_model.operation_model(operation).output_shape
    shape = shape.members[member] if member else shape
    return from_shape(shape), shape


DOMAIN, DOMAIN_SHAPE = output("codeartifact", "DescribeDomain", "domain")
REPOSITORY, _ = output("codeartifact", "DescribeRepository", "repository")
TAGS, _ = output("codeartifact", "ListTagsForResource", "tags")
PACKAGE = from_shape(output("codeartifact", "ListPackages", "packages")[1].member)
VERSION_LIST = from_shape(output("codeartifact", "ListPackageVersions", "versions")[1].member)
DESCRIPTION, _ = output("codeartifact", "DescribePackageVersion", "packageVersion")
ASSETS, _ = output("codeartifact", "ListPackageVersionAssets", "assets")
DEPENDENCIES, _ = output("codeartifact", "ListPackageVersionDependencies", "dependencies")


@settings(max_examples=30, deadline=None)
@given(desc=DOMAIN)
def test_the_shape_strategy_makes_payloads_botocore_accepts(desc):
    validate_parameters(desc, DOMAIN_SHAPE)  # raises ParamValidationError otherwise


# -- inventory ---------------------------------------------------------------------------------------------

@PROPS
@given(desc=DOMAIN)
def test_domain_rows_keep_every_name_and_only_utc_times(desc):
    row, snap = domain_row(desc, "us-east-1", NOW), snapshot_row(desc, "us-east-1", NOW)
    assert (row["account_id"], row["domain"]) == (snap["account_id"], snap["domain"]) == (desc["owner"], desc["name"])
    assert row["asset_size_bytes"] == desc.get("assetSizeBytes")
    assert snap["asset_size_bytes"] == (desc.get("assetSizeBytes") or 0)
    if "createdTime" in desc:
        assert row["created_at"] == desc["createdTime"] and row["created_at"].utcoffset() == timedelta(0)
    else:
        assert row["created_at"] is None


VKEY = ("format", "namespace", "package", "version")


@st.composite
def repository_payload(draw: Any) -> tuple[RepositoryPayload, dict]:
    desc = draw(REPOSITORY)
    packages = draw(st.lists(PACKAGE, max_size=3, unique_by=package_key))
    payload = RepositoryPayload({"name": desc["name"]}, desc, draw(TAGS), packages)
    known: dict = {}
    for p in packages:
        versions = draw(st.lists(VERSION_LIST, max_size=3, unique_by=lambda v: v["version"]))
        payload.versions[package_key(p)] = versions
        for v in versions:
            vkey = (*package_key(p), v["version"])
            kind = draw(st.sampled_from(["new", "known", "changed"]))
            if kind != "new":
                known[vkey] = KnownVersion(draw(st.none() | names), draw(names),  # as read back from the store: UTC
                                           draw(st.none() | timestamps.map(lambda t: t.astimezone(UTC))),
                                           NOW - timedelta(days=3),
                                           [dict(zip(VKEY, vkey, strict=True), asset="old-asset")],
                                           [dict(zip(VKEY, vkey, strict=True), dependency_package="old-dep")])
            if kind != "known":
                if kind == "new":
                    payload.descriptions[vkey] = draw(DESCRIPTION)
                payload.assets[vkey] = draw(ASSETS)
                if draw(st.booleans()):
                    payload.dependencies[vkey] = draw(DEPENDENCIES)
    return payload, known


@PROPS
@given(case=repository_payload())
def test_repository_rows_keep_every_version_and_name_exactly(case):
    payload, known = case
    rows = repository_rows(payload, known, "us-east-1", NOW)
    desc = payload.description
    assert (rows.repository["account_id"], rows.repository["domain"], rows.repository["repository"]) == (
        desc["domainOwner"], desc["domainName"], desc["name"])
    assert rows.repository["tags"] == {t["key"]: t["value"] for t in payload.tags}
    assert [(p["format"], p["namespace"], p["package"]) for p in rows.packages] == [
        package_key(p) for p in payload.packages]
    expected = [(*pkey, v["version"], v["status"]) for pkey, vs in payload.versions.items() for v in vs]
    assert [(r["format"], r["namespace"], r["package"], r["version"], r["status"])
            for r in rows.package_versions] == expected
    for r in rows.package_versions:
        vkey = (r["format"], r["namespace"], r["package"], r["version"])
        old = known.get(vkey)
        assert r["first_seen_at"] == (old.first_seen_at if old else NOW) and r["last_seen_at"] == NOW
        published = payload.descriptions.get(vkey, {}).get("publishedTime")
        assert r["published_at"] == (old.published_at if old else published)
        assert r["published_at"] is None or r["published_at"].utcoffset() == timedelta(0)
    fetched = [(*k, a["name"]) for k, assets in payload.assets.items() for a in assets]
    reused = [(*k, "old-asset") for k in known if k not in payload.assets]
    assert sorted(map(repr, ((r["format"], r["namespace"], r["package"], r["version"], r["asset"])
                             for r in rows.assets))) == sorted(map(repr, fetched + reused))


@PROPS
@given(desc=REPOSITORY, tags=TAGS)
def test_repository_row_lists_upstreams_and_connections_in_order(desc, tags):
    row = repository_row(desc, tags, "us-east-1", NOW)
    assert row["upstreams"] == [u["repositoryName"] for u in desc.get("upstreams", [])]
    assert row["external_connections"] == [c["externalConnectionName"] for c in desc.get("externalConnections", [])]
    assert row["description"] == desc.get("description")


# -- cloudwatch ----------------------------------------------------------------------------------------------

METRIC = from_shape(output("cloudwatch", "ListMetrics", "Metrics")[1].member)


@st.composite
def metric_pages(draw: Any) -> tuple[list[dict], list[tuple]]:
    """A ListMetrics payload and GetMetricData pages (a series may continue on the next page), with the
    (timestamp, value, resource, metric) points they carry."""
    metrics = draw(st.lists(METRIC, min_size=1, max_size=4))
    points, pages = [], []
    for _ in range(draw(st.integers(1, 3))):
        results = []
        for i in draw(st.lists(st.integers(0, len(metrics) - 1), max_size=4)):
            pairs = draw(st.lists(st.tuples(timestamps, st.floats(-1e9, 1e9, allow_nan=False)), max_size=4))
            dims = {d["Name"]: d["Value"] for d in metrics[i].get("Dimensions", [])}
            points += [(t, v, dims.get("Resource", ""), metrics[i]["MetricName"]) for t, v in pairs]
            results.append({"Id": f"m{i}", "Timestamps": [t for t, _ in pairs], "Values": [v for _, v in pairs],
                            "StatusCode": "Complete"})
        pages.append({"page": {"MetricDataResults": results}})
    return [{"metrics": metrics}, *pages], points


@PROPS
@given(case=metric_pages())
def test_cloudwatch_rows_are_unique_utc_and_add_up_to_every_point(case):
    raw, points = case
    rows = cloudwatch.normalize(raw, "111111111111", "us-east-1")
    keys = [(r["metric_at"], r["metric"], r["resource"]) for r in rows]
    assert len(keys) == len(set(keys))
    assert all(r["metric_at"].utcoffset() == timedelta(0) for r in rows)
    want: dict[tuple, float] = {}
    for t, v, resource, metric in points:
        k = (t.astimezone(UTC), metric, resource)
        want[k] = want.get(k, 0.0) + v
    assert {k: r["value"] for k, r in zip(keys, rows, strict=True)} == pytest.approx(want)


# -- costs -------------------------------------------------------------------------------------------------

amounts = st.decimals(min_value="-1000000", max_value="1000000000", places=10, allow_nan=False,
                      allow_infinity=False).map(str)
days = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))


@st.composite
def cost_pages(draw: Any) -> list[dict]:
    pages = []
    for _ in range(draw(st.integers(1, 3))):
        periods = []
        for day in draw(st.lists(days, max_size=3)):
            groups = [{"Keys": [draw(names), draw(names)],
                       "Metrics": {"UnblendedCost": {"Amount": draw(amounts), "Unit": "USD"},
                                   "UsageQuantity": {"Amount": draw(amounts), "Unit": draw(names | st.just(""))}}}
                      for _ in range(draw(st.integers(0, 3)))]
            periods.append({"TimePeriod": {"Start": day.isoformat(), "End": (day + timedelta(days=1)).isoformat()},
                            "Groups": groups, "Total": {}, "Estimated": draw(st.booleans())})
        pages.append({"ResultsByTime": periods})
    return pages


@PROPS
@given(pages=cost_pages())
def test_cost_rows_are_unique_and_the_last_restatement_wins(pages):
    rows = costexplorer.normalize(pages)
    want = {}
    for page in pages:
        for period in page["ResultsByTime"]:
            for g in period["Groups"]:
                want[(date.fromisoformat(period["TimePeriod"]["Start"]), *g["Keys"])] = (
                    float(g["Metrics"]["UnblendedCost"]["Amount"]), float(g["Metrics"]["UsageQuantity"]["Amount"]),
                    g["Metrics"]["UsageQuantity"]["Unit"] or None)
    got = {(r["usage_date"], r["account_id"], r["usage_type"]): (r["cost_usd"], r["usage_quantity"], r["unit"])
           for r in rows}
    assert len(got) == len(rows) and got == want


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d", None]), st.booleans()), max_size=6),
                max_size=5))
def test_a_batch_keeps_the_first_valid_copy_of_each_event_and_nothing_else(files):
    """first_copies over a batch of files (one Arrow chunk each): a row is kept exactly when it is valid
    and no valid row before it (in this file or an earlier one) has its eventID; batches with every row
    valid (most) and with rejected rows take different ways there, and must agree with this."""
    import pyarrow as pa

    from collectors.cloudtrail_load import first_copies

    ids = pa.chunked_array([pa.array([i for i, _ in f], pa.string()) for f in files], pa.string())
    valid = pa.chunked_array([pa.array([i is not None and ok for i, ok in f], pa.bool_()) for f in files],
                             pa.bool_())
    rows = [(i, i is not None and ok) for f in files for i, ok in f]
    want, seen = [], set()
    for i, ok in rows:
        want.append(ok and i not in seen)
        if ok:
            seen.add(i)
    assert first_copies(ids, valid).tolist() == want
    every = pa.chunked_array([pa.array([True] * len(f), pa.bool_()) for f in files], pa.bool_())
    named = pa.chunked_array([pa.array([i or "z" for i, _ in f], pa.string()) for f in files], pa.string())
    firsts, seen = [], set()
    for i, _ in rows:
        firsts.append((i or "z") not in seen)
        seen.add(i or "z")
    assert first_copies(named, every).tolist() == firsts
