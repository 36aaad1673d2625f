"""Arrays a worker thread reuses from clip to clip instead of allocating them afresh.

A clip's intermediate arrays are megabytes each (10 s of 48 kHz stereo float32 is 3.8 MB).
malloc serves blocks that large from fresh pages and gives them back to the kernel when
they are freed, so every clip page-faulted all its buffers in again: about a millisecond
of kernel time per clip, and two threads' page faults queue on one lock of the process.
A :class:`Scratch` keeps each named buffer for the next clip instead.

Whoever takes an array from a scratch owns it until the clip is done: one scratch per
thread (:func:`for_this_thread`), names unique within a clip, and nothing taken from a
scratch outlives the clip. Contents are left over from the last clip, so callers write
every element they read. Buffers larger than :data:`KEEP_BYTES` are not kept, so one long
file does not pin its memory for the rest of the run.
"""

from __future__ import annotations

import math
import threading

import numpy as np

KEEP_BYTES = 32 * 1024 * 1024

_PER_THREAD = threading.local()


class Scratch:
    def __init__(self, keep_bytes: int = KEEP_BYTES) -> None:
        self.keep_bytes = keep_bytes
        self._buffers: dict[str, np.ndarray] = {}

    def empty(self, name: str, shape: tuple[int, ...], dtype: type | np.dtype) -> np.ndarray:
        """An uninitialised array of this shape and dtype, reusing the buffer kept under ``name``."""
        dtype = np.dtype(dtype)
        size = math.prod(shape) * dtype.itemsize
        if size > self.keep_bytes:
            return np.empty(shape, dtype)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.nbytes < size:
            buffer = np.empty(size, np.uint8)
            self._buffers[name] = buffer
        return buffer[:size].view(dtype).reshape(shape)


def empty(scratch: Scratch | None, name: str, shape: tuple[int, ...], dtype: type | np.dtype) -> np.ndarray:
    """``np.empty`` without a scratch (a caller keeping the result), the scratch's buffer with one."""
    return np.empty(shape, dtype) if scratch is None else scratch.empty(name, shape, dtype)


def for_this_thread() -> Scratch:
    """The calling thread's own scratch (made on first use, freed with the thread)."""
    scratch = getattr(_PER_THREAD, "scratch", None)
    if scratch is None:
        scratch = _PER_THREAD.scratch = Scratch()
    return scratch
