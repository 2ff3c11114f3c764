"""The one error family of caa; `first_line`, the one way to show a foreign exception in one line; and
`printable`, the one way to put text from the data (package names, S3 keys) on a terminal or in a log, and
`echo`, which prints a line through it.

Every error a user can cause (configuration, AWS access, bad data, a busy or unwritable store) is a
CaaError whose str() is a single line: what failed, where, and the fix. The CLI prints that line and
exits non-zero; tracebacks only appear with --debug.

Reads nothing; writes only the lines `echo` prints (stdout or stderr).
"""

from __future__ import annotations

import errno
import os
import re
import sys
from typing import TextIO


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


# The fix for a file caa cannot write (a report, the e-mail outbox), by errno; else the disk's
_OUTPUT_FIX = {
    errno.EISDIR: "--out names a folder: give a file path in it, e.g. --out FOLDER/cleanup.csv",
    errno.ENOTDIR: "a part of the --out path is a file, not a folder: pass --out a path under a folder",
    errno.EEXIST: "a part of the --out path is a file, not a folder: pass --out a path under a folder",
    errno.ENOENT: "pass --out a path in a folder you can write to",
    errno.EACCES: "pass --out a path you can write to",
    errno.EPERM: "pass --out a path you can write to",
    errno.EROFS: "the disk is read-only: pass --out a path on a disk you can write to",
}


def output_error(what: str, exc: OSError) -> OutputError:
    """The one line for a file that could not be written (`what`: "the report /x/r.csv"), with the fix for its
    cause. pyarrow's errors carry no errno, only "... Detail: [errno 28] No space left on device"."""
    code = re.search(r"\[errno (\d+)\]", str(exc), re.IGNORECASE)
    number = int(code.group(1)) if code else exc.errno
    why = os.strerror(number) if number else first_line(exc)
    return OutputError(f"cannot write {what}: {why}", fix=_OUTPUT_FIX.get(
        number, "free disk space, or pass --out a path on a disk with room that you can write to"))


class StoreBusyError(StoreError):
    """Another caa process holds the store's write lock."""


class CredentialsError(AwsAccessError):
    """Credentials are missing or expired: every further AWS call would fail, so a run stops."""


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """The first non-blank line of a foreign exception's message (DuckDB, botocore, pyarrow and kaleido
    messages run to many lines), cut to `limit` characters; its type name when it has no message."""
    line = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
    return line[:limit] if limit else line


# What a terminal or a log would act on rather than show: C0 controls but the tab (ESC starts the sequences
# that recolour, retitle or hide; a newline breaks a one-line message), DEL, C1 controls (0x9b is a one-byte
# CSI) and the bidirectional marks and overrides that reorder what is shown ("Trojan Source").
_UNPRINTABLE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def printable(text: str) -> str:
    """`text` safe to print: every character a terminal or log reader would act on (ESC sequences, other
    controls, bidirectional overrides) written as its escape (\\x1b, \\u202e), so hostile names from the data
    show as what they are and a one-line message stays one line."""
    return _UNPRINTABLE.sub(_escape, text)


def echo(line: str, err: bool = False) -> None:
    """Print a line for the user (it may name files, keys and packages from the data: printed as text).
    When the reader of the output has gone (`caa collect ... | head -1`), the rest of the output is dropped
    and the work goes on: a collector does not stop half way because nobody reads its notes."""
    stream = sys.stderr if err else sys.stdout
    try:
        print(printable(line), file=stream, flush=True)
    except BrokenPipeError:
        drop_output(stream)


def drop_output(stream: TextIO) -> None:
    """Send whatever `stream` (stdout or stderr) still gets to /dev/null: its reader closed the pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no file descriptor (a test's capture): nothing more to do
        pass
