"""The one error family of caa, and `first_line`, the one way to show a foreign exception in one line.

Every error a user can cause (configuration, AWS access, bad data, a busy or unwritable store) is a
CaaError whose str() is a single line: what failed, where, and the fix. The CLI prints that line and
exits non-zero; tracebacks only appear with --debug.

Reads and writes nothing.
"""

from __future__ import annotations


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


class OutputError(CaaError):
    """A report, export or e-mail attachment file could not be written (a full disk, no permission)."""

    kind = "output error"


class StoreBusyError(StoreError):
    """Another caa process holds the store's write lock."""


class CredentialsError(AwsAccessError):
    """Credentials are missing or expired: every further AWS call would fail, so a run stops."""


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """The first non-blank line of a foreign exception's message (DuckDB, botocore, pyarrow and kaleido
    messages run to many lines), cut to `limit` characters; its type name when it has no message."""
    line = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
    return line[:limit] if limit else line
