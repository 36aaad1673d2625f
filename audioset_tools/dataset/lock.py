"""One writer per dataset folder: the lock every command that writes into one takes.

``download``, ``rebuild`` (and ``validate --repair``, which rebuilds), ``clean`` and
``download --import-unavailable`` hold it while they work, so none of them rewrites
manifests from a view another one is changing. The lock is an advisory ``flock`` on
``<folder>/.download.lock``: the OS drops it when the process dies, even by kill -9, so
a crash never leaves a stale lock behind. The file names the holder (command and
process id) for the message of the command that is refused.

Within one process the lock is re-entrant: a rebuild holds it and runs the download
runner, which takes it again.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from ..errors import UserError

LOCK_NAME = ".download.lock"

_held: dict[Path, int] = {}
_guard = threading.Lock()


def _holder(handle) -> str:
    try:
        handle.seek(0)
        text = handle.read(200).decode("utf-8", "replace").split()
    except OSError:
        return "download, rebuild or clean"
    return f"{text[0]} (process {text[1]})" if len(text) >= 2 else "download, rebuild or clean"


@contextlib.contextmanager
def dataset_lock(folder: Path, command: str) -> Iterator[None]:
    """Hold the dataset folder's lock for ``command``; refuse at once if another process holds it."""
    folder = Path(folder)
    key = folder.resolve()
    with _guard:
        if key in _held:
            _held[key] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _guard:
                _held[key] -= 1
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks, document one command at a time
        yield
        return
    with open(folder / LOCK_NAME, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"another {_holder(handle)} is running in {folder}; wait for it to finish, then run "
                f"{command} again (two commands writing one dataset would fight over its files)"
            ) from None
        with _guard:
            _held[key] = 1
        try:
            handle.truncate(0)
            handle.write(f"{command} {os.getpid()}\n".encode())
            handle.flush()
            yield
        finally:
            with _guard:
                del _held[key]
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
