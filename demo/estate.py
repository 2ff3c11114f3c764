"""Build the seeded synthetic demo estate (domains, repositories, packages, versions, assets).

Reads the static catalogue in `demo.catalog`; writes nothing: `build_estate` returns an
in-memory `demo.model.Estate`. The same (seed, end, months) always gives the same estate.
Asset sizes and sha256 digests depend only on the asset's identity (format/namespace/package/version/
file), so a version retained in several repositories of a domain carries the identical Asset.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import math
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from statistics import NormalDist

from core.clock import utc_midnight, utc_now
from demo import catalog
from demo.model import Asset, Dependency, Domain, Estate, Package, Repository, Version

MIN_ASSET = 400
MAX_ASSET = 400_000_000
_NORMAL = NormalDist()


def build_estate(seed: int = 7, end: datetime | None = None, months: int = 13) -> Estate:
    """The demo estate for `seed`, with `months` of history ending at `end` (default: today 00:00 UTC)."""
    if end is None:
        now = utc_now()
        end = utc_midnight(now.date())
    if end.tzinfo is None:
        raise ValueError("end must be timezone-aware (UTC)")
    end = end.astimezone(UTC)
    start = months_before(end, months).replace(hour=0, minute=0, second=0, microsecond=0)
    rnd = random.Random(f"caa-demo-estate/{seed}")
    estate = Estate(seed=seed, start=start, end=end, org_id=catalog.ORG_ID,
                    accounts=list(catalog.ACCOUNTS), regions=list(catalog.REGIONS))
    for spec in catalog.DOMAINS:
        estate.domains.append(_domain(rnd, seed, start, end, spec))
    return estate


def months_before(t: datetime, months: int) -> datetime:
    """`t` moved back by whole calendar months, the day clamped to the target month's length."""
    y, m = divmod(t.year * 12 + (t.month - 1) - months, 12)
    day = min(t.day, calendar.monthrange(y, m + 1)[1])
    return t.replace(year=y, month=m + 1, day=day)


def unit(*parts: object) -> float:
    """A deterministic number in (0, 1) from an identity."""
    h = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return (int.from_bytes(h[:8], "big") + 0.5) / 2.0**64


def _domain(rnd: random.Random, seed: int, start: datetime, end: datetime, spec: tuple) -> Domain:
    name, acct_idx, region, age_days, _weight, store_counts, repo_specs = spec
    owner = catalog.ACCOUNTS[acct_idx]
    created = start - timedelta(days=age_days)
    key_id = hashlib.sha256(f"kms/{name}".encode()).hexdigest()
    key = f"{key_id[:8]}-{key_id[8:12]}-{key_id[12:16]}-{key_id[16:20]}-{key_id[20:32]}"
    dom = Domain(name=name, owner=owner, region=region, created_at=created,
                 encryption_key=f"arn:aws:kms:{region}:{owner}:key/{key}")
    ctx = _Ctx(rnd=rnd, seed=seed, start=start, end=end, domain=name)

    stores: dict[str, Repository] = {}
    for fmt, count in store_counts.items():
        repo = Repository(name=catalog.STORE[fmt], description=f"Cache of public {fmt} packages",
                          administrator_account=owner, created_at=created,
                          external_connection=catalog.CONNECTION[fmt],
                          tags={"team": "platform", "cost-center": "cc-1000", "purpose": "upstream-cache"})
        ranked = sorted(catalog.EXTERNAL[fmt], key=lambda p: -(p[5] + rnd.random() * 4))
        for ns, pname, first, median, n, _fame in sorted(ranked[:count], key=lambda p: (p[0] or "", p[1])):
            repo.packages.append(_external_package(ctx, fmt, ns, pname, first, median, n))
        stores[fmt] = repo
        dom.repositories.append(repo)

    internal: dict[str, Package] = {}
    for rname, desc, upstreams, tags, _ext, published, _retained in repo_specs:
        repo = Repository(name=rname, description=desc, administrator_account=owner,
                          created_at=created + timedelta(days=rnd.randint(1, 60)),
                          upstreams=list(upstreams), tags=dict(tags))
        for key in published:
            pkg = _internal_package(ctx, key)
            internal[key] = pkg
            repo.packages.append(pkg)
        dom.repositories.append(repo)
    for pkg_key, pkg in internal.items():
        _add_dependencies(pkg, catalog.INTERNAL[pkg_key][7], internal, stores)

    by_name = {r.name: r for r in dom.repositories}
    for rname, _desc, _up, _tags, ext_formats, _published, retained in repo_specs:
        repo = by_name[rname]
        for fmt in ext_formats:
            for spkg in stores[fmt].packages:
                fame = _fame_of(fmt, spkg.name)
                if rnd.random() < min(0.95, 0.45 + 0.05 * fame):
                    repo.packages.append(_retained_copy(rnd, spkg, 0.7))
        for key in retained:
            repo.packages.append(_retained_copy(rnd, internal[key], 0.6))
    return dom


class _Ctx:
    def __init__(self, rnd: random.Random, seed: int, start: datetime, end: datetime, domain: str):
        self.rnd, self.seed, self.start, self.end, self.domain = rnd, seed, start, end, domain


def _fame_of(fmt: str, name: str) -> int:
    return next((p[5] for p in catalog.EXTERNAL[fmt] if p[1] == name), 3)


def _external_package(ctx: _Ctx, fmt: str, ns: str | None, name: str, first: str, median: float,
                      n: int) -> Package:
    rnd = ctx.rnd
    n = max(2, round(n * rnd.uniform(0.7, 1.3)))
    base, suffix = _parse(first)
    series = _series(rnd, base, n, fmt, internal=False, suffix=suffix)
    times = _release_times(rnd, ctx.start, ctx.end, len(series), initial=rnd.randint(1, 4), retired=False)
    pkg = Package(format=fmt, namespace=ns, name=name, origin_publish="BLOCK", origin_upstream="ALLOW")
    for i, (ver, t) in enumerate(zip(series, times, strict=True)):
        pkg.versions.append(Version(version=ver, status=_status(rnd, i, len(series)), origin_type="EXTERNAL",
                                    published_at=t, revision=_revision(ctx, fmt, ns, name, ver),
                                    assets=assets_for(fmt, ns, name, ver, median, internal=False)))
    return pkg


def _internal_package(ctx: _Ctx, key: str) -> Package:
    rnd = ctx.rnd
    fmt, ns, name, median, n, _fame, retired, _deps = catalog.INTERNAL[key]
    n = max(6, round(n * rnd.uniform(0.8, 1.2)))
    base = rnd.choice([(1, 0, 0), (1, 3, 0), (2, 0, 0), (3, 1, 0)])
    series = _series(rnd, base, n, fmt, internal=True, suffix="")
    times = _release_times(rnd, ctx.start, ctx.end, len(series), initial=rnd.randint(1, 3), retired=retired)
    pkg = Package(format=fmt, namespace=ns, name=name, origin_publish="ALLOW", origin_upstream="BLOCK")
    for i, (ver, t) in enumerate(zip(series, times, strict=True)):
        pkg.versions.append(Version(version=ver, status=_status(rnd, i, len(series)), origin_type="INTERNAL",
                                    published_at=t, revision=_revision(ctx, fmt, ns, name, ver),
                                    assets=assets_for(fmt, ns, name, ver, median, internal=True)))
    return pkg


def _retained_copy(rnd: random.Random, pkg: Package, keep: float) -> Package:
    """The package as retained in a downstream repository: a subset of versions, identical assets."""
    kept = [replace(v, assets=[replace(a) for a in v.assets], dependencies=list(v.dependencies))
            for v in pkg.versions if rnd.random() < keep]
    if not kept:
        v = pkg.versions[-1]
        kept = [replace(v, assets=[replace(a) for a in v.assets], dependencies=list(v.dependencies))]
    return replace(pkg, versions=kept)


def _parse(version: str) -> tuple[tuple[int, int, int], str]:
    core, dash, rest = version.partition("-")
    parts = [int(p) for p in core.split(".")] + [0, 0]
    return (parts[0], parts[1], parts[2]), (dash + rest)


def _pre(fmt: str, kind: str, n: int) -> str:
    if fmt == "pypi":
        return f"{'rc' if kind == 'rc' else 'b'}{n}"
    if fmt == "maven":
        return f"-{'RC' if kind == 'rc' else 'M'}{n}"
    return f"-{'rc' if kind == 'rc' else 'beta'}.{n}"


def _series(rnd: random.Random, base: tuple[int, int, int], n: int, fmt: str, *, internal: bool,
            suffix: str) -> list[str]:
    """`n` version strings in release order: patches, minors, a few majors; prereleases for internal."""
    major, minor, patch = base
    out = [f"{major}.{minor}.{patch}{suffix}"]
    bumps = set(rnd.sample(range(3, n), k=min(max(0, n - 3), 2 if n >= 20 else 1))) if internal else set()
    while len(out) < n:
        i = len(out)
        r = rnd.random()
        if i in bumps or (not internal and r < 0.02):
            major, minor, patch = major + 1, 0, 0
            if internal:
                for k in range(1, rnd.randint(1, 2) + 1):
                    out.append(f"{major}.0.0{_pre(fmt, 'rc', k)}")
        elif r < 0.27:
            major, minor, patch = major, minor + 1, 0
            if internal and rnd.random() < 0.25:
                out.append(f"{major}.{minor}.0{_pre(fmt, 'beta', 1)}")
        else:
            patch += 1
        out.append(f"{major}.{minor}.{patch}{suffix}")
    return out[:n]


def _release_times(rnd: random.Random, start: datetime, end: datetime, n: int, *, initial: int,
                   retired: bool) -> list[datetime]:
    """Sorted first-seen times: a few in the first two weeks (lockfiles), the rest spread over history."""
    span = (end - start).total_seconds()
    first = 14 * 86400
    last = min(span - 6 * 3600, 120 * 86400) if retired else span - 6 * 3600
    k = min(initial, n)
    secs = sorted(rnd.uniform(0, first) for _ in range(k))
    secs += sorted(rnd.uniform(first, last) for _ in range(n - k))
    return [start + timedelta(seconds=int(s)) for s in secs]


def _status(rnd: random.Random, i: int, n: int) -> str:
    age = i / max(1, n)
    u = rnd.random()
    if age < 0.5 and u < 0.012:
        return "Disposed"
    if age < 0.6 and u < 0.06:
        return "Archived"
    if u < 0.09:
        return "Unlisted"
    return "Published"


def _revision(ctx: _Ctx, fmt: str, ns: str | None, name: str, ver: str) -> str:
    digest = hashlib.sha256(f"revision/{ctx.seed}/{ctx.domain}/{fmt}/{ns}/{name}/{ver}".encode()).digest()
    return base64.b64encode(digest).decode()


def _size(median: float, sigma: float, *identity: object) -> int:
    u = unit("size", *identity)
    size = median * math.exp(sigma * _NORMAL.inv_cdf(u))
    if unit("tail", *identity) < 0.01:  # a pareto-like tail: the odd bloated build
        size *= 8 + 40 * unit("tail-size", *identity)
    return int(min(MAX_ASSET, max(MIN_ASSET, size)))


def assets_for(fmt: str, ns: str | None, name: str, ver: str, median: float, *, internal: bool) -> list[Asset]:
    """The files of one package version; sizes and digests depend only on the asset's identity."""
    sigma = 0.3 if median > 50e6 else 0.6
    ident = (fmt, ns or "", name, ver)

    def asset(file: str, scale: float = 1.0) -> Asset:
        sha = hashlib.sha256("/".join((*ident, file)).encode()).hexdigest()
        return Asset(name=file, size_bytes=_size(median * scale, sigma, *ident, file), sha256=sha)

    if fmt == "npm":
        return [asset(f"{name}-{ver}.tgz")]
    if fmt == "pypi":
        norm = name.replace("-", "_")
        if name in catalog.NATIVE:
            tags = ["cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
                    "cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64", "cp311-cp311-macosx_11_0_arm64"]
            count = 1 + int(unit("wheels", *ident) * 3)
            out = [asset(f"{norm}-{ver}-{tag}.whl") for tag in tags[:count]]
            if unit("sdist", *ident) < 0.3:
                out.append(asset(f"{norm}-{ver}.tar.gz", 0.5))
            return out
        out = [asset(f"{norm}-{ver}-py3-none-any.whl")]
        if unit("sdist", *ident) < (0.5 if internal else 0.6):
            out.append(asset(f"{norm}-{ver}.tar.gz", 0.9))
        return out
    out = [asset(f"{name}-{ver}.jar"), Asset(name=f"{name}-{ver}.pom",
                                            size_bytes=2000 + int(28000 * unit("pom", *ident)),
                                            sha256=hashlib.sha256("/".join((*ident, "pom")).encode()).hexdigest())]
    if unit("sources", *ident) < 0.4:
        out.append(asset(f"{name}-{ver}-sources.jar", 0.35))
    return out


def _requirement(fmt: str, version: str) -> str:
    (major, minor, patch), suffix = _parse(version)
    if fmt == "npm":
        return f"^{major}.{minor}.0"
    if fmt == "pypi":
        return f">={major}.{minor},<{major + 1}"
    return f"{major}.{minor}.{patch}{suffix}"


def _stable(v: Version) -> bool:
    core = v.version.split("-")[0]
    return not any(ch.isalpha() for ch in core) and not any(t in v.version for t in ("-rc", "-beta", "-RC", "-M"))


def _add_dependencies(pkg: Package, deps: list[tuple], internal: dict[str, Package],
                      stores: dict[str, Repository]) -> None:
    """Dependencies of each internal version on the newest stable version of each target at publish time."""
    targets: list[tuple[str | None, str, str, list[Version] | None, str]] = []
    by_ident = {(p.namespace, p.name): p for p in internal.values()}
    for ns, name, dtype in deps:
        target = by_ident.get((ns, name))
        if target is None and pkg.format in stores:
            target = next((p for p in stores[pkg.format].packages if (p.namespace, p.name) == (ns, name)), None)
        fallback = next((p[2] for p in catalog.EXTERNAL[pkg.format] if (p[0], p[1]) == (ns, name)), "1.0.0")
        targets.append((ns, name, dtype, target.versions if target else None, fallback))
    for ver in pkg.versions:
        for ns, name, dtype, versions, fallback in targets:
            cands = [v for v in versions or [] if v.published_at <= ver.published_at and _stable(v)]
            if versions is not None and not cands and (ns, name) in by_ident:
                continue  # the internal dependency did not exist yet
            req = _requirement(pkg.format, cands[-1].version if cands else fallback)
            ver.dependencies.append(Dependency(namespace=ns, package=name, dependency_type=dtype,
                                               version_requirement=req))
