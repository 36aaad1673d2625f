"""Write files so that a crash never leaves a half-written file under a final name."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def _current_umask() -> int:
    # os.umask can only be read by setting it; do so once, at import, before any threads.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp creates 0600 files; finished outputs get the permissions a plain open() would give.
_FILE_MODE = 0o666 & ~_current_umask()


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "w", durable: bool = True, **kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on clean exit fsync it and rename it over ``path``.

    The temporary lives in the same folder so that ``os.replace`` is a rename on one
    filesystem, which POSIX makes atomic. On any exception the temporary is removed.
    ``durable=False`` skips the fsync, for files that are cheaper to recompute than to
    sync: a crash can then leave a short file under ``path``, which callers must detect.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def is_temporary(path: Path) -> bool:
    """True for the temporaries :func:`atomic_open` makes (left behind only by kill -9)."""
    return path.name.startswith(".") and path.name.endswith(".tmp")
