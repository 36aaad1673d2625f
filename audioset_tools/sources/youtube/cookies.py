"""The user's cookies file: validated once, never modified, never echoed.

yt-dlp writes cookies back into its ``cookiefile``, so each worker gets a private copy
(mode 0600 in a private temporary folder, deleted at exit) and the user's file stays
byte-identical. The folder's name carries the owning process id, so the copies a
kill -9 left behind are recognised and removed by the next run
(:func:`remove_stale_cookie_copies`). Error messages name the file and line, never a
cookie's value.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ...errors import UserError

log = logging.getLogger(__name__)

_FOLDER_PREFIX = "audioset-tools-cookies-"
_FOLDER_RE = re.compile(rf"\A{re.escape(_FOLDER_PREFIX)}(?P<pid>[0-9]+)-")
_FIELDS = 7
_FLAGS = {"TRUE", "FALSE"}
# Browsers' exporters mark HttpOnly cookies with this prefix on an otherwise normal line.
_HTTP_ONLY_PREFIX = "#HttpOnly_"
_HOWTO = (
    "Export cookies in Netscape format (e.g. with a 'cookies.txt' browser extension, or "
    "`yt-dlp --cookies-from-browser BROWSER --cookies cookies.txt`)."
)


def validate_cookies_file(path: Path) -> int:
    """Check ``path`` is a Netscape cookies file; return its number of cookies.

    Raises :class:`UserError` naming the file and the first bad line.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"download.cookies_file = {path}: file not found. {_HOWTO}") from None
    except OSError as exc:
        raise UserError(f"download.cookies_file = {path}: cannot read it ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file, so not a Netscape cookies file. {_HOWTO}") from None
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith(("{", "[")):
        raise UserError(f"{path}: this looks like JSON; yt-dlp needs the Netscape cookies.txt format. {_HOWTO}")
    count = 0
    for number, line in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        if line.startswith(_HTTP_ONLY_PREFIX):
            line = line[len(_HTTP_ONLY_PREFIX):]
        elif not line.strip() or line.lstrip().startswith("#"):
            continue
        problem = _line_problem(line)
        if problem is not None:
            raise UserError(f"{path}, line {number}: {problem}. {_HOWTO}")
        count += 1
    if count == 0:
        raise UserError(f"{path}: contains no cookies. {_HOWTO}")
    return count


def _line_problem(line: str) -> str | None:
    # Only field positions are reported: the line itself may hold a session token.
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) != _FIELDS:
        return f"expected {_FIELDS} tab-separated fields, found {len(fields)}"
    domain, subdomains, _path, secure, expires, name, _value = fields
    if not domain:
        return "field 1 (domain) is empty"
    if subdomains.upper() not in _FLAGS:
        return "field 2 (include subdomains) must be TRUE or FALSE"
    if secure.upper() not in _FLAGS:
        return "field 4 (secure) must be TRUE or FALSE"
    if expires and not expires.lstrip("-").isdigit():
        return "field 5 (expiry) must be a whole number of seconds"
    if not name:
        return "field 6 (name) is empty"
    return None


@contextlib.contextmanager
def private_cookie_copy(path: Path) -> Iterator[Path]:
    """A 0600 copy of ``path`` in a private (0700) temporary folder, removed on exit."""
    folder = Path(tempfile.mkdtemp(prefix=f"{_FOLDER_PREFIX}{os.getpid()}-"))
    try:
        copy = folder / "cookies.txt"
        descriptor = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(Path(path).read_bytes())
        yield copy
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        log.debug("removed the private cookie copy folder %s", folder)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def remove_stale_cookie_copies() -> int:
    """Delete the private cookie folders of processes that no longer run; return how many.

    Only folders directly in the temporary directory, named with our prefix and a pid,
    owned by the current user and not symlinks. A folder of a live process (or of a
    process whose pid was reused) is left alone. POSIX only: elsewhere signal 0 cannot
    probe a process.
    """
    if os.name != "posix":
        return 0
    root = Path(tempfile.gettempdir())
    removed = 0
    try:
        entries = list(os.scandir(root))
    except OSError:
        return 0
    for entry in entries:
        match = _FOLDER_RE.match(entry.name)
        if match is None:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or _alive(int(match["pid"])):
            continue
        # rmtree never follows symlinks inside the folder; the folder itself was checked above.
        shutil.rmtree(entry.path, ignore_errors=True)
        removed += 1
    if removed:
        log.info("removed %d private cookie copy folder(s) left by killed runs", removed)
    return removed
