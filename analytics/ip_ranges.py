"""Where a request came from: a source IP against AWS's published IP ranges (ip-ranges.json).

Reads: the newest of the shipped data file analytics/data/aws-ip-ranges.json.gz and a refreshed copy
next to the store (`<db dir>/aws-ip-ranges.json.gz`, written by `caa refresh ip-ranges`), by their
createDate. Writes: only `refresh`, that refreshed copy (atomically: a temporary file, then a rename).

A source IP is classed against the repository's region, for the data-transfer model:
- 'same_region': an AWS address in the repository's region (no transfer-out charge);
- 'other_region': an AWS address in another region (inter-region transfer);
- 'internet': any other public address (transfer out to the internet);
- 'private': an RFC 1918 / unique-local address, i.e. a caller inside a VPC reaching CodeArtifact
  through an interface endpoint in the repository's region (billed by PrivateLink, not as transfer out);
- 'aws_internal': not an address ("AWS Internal", a service name such as codeartifact.amazonaws.com),
  a call made by AWS itself;
The most specific prefix wins. Prefixes whose region is GLOBAL (CloudFront and similar edge services)
are AWS but in no region: 'other_region'.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from core.errors import DataError

URL = "https://ip-ranges.amazonaws.com/ip-ranges.json"
SHIPPED = Path(__file__).parent / "data" / "aws-ip-ranges.json.gz"
FILE_NAME = "aws-ip-ranges.json.gz"
CLASSES = ("same_region", "other_region", "internet", "private", "aws_internal")


@dataclass(frozen=True)
class IpRanges:
    """AWS's prefixes by length: {prefix length: {network as int: region}}, per IP version."""

    create_date: str
    path: str
    v4: dict[int, dict[int, str]]
    v6: dict[int, dict[int, str]]

    def region(self, ip: str) -> str | None:
        """The region of the most specific AWS prefix holding `ip` ('GLOBAL' for edge prefixes), or None
        when `ip` is not an AWS address (or not an address at all)."""
        try:
            addr = ipaddress.ip_address(ip.strip())
        except ValueError:
            return None
        table, bits = (self.v4, 32) if addr.version == 4 else (self.v6, 128)
        n = int(addr)
        for length in sorted(table, reverse=True):
            net = (n >> (bits - length)) << (bits - length) if length else 0
            hit = table[length].get(net)
            if hit is not None:
                return hit
        return None

    def classify(self, ip: str | None, region: str | None) -> str:
        """One of CLASSES for a request from `ip` to a repository in `region`."""
        if ip is None:
            return "aws_internal"
        try:
            addr = ipaddress.ip_address(ip.strip())
        except ValueError:
            return "aws_internal"
        if addr.is_private or addr.is_loopback or addr.is_link_local:
            return "private" if not _documentation(addr) else "internet"
        where = self.region(ip)
        if where is None:
            return "internet"
        return "same_region" if where == region else "other_region"


def _documentation(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """The TEST-NET / documentation ranges, which Python counts as private but stand for public hosts."""
    return any(addr in ipaddress.ip_network(n) for n in
               ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"))


def parse(doc: dict[str, Any], path: str = "") -> IpRanges:
    """ip-ranges.json (AWS's format) -> IpRanges; DataError when it is not that file."""
    if not isinstance(doc, dict) or not isinstance(doc.get("prefixes"), list) or "createDate" not in doc:
        raise DataError("not AWS's ip-ranges.json (no createDate and prefixes)", where=path or "ip ranges",
                        fix=f"download it again from {URL} with `caa refresh ip-ranges`")
    v4: dict[int, dict[int, str]] = {}
    v6: dict[int, dict[int, str]] = {}
    for rows, key, table in ((doc["prefixes"], "ip_prefix", v4), (doc.get("ipv6_prefixes") or [], "ipv6_prefix", v6)):
        for row in rows:
            try:
                net = ipaddress.ip_network(row[key], strict=False)
            except (KeyError, ValueError, TypeError):
                continue
            region = str(row.get("region") or "GLOBAL")
            cell = table.setdefault(net.prefixlen, {})
            # a prefix listed under several services keeps a real region over GLOBAL
            if cell.get(int(net.network_address)) in (None, "GLOBAL"):
                cell[int(net.network_address)] = region
    return IpRanges(str(doc["createDate"]), path, v4, v6)


def _read(path: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise DataError(f"{path} is not JSON ({e.msg} at line {e.lineno})", where=str(path),
                        fix="run `caa refresh ip-ranges` to download it again") from None


def refreshed_path(db: Path) -> Path:
    return Path(db).resolve().parent / FILE_NAME


@cache
def _load(path: str, mtime_ns: int) -> IpRanges:
    return parse(_read(Path(path)), path)


def load(db: Path | None = None) -> IpRanges:
    """The newest ranges available: the copy next to the store when it is newer than the shipped one."""
    candidates = [SHIPPED]
    if db is not None and refreshed_path(db).is_file():
        candidates.append(refreshed_path(db))
    loaded = [_load(str(p), p.stat().st_mtime_ns) for p in candidates]
    return max(loaded, key=lambda r: r.create_date)


def refresh(db: Path, url: str = URL, timeout: float = 60) -> IpRanges:
    """Download ip-ranges.json from `url` and keep it (reduced to the fields used) next to the store."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - an https URL from settings/CLI
            raw = resp.read()
    except OSError as e:
        raise DataError(f"could not download the AWS IP ranges: {e}", where=url,
                        fix="check the network or proxy, or pass --url with a reachable copy") from None
    try:
        doc = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        raise DataError("the downloaded IP ranges are not JSON", where=url,
                        fix=f"pass --url {URL} (AWS's own file)") from None
    ranges = parse(doc, url)
    reduced = {"syncToken": doc.get("syncToken"), "createDate": doc["createDate"],
               "prefixes": [{k: p.get(k) for k in ("ip_prefix", "region", "service")} for p in doc["prefixes"]],
               "ipv6_prefixes": [{k: p.get(k) for k in ("ipv6_prefix", "region", "service")}
                                 for p in doc.get("ipv6_prefixes") or []]}
    target = refreshed_path(db)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".ip-ranges-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(gzip.compress(json.dumps(reduced, separators=(",", ":")).encode(), mtime=0))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return ranges
