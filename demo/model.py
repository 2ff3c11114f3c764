"""The demo estate's in-memory model: domains, repositories, packages, versions and assets.

`demo.estate.build_estate(seed, ...)` creates it deterministically; the fake CodeArtifact
service (`demo.fake_codeartifact`) answers API calls from it, and the trail writer emits
CloudTrail records about it. Nothing here does I/O.

Reads and writes nothing (dataclasses).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class Asset:
    name: str
    size_bytes: int
    sha256: str


@dataclass
class Dependency:
    namespace: str | None
    package: str
    dependency_type: str  # e.g. "regular", "dev", "compile"
    version_requirement: str


@dataclass
class Version:
    version: str
    status: str  # Published / Unlisted / Archived / Disposed
    origin_type: str  # INTERNAL / EXTERNAL
    published_at: datetime  # tz-aware UTC; for EXTERNAL versions this is when it was cached
    revision: str
    assets: list[Asset] = field(default_factory=list)
    dependencies: list[Dependency] = field(default_factory=list)


@dataclass
class Package:
    format: str  # npm / pypi / maven
    namespace: str | None  # npm scope without '@', maven groupId, None for pypi and unscoped npm
    name: str
    origin_publish: str  # ALLOW / BLOCK
    origin_upstream: str  # ALLOW / BLOCK
    versions: list[Version] = field(default_factory=list)


@dataclass
class Repository:
    name: str
    description: str
    administrator_account: str
    created_at: datetime
    upstreams: list[str] = field(default_factory=list)
    external_connection: str | None = None  # "public:npmjs" / "public:pypi" / "public:maven-central"
    tags: dict[str, str] = field(default_factory=dict)
    packages: list[Package] = field(default_factory=list)


@dataclass
class Domain:
    name: str
    owner: str  # 12-digit account id
    region: str
    created_at: datetime
    encryption_key: str
    repositories: list[Repository] = field(default_factory=list)

    def asset_size_bytes(self, as_of: datetime) -> int:
        """Deduplicated bytes stored in the domain at `as_of`: each sha256 once, Disposed versions excluded."""
        seen: dict[str, int] = {}
        for repo in self.repositories:
            for pkg in repo.packages:
                for ver in pkg.versions:
                    if ver.published_at > as_of or ver.status == "Disposed":
                        continue
                    for a in ver.assets:
                        seen[a.sha256] = a.size_bytes
        return sum(seen.values())


@dataclass
class Estate:
    seed: int
    start: datetime  # first day of history (UTC midnight)
    end: datetime  # "now" of the estate (UTC); history covers [start, end)
    org_id: str  # "o-xxxxxxxxxx"
    accounts: list[str]
    regions: list[str]
    domains: list[Domain] = field(default_factory=list)

    def domain(self, owner: str, region: str, name: str) -> Domain | None:
        for d in self.domains:
            if d.owner == owner and d.region == region and d.name == name:
                return d
        return None
