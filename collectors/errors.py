"""The one error family of caa, and the one clock.

Every error a user can cause (configuration, AWS access, bad data, a busy or unwritable store) is a
CaaError whose str() is a single line: what failed, where, and the fix. The CLI prints that line and
exits non-zero; tracebacks only appear with --debug.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, timezone-aware UTC. The only clock the code reads."""
    return datetime.now(UTC)


class CaaError(Exception):
    """A failure the user can fix. Renders as `what (where): fix: ...` on one line."""

    kind = "error"

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None):
        super().__init__(what)
        self.what = what
        self.where = where
        self.fix = fix

    def __str__(self) -> str:
        text = " ".join(self.what.split())
        if self.where:
            text += f" ({self.where})"
        if self.fix:
            text += f": fix: {self.fix}"
        return text


class ConfigError(CaaError):
    kind = "config error"


class AwsAccessError(CaaError):
    kind = "aws error"


class DataError(CaaError):
    kind = "data error"


class StoreError(CaaError):
    kind = "store error"


class StoreBusyError(StoreError):
    """Another caa process holds the store's write lock."""


class CredentialsError(AwsAccessError):
    """Credentials are missing or expired: every further AWS call would fail, so a run stops."""
