"""Version ordering and dependency ranges per package format, for the cleanup policy.

Pure functions: no I/O, no clock. Reads and writes nothing.

Ordering (`sort_key`): npm (and cargo, swift, generic) by SemVer 2.0 precedence, so 1.0.0-rc.1 < 1.0.0
and prerelease identifiers compare numerically or lexically; pypi by PEP 440 (`packaging.version`);
maven by a compact form of Maven's ComparableVersion: numbers first (1.0 == 1.0.0), then the qualifier,
alpha < beta < milestone < rc (= cr) < snapshot < release (= ga = final) < sp, and an unknown qualifier
such as -jre or -android is a release flavour, not a prerelease (33.0.0-jre > 32.1.3-jre). nuget, ruby
and others: dotted numbers, any suffix being a prerelease. A version that does not parse gets None;
`rank_versions` then orders its whole package by publication time, because a mixed order is undefined.

Ranges (`satisfies`): npm/cargo ranges (||, hyphen ranges, ^, ~, >=, >, <=, <, =, exact, x-ranges, with
npm's rule that a prerelease only matches a comparator on the same major.minor.patch with a
prerelease); PEP 440 specifiers for pypi (`packaging.specifiers`); Maven/NuGet interval notation
([1.0,2.0), [1.5,), (,2.0], [1.2]), a bare Maven version being that exact version and a bare NuGet
version a minimum. A requirement or version that cannot be parsed answers True: when unsure, a version
is depended on (and so kept).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

SEMVER_FORMATS = {"npm", "cargo", "swift", "generic"}
_SEMVER_RE = re.compile(r"^\s*[v=]?\s*(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?\s*$")
_DOTTED_RE = re.compile(r"^\s*v?(\d+(?:\.\d+)*)(?:[-.+_]?(.*))?$")
_MAVEN_RE = re.compile(r"^\s*(\d+(?:\.\d+)*)(.*)$")
_MAVEN_QUALIFIERS = {"alpha": 0, "a": 0, "beta": 1, "b": 1, "milestone": 2, "m": 2, "rc": 3, "cr": 3,
                     "snapshot": 4, "": 5, "ga": 5, "final": 5, "release": 5, "sp": 6}
_RELEASE = 5


class Unparsable(ValueError):
    """A version or range this module cannot read."""


def _ident(part: str) -> tuple[int, int | str]:
    return (0, int(part)) if part.isdigit() else (1, part)


def _pre_key(pre: str | None) -> tuple:
    """SemVer prerelease precedence: a release (1,) sorts after any prerelease (0, ids...)."""
    return (1,) if not pre else (0, *(_ident(p) for p in pre.split(".")))


def _semver_key(v: str) -> tuple | None:
    m = _SEMVER_RE.match(v)
    if not m:
        return None
    return (int(m.group(1)), int(m.group(2)), int(m.group(3)), _pre_key(m.group(4)))


def _pep440_key(v: str) -> Version | None:
    try:
        return Version(v)
    except InvalidVersion:
        return None


def _maven_key(v: str) -> tuple | None:
    m = _MAVEN_RE.match(v)
    if not m:
        return None
    nums = [int(x) for x in m.group(1).split(".")]
    while len(nums) > 1 and nums[-1] == 0:  # 1.0 == 1.0.0
        nums.pop()
    rest = m.group(2).lstrip(".-_").lower()
    q = re.match(r"^([a-z]*)[-.]?(\d*)(.*)$", rest)
    word, number, tail = (q.group(1), q.group(2), q.group(3)) if q else ("", "", rest)
    if word == "" and number:  # 1.0-1: a build number after the release
        return (tuple(nums), _RELEASE, "", int(number), _tail_key(tail))
    rank = _MAVEN_QUALIFIERS.get(word, _RELEASE)  # unknown words (jre, android) are release flavours
    name = "" if word in _MAVEN_QUALIFIERS else word
    return (tuple(nums), rank, name, int(number) if number else 0, _tail_key(tail))


def _tail_key(tail: str) -> tuple:
    tail = tail.lstrip(".-_")
    return (0,) if "snapshot" in tail else (1, tail)


def _dotted_key(v: str) -> tuple | None:
    m = _DOTTED_RE.match(v)
    if not m:
        return None
    nums = [int(x) for x in m.group(1).split(".")]
    while len(nums) > 1 and nums[-1] == 0:
        nums.pop()
    return (tuple(nums), _pre_key(m.group(2) or None))


def sort_key(fmt: str, version: str) -> Any | None:
    """A key that orders versions of one format oldest to newest, or None if `version` does not parse."""
    if fmt in SEMVER_FORMATS:
        return _semver_key(version)
    if fmt == "pypi":
        return _pep440_key(version)
    if fmt == "maven":
        return _maven_key(version)
    return _dotted_key(version)


_PARSE = object()  # major / is_prerelease / rank_versions: parse the version(s) (no sort_key given)


def major(fmt: str, version: str, key: Any = _PARSE) -> str | None:
    """The major line a version belongs to ("2", or "1!3" for a PEP 440 epoch), None when unknown. `key`:
    its sort_key when the caller has it already."""
    key = sort_key(fmt, version) if key is _PARSE else key
    if isinstance(key, Version):
        return f"{key.epoch}!{key.release[0]}" if key.epoch else str(key.release[0])
    if key is None:
        m = re.match(r"^\s*v?(\d+)", version)
        return m.group(1) if m else None
    first = key[0]
    return str(first[0] if isinstance(first, tuple) else first)


def is_prerelease(fmt: str, version: str, key: Any = _PARSE) -> bool:
    key = sort_key(fmt, version) if key is _PARSE else key
    if isinstance(key, Version):
        return key.is_prerelease
    if key is None:
        return False
    if fmt == "maven":
        return key[1] < _RELEASE
    return key[-1] != (1,)


def rank_versions(fmt: str, versions: Sequence[str], published_at: Sequence[datetime | None],
                  keys: Sequence[Any] | None = None) -> list[int]:
    """Rank of each version within its package, 1 = newest. Equal keys fall back to publication time.
    `keys`: their sort_key values when the caller has them already.

    When any version does not parse, the whole package is ranked by publication time (then the string).
    """
    keys = [sort_key(fmt, v) for v in versions] if keys is None else keys

    def when(i: int) -> tuple:
        t = published_at[i]
        return (0,) if t is None or t != t else (1, t.timestamp())  # unknown times sort oldest

    idx = range(len(versions))
    if any(k is None for k in keys):
        order = sorted(idx, key=lambda i: (when(i), versions[i]), reverse=True)
    else:
        order = sorted(idx, key=lambda i: (keys[i], when(i), versions[i]), reverse=True)
    ranks = [0] * len(versions)
    for r, i in enumerate(order, start=1):
        ranks[i] = r
    return ranks


# ---- ranges -------------------------------------------------------------------------------------

_PARTIAL_RE = re.compile(
    r"^[v=]?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
_COMPARATOR_RE = re.compile(r"^(\^|~>|~|>=|<=|>|<|=)?\s*(.*)$")


def _partial(text: str) -> tuple[list[int | None], str | None]:
    if text in ("", "*", "x", "X"):
        return [None, None, None], None
    m = _PARTIAL_RE.match(text)
    if not m:
        raise Unparsable(text)
    parts = [None if p is None or p in "xX*" else int(p) for p in m.group(1, 2, 3)]
    for i in range(1, 3):  # 1.x.3 -> 1.x.x
        if parts[i - 1] is None:
            parts[i] = None
    return parts, m.group(4)


def _k(a: int, b: int, c: int, pre: str | None = None) -> tuple:
    return (a, b, c, _pre_key(pre))


def _bump(parts: list[int | None]) -> tuple:
    """The lowest version above every version matching the partial `parts` (as X.Y.Z-0)."""
    a, b, _ = parts
    if a is None:
        raise Unparsable("*")
    return _k(a + 1, 0, 0, "0") if b is None else _k(a, b + 1, 0, "0")


def _comparators(op: str, text: str) -> list[tuple[str, tuple]]:
    """One npm comparator as primitive (op, key) bounds."""
    parts, pre = _partial(text)
    a, b, c = parts
    lo = _k(a or 0, b or 0, c or 0, pre)
    full = c is not None
    if op in ("", "="):
        return [("=", lo)] if full else ([] if a is None else [(">=", lo), ("<", _bump(parts))])
    if op == "^":
        if a is None:
            return []
        if a > 0 or b is None:
            hi = _k(a + 1, 0, 0, "0")
        elif b > 0 or c is None:
            hi = _k(0, b + 1, 0, "0")
        else:
            hi = _k(0, 0, c + 1, "0")
        return [(">=", lo), ("<", hi)]
    if op in ("~", "~>"):
        if a is None:
            return []
        hi = _k(a + 1, 0, 0, "0") if b is None else _k(a, b + 1, 0, "0")
        return [(">=", lo), ("<", hi)]
    if op == ">=":
        return [(">=", lo)]
    if op == "<":
        return [("<", lo if full else _k(a or 0, b or 0, c or 0, "0"))]
    if op == ">":
        return [(">", lo)] if full else [(">=", _bump(parts))]
    if op == "<=":
        return [("<=", lo)] if full else [("<", _bump(parts))]
    raise Unparsable(op)


def _npm_sets(requirement: str) -> list[tuple[list[tuple[str, tuple]], set[tuple]]]:
    """Parse an npm range into OR-ed sets of AND-ed bounds, each with its explicit prerelease tuples."""
    sets = []
    for alt in requirement.split("||"):
        alt = re.sub(r"(\^|~>|~|>=|<=|>|<|=)\s+", r"\1", alt.strip())
        bounds: list[tuple[str, tuple]] = []
        pres: set[tuple] = set()
        hyphen = re.match(r"^(\S+)\s+-\s+(\S+)$", alt)
        tokens = [(">=", hyphen.group(1)), ("<=", hyphen.group(2))] if hyphen else [
            _COMPARATOR_RE.match(t).group(1, 2) for t in alt.split()]
        for op, text in tokens:
            op = op or ""
            bounds += _comparators(op, text)
            parts, pre = _partial(text)
            if pre and parts[2] is not None:
                pres.add(tuple(parts))
        sets.append((bounds, pres))
    return sets


def _test(key: tuple, op: str, bound: tuple) -> bool:
    return {"=": key == bound, ">=": key >= bound, ">": key > bound, "<": key < bound, "<=": key <= bound}[op]


def _npm_satisfies(version: str, requirement: str) -> bool:
    key = _semver_key(version)
    if key is None:
        raise Unparsable(version)
    for bounds, pres in _npm_sets(requirement):
        if all(_test(key, op, b) for op, b in bounds):
            if key[3] == (1,) or tuple(key[:3]) in pres:
                return True
    return False


def _pypi_satisfies(version: str, requirement: str) -> bool:
    text = requirement.split(";")[0].strip().strip("()").strip()
    try:
        spec = SpecifierSet(text)
        # like pip: a prerelease only satisfies a specifier set that itself names a prerelease
        return spec.contains(Version(version), prereleases=bool(spec.prereleases))
    except (InvalidSpecifier, InvalidVersion) as e:
        raise Unparsable(requirement) from e


_INTERVAL_RE = re.compile(r"([\[(])\s*([^,\])]*?)\s*(?:(,)\s*([^\])]*?)\s*)?([\])])")


def _interval_satisfies(fmt: str, version: str, requirement: str) -> bool:
    """Maven / NuGet version ranges; a bare version is exact (Maven) or a minimum (NuGet)."""
    key = sort_key(fmt, version)
    if key is None:
        raise Unparsable(version)

    def k(text: str) -> Any:
        got = sort_key(fmt, text)
        if got is None:
            raise Unparsable(text)
        return got

    req = requirement.strip()
    if not req.startswith(("[", "(")):
        return key >= k(req) if fmt == "nuget" else key == k(req)
    spans = list(_INTERVAL_RE.finditer(req))
    if not spans or re.sub(r"[\s,]", "", _INTERVAL_RE.sub("", req)):
        raise Unparsable(requirement)
    for m in spans:
        open_, lo, comma, hi, close = m.groups()
        if comma is None:  # [1.2] exact
            if key == k(lo):
                return True
            continue
        ok_lo = not lo or (key >= k(lo) if open_ == "[" else key > k(lo))
        ok_hi = not hi or (key <= k(hi) if close == "]" else key < k(hi))
        if ok_lo and ok_hi:
            return True
    return False


@lru_cache(maxsize=65536)
def satisfies(fmt: str, version: str, requirement: str | None) -> bool:
    """Whether a dependency declared as `requirement` admits `version`; True when either cannot be read."""
    if requirement is None or not requirement.strip():
        return True
    try:
        if fmt == "cargo" and requirement.strip()[:1].isdigit():  # cargo: a bare "1.2" means ^1.2
            requirement = "^" + requirement.strip()
        if fmt in ("npm", "cargo"):
            return _npm_satisfies(version, requirement)
        if fmt == "pypi":
            return _pypi_satisfies(version, requirement)
        if fmt in ("maven", "nuget"):
            return _interval_satisfies(fmt, version, requirement)
        key, want = sort_key(fmt, version), sort_key(fmt, requirement.strip())
        if key is None or want is None:
            return True
        return key == want
    except (Unparsable, TypeError, AttributeError):
        return True
