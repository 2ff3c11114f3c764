"""The ground truth of a demo trail run: exact counts merged from the chunk workers, and daily billing.

Reads the per-chunk counters returned by `demo.trails` and the in-memory `Estate`; writes
nothing (the trail writer saves the result as `ground_truth.json`). Storage byte-hours follow
`Domain.asset_size_bytes` exactly: each sha256 once per domain, Disposed versions excluded.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from datetime import UTC, datetime

import numpy as np

from demo import records as R
from demo.model import Estate
from demo.traffic import DAY, Plan


def _date(ts: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def ground_truth(estate: Estate, plan: Plan, results: list[dict]) -> dict:
    total: dict = {"events": 0, "downloads": 0, "by_day": Counter(), "dl": {}, "billing": Counter(),
                   "billing_repo": Counter(), "served": Counter(), "spikes": Counter(), "bursts": Counter()}
    for key in ("files", "digests", "dups", "non_ca", "records", "api", "publishes"):
        total[key] = 0
    for r in results:
        for k, v in r.items():
            if k == "dl":
                for key, (n, last) in v.items():
                    got = total["dl"].get(key)
                    total["dl"][key] = [n, last] if got is None else [got[0] + n, max(got[1], last)]
            else:
                total[k] += v
    by_stream: Counter = Counter()
    never = stale = 0
    for si, s in enumerate(plan.streams):
        for vi in range(len(s.versions)):
            got = total["dl"].get((si, vi))
            if got is None:
                never += 1
            else:
                by_stream[si] += got[0]
                stale += got[1] < plan.end - 180 * DAY
    days = [_date(plan.start + d * DAY) for d in range(plan.days)]
    iso = R.iso
    return {
        "seed": estate.seed, "start": iso(plan.start), "end": iso(plan.end), "target_events": plan.target,
        "events_unique": total["events"], "downloads_unique": total["downloads"],
        "downloads_by_day": {d: total["by_day"].get(d, 0) for d in days},
        "downloads_by_package": sorted(
            ({"domain": s.domain, "repository": s.repo, "format": s.fmt, "namespace": s.ns, "package": s.name,
              "downloads": by_stream[si]} for si, s in enumerate(plan.streams)),
            key=lambda x: (-x["downloads"], x["domain"], x["repository"], x["format"], x["namespace"] or "",
                           x["package"])),
        "download_spikes": [
            {"domain": plan.streams[x.stream].domain, "repository": plan.streams[x.stream].repo,
             "format": plan.streams[x.stream].fmt, "namespace": plan.streams[x.stream].ns,
             "package": plan.streams[x.stream].name, "start": iso(x.start), "end": iso(x.end),
             "excess_downloads": total["spikes"][k], "principal_arn": plan.principals[x.principal].arn,
             "user_agent": x.user_agent, "source_ip": x.source_ip} for k, x in enumerate(plan.spikes)],
        "auth_bursts": [
            {"principal_arn": plan.principals[x.principal].arn, "start": iso(x.start), "end": iso(x.end),
             "events": total["bursts"][k], "domain": plan.groups[x.group].domain,
             "repository": plan.groups[x.group].repo} for k, x in enumerate(plan.bursts)],
        "files": total["files"], "digest_files": total["digests"], "duplicate_deliveries": total["dups"],
        "non_codeartifact_records": total["non_ca"], "records_total": total["records"],
        "never_downloaded_versions": never, "stale_downloaded_versions_180d": stale,
        "api_calls": total["api"], "publishes": total["publishes"],
        "billing": _billing(estate, days, total["billing"]),
        # what the demo's CUR 2.0 export bills (demo/cur.py): storage per domain, requests per repository
        # (repository None: domain-level calls), bytes served per repository and client IP
        "billing_domains": _domain_storage(estate, days),
        "billing_repositories": [
            {"date": d, "account_id": o, "region": r, "domain": dom, "repository": repo, "requests": n}
            for (d, o, r, dom, repo), n in sorted(total["billing_repo"].items(), key=lambda kv: tuple(
                "" if x is None else x for x in kv[0]))],
        "served_bytes": [
            {"date": d, "account_id": o, "region": r, "domain": dom, "repository": repo, "source_ip": ip, "bytes": b}
            for (d, o, r, dom, repo, ip), b in sorted(total["served"].items())],
    }


def _curves(estate: Estate) -> dict[tuple[str, str, str], tuple[list[int], list[int]]]:
    """(owner, region, domain) -> (times, cumulative bytes): each sha256 once, from its first publish;
    Disposed versions excluded."""
    out = {}
    for d in estate.domains:
        first: dict[str, tuple[int, int]] = {}
        for repo in d.repositories:
            for pkg in repo.packages:
                for v in pkg.versions:
                    if v.status == "Disposed":
                        continue
                    t = int(v.published_at.timestamp())
                    for a in v.assets:
                        if a.sha256 not in first or t < first[a.sha256][0]:
                            first[a.sha256] = (t, a.size_bytes)
        pts = sorted(first.values())
        out[(d.owner, d.region, d.name)] = ([t for t, _ in pts], list(np.cumsum([s for _, s in pts]).tolist()))
    return out


def _size_on(curve: tuple[list[int], list[int]], day: str) -> int:
    as_of = int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()) + DAY - 1
    k = bisect.bisect_right(curve[0], as_of)
    return curve[1][k - 1] if k else 0


def _domain_storage(estate: Estate, days: list[str]) -> list[dict]:
    """Storage byte-hours per day and domain."""
    curves = _curves(estate)
    return [{"date": day, "account_id": o, "region": r, "domain": dom, "storage_byte_hours": _size_on(c, day) * 24}
            for day in days for (o, r, dom), c in sorted(curves.items())]


def _billing(estate: Estate, days: list[str], requests: Counter) -> list[dict]:
    """Requests and storage byte-hours per day, account and region, as Cost Explorer will be seeded."""
    curves = _curves(estate)
    pairs = sorted({(o, r) for o, r, _ in curves})
    out = []
    for day in days:
        for owner, region in pairs:
            size = sum(_size_on(c, day) for (o, r, _), c in curves.items() if (o, r) == (owner, region))
            out.append({"date": day, "account_id": owner, "region": region,
                        "requests": requests.get((day, owner, region), 0), "storage_byte_hours": size * 24})
    return out
