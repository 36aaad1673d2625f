"""Read one clip's audio out of an archive file, touching only what that clip needs.

- folder: the one file, decoded whole (archive clips are a few seconds long).
- HDF5: one row of ``waveform`` (int16 -> float32 by /32768, exactly) or of ``mp3``;
  h5py reads just that row's chunks.
- Parquet: only the ``audio.bytes`` column of the clip's row group. A row group is the
  smallest unit a Parquet reader can decode, so the last few decoded groups are kept
  (:data:`_GROUPS_KEPT`): ordering the jobs by :meth:`ArchiveReader.locality_key` then reads
  every group once.

Open files are per process: an :class:`ArchiveReader` pickles without them (for worker
processes) and reopens lazily, since HDF5 handles must not cross a fork. Within a process
it may be shared by threads (the download scheduler's workers): opening files and reading
rows happen under one lock, decoding outside it.
"""

from __future__ import annotations

import collections
import os
import threading
from typing import Any

import numpy as np

from .decode import ArchiveDecodeError, Decoded, decode_bytes, decode_file
from .index import (
    AUDIO_FILE,
    MP3_BYTES,
    PANNS_WAVEFORM,
    PARQUET_AUDIO,
    ArchiveIndex,
    Location,
    import_h5py,
)
from .scratch import Scratch, empty

_GROUPS_KEPT = 2


class ArchiveReader:
    def __init__(self, index: ArchiveIndex, ffmpeg: str | None = None) -> None:
        self.index = index
        self.ffmpeg = ffmpeg
        self._handles: dict[int, Any] = {}
        self._groups: collections.OrderedDict[tuple[int, int], Any] = collections.OrderedDict()
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"index": self.index, "ffmpeg": self.ffmpeg}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["index"], state["ffmpeg"])

    def locality_key(self, location: Location) -> tuple[int, int, int]:
        """Sort jobs by this to read each file, row group and chunk once."""
        return (location.file, location.group, location.row)

    def read(self, location: Location, scratch: Scratch | None = None) -> Decoded:
        """The clip's audio at its own rate and channels; :class:`ArchiveDecodeError` when unreadable.

        With a ``scratch``, the samples may be one of its buffers.
        """
        layout = self.index.layouts[location.file]
        path = self.index.files.path(location.file)
        what = f"{self.index.describe(location)}"
        if layout == AUDIO_FILE:
            return decode_file(path, self.ffmpeg, scratch)
        if layout == PANNS_WAVEFORM:
            with self._lock:
                waveform = self._hdf5(location.file)["waveform"]
                if waveform.dtype == np.int16:
                    row = empty(scratch, "row", waveform.shape[1:], np.int16)
                    waveform.read_direct(row, np.s_[location.row])
                else:
                    row = waveform[location.row]
            return Decoded(_as_samples(row, what), self.index.sample_rates[location.file],
                           integer_source=np.asarray(row).dtype.kind in "iu")
        if layout == MP3_BYTES:
            with self._lock:
                cell = self._hdf5(location.file)["mp3"][location.row]
            return decode_bytes(np.asarray(cell, dtype=np.uint8).tobytes(), what, self.ffmpeg, scratch)
        if layout == PARQUET_AUDIO:
            with self._lock:
                cells = self._row_group(location.file, location.group)
                if location.row >= len(cells):
                    raise ArchiveDecodeError(f"{what}: the row group has only {len(cells)} rows")
                cell = cells[location.row]
                # The bytes where Arrow holds them, not a copy (the buffer keeps the row group alive).
                data = cell.as_buffer() if cell.is_valid else None
            return decode_bytes(data if data is not None else b"", what, self.ffmpeg, scratch)
        raise ValueError(f"unknown archive layout {layout!r}")

    def close(self) -> None:
        with self._lock:
            self._check_process()
            for handle in self._handles.values():
                handle.close()
            self._handles.clear()
            self._groups.clear()

    def _check_process(self) -> None:
        if os.getpid() != self._pid:
            # Forked: the parent's handles are not ours to use (or close).
            self._handles = {}
            self._groups = collections.OrderedDict()
            self._pid = os.getpid()

    def _hdf5(self, file: int) -> Any:
        self._check_process()
        if file not in self._handles:
            h5py = import_h5py()
            try:
                self._handles[file] = h5py.File(self.index.files.path(file), "r")
            except OSError as exc:
                raise ArchiveDecodeError(f"{self.index.files.path(file)}: cannot open ({exc})") from None
        return self._handles[file]

    def _row_group(self, file: int, group: int) -> Any:
        import pyarrow.parquet as pq

        self._check_process()
        key = (file, group)
        if key in self._groups:
            self._groups.move_to_end(key)
            return self._groups[key]
        if file not in self._handles:
            # No pre-buffering and no reader threads: a row group is read whole and at once, and
            # the worker threads calling this are the parallelism (pyarrow's pools only add
            # start-up time and contention on a small machine).
            self._handles[file] = pq.ParquetFile(self.index.files.path(file), pre_buffer=False)
        table = self._handles[file].read_row_group(group, columns=["audio.bytes"], use_threads=False)
        cells = table.column(0).combine_chunks().field("bytes")
        self._groups[key] = cells
        while len(self._groups) > _GROUPS_KEPT:
            self._groups.popitem(last=False)
        return cells


def _as_samples(row: np.ndarray, what: str) -> np.ndarray:
    row = np.asarray(row)
    if row.ndim == 1:
        row = row[:, None]
    if row.dtype == np.int16:
        return row  # as it is: the conversion takes int16 (see Decoded)
    if row.dtype.kind == "f":
        return row.astype(np.float32)
    raise ArchiveDecodeError(f"{what}: waveform has dtype {row.dtype}; expected int16 or float")
