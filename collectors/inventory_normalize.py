"""Pure functions that turn raw CodeArtifact API payloads into inventory rows (no I/O, no clock).

Reads: dicts exactly as boto3 returns them (DomainDescription, RepositorySummary/Description, tag lists,
PackageSummary, PackageVersionSummary, PackageVersionDescription, AssetSummary, PackageDependency).
Writes: row dicts keyed by the column names of domains, storage_snapshots, repositories, packages,
package_versions, assets and package_dependencies (core/schema/001_init.sql).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# (format, namespace, package) and (format, namespace, package, version): namespace is None when absent.
PackageKey = tuple[str, str | None, str]
VersionKey = tuple[str, str | None, str, str]


def utc(value: datetime | None) -> datetime | None:
    """botocore parses epoch timestamps into local-zone datetimes; the store only holds UTC."""
    return value.astimezone(UTC) if value is not None else None


def package_key(raw: dict[str, Any]) -> PackageKey:
    return raw["format"], raw.get("namespace"), raw["package"]


def domain_row(desc: dict[str, Any], region: str, now: datetime) -> dict[str, Any]:
    """A `domains` row from describe_domain()['domain']."""
    return {
        "account_id": desc["owner"], "region": region, "domain": desc["name"], "status": desc.get("status"),
        "created_at": utc(desc.get("createdTime")), "repository_count": desc.get("repositoryCount"),
        "asset_size_bytes": desc.get("assetSizeBytes"), "encryption_key": desc.get("encryptionKey"),
        "last_seen_at": now,
    }


def snapshot_row(desc: dict[str, Any], region: str, now: datetime) -> dict[str, Any]:
    """A `storage_snapshots` row (the day is now's UTC date) from describe_domain()['domain']."""
    return {
        "snapshot_date": now.astimezone(UTC).date(), "account_id": desc["owner"], "region": region,
        "domain": desc["name"], "asset_size_bytes": desc.get("assetSizeBytes") or 0, "collected_at": now,
    }


def repository_row(desc: dict[str, Any], tags: list[dict[str, str]], region: str,
                   now: datetime) -> dict[str, Any]:
    """A `repositories` row from describe_repository()['repository'] and list_tags_for_resource()['tags']."""
    return {
        "account_id": desc["domainOwner"], "region": region, "domain": desc["domainName"],
        "repository": desc["name"], "administrator_account": desc.get("administratorAccount"),
        "description": desc.get("description"),
        "upstreams": [u["repositoryName"] for u in desc.get("upstreams", [])],
        "external_connections": [c["externalConnectionName"] for c in desc.get("externalConnections", [])],
        "created_at": utc(desc.get("createdTime")),
        "tags": {t["key"]: t["value"] for t in tags},
        "last_seen_at": now,
    }


def package_row(base: dict[str, str], summary: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A `packages` row from one list_packages()['packages'] item; base = account_id/region/domain/repository."""
    restrictions = summary.get("originConfiguration", {}).get("restrictions", {})
    return {
        **base, "format": summary["format"], "namespace": summary.get("namespace"),
        "package": summary["package"], "origin_publish": restrictions.get("publish"),
        "origin_upstream": restrictions.get("upstream"), "last_seen_at": now,
    }


def asset_rows(base: dict[str, str], key: VersionKey, assets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`assets` rows from list_package_version_assets()['assets'] of one version."""
    fmt, ns, pkg, ver = key
    return [{**base, "format": fmt, "namespace": ns, "package": pkg, "version": ver, "asset": a["name"],
             "size_bytes": a.get("size"), "sha256": a.get("hashes", {}).get("SHA-256")} for a in assets]


def dependency_rows(base: dict[str, str], key: VersionKey,
                    dependencies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`package_dependencies` rows from list_package_version_dependencies()['dependencies']."""
    fmt, ns, pkg, ver = key
    return [{**base, "format": fmt, "namespace": ns, "package": pkg, "version": ver,
             "dependency_namespace": d.get("namespace"), "dependency_package": d["package"],
             "dependency_type": d.get("dependencyType"), "version_requirement": d.get("versionRequirement")}
            for d in dependencies]


@dataclass
class KnownVersion:
    """What the store already holds for a version (from the last run over its repository)."""

    revision: str | None
    status: str
    published_at: datetime | None
    first_seen_at: datetime
    assets: list[dict[str, Any]] = field(default_factory=list)  # asset rows
    dependencies: list[dict[str, Any]] = field(default_factory=list)  # dependency rows


def can_reuse(known: KnownVersion | None, summary: dict[str, Any]) -> bool:
    """True when a stored version's assets and dependencies still hold: same revision, not newly Disposed."""
    if known is None or known.revision is None or known.revision != summary.get("revision"):
        return False
    return not (summary["status"] == "Disposed" and known.status != "Disposed")


@dataclass
class RepositoryPayload:
    """Everything fetched for one repository, raw. Versions reused from the store have no entry in
    descriptions/assets/dependencies."""

    summary: dict[str, Any]  # RepositorySummary
    description: dict[str, Any]  # describe_repository()['repository']
    tags: list[dict[str, str]]
    packages: list[dict[str, Any]] = field(default_factory=list)  # PackageSummary items
    versions: dict[PackageKey, list[dict[str, Any]]] = field(default_factory=dict)  # PackageVersionSummary
    descriptions: dict[VersionKey, dict[str, Any]] = field(default_factory=dict)
    assets: dict[VersionKey, list[dict[str, Any]]] = field(default_factory=dict)
    dependencies: dict[VersionKey, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass
class RepositoryRows:
    repository: dict[str, Any]
    packages: list[dict[str, Any]] = field(default_factory=list)
    package_versions: list[dict[str, Any]] = field(default_factory=list)
    assets: list[dict[str, Any]] = field(default_factory=list)
    package_dependencies: list[dict[str, Any]] = field(default_factory=list)


def repository_rows(payload: RepositoryPayload, known: dict[VersionKey, KnownVersion], region: str,
                    now: datetime) -> RepositoryRows:
    """Every row of one repository: fetched data for new or changed versions, stored data for the rest."""
    repo = repository_row(payload.description, payload.tags, region, now)
    base = {k: repo[k] for k in ("account_id", "region", "domain", "repository")}
    rows = RepositoryRows(repo)
    for summary in payload.packages:
        rows.packages.append(package_row(base, summary, now))
        pkey = package_key(summary)
        for v in payload.versions.get(pkey, []):
            vkey = (*pkey, v["version"])
            old = known.get(vkey)
            desc = payload.descriptions.get(vkey, {})
            origin = v.get("origin", {}) or desc.get("origin", {})
            rows.package_versions.append({
                **base, "format": pkey[0], "namespace": pkey[1], "package": pkey[2], "version": v["version"],
                "status": v["status"], "revision": v.get("revision"), "origin_type": origin.get("originType"),
                "published_at": old.published_at if old else utc(desc.get("publishedTime")),
                "first_seen_at": old.first_seen_at if old else now, "last_seen_at": now,
            })
            if vkey in payload.assets:
                rows.assets += asset_rows(base, vkey, payload.assets[vkey])
            elif old:
                rows.assets += old.assets
            if vkey in payload.dependencies:
                rows.package_dependencies += dependency_rows(base, vkey, payload.dependencies[vkey])
            elif old and vkey not in payload.assets:
                rows.package_dependencies += old.dependencies
    return rows
