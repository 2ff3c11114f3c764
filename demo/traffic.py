"""Who downloads what, and when: the traffic plan that the demo trail writer turns into CloudTrail records.

Reads an in-memory `Estate`; writes nothing. `make_plan` flattens the estate into download streams
(one per domain/repository/package) with per-version availability and popularity, the principals with
their user agents and source IPs, the daily volume, and the injected spikes and auth-failure bursts.
The plan is plain picklable data, so worker processes can expand it chunk by chunk.
"""

from __future__ import annotations

import bisect
import fnmatch
import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from demo import catalog
from demo.model import Estate

DAY = 86400
CA = "codeartifact.amazonaws.com"
OFFICE = ["198.51.100.23", "198.51.100.57", "198.51.100.81", "192.0.2.14", "192.0.2.88"]

# (account index, kind, role or user name, session, ci, source IPs, access [(domain, repo glob)], weight).
# Source IPs: documentation addresses stand for the internet (offices, hosted CI); some CI runs in AWS (EC2
# addresses of AWS's published ranges, in and out of the repository's region) or behind a VPC endpoint
# (a private address), which is what the data-transfer model tells apart.
PRINCIPALS = [
    (0, "role", "ci-github-actions", "GitHubActions", True, ["203.0.113.10", "203.0.113.11", "203.0.113.12"],
     [("acme", "*"), ("acme-eu", "*")], 10),
    (0, "role", "jenkins-build", "jenkins", True, ["3.80.12.40"],  # EC2, us-east-1
     [("acme", "app-releases"), ("acme", "backend-services"), ("acme", "shared-libs"), ("acme-eu", "eu-services")], 6),
    (0, "role", "AWSReservedSSO_Developer_abc123", "alice@acme.example", False, OFFICE[:2], [("acme", "*")], 1.2),
    (0, "role", "AWSReservedSSO_Developer_abc123", "bob@acme.example", False, OFFICE[1:3],
     [("acme", "web-frontend"), ("acme", "shared-libs")], 1),
    (0, "role", "AWSReservedSSO_Developer_abc123", "hugo@acme.example", False, OFFICE[3:5], [("acme-eu", "*")], 0.8),
    (0, "user", "build-bot-legacy", None, True, ["203.0.113.41"], [("acme", "backend-services")], 1.5),
    (0, "user", "dave", None, False, OFFICE[2:3], [("acme", "app-releases"), ("acme", "backend-services")], 0.5),
    (1, "role", "data-ci-codebuild", "AWSCodeBuild-7f3a9c", True, ["34.228.4.70", "34.228.4.71"],  # us-east-1
     [("data-platform", "*"), ("acme", "shared-libs")], 6),
    (1, "role", "airflow-worker", "airflow", True, ["44.230.10.90"],  # EC2 in us-west-2: cross-region
     [("data-platform", "data-pipelines")], 3),
    (1, "role", "AWSReservedSSO_DataScientist_def456", "erin@acme.example", False, OFFICE[:1],
     [("data-platform", "ml-models"), ("data-platform", "pypi-store")], 1),
    (1, "user", "ml-pipeline", None, True, ["10.20.3.91"],  # a VPC endpoint
     [("data-platform", "ml-models")], 2),
    (2, "role", "mobile-ci", "bitrise", True, ["198.51.100.200", "198.51.100.201"],
     [("mobile", "*"), ("acme", "app-releases")], 5),
    (2, "role", "AWSReservedSSO_Developer_abc123", "grace@acme.example", False, OFFICE[3:4],
     [("mobile", "*"), ("acme", "web-frontend")], 1),
    (2, "user", "partner-integration", None, True, ["192.0.2.200"], [("acme", "app-releases")], 1),
]
API_PRINCIPALS = [(0, "role", "caa-readonly", "caa-collector"), (0, "role", "AWSReservedSSO_Developer_abc123",
                                                                 "alice@acme.example")]
PIP_CI = ('{"ci":true,"cpu":"x86_64","distro":{"id":"jammy","libc":{"lib":"glibc","version":"2.35"},'
          '"name":"Ubuntu","version":"22.04"},"implementation":{"name":"CPython","version":"3.11.7"},'
          '"installer":{"name":"pip","version":"24.0"},"openssl_version":"OpenSSL 3.0.2 15 Mar 2022",'
          '"python":"3.11.7","rustc_version":"1.75.0","setuptools_version":"69.0.3",'
          '"system":{"name":"Linux","release":"6.2.0-1018-aws"}}')
PIP_MAC = PIP_CI.replace('"ci":true', '"ci":null').replace('"system":{"name":"Linux","release":"6.2.0-1018-aws"}',
                                                           '"system":{"name":"Darwin","release":"23.2.0"}')
USER_AGENTS = {
    ("npm", True): ["npm/10.2.4 node/v20.11.0 linux x64 workspaces/false ci/github-actions",
                    "yarn/1.22.19 npm/? node/v20.11.0 linux x64",
                    "pnpm/8.15.1 npm/? node/v20.11.0 linux x64",
                    "npm/9.8.1 node/v18.19.0 linux x64 workspaces/false ci/jenkins"],
    ("npm", False): ["npm/10.2.4 node/v20.11.0 darwin arm64 workspaces/false",
                     "yarn/1.22.19 npm/? node/v18.19.0 darwin arm64",
                     "npm/10.2.3 node/v20.10.0 win32 x64 workspaces/false"],
    ("pypi", True): ["pip/24.0 " + PIP_CI, "poetry/1.7.1", "pip/23.3.2 " + PIP_CI.replace("24.0", "23.3.2")],
    ("pypi", False): ["pip/23.3.1 " + PIP_MAC.replace("24.0", "23.3.1"), "poetry/1.7.1", "uv/0.1.24"],
    ("maven", True): ["Apache-Maven/3.9.6 (Java 17.0.9; Linux 5.15.0-1051-aws)",
                      "Gradle/8.5 (Linux;5.15.0-1051-aws;amd64) (Eclipse Adoptium;17.0.9;17.0.9+9)",
                      "Apache-Maven/3.8.8 (Java 11.0.21; Linux 5.10.205-195.804.amzn2.x86_64)"],
    ("maven", False): ["Apache-Maven/3.9.5 (Java 21.0.1; Mac OS X 14.2.1)",
                       "Gradle/8.4 (Mac OS X;14.2.1;aarch64) (JetBrains s.r.o.;17.0.9;17.0.9+8-b1087.7)"],
}
TOKEN_UA = {True: "aws-cli/2.15.10 Python/3.11.6 Linux/5.15.0-1051-aws exe/x86_64.ubuntu.22 prompt/off "
                  "command/codeartifact.get-authorization-token",
            False: "aws-cli/2.15.10 Python/3.11.6 Darwin/23.2.0 exe/x86_64 prompt/off "
                   "command/codeartifact.login"}
CLI_UA = ("aws-cli/2.15.10 Python/3.11.6 Darwin/23.2.0 exe/x86_64 prompt/off "
          "command/codeartifact.list-package-versions")
BOTO_UA = ("Boto3/1.34.40 md/Botocore#1.34.40 ua/2.0 os/linux#6.2.0 md/arch#x86_64 lang/python#3.11.7 "
           "md/pyimpl#CPython cfg/retry-mode#adaptive Botocore/1.34.40")
HOURS = [0.25 + math.exp(-(((h - 15) / 4.0) ** 2)) + 0.5 * math.exp(-(((h - 9) / 2.5) ** 2)) for h in range(24)]
HOUR_CUM = list(np.cumsum(HOURS) / sum(HOURS))


@dataclass
class Principal:
    arn: str
    account: str
    kind: str  # AssumedRole / IAMUser
    name: str  # role or user name
    session: str | None
    ci: bool
    ips: list[str]
    weight: float
    access: list[tuple[str, str]]


@dataclass
class Stream:
    """One package in one repository: what a client pointed at that repository can download."""

    domain: str
    owner: str
    region: str
    repo: str
    fmt: str
    ns: str | None
    name: str
    weight: float
    versions: list[str]
    avail: list[int]  # published_at, epoch seconds
    stop: list[int]  # nobody fetches the version from this time on
    base: list[float]  # 0 = never downloaded (Archived, Disposed, or simply unused)
    assets: list[list[str]]
    internal: bool
    publisher: bool  # the repository the internal package is published into
    sizes: list[dict[str, int]] = field(default_factory=list)  # per version: asset name -> bytes


@dataclass
class Group:
    domain: str
    repo: str
    fmt: str
    streams: list[int]
    principals: list[int]
    pcum: list[float]


@dataclass
class Injection:
    """A download spike (kind "spike") or an auth-failure burst (kind "burst")."""

    kind: str
    group: int
    stream: int
    principal: int
    user_agent: str
    source_ip: str
    start: int
    end: int
    times: list[int] = field(default_factory=list)


@dataclass
class Plan:
    seed: int
    target: int
    start: int
    end: int
    days: int
    day_records: list[float]
    jobs_per_record: float
    streams: list[Stream]
    groups: list[Group]
    principals: list[Principal]
    api_principals: list[Principal]
    owners: dict[str, str]  # domain -> owner account
    trails: list[tuple[str, str]]  # (account, region) pairs with a trail
    spikes: list[Injection]
    bursts: list[Injection]
    mean_installs: float = 6.5


def _principal(accounts: list[str], acct: int, kind: str, name: str, session: str | None, ci: bool,
               ips: list[str], access: list, weight: float) -> Principal:
    a = accounts[acct]
    if kind == "role":
        arn = f"arn:aws:sts::{a}:assumed-role/{name}/{session}"
        return Principal(arn, a, "AssumedRole", name, session, ci, ips, weight, access)
    return Principal(f"arn:aws:iam::{a}:user/{name}", a, "IAMUser", name, None, ci, ips, weight, access)


def hash_unit(*parts: object) -> float:
    h = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest()
    return (int.from_bytes(h, "big") + 0.5) / 2.0**64


def _epoch(t: datetime) -> int:
    return int(t.astimezone(UTC).timestamp())


def _major(version: str) -> str:
    return version.split(".")[0]


def _streams(estate: Estate) -> list[Stream]:
    out: list[Stream] = []
    for d in estate.domains:
        dweight = {"acme": 3.0, "data-platform": 0.6, "acme-eu": 0.35}.get(d.name, 0.3)
        names = sorted({(p.format, p.namespace or "", p.name) for r in d.repositories for p in r.packages},
                       key=lambda k: -(_fame(d, k) + 4 * hash_unit(estate.seed, d.name, *k)))
        rank = {k: i + 1 for i, k in enumerate(names)}
        holders: dict[tuple, list[str]] = {}
        for r in d.repositories:
            for p in r.packages:
                holders.setdefault((p.format, p.namespace or "", p.name), []).append(r.name)
        ups = {r.name: r.upstreams for r in d.repositories}
        for r in d.repositories:
            for p in r.packages:
                key = (p.format, p.namespace or "", p.name)
                internal = p.origin_publish == "ALLOW"
                publisher = internal and not any(_reaches(ups, r.name, h) for h in holders[key] if h != r.name)
                factor = 0.12 if r.external_connection else (0.5 if publisher else 1.0)
                out.append(_stream(estate, d, r.name, p, dweight * factor / rank[key] ** 1.1, internal, publisher))
    return out


def _fame(domain, key: tuple) -> float:
    fmt, ns, name = key
    for p in catalog.EXTERNAL[fmt]:
        if (p[0] or "", p[1]) == (ns, name):
            return p[5]
    return next((p[5] for p in catalog.INTERNAL.values() if (p[0], p[1] or "", p[2]) == key), 3)


def _reaches(ups: dict[str, list[str]], frm: str, to: str) -> bool:
    todo, seen = list(ups.get(frm, [])), set()
    while todo:
        r = todo.pop()
        if r == to:
            return True
        if r not in seen:
            seen.add(r)
            todo.extend(ups.get(r, []))
    return False


def _stream(estate: Estate, d, repo: str, p, weight: float, internal: bool, publisher: bool) -> Stream:
    vs = p.versions
    avail = [_epoch(v.published_at) for v in vs]
    major_first: dict[str, int] = {}
    for v, t in zip(vs, avail, strict=True):
        major_first.setdefault(_major(v.version), t)
    retired_at = (max(avail) + int(DAY * (10 + 30 * hash_unit("retired", d.name, p.name)))
                  if internal and max(avail) < _epoch(estate.start) + 130 * DAY else None)
    stop, base = [], []
    for i, v in enumerate(vs):
        ident = (estate.seed, d.name, p.format, p.namespace, p.name, v.version)
        s = 2**40
        later_majors = [t for m, t in major_first.items() if t > avail[i] and m != _major(v.version)]
        if later_majors:
            s = min(later_majors) + int(DAY * (20 + 70 * hash_unit("major-stop", *ident)))
        if i + 1 < len(vs) and hash_unit("superseded", *ident) < 0.7:
            s = min(s, avail[i + 1] + int(DAY * (60 + 180 * hash_unit("patch-stop", *ident))))
        if retired_at is not None:
            s = min(s, retired_at)
        stop.append(s)
        ok = v.status in ("Published", "Unlisted") and hash_unit("never", *ident) >= 0.08
        pre = any(c.isalpha() for c in v.version.split("-")[0]) or "-rc" in v.version or "-beta" in v.version \
            or "-RC" in v.version or "-M" in v.version
        base.append(0.0 if not ok else (0.3 if pre else 1.0))
    return Stream(d.name, d.owner, d.region, repo, p.format, p.namespace, p.name, weight,
                  [v.version for v in vs], avail, stop, base, [[a.name for a in v.assets] for v in vs],
                  internal, publisher, [{a.name: a.size_bytes for a in v.assets} for v in vs])


def version_weights(s: Stream, t: int) -> tuple[list[int], list[float]] | None:
    """Indices and cumulative weights of the versions of `s` a client may fetch at time `t`: newest first."""
    idx = [i for i in range(len(s.versions) - 1, -1, -1) if s.base[i] > 0 and s.avail[i] <= t < s.stop[i]]
    if not idx:
        return None
    cum, total = [], 0.0
    for r, i in enumerate(idx):
        total += s.base[i] * (0.5**r + 0.02)
        cum.append(total)
    return idx, cum


def pick(cum: list[float], u: float) -> int:
    return min(bisect.bisect_right(cum, u * cum[-1]), len(cum) - 1)


# The estate's story: over its year the teams moved their CI onto CodeArtifact, so traffic grew steadily
# (compounding, ~0.4% a day) to GROWTH times, and acme, the CI-heavy domain, carries most of it. At
# `caa demo`'s 1.2M events the acme account makes ~136,000 requests in the last full month, past the
# 100,000 free ones, so request costs, the free tier and spike costs show beside storage. The slope is
# one the spike detector's 4-week baselines follow: the labelled spikes stay the injected ones.
GROWTH = 5.0


def make_plan(estate: Estate, target_events: int) -> Plan:
    start, end = _epoch(estate.start), _epoch(estate.end)
    days = math.ceil((end - start) / DAY)
    principals = [_principal(estate.accounts, *p) for p in PRINCIPALS]
    api = [_principal(estate.accounts, a, k, n, s, True, ["203.0.113.5"] if s == "caa-collector" else OFFICE[:1],
                      [("*", "*")], 1) for a, k, n, s in API_PRINCIPALS]
    streams = _streams(estate)
    groups: list[Group] = []
    by_key: dict[tuple, Group] = {}
    for i, s in enumerate(streams):
        g = by_key.get((s.domain, s.repo, s.fmt))
        if g is None:
            ps = [j for j, p in enumerate(principals)
                  if any(dom == s.domain and fnmatch.fnmatch(s.repo, pat) for dom, pat in p.access)]
            g = Group(s.domain, s.repo, s.fmt, [], ps, list(np.cumsum([principals[j].weight for j in ps])))
            by_key[(s.domain, s.repo, s.fmt)] = g
            if ps:
                groups.append(g)
        g.streams.append(i)
    growth = [GROWTH ** (d / max(1, days - 1)) for d in range(days)]  # compounding, ~0.4% a day
    weekday = [0.3 if datetime.fromtimestamp(start + d * DAY, UTC).weekday() >= 5 else 1.0 for d in range(days)]
    w = [g * k for g, k in zip(growth, weekday, strict=True)]
    day_records = [target_events * x / sum(w) for x in w]
    share = {f: sum(s.weight for s in streams if s.fmt == f) for f in ("npm", "pypi", "maven")}
    per_install = sum(share[f] * (3.05 if f == "maven" else 2.0) for f in share) / sum(share.values())
    mean_installs = 1 + 1 / (math.exp(1 / 6.0) - 1)  # 1 + floor(Exp(mean 6)) installs per job
    records_per_job = 1.85 + mean_installs * per_install
    owners = {d.name: d.owner for d in estate.domains}
    trails = sorted({(a, r) for a in estate.accounts for r in estate.regions})
    plan = Plan(estate.seed, target_events, start, end, days, day_records, 0.955 / records_per_job, streams,
                groups, principals, api, owners, trails, [], [], mean_installs)
    rng = np.random.default_rng([estate.seed, target_events, 991])
    plan.spikes = _spikes(plan, rng)
    plan.bursts = _bursts(plan, rng)
    return plan


def active_weight(plan: Plan, g: Group, t: int) -> float:
    return sum(plan.streams[i].weight for i in g.streams if version_weights(plan.streams[i], t))


def _spikes(plan: Plan, rng: np.random.Generator) -> list[Injection]:
    """Seven download spikes on popular streams, one of them in the last two days of the history."""
    order = sorted(range(len(plan.streams)), key=lambda i: -plan.streams[i].weight)
    group_of = {i: gi for gi, g in enumerate(plan.groups) for i in g.streams}
    cands = [i for i in order if i in group_of][:40]
    out: list[Injection] = []
    n = 7
    for k in range(n):
        hours = bool(k % 2)
        dur = int(3600 * rng.uniform(3, 8)) if hours else int(DAY * rng.uniform(1, 3))
        if k == n - 1:
            begin = plan.end - 2 * DAY + int(rng.uniform(0, 6 * 3600))
            dur = min(dur, plan.end - begin - 3600)
        else:
            begin = plan.start + int(DAY * (45 + (plan.days - 60) * (k + rng.uniform(0.1, 0.9)) / (n - 1)))
        day = (begin - plan.start) // DAY
        used = {x.stream for x in out}
        groups = {x.group for x in out}
        names = {plan.streams[x.stream].name for x in out}
        ok = [i for i in cands if i not in used and version_weights(plan.streams[i], begin - begin % DAY)]
        i = next((i for i in ok if group_of[i] not in groups and plan.streams[i].name not in names),
                 next((i for i in ok if group_of[i] not in groups), ok[0]))
        g = plan.groups[group_of[i]]
        gsum = sum(active_weight(plan, gg, begin - begin % DAY) for gg in plan.groups)
        jobs = plan.day_records[day] * plan.jobs_per_record
        normal = jobs * plan.mean_installs * plan.streams[i].weight / max(gsum, 1e-9)
        touched = (begin + dur - 1) // DAY - begin // DAY + 1  # calendar days the spike overlaps
        # at least 30 a calendar day it touches: the detector's documented floor is 20 downloads a day
        # (spikes.min_daily_downloads), and a labelled spike below it would be one no rule can see
        installs = max(30 * touched, int(math.ceil(rng.uniform(6, 20) * normal * touched)))
        ci = [j for j in g.principals if plan.principals[j].ci] or g.principals
        pj = ci[int(rng.integers(len(ci)))]
        uas = USER_AGENTS[(plan.streams[i].fmt, True)]
        inj = Injection("spike", group_of[i], i, pj, uas[int(rng.integers(len(uas)))],
                        f"203.0.113.{150 + k}", begin, begin + dur)
        inj.times = sorted(int(t) for t in rng.uniform(begin, begin + dur, installs))
        out.append(inj)
    return out


def _bursts(plan: Plan, rng: np.random.Generator) -> list[Injection]:
    wanted = ["jenkins-build", "partner-integration", "bob@acme.example", "airflow-worker", "mobile-ci"]
    out = []
    for k, name in enumerate(wanted):
        pj = next(j for j, p in enumerate(plan.principals) if name in p.arn)
        gi = next(gi for gi, g in enumerate(plan.groups) if pj in g.principals)
        g = plan.groups[gi]
        begin = plan.start + int(DAY * (20 + (plan.days - 30) * (k + rng.uniform(0.2, 0.8)) / len(wanted)))
        dur = int(60 * rng.uniform(30, 180))
        p = plan.principals[pj]
        uas = USER_AGENTS[(g.fmt, p.ci)]
        inj = Injection("burst", gi, g.streams[int(rng.integers(len(g.streams)))], pj,
                        uas[int(rng.integers(len(uas)))], p.ips[0], begin, begin + dur)
        inj.times = sorted(int(t) for t in rng.uniform(begin, begin + dur, int(rng.integers(40, 400))))
        out.append(inj)
    return out
