"""The scheduler's slots: where each clip in flight is worked on, and from which address.

With the threads executor, a slot is a thread of this process; with ``source_addresses``
the slots take the addresses in turn, so each address has as many slots as it can. With
Dask, a slot is one thread of one worker, and the worker's host is its identity: the
clip's work runs there, the finished file comes back as bytes, and this process (the
coordinator, alone writing the output folder) checks it against the worker's checksum and
the output spec, then moves it into place atomically. When the workers share the output
folder (``download.dask.shared_output_dir``), they write the clip into place themselves, as
the threads would, and the coordinator checks the file they wrote the same way.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..atomic import atomic_open
from ..dataset.audio_info import AudioReadError, probe_audio
from ..errors import UserError
from ..sources.base import ClipJob, ClipResult, Slot
from ..sources.outcomes import Outcome
from .executors import (
    LOCAL_IDENTITY,
    Executor,
    SchedulerLost,
    ThreadExecutor,
    WorkerLost,
)

log = logging.getLogger(__name__)

# A LocalCluster's workers listen here: their requests keep the default route (binding them
# to the loopback address would cut them off from the internet).
_DEFAULT_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def plan_slots(executor: Executor | None, workers: int, source_addresses: Sequence[str] = (),
               shared_output: bool = False) -> list[Slot]:
    """One :class:`Slot` per clip that may be in flight, each with its identity and how to run there."""
    if executor is None or isinstance(executor, ThreadExecutor):
        count = executor.slots if executor is not None else workers
        if not source_addresses:
            return [Slot(index) for index in range(count)]
        # At least one slot per address, whatever download.workers says.
        count = max(count, len(source_addresses))
        return [Slot(index, source_addresses[index % len(source_addresses)],
                     bind=source_addresses[index % len(source_addresses)]) for index in range(count)]
    slots = []
    for identity, threads in executor.slots_by_identity().items():
        bind = None if identity in _DEFAULT_LOOPBACK or identity == LOCAL_IDENTITY else identity
        run = functools.partial(_run_on_worker, executor, identity, shared_output)
        slots.extend(Slot(len(slots) + n, identity, bind=bind, run=run) for n in range(threads))
    return slots


def _run_on_worker(executor: Executor, identity: str, shared_output: bool, fn: Callable[..., ClipResult],
                   job: ClipJob, *args: Any) -> ClipResult | None:
    """Run ``fn(job, *args)`` on a worker of ``identity`` and check (or place) its clip. None: run it again."""
    task = make_clip_in_place if shared_output else make_clip_remotely
    try:
        outcome = executor.submit(task, fn, job, *args, identity=identity).result()
    except WorkerLost as exc:
        log.info("%s: %s; the clip will be tried again", job.ytid, exc)
        return None
    except SchedulerLost as exc:
        raise UserError(str(exc)) from None
    if shared_output:
        return check_placed_clip(job, outcome)
    return place_clip(job, *outcome)


def make_clip_in_place(fn: Callable[..., ClipResult], job: ClipJob, *args: Any) -> ClipResult:
    """On a worker that sees the output folder: make the clip at its final path, as a thread would."""
    return fn(job, *args)


def make_clip_remotely(fn: Callable[..., ClipResult], job: ClipJob, *args: Any) -> tuple[ClipResult, bytes | None]:
    """On a worker: make the clip in a private temporary folder and hand back its bytes (no shared disk needed)."""
    with tempfile.TemporaryDirectory(prefix="audioset-tools-clip-") as folder:
        local = dataclasses.replace(job, target=Path(folder) / Path(job.target).name)
        result = fn(local, *args)
        data = local.target.read_bytes() if result.ok else None
    return dataclasses.replace(result, file=None), data


def place_clip(job: ClipJob, result: ClipResult, data: bytes | None) -> ClipResult:
    """On the coordinator: check a worker's clip and move it to ``job.target``; a bad transfer is transient."""
    if not result.ok:
        return result
    if data is None or hashlib.sha256(data).hexdigest() != result.sha256:
        return _lost_in_transfer(result, "the clip's bytes do not match the worker's checksum")
    target = Path(job.target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(target, "wb") as handle:
        handle.write(data)
    problem = _spec_problem(job, target)
    if problem:
        target.unlink()
        return _lost_in_transfer(result, problem)
    return dataclasses.replace(result, file=target)


def check_placed_clip(job: ClipJob, result: ClipResult) -> ClipResult:
    """On the coordinator: the clip a worker wrote into the shared folder must be the one it reported."""
    if not result.ok:
        return result
    target = Path(job.target)
    try:
        data = target.read_bytes()
    except OSError as exc:
        return _lost_in_transfer(result, f"the shared output folder does not show it here ({exc.strerror})")
    if hashlib.sha256(data).hexdigest() != result.sha256:
        target.unlink(missing_ok=True)
        return _lost_in_transfer(result, "the file here does not match the worker's checksum")
    problem = _spec_problem(job, target)
    if problem:
        target.unlink(missing_ok=True)
        return _lost_in_transfer(result, problem)
    return dataclasses.replace(result, file=target)


def _spec_problem(job: ClipJob, path: Path) -> str:
    """Why the file at ``path`` is not exactly ``job``'s clip, or ""."""
    try:
        info = probe_audio(path)
    except AudioReadError as exc:
        return str(exc)
    if (info.frames, info.sample_rate, info.channels) == (job.frames, job.spec.sample_rate, job.spec.channels):
        return ""
    return (f"{info.frames} frames at {info.sample_rate} Hz x {info.channels}, expected {job.frames} at "
            f"{job.spec.sample_rate} Hz x {job.spec.channels}")


def _lost_in_transfer(result: ClipResult, why: str) -> ClipResult:
    message = f"the worker's clip was refused: {why}"
    return dataclasses.replace(result, outcome=Outcome.TRANSIENT, message=message, file=None, sha256=None,
                               history=(*result.history, f"{Outcome.TRANSIENT}: {message}"))
