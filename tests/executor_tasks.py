"""Module-level tasks for the executor tests: Dask workers import them by name (tests/ on their path).

They coordinate through files in a folder, never through timing: a task that must wait
polls for a file, with a generous bound so a broken executor fails the test instead of hanging it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_BOUND_SECONDS = 120.0
_POLL_SECONDS = 0.02


def square(value: int) -> tuple[int, int]:
    """``value**2`` and the process that computed it."""
    return value * value, os.getpid()


def meet(folder: str, name: str, others: list[str]) -> tuple[str, int]:
    """Announce ``name``, then wait until every name in ``others`` has announced itself too.

    Two calls that meet prove they ran at the same time, in different workers.
    """
    Path(folder, name).write_text(str(os.getpid()))
    _wait_for(*(Path(folder, other) for other in others))
    return name, os.getpid()


def hold(folder: str, name: str) -> tuple[str, int]:
    """Write this process's pid to ``<name>.pid``, then wait for ``<name>.go`` (the test's signal)."""
    # Written under another name, then renamed: a reader that sees the file sees the whole pid.
    partial = Path(folder, f".{name}.pid.{os.getpid()}")
    partial.write_text(str(os.getpid()))
    os.replace(partial, Path(folder, f"{name}.pid"))
    _wait_for(Path(folder, f"{name}.go"))
    return name, os.getpid()


def _wait_for(*paths: Path) -> None:
    deadline = time.monotonic() + _BOUND_SECONDS
    while not all(path.exists() for path in paths):
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {_BOUND_SECONDS:g} s for {[p.name for p in paths if not p.exists()]}")
        time.sleep(_POLL_SECONDS)
