"""The inventory collector: CodeArtifact domains, repositories, packages, versions, assets and dependencies.

Reads the CodeArtifact API of each account/region (list_domains, describe_domain,
list_repositories_in_domain, describe_repository, list_tags_for_resource, list_packages,
list_package_versions, describe_package_version, list_package_version_assets,
list_package_version_dependencies). Writes domains and storage_snapshots (one row per domain per UTC day,
the day's last reading wins), repositories, and - per repository, in one transaction - packages,
package_versions, assets and package_dependencies, which always hold the current inventory.

Cost: a version already stored with the same revision reuses its stored assets and dependencies, and only
versions never seen before are described (for published_at). Over an unchanged estate a run costs calls
in proportion to domains, repositories, packages and pages, not versions. Throttling is retried by
botocore (settings.aws.retry_mode).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import duckdb
import pyarrow as pa
from botocore.exceptions import ClientError

from collectors.base import CollectorSpec, RunContext, ScopeResult, account_region_scopes
from collectors.inventory_normalize import (
    KnownVersion,
    RepositoryPayload,
    RepositoryRows,
    VersionKey,
    can_reuse,
    domain_row,
    package_key,
    repository_rows,
    snapshot_row,
)
from core import lake, store
from core.aws import Scope, aws_errors, paginate

SERVICE = "codeartifact"
REPO_KEY = ("account_id", "region", "domain", "repository")
_S, _TS, _I = pa.string(), pa.timestamp("us", tz="UTC"), pa.int64()
# Arrow types of the bulk-loaded tables' columns, in table order.
COLUMNS: dict[str, dict[str, pa.DataType]] = {
    "packages": {"account_id": _S, "region": _S, "domain": _S, "repository": _S, "format": _S,
                 "namespace": _S, "package": _S, "origin_publish": _S, "origin_upstream": _S,
                 "last_seen_at": _TS},
    "package_versions": {"account_id": _S, "region": _S, "domain": _S, "repository": _S, "format": _S,
                         "namespace": _S, "package": _S, "version": _S, "status": _S, "revision": _S,
                         "origin_type": _S, "published_at": _TS, "first_seen_at": _TS, "last_seen_at": _TS},
    "assets": {"account_id": _S, "region": _S, "domain": _S, "repository": _S, "format": _S, "namespace": _S,
               "package": _S, "version": _S, "asset": _S, "size_bytes": _I, "sha256": _S},
    "package_dependencies": {"account_id": _S, "region": _S, "domain": _S, "repository": _S, "format": _S,
                             "namespace": _S, "package": _S, "version": _S, "dependency_namespace": _S,
                             "dependency_package": _S, "dependency_type": _S, "version_requirement": _S},
}
REPO_TABLES = ("packages", "package_versions", "assets", "package_dependencies")
WRITE_TO = {"assets": lake.ASSETS.rows}  # `assets` is a view over the lake's file and this table (core/lake.py)


# -- fetch: the only code that calls boto3 ---------------------------------------------------------------

def _gone(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException"


def _pages(call: Callable[..., dict[str, Any]], key: str, **params: Any) -> Iterator[dict[str, Any]]:
    """Items of every page of an operation without a botocore paginator."""
    while True:
        page = call(**params)
        yield from page.get(key, [])
        if not page.get("nextToken"):
            return
        params["nextToken"] = page["nextToken"]


def fetch_domains(client: Any, scope: Scope) -> Iterator[dict[str, Any]]:
    """describe_domain()['domain'] of every domain the account owns in the client's region."""
    with aws_errors(scope, SERVICE, what="listing domains"):
        summaries = list(paginate(client, "list_domains", "domains"))
    for s in summaries:
        with aws_errors(scope, SERVICE, what=f"domain={s['name']}"):
            yield client.describe_domain(domain=s["name"], domainOwner=s["owner"])["domain"]


def fetch_repository_summaries(client: Any, scope: Scope, domain: dict[str, Any]) -> list[dict[str, Any]]:
    with aws_errors(scope, SERVICE, what=f"domain={domain['name']}"):
        return list(paginate(client, "list_repositories_in_domain", "repositories",
                             domain=domain["name"], domainOwner=domain["owner"]))


def fetch_repository(client: Any, scope: Scope, summary: dict[str, Any],
                     known: dict[VersionKey, KnownVersion]) -> RepositoryPayload | None:
    """Raw payloads of one repository; None when it was deleted meanwhile. Versions that `known` already
    holds at the same revision are not fetched again."""
    loc = {"domain": summary["domainName"], "domainOwner": summary["domainOwner"],
           "repository": summary["name"]}
    with aws_errors(scope, SERVICE, what=f"domain={loc['domain']} repository={loc['repository']}"):
        try:
            desc = client.describe_repository(**loc)["repository"]
            tags = client.list_tags_for_resource(resourceArn=summary["arn"])["tags"]
            packages = list(paginate(client, "list_packages", "packages", **loc))
        except ClientError as e:
            if _gone(e):
                return None
            raise
        payload = RepositoryPayload(summary, desc, tags)
        for pkg in packages:
            try:
                _fetch_package(client, loc, pkg, known, payload)
            except ClientError as e:
                if not _gone(e):  # deleted between list_packages and now: it is simply gone
                    raise
    return payload


def _fetch_package(client: Any, loc: dict[str, str], pkg: dict[str, Any],
                   known: dict[VersionKey, KnownVersion], payload: RepositoryPayload) -> None:
    pkey = package_key(pkg)
    ploc = {**loc, "format": pkey[0], "package": pkey[2]}
    if pkey[1] is not None:
        ploc["namespace"] = pkey[1]
    versions = list(paginate(client, "list_package_versions", "versions", **ploc))
    listed = []
    for v in versions:
        vkey = (*pkey, v["version"])
        vloc = {**ploc, "packageVersion": v["version"]}
        try:
            if vkey not in known:
                payload.descriptions[vkey] = client.describe_package_version(**vloc)["packageVersion"]
            if not can_reuse(known.get(vkey), v):
                payload.assets[vkey] = list(paginate(client, "list_package_version_assets", "assets", **vloc))
                if v.get("origin", {}).get("originType") == "INTERNAL":
                    payload.dependencies[vkey] = list(
                        _pages(client.list_package_version_dependencies, "dependencies", **vloc))
        except ClientError as e:
            if not _gone(e):
                raise
            continue  # deleted between list_package_versions and now
        listed.append(v)
    payload.packages.append(pkg)
    payload.versions[pkey] = listed


# -- load ------------------------------------------------------------------------------------------------

def _upsert_repository(con: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> None:
    con.execute("DELETE FROM repositories WHERE account_id = ? AND region = ? AND domain = ? AND repository = ?",
                [row[k] for k in REPO_KEY])
    tags = sorted(row["tags"].items())
    con.execute(
        "INSERT INTO repositories VALUES (?, ?, ?, ?, ?, ?, ?::VARCHAR[], ?::VARCHAR[], ?, "
        "map(?::VARCHAR[], ?::VARCHAR[]), ?)",
        [row["account_id"], row["region"], row["domain"], row["repository"], row["administrator_account"],
         row["description"], row["upstreams"], row["external_connections"], row["created_at"],
         [k for k, _ in tags], [v for _, v in tags], row["last_seen_at"]])


def load_repository(con: duckdb.DuckDBPyConnection, rows: RepositoryRows) -> None:
    """Replace one repository's rows in every inventory table, in one transaction."""
    key = [rows.repository[k] for k in REPO_KEY]
    with store.load_transaction(con):
        lake.thaw(con)  # the assets' file back into the store file; the publish writes them out again
        for table in REPO_TABLES:
            con.execute(f"DELETE FROM {WRITE_TO.get(table, table)} WHERE account_id = ? AND region = ? AND domain = ? "
                        "AND repository = ?", key)
        _upsert_repository(con, rows.repository)
        for table in REPO_TABLES:
            store.insert_rows(con, WRITE_TO.get(table, table), getattr(rows, table), COLUMNS[table])
        store.mark_inventory(con)  # downloads of assets it brings are sized at the next publish


def load_domains(con: duckdb.DuckDBPyConnection, domains: list[dict[str, Any]],
                 snapshots: list[dict[str, Any]]) -> None:
    """Upsert domains rows and replace the same-day storage_snapshots rows, in one transaction."""
    with store.load_transaction(con):
        for d in domains:
            con.execute("DELETE FROM domains WHERE account_id = ? AND region = ? AND domain = ?",
                        [d["account_id"], d["region"], d["domain"]])
            con.execute("INSERT INTO domains VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [d["account_id"], d["region"], d["domain"], d["status"], d["created_at"],
                         d["repository_count"], d["asset_size_bytes"], d["encryption_key"], d["last_seen_at"]])
        for s in snapshots:
            con.execute("DELETE FROM storage_snapshots WHERE snapshot_date = ? AND account_id = ? AND region = ? "
                        "AND domain = ?", [s["snapshot_date"], s["account_id"], s["region"], s["domain"]])
            con.execute("INSERT INTO storage_snapshots VALUES (?, ?, ?, ?, ?, ?)",
                        [s["snapshot_date"], s["account_id"], s["region"], s["domain"],
                         s["asset_size_bytes"], s["collected_at"]])


def remove_vanished_repositories(con: duckdb.DuckDBPyConnection, account_id: str, region: str, domain: str,
                                 listed: list[str]) -> None:
    """Drop the rows of repositories a complete listing of their domain no longer shows."""
    gone = [r for (r,) in con.execute(
        "SELECT repository FROM repositories WHERE account_id = ? AND region = ? AND domain = ?",
        [account_id, region, domain]).fetchall() if r not in set(listed)]
    if not gone:
        return
    with store.load_transaction(con):
        lake.thaw(con)
        for table in ("repositories", *REPO_TABLES):
            con.execute(f"DELETE FROM {WRITE_TO.get(table, table)} WHERE account_id = ? AND region = ? AND domain = ? "
                        "AND list_contains(?::VARCHAR[], repository)", [account_id, region, domain, gone])


def _dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def load_known(con: duckdb.DuckDBPyConnection, key: list[str]) -> dict[VersionKey, KnownVersion]:
    """The stored versions of one repository, with their asset and dependency rows."""
    where = "WHERE account_id = ? AND region = ? AND domain = ? AND repository = ?"
    known: dict[VersionKey, KnownVersion] = {}
    for r in _dicts(con.execute("SELECT format, namespace, package, version, revision, status, published_at, "
                                f"first_seen_at FROM package_versions {where}", key)):
        vkey = (r["format"], r["namespace"], r["package"], r["version"])
        known[vkey] = KnownVersion(r["revision"], r["status"], r["published_at"], r["first_seen_at"])
    for table, attr in (("assets", "assets"), ("package_dependencies", "dependencies")):
        cols = ", ".join(COLUMNS[table])
        for r in _dicts(con.execute(f"SELECT {cols} FROM {table} {where}", key)):
            kv = known.get((r["format"], r["namespace"], r["package"], r["version"]))
            if kv is not None:
                getattr(kv, attr).append(r)
    return known


# -- collect ---------------------------------------------------------------------------------------------

def _region(scope: Scope, client: Any) -> str:
    return scope.region or client.meta.region_name


def _snapshot(ctx: RunContext, scope: Scope, client: Any) -> list[dict[str, Any]]:
    region = _region(scope, client)
    descs = list(fetch_domains(client, scope))
    load_domains(ctx.con, [domain_row(d, region, ctx.now) for d in descs],
                 [snapshot_row(d, region, ctx.now) for d in descs])
    return descs


def snapshot_domains(ctx: RunContext, scope: Scope, client: Any = None) -> int:
    """Record domains and today's (ctx.now's UTC date) storage_snapshots rows; returns the domain count.

    The demo calls this once per historical day (ctx.now = that day 23:59:59 UTC); pass `client` to
    reuse one client across calls.
    """
    return len(_snapshot(ctx, scope, client or ctx.clients.client(scope, SERVICE)))


def collect(ctx: RunContext, scope: Scope) -> ScopeResult:
    client = ctx.clients.client(scope, SERVICE)
    region = _region(scope, client)
    result = ScopeResult(window=f"{ctx.now:%Y-%m-%d}")
    repos: list[dict[str, Any]] = []
    for d in _snapshot(ctx, scope, client):
        summaries = fetch_repository_summaries(client, scope, d)
        remove_vanished_repositories(ctx.con, d["owner"], region, d["name"], [s["name"] for s in summaries])
        repos += summaries
    with ctx.progress(f"inventory {scope.label}", total=len(repos)) as advance:
        for summary in repos:
            key = [summary["domainOwner"], region, summary["domainName"], summary["name"]]
            known = load_known(ctx.con, key)
            payload = fetch_repository(client, scope, summary, known)
            if payload is not None:
                rows = repository_rows(payload, known, region, ctx.now)
                load_repository(ctx.con, rows)
                result.rows += len(rows.package_versions)
            advance(1)
    return result


SPEC = CollectorSpec("inventory", collect, account_region_scopes)
