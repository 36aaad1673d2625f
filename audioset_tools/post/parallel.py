"""Run a function over batches of work in worker processes, with one progress bar."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, TypeVar

from threadpoolctl import threadpool_limits
from tqdm import tqdm

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


def default_workers(requested: int | None) -> int:
    """``requested`` workers, or every core this process may use when None."""
    if requested is not None:
        return requested
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _one_blas_thread() -> None:
    # The worker processes already use every core: BLAS threads on top of them only
    # contend for the same cores (spinning BLAS threads slowed matrix products several
    # times over on a busy 2-core machine).
    threadpool_limits(limits=1)


def batches(items: Sequence[T], size: int) -> list[list[T]]:
    return [list(items[start : start + size]) for start in range(0, len(items), size)]


def run_batches(
    function: Callable[[list[T], Any], list[R]],
    work: list[list[T]],
    settings: Any,
    workers: int,
    description: str,
) -> Iterator[tuple[int, list[R]]]:
    """Yield ``(batch number, function(batch, settings))`` as batches finish, in any order.

    ``function`` and ``settings`` must be picklable. With one worker everything runs in
    this process (no pickling, easy to debug). At most ``2 * workers`` batches are in
    flight so results, not the queue, bound memory.
    """
    total = sum(len(batch) for batch in work)
    show = log.isEnabledFor(logging.INFO) and total > 0
    with tqdm(total=total, desc=description, unit="clip", disable=not show) as bar:
        if workers <= 1 or len(work) <= 1:
            for number, batch in enumerate(work):
                yield number, function(batch, settings)
                bar.update(len(batch))
            return
        with ProcessPoolExecutor(max_workers=min(workers, len(work)), initializer=_one_blas_thread) as pool:
            pending: dict[Any, int] = {}
            queue = iter(enumerate(work))
            try:
                for number, batch in queue:
                    pending[pool.submit(function, batch, settings)] = number
                    if len(pending) >= 2 * workers:
                        break
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        number = pending.pop(future)
                        result = future.result()
                        bar.update(len(work[number]))
                        yield number, result
                        following = next(queue, None)
                        if following is not None:
                            pending[pool.submit(function, following[1], settings)] = following[0]
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
