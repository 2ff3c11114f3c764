"""The one clock: `utc_now()`, injectable with `pinned_clock(t)` or CAA_NOW, and UTC day helpers.

Reads: the CAA_NOW environment variable. Writes: nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time

from core.errors import ConfigError

CLOCK_ENV = "CAA_NOW"  # an ISO 8601 instant that pins the clock for this process and its children
_pinned: list[datetime] = []  # set by pinned_clock() (innermost last)


def utc_now() -> datetime:
    """The current time, timezone-aware UTC. The only clock the code reads.

    It is injectable: `pinned_clock(t)` pins it in this process, and CAA_NOW=2026-12-01T00:05Z pins it
    here and in every process started from here (the dashboard server, a CLI subprocess), so a test,
    or a person asking "what would caa say on the 1st?", runs the whole product at one instant.
    A pinned clock does not move."""
    if _pinned:
        return _pinned[-1]
    text = os.environ.get(CLOCK_ENV)
    return parse_instant(text, CLOCK_ENV) if text else datetime.now(UTC)


def parse_instant(text: str, where: str) -> datetime:
    """`text` as an aware UTC datetime ('2026-12-01T00:05Z', '2026-12-01T01:05+01:00'); a naive time is
    refused rather than guessed."""
    try:
        t = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        t = None
    if t is None or t.tzinfo is None:
        raise ConfigError(f"{text!r} is not an ISO 8601 instant with a zone", where=where,
                          fix="write it like 2026-12-01T00:05Z, or unset it to use the real clock")
    return t.astimezone(UTC)


@contextmanager
def pinned_clock(at: datetime) -> Iterator[datetime]:
    """Pin utc_now() to `at` (aware) inside the block, in this process only."""
    if at.tzinfo is None:
        raise ValueError("pinned_clock needs an aware datetime")
    _pinned.append(at.astimezone(UTC))
    try:
        yield _pinned[-1]
    finally:
        _pinned.pop()


def utc_midnight(day: date) -> datetime:
    """The instant (aware, UTC) at which UTC `day` begins."""
    return datetime.combine(day, time(0), tzinfo=UTC)
