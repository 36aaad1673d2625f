"""Arrays a worker thread reuses from clip to clip instead of allocating them afresh.

A clip's intermediate arrays are megabytes each (10 s of 48 kHz stereo float32 is 3.8 MB).
malloc serves blocks that large from fresh pages and gives them back to the kernel when
they are freed, so every clip page-faulted all its buffers in again: about a millisecond
of kernel time per clip, and two threads' page faults queue on one lock of the process.
A :class:`Scratch` keeps each named buffer for the next clip instead.

It also keeps an in-memory file (Linux's memfd) that compressed clips held in memory (a
Parquet cell, an HDF5 mp3) are decoded from: libsndfile then reads it by itself, where from
a Python file object it would call back into Python, taking the GIL, a few hundred times per
clip, stalling on the other workers each time (badly so on a busy machine).

Whoever takes an array from a scratch owns it until the clip is done: one scratch per
thread (:func:`for_this_thread`), names unique within a clip, and nothing taken from a
scratch outlives the clip. Contents are left over from the last clip, so callers write
every element they read. Buffers larger than :data:`KEEP_BYTES` are not kept, so one long
file does not pin its memory for the rest of the run.
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from typing import Any

import numpy as np

# Enough for 10 s of 96 kHz stereo float32 (7.7 MB); longer clips get fresh arrays.
KEEP_BYTES = 8 * 1024 * 1024

_PER_THREAD = threading.local()


class Scratch:
    def __init__(self, keep_bytes: int = KEEP_BYTES) -> None:
        self.keep_bytes = keep_bytes
        self._buffers: dict[str, np.ndarray] = {}
        self._memory_file: tuple[int, int] | None = None  # (process id, descriptor)
        self._no_memory_file = not hasattr(os, "memfd_create")

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

    def memory_file(self, data: Any) -> int | None:
        """A descriptor of this scratch's in-memory file, now holding ``data``, at offset 0.

        None where there is none (not Linux, or the kernel refused one): read ``data`` some
        other way. The descriptor stays the scratch's: read it, never close it.
        """
        if self._no_memory_file:
            return None
        if self._memory_file is None or self._memory_file[0] != os.getpid():
            # A forked child must not write to the file description it shares with its parent.
            try:
                descriptor = os.memfd_create("audioset-tools-clip", os.MFD_CLOEXEC)
            except OSError:
                self._no_memory_file = True
                return None
            self._memory_file = (os.getpid(), descriptor)
            weakref.finalize(self, os.close, descriptor)
        descriptor = self._memory_file[1]
        view = memoryview(data).cast("B")
        try:
            # Written over in place: its pages are the last clip's, not fresh ones.
            written = 0
            while written < len(view):
                written += os.pwrite(descriptor, view[written:], written)
            os.ftruncate(descriptor, len(view))
            os.lseek(descriptor, 0, os.SEEK_SET)
        except OSError:
            return None
        return descriptor


def empty(scratch: Scratch | None, name: str, shape: tuple[int, ...], dtype: type | np.dtype) -> np.ndarray:
    """``np.empty`` without a scratch (a caller keeping the result), the scratch's buffer with one."""
    return np.empty(shape, dtype) if scratch is None else scratch.empty(name, shape, dtype)


def for_this_thread() -> Scratch:
    """The calling thread's own scratch (made on first use, freed with the thread)."""
    scratch = getattr(_PER_THREAD, "scratch", None)
    if scratch is None:
        scratch = _PER_THREAD.scratch = Scratch()
    return scratch
