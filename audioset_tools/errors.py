"""Errors that carry a message meant for the user, not a traceback."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path


class UserError(Exception):
    """Bad input the user can fix: printed as one message, exit code 2."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Terminated(KeyboardInterrupt):
    """A second SIGTERM: abort now. A KeyboardInterrupt, so every cleanup path of Ctrl-C runs too."""


# Exit codes of the commands (docs/troubleshooting.md lists them). 2 is UserError's.
EXIT_OK = 0
# Rate limits or sign-in walls stopped the run.
EXIT_THROTTLED = 3
# The network (or the source's host) is down.
EXIT_NETWORK = 4
# yt-dlp out of date or incomplete (see sources.youtube.ytdlp_tooling).
EXIT_TOOLING = 6
# The shell's convention for "ended by SIGINT".
EXIT_INTERRUPTED = 130
# The shell's convention for "ended by SIGTERM" (128 + 15), also after a graceful stop.
EXIT_TERMINATED = 143

# A full disk (or quota): not bad input and not the network; its own exit code.
EXIT_DISK_FULL = 5
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class DiskFullError(UserError):
    """The disk holding the output folder filled up: stop, keep everything, say how to resume."""

    exit_code = EXIT_DISK_FULL


def is_disk_full(exc: BaseException) -> bool:
    """True for ENOSPC / EDQUOT, and SQLite's "database or disk is full"."""
    if isinstance(exc, OSError):
        return exc.errno in _DISK_FULL_ERRNOS
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(exc)
    return False


def disk_full_error(folder: Path) -> DiskFullError:
    return DiskFullError(
        f"the disk holding {folder} is full: stopped. Finished clips and the ledger are kept "
        f"(the manifests are rewritten from the ledger on the next run).\n"
        f"  Free some space there (df -h {folder}), then run the same command again to resume."
    )


def describe_os_error(exc: OSError) -> str:
    """``<path>: <cause>`` for an OSError, the way a person reads it."""
    cause = exc.strerror or str(exc)
    if exc.filename is None:
        return cause
    if exc.filename2 is not None:
        return f"{exc.filename} -> {exc.filename2}: {cause}"
    return f"{exc.filename}: {cause}"
