"""One switch that makes every fetch in this process give up now: the run is aborting.

A second Ctrl-C (or SIGTERM) must not wait for work that may take minutes: a resolve
stuck on a trickling server, or an ffmpeg reading from a stalled one. :func:`abort_fetches`
kills the ffmpeg processes in flight and tells waiting resolves and retry loops to stop;
:func:`allow_fetches` resets the switch for the next run in the same process.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Iterator

_aborting = threading.Event()
_lock = threading.Lock()
_processes: set[subprocess.Popen] = set()


def abort_fetches() -> None:
    with _lock:
        _aborting.set()
        for process in _processes:
            process.kill()


def allow_fetches() -> None:
    _aborting.clear()


def aborting() -> bool:
    return _aborting.is_set()


def pause(seconds: float) -> None:
    """Sleep ``seconds``, or less if the run aborts meanwhile."""
    _aborting.wait(seconds)


@contextlib.contextmanager
def tracked(process: subprocess.Popen) -> Iterator[None]:
    """Let :func:`abort_fetches` kill ``process`` while the block runs."""
    with _lock:
        if _aborting.is_set():
            process.kill()
        _processes.add(process)
    try:
        yield
    finally:
        with _lock:
            _processes.discard(process)
