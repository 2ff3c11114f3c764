"""Write CloudTrail trail files of CodeArtifact traffic over the demo estate, plus the ground truth.

Reads an in-memory `Estate` (from `demo.estate.build_estate`); writes
`<out>/trails/AWSLogs/...` (gzip JSON `{"Records": [...]}` files in the S3 key layout of an organization
trail for two accounts and a plain trail for the third, with CloudTrail-Digest files beside them) and
`<out>/ground_truth.json`. Work is split into 7-day chunks, each with its own seed, so the files are
byte-identical for the same (seed, end, target_events) whatever the number of worker processes.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import multiprocessing
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np
import orjson

from demo import catalog
from demo import records as R
from demo.model import Estate
from demo.traffic import (
    BOTO_UA,
    CLI_UA,
    DAY,
    HOUR_CUM,
    TOKEN_UA,
    USER_AGENTS,
    Plan,
    make_plan,
    pick,
    version_weights,
)
from demo.truth import ground_truth

CHUNK_DAYS = 7
BUCKET = "acme-cloudtrail-logs"
ORG_ACCOUNTS = tuple(catalog.ACCOUNTS[:2])  # in the organization trail; the third account has its own trail
_PLAN: Plan | None = None


def write_trails(estate: Estate, out: Path, target_events: int = 1_000_000, workers: int = 2) -> dict:
    """Write about `target_events` CloudTrail events under `out/trails`; return (and write) the ground truth.

    `out/trails` and `out/ground_truth.json` are replaced if they exist.
    """
    out = Path(out)
    root = out / "trails"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    plan = make_plan(estate, target_events)
    tasks = [(c, c * CHUNK_DAYS, min(plan.days, (c + 1) * CHUNK_DAYS), str(root))
             for c in range(math.ceil(plan.days / CHUNK_DAYS))]
    if workers <= 1:
        _init(plan)
        results = [_chunk(t) for t in tasks]
    else:
        with multiprocessing.get_context().Pool(workers, initializer=_init, initargs=(plan,)) as pool:
            results = pool.map(_chunk, tasks, chunksize=1)
    truth = ground_truth(estate, plan, results)
    (out / "ground_truth.json").write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2))
    return truth


def _init(plan: Plan) -> None:
    global _PLAN
    _PLAN = plan


def _chunk(task: tuple[int, int, int, str]) -> dict:
    ci, d0, d1, root = task
    assert _PLAN is not None
    gen = _Chunk(_PLAN, ci, d0, d1)
    for day in range(d0, d1):
        gen.day(day)
    gen.injections()
    gen.publishes()
    return gen.write(Path(root))


class _Chunk:
    """Generates and writes one chunk of days; keeps exact counters for the ground truth."""

    def __init__(self, plan: Plan, ci: int, d0: int, d1: int):
        self.plan, self.ci = plan, ci
        self.t0 = plan.start + d0 * DAY
        self.t1 = min(plan.end, plan.start + d1 * DAY)
        self.rng = np.random.default_rng([plan.seed, plan.target, ci])
        self._u: list[float] = []
        self._hex = ""
        self.records: list[tuple[int, int, tuple[str, str], dict]] = []
        self.idents: dict[tuple[int, int], dict] = {}
        self.vcache: dict[tuple[int, int], tuple | None] = {}
        self.scache: dict[tuple[int, int], tuple | None] = {}
        self.tls: dict[str, dict] = {}
        self.s: dict = {"events": 0, "downloads": 0, "by_day": Counter(), "dl": {}, "billing": Counter(),
                        "billing_repo": Counter(), "served": Counter(), "spikes": Counter(), "bursts": Counter(), "files": 0, "digests": 0, "dups": 0,
                        "non_ca": 0, "records": 0, "api": 0, "publishes": 0}

    # random sources: numpy draws in blocks, consumed one at a time
    def u(self) -> float:
        if not self._u:
            self._u = self.rng.random(65536).tolist()
        return self._u.pop()

    def uuid(self) -> str:
        if len(self._hex) < 32:
            self._hex = self.rng.bytes(16 * 8192).hex()
        h, self._hex = self._hex[:32], self._hex[32:]
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"

    def ident(self, pj: int, ts: int, api: bool = False) -> dict:
        day = ts - (ts - self.plan.start) % DAY
        key = (-1 - pj if api else pj, day)
        got = self.idents.get(key)
        if got is None:
            p = (self.plan.api_principals if api else self.plan.principals)[pj]
            got = self.idents[key] = R.user_identity(p, day)
        return got

    def host(self, s, api: bool) -> dict:
        key = f"codeartifact.{s.region}.amazonaws.com" if api else \
            f"{s.domain}-{s.owner}.d.codeartifact.{s.region}.amazonaws.com"
        return self.tls.get(key) or self.tls.setdefault(key, R.tls(key))

    def clip(self, ts: int) -> int:
        return min(max(ts, self.plan.start), self.plan.end - 1)

    def emit(self, ts: int, rec: dict, caller: str, owner: str, region: str, *, ca: bool = True,
             error: bool = False) -> None:
        """Queue one unique event for its recipients' trails and count it."""
        seq = len(self.records)
        self.records.append((ts, seq, (caller, region), rec))
        if owner != caller:
            self.records.append((ts, seq + 1, (owner, region), dict(rec, recipientAccountId=owner)))
            self.s["dups"] += 1
        if ca:
            self.s["events"] += 1
            if not error:
                self.s["billing"][(_date(ts), owner, region)] += 1
                params = rec.get("requestParameters") or {}
                self.s["billing_repo"][(_date(ts), owner, region, params.get("domainName") or params.get("domain"),
                                        params.get("repositoryName") or params.get("repository"))] += 1

    def ca(self, ts: int, pj: int, s, ip: str, ua: str, name: str, params: dict, extra: dict | None,
           read_only: bool, error: tuple[str, str] | None = None, api: bool = False) -> None:
        ts = self.clip(ts)
        p = (self.plan.api_principals if api else self.plan.principals)[pj]
        host = self.host(s, extra is None)
        rec = R.codeartifact("1.08" if self.u() < 0.1 else "1.09", self.ident(pj, ts, api), R.iso(ts), s.region,
                             ip, ua, name, params, extra, self.uuid(), self.uuid(), read_only, p.account, host,
                             error)
        self.emit(ts, rec, p.account, s.owner, s.region, error=error is not None)

    def versions(self, si: int, ts: int) -> tuple | None:
        day = (ts - self.plan.start) // DAY
        key = (si, day)
        if key not in self.vcache:
            self.vcache[key] = version_weights(self.plan.streams[si], self.plan.start + day * DAY)
        return self.vcache[key]

    def install(self, si: int, ts: int, pj: int, ua: str, ip: str, human: bool) -> int:
        """Metadata request plus asset fetches for one package install; returns the downloads made."""
        vw = self.versions(si, ts)
        if vw is None:
            return 0
        s = self.plan.streams[si]
        vi = vw[0][pick(vw[1], self.u())]
        ver = s.versions[vi]
        self.ca(ts, pj, s, ip, ua, "ReadFromRepository", R.read_params(s, None),
                {"httpMethod": "GET", "requestUri": R.request_uri(s)}, True)
        names = s.assets[vi]
        if s.fmt == "npm":
            fetch = names[:1]
        elif s.fmt == "pypi":
            wheels = [a for a in names if a.endswith(".whl")]
            sdist = [a for a in names if a.endswith(".tar.gz")]
            fetch = [sdist[0]] if sdist and (self.u() < 0.05 or not wheels) else [wheels[int(self.u() * len(wheels))]]
        else:
            fetch = [a for a in names if a.endswith(".pom")] + [a for a in names if a.endswith(".jar")
                                                                 and not a.endswith("-sources.jar")]
            fetch += [a for a in names if a.endswith("-sources.jar") and self.u() < (0.4 if human else 0.05)]
        params = R.read_params(s, ver)
        for a in fetch:
            ts += int(self.u() * 2)
            self.ca(ts, pj, s, ip, ua, "ReadFromRepository", params,
                    {"httpMethod": "GET", "requestUri": R.request_uri(s, ver, a)}, True)
            t = self.clip(ts)
            self.s["served"][(_date(t), s.owner, s.region, s.domain, s.repo, ip)] += s.sizes[vi].get(a, 0)
            self.s["downloads"] += 1
            self.s["by_day"][_date(t)] += 1
            got = self.s["dl"].get((si, vi))
            self.s["dl"][(si, vi)] = [1, t] if got is None else [got[0] + 1, max(got[1], t)]
        return len(fetch)

    def ua(self, pj: int, fmt: str) -> str:
        p = self.plan.principals[pj]
        pool = USER_AGENTS[(fmt, p.ci)]
        r = self.u()
        return pool[(pj + (0 if r < 0.7 else 1 if r < 0.9 else 2)) % len(pool)]

    def day(self, day: int) -> None:
        plan = self.plan
        t_day = plan.start + day * DAY
        budget = plan.day_records[day]
        gw = [sum(plan.streams[i].weight for i in g.streams if self.versions(i, t_day)) for g in plan.groups]
        gcum = list(np.cumsum(gw))
        for _ in range(int(self.rng.poisson(budget * plan.jobs_per_record)) if gcum[-1] > 0 else 0):
            gi = pick(gcum, self.u())
            g = plan.groups[gi]
            pj = g.principals[pick(g.pcum, self.u())]
            p = plan.principals[pj]
            t = t_day + 3600 * pick(HOUR_CUM, self.u()) + int(3600 * self.u())
            ua, ip = self.ua(pj, g.fmt), p.ips[int(self.u() * len(p.ips))]
            s0 = plan.streams[g.streams[0]]
            for _ in range(1 + int(self.u() * 3) if p.ci else 1):
                self.ca(t - int(30 * self.u()), pj, s0, ip, TOKEN_UA[p.ci], "GetAuthorizationToken",
                        {"domainName": s0.domain, "domainOwner": s0.owner,
                         "durationSeconds": 3600 if p.ci else 43200}, None, False)
            sc = self.scache.get((gi, day), ())
            if sc == ():
                act = [i for i in g.streams if self.versions(i, t_day)]
                sc = self.scache[(gi, day)] = (act, list(np.cumsum([plan.streams[i].weight for i in act])))
            installs = min(60, 1 + int(-math.log(1 - self.u()) * 6.0))
            for _ in range(installs):
                t += int(-math.log(1 - self.u()) * 1.5)
                self.install(sc[0][pick(sc[1], self.u())], t, pj, ua, ip, not p.ci)
        self.api_calls(t_day, budget)
        self.other_services(t_day, budget)

    def api_calls(self, t_day: int, budget: float) -> None:
        plan = self.plan
        for _ in range(int(self.rng.poisson(budget * 0.012))):
            collector = self.u() < 0.8
            pj = 0 if collector else 1
            hour = 2 + self.u() if collector else 8 + 9 * self.u()
            ts = t_day + int(3600 * hour)
            si = int(self.u() * len(plan.streams))
            s = plan.streams[si]
            seen = [i for i, t in enumerate(s.avail) if t <= ts]
            if not seen:
                continue
            r = self.u()
            name = "ListPackages" if r < 0.25 else "ListPackageVersions" if r < 0.6 else "DescribePackageVersion"
            ver = s.versions[seen[int(self.u() * len(seen))]]
            ip = plan.api_principals[pj].ips[0]
            self.ca(ts, pj, s, ip, BOTO_UA if collector else CLI_UA, name, R.api_params(s, name, ver), None,
                    True, api=True)
            self.s["api"] += 1

    def publishes(self) -> None:
        plan = self.plan
        for g in plan.groups:
            publisher = next((j for j in g.principals if plan.principals[j].ci
                              and plan.principals[j].account == plan.owners[g.domain]), g.principals[0])
            for si in g.streams:
                s = plan.streams[si]
                if not s.publisher:
                    continue
                for ver, ts in zip(s.versions, s.avail, strict=True):
                    if self.t0 <= ts < self.t1:
                        p = plan.principals[publisher]
                        self.ca(ts, publisher, s, p.ips[0], self.ua(publisher, s.fmt), "PublishPackageVersion",
                                R.api_params(s, "PublishPackageVersion", ver), None, False)
                        self.s["publishes"] += 1

    def other_services(self, t_day: int, budget: float) -> None:
        plan = self.plan
        for _ in range(int(self.rng.poisson(budget * 0.03))):
            pj = int(self.u() * len(plan.principals))
            p = plan.principals[pj]
            region = plan.trails[int(self.u() * len(plan.trails))][1]
            ts = self.clip(t_day + 3600 * pick(HOUR_CUM, self.u()) + int(3600 * self.u()))
            r = self.u()
            kind = 0 if r < 0.3 else 1 if r < 0.65 else 2 if r < 0.9 else 3
            token = self.uuid().replace("-", "")
            rec = R.other_service(kind, p, self.ident(pj, ts), R.iso(ts), region, p.ips[0], self.uuid(),
                                  self.uuid(), token)
            self.emit(ts, rec, p.account, p.account, region, ca=False)

    def injections(self) -> None:
        plan = self.plan
        for k, inj in enumerate(plan.spikes):
            g = plan.groups[inj.group]
            for ts in inj.times:
                if not self.t0 <= ts < self.t1:
                    continue
                if self.u() < 0.9:
                    pj, ua, ip = inj.principal, inj.user_agent, inj.source_ip
                else:
                    pj = g.principals[pick(g.pcum, self.u())]
                    ua, ip = self.ua(pj, g.fmt), plan.principals[pj].ips[0]
                self.s["spikes"][k] += self.install(inj.stream, ts, pj, ua, ip, False)
        for k, inj in enumerate(plan.bursts):
            g = plan.groups[inj.group]
            p = plan.principals[inj.principal]
            for ts in inj.times:
                if not self.t0 <= ts < self.t1:
                    continue
                s = plan.streams[g.streams[int(self.u() * len(g.streams))]]
                if self.u() < 0.2:
                    res = f"arn:aws:codeartifact:{s.region}:{s.owner}:domain/{s.domain}"
                    self.ca(ts, inj.principal, s, inj.source_ip, TOKEN_UA[p.ci], "GetAuthorizationToken",
                            {"domainName": s.domain, "domainOwner": s.owner, "durationSeconds": 3600}, None,
                            False, ("AccessDeniedException", R.denied(p, "GetAuthorizationToken", res)))
                else:
                    res = f"arn:aws:codeartifact:{s.region}:{s.owner}:repository/{s.domain}/{s.repo}"
                    vi = len(s.versions) - 1
                    asset = self.u() < 0.6
                    params = R.read_params(s, s.versions[vi] if asset else None)
                    uri = R.request_uri(s, s.versions[vi], s.assets[vi][0]) if asset else R.request_uri(s)
                    self.ca(ts, inj.principal, s, inj.source_ip, inj.user_agent, "ReadFromRepository", params,
                            {"httpMethod": "GET", "requestUri": uri}, True,
                            ("AccessDenied", R.denied(p, "ReadFromRepository", res)))
                self.s["bursts"][k] += 1

    def write(self, root: Path) -> dict:
        by_trail: dict[tuple[str, str], list] = {}
        for item in self.records:
            by_trail.setdefault(item[2], []).append(item)
        made: set[Path] = set()
        for trail in sorted(by_trail):
            items = sorted(by_trail[trail], key=lambda x: (x[0], x[1]))
            files: list[list] = []
            while items:
                n = 500 + int(self.u() * 1501)
                first = items[0][0]
                k = next((i for i, it in enumerate(items[:n]) if it[0] - first >= DAY), min(n, len(items)))
                files.append(items[:k])
                items = items[k:]
            for i in range(len(files) - 1):
                again = [it for it in files[i] if self.u() < 0.005]
                files[i + 1].extend(again)
                self.s["dups"] += len(again)
            listed = []
            for f in files:
                for j in range(len(f) - 1):
                    if self.u() < 0.1:
                        f[j], f[j + 1] = f[j + 1], f[j]
                lo, hi = min(it[0] for it in f), max(it[0] for it in f)
                delivered = hi + 300 + int(600 * self.u())
                suffix = "".join(R.ALNUM[int(self.u() * 62)] for _ in range(16))
                key = _key(self.plan, trail, "CloudTrail", delivered,
                           f"CloudTrail_{trail[1]}_{time.strftime('%Y%m%dT%H%MZ', time.gmtime(delivered))}_{suffix}")
                data = gzip.compress(orjson.dumps({"Records": [it[3] for it in f]}), compresslevel=1, mtime=0)
                _put(root, key, data, made)
                listed.append((key, hashlib.sha256(data).hexdigest(), lo, hi, delivered))
                self.s["files"] += 1
                self.s["records"] += len(f)
                self.s["non_ca"] += sum(1 for it in f if it[3]["eventSource"] != R.CA)
            delivered = max(x[4] for x in listed) + 3600
            name = "acme-org-trail" if trail[0] in ORG_ACCOUNTS else "management-events"
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(delivered))
            key = _key(self.plan, trail, "CloudTrail-Digest", delivered,
                       f"CloudTrail-Digest_{trail[1]}_{name}_{trail[1]}_{stamp}")
            doc = R.digest(trail[0], trail[1], BUCKET, key, [x[:4] for x in listed], self.t0, self.t1)
            _put(root, key, gzip.compress(orjson.dumps(doc), compresslevel=1, mtime=0), made)
            self.s["digests"] += 1
        return self.s

def _key(plan: Plan, trail: tuple[str, str], kind: str, ts: int, name: str) -> str:
    acct, region = trail
    org = f"{catalog.ORG_ID}/" if acct in ORG_ACCOUNTS else ""
    return f"AWSLogs/{org}{acct}/{kind}/{region}/{time.strftime('%Y/%m/%d', time.gmtime(ts))}/{acct}_{name}.json.gz"


def _put(root: Path, key: str, data: bytes, made: set[Path]) -> None:
    path = root / key
    if path.parent not in made:
        path.parent.mkdir(parents=True, exist_ok=True)
        made.add(path.parent)
    path.write_bytes(data)


def _date(ts: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))
