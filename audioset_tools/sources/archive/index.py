"""The index of one archive: which clips it holds, and where (ytid -> file, group, row).

Built once and cached as one ``.npz`` in the cache folder the caller names (next to our
outputs, never inside the archive, which may be read-only). The cache records every
archive file's size and mtime; if any differs, a file appeared or went away, or the
archive path or format changed, the index is rebuilt. The cache is plain arrays loaded
with ``allow_pickle=False``: a cache file is data, never code.

Memory: the index is six flat numpy columns (an ``S11`` ID, file number, row group, row
and the two numbers a file name may carry), about 43 bytes per clip, sorted by ID so a
lookup is a binary search. HDF5 names are read in chunks of 65,536, and the common
``Y<ytid>.wav`` names are parsed with array operations, so indexing a 1.9 M-name PANNs
file stays far below 1 GB (see benchmarks/bench_sources.py for the measurement).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ...atomic import atomic_open
from ...dataset.ids import is_valid_ytid
from ...errors import UserError
from .files import ArchiveFiles, ArchiveFormat, FileStamp, list_archive
from .names import NO_TIME, matches_segment, readings, stem_of

log = logging.getLogger(__name__)

INDEX_VERSION = 1
_NAME_CHUNK = 1 << 16
# Layouts: how one file of the archive stores its clips.
AUDIO_FILE = "audio_file"  # a folder archive: each file is one clip
PANNS_WAVEFORM = "panns_waveform"  # HDF5: audio_name + int16 waveform (N, samples)
MP3_BYTES = "mp3_bytes"  # HDF5: audio_name + mp3 as variable-length uint8
PARQUET_AUDIO = "parquet_audio"  # Parquet: video_id + audio struct {bytes, path}
PANNS_SAMPLE_RATE = 32000

_ID_CHARACTERS = np.zeros(256, dtype=bool)
for _c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-":
    _ID_CHARACTERS[_c] = True


@dataclasses.dataclass(frozen=True)
class Location:
    """Where one clip sits: file number (into the archive's files), row group, row."""

    file: int
    group: int
    row: int
    first_milli: int = NO_TIME
    second_milli: int = NO_TIME


@dataclasses.dataclass
class ArchiveIndex:
    files: ArchiveFiles
    layouts: tuple[str, ...]
    # Per file; 0 where only decoding tells (compressed clips).
    sample_rates: tuple[int, ...]
    ytids: np.ndarray
    file_numbers: np.ndarray
    groups: np.ndarray
    rows: np.ndarray
    first_milli: np.ndarray
    second_milli: np.ndarray

    def __len__(self) -> int:
        return int(len(self.ytids))

    def locations(self, ytid: str) -> list[Location]:
        if not is_valid_ytid(ytid):
            return []
        key = ytid.encode("ascii")
        low = int(np.searchsorted(self.ytids, key, side="left"))
        high = int(np.searchsorted(self.ytids, key, side="right"))
        return [
            Location(int(self.file_numbers[i]), int(self.groups[i]), int(self.rows[i]),
                     int(self.first_milli[i]), int(self.second_milli[i]))
            for i in range(low, high)
        ]

    def locate(self, ytid: str, start_seconds: float, end_seconds: float) -> Location | None:
        """The archive's clip for this segment, or None.

        A name that states the segment's times wins over one that states none (a folder
        may hold ``<ytid>.wav`` and ``<ytid>_30.wav``); a name stating other times is a
        different segment of the video and never matches. Ties go to the first file in
        sorted order, so the choice is stable.
        """
        untimed = None
        for location in self.locations(ytid):
            if location.first_milli == NO_TIME:
                untimed = untimed or location
            elif matches_segment(location.first_milli, location.second_milli, start_seconds, end_seconds):
                return location
        return untimed

    def holds(self, ytids: Iterable[str]) -> np.ndarray:
        """For each ID, whether the archive has any clip of it (vectorised, for coverage counts)."""
        wanted = np.array([y if is_valid_ytid(y) else "" for y in ytids], dtype="S11")
        if len(self.ytids) == 0 or len(wanted) == 0:
            return np.zeros(len(wanted), dtype=bool)
        positions = np.minimum(np.searchsorted(self.ytids, wanted), len(self.ytids) - 1)
        return self.ytids[positions] == wanted

    def describe(self, location: Location) -> str:
        """Where a clip came from, for messages and provenance: ``file`` or ``file#row``."""
        relative = self.files.stamps[location.file].relative
        if self.layouts[location.file] == AUDIO_FILE:
            return relative
        if self.layouts[location.file] == PARQUET_AUDIO:
            return f"{relative}#group{location.group}/row{location.row}"
        return f"{relative}#row{location.row}"


def cache_path(cache_dir: Path, path: str | Path, archive_format: str) -> Path:
    """The index file for this archive spec: one per (path as given, format)."""
    text = os.path.expanduser(str(path))
    # Absolute, so the same archive named from two working folders shares one cache entry.
    text = os.path.abspath(text) if set("*?[") & set(text) else str(Path(text).resolve())
    key = hashlib.sha256(json.dumps([text, archive_format]).encode("utf-8")).hexdigest()[:16]
    return Path(cache_dir) / f"archive-index-{key}.npz"


def load_or_build_index(path: str | Path, archive_format: str, cache_dir: Path, progress: bool = False) -> ArchiveIndex:
    """The archive's index, from the cache when it still matches the files, else built and cached."""
    files = list_archive(path, archive_format)
    cached = cache_path(cache_dir, path, archive_format)
    index = _load_cached(cached, files)
    if index is not None:
        log.debug("archive index %s: %d clips from the cache", cached.name, len(index))
        return index
    index = build_index(files, progress=progress)
    _save(cached, index)
    log.info("indexed %s archive %s: %d clips in %d files", files.format, path, len(index), len(files.stamps))
    return index


def build_index(files: ArchiveFiles, progress: bool = False) -> ArchiveIndex:
    columns = _Columns()
    layouts: list[str] = []
    rates: list[int] = []
    if files.format is ArchiveFormat.FOLDER:
        for number, stamp in enumerate(tqdm(files.stamps, desc="indexing files", unit="file", disable=not progress)):
            for reading in readings(stem_of(stamp.relative)):
                columns.add_one(reading.ytid, number, 0, 0, reading.first_milli, reading.second_milli)
            layouts.append(AUDIO_FILE)
            rates.append(0)
    elif files.format is ArchiveFormat.HDF5:
        for number in range(len(files.stamps)):
            layout, rate = _index_hdf5(files.path(number), number, columns, progress)
            layouts.append(layout)
            rates.append(rate)
    else:
        for number in range(len(files.stamps)):
            _index_parquet(files.path(number), number, columns, progress)
            layouts.append(PARQUET_AUDIO)
            rates.append(0)
    return columns.finish(files, tuple(layouts), tuple(rates))


def _index_hdf5(path: Path, number: int, columns: _Columns, progress: bool) -> tuple[str, int]:
    h5py = import_h5py()
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise UserError(f"archive file {path}: not a readable HDF5 file ({exc})") from None
    with handle:
        if "audio_name" not in handle or not ({"waveform", "mp3"} & set(handle.keys())):
            raise UserError(
                f"archive file {path}: expected an 'audio_name' dataset and a 'waveform' (PANNs) or 'mp3' "
                f"(PaSST) dataset; found {sorted(handle.keys())}"
            )
        if "waveform" in handle:
            layout, audio = PANNS_WAVEFORM, handle["waveform"]
            rate = int(audio.attrs.get("sample_rate", handle.attrs.get("sample_rate", PANNS_SAMPLE_RATE)))
        else:
            layout, audio, rate = MP3_BYTES, handle["mp3"], 0
        names = handle["audio_name"]
        total = min(len(names), len(audio))
        if len(names) != len(audio):
            # A damaged or half-written pack: only rows that have both a name and audio are clips.
            log.warning("%s: %d names but %d rows of audio; indexing the first %d", path, len(names), len(audio), total)
        with tqdm(total=total, desc=f"indexing {path.name}", unit="name", disable=not progress) as bar:
            for begin in range(0, total, _NAME_CHUNK):
                chunk = names[begin : min(begin + _NAME_CHUNK, total)]
                _add_names(chunk, begin, number, columns)
                bar.update(len(chunk))
    return layout, rate


def _add_names(chunk: np.ndarray, first_row: int, number: int, columns: _Columns) -> None:
    """Add one chunk of ``audio_name`` values; ``Y<ytid>.wav`` the fast way, the rest by pattern."""
    if chunk.dtype.kind != "S":
        chunk = np.array([v if isinstance(v, bytes) else str(v).encode("utf-8") for v in chunk], dtype=bytes)
    rows = np.arange(first_row, first_row + len(chunk), dtype=np.int64)
    lengths = np.char.str_len(chunk) if len(chunk) else np.zeros(0, dtype=int)
    fast = lengths == 16
    if fast.any():
        table = chunk[fast].astype("S16").view(np.uint8).reshape(-1, 16)
        good = (table[:, 0] == ord("Y")) & (table[:, 12:] == np.frombuffer(b".wav", np.uint8)).all(axis=1)
        good &= _ID_CHARACTERS[table[:, 1:12]].all(axis=1)
        ids = np.ascontiguousarray(table[good, 1:12]).view("S11").ravel()
        columns.add_many(ids, number, rows[fast][good])
        fast[np.flatnonzero(fast)[~good]] = False
    for position in np.flatnonzero(~fast):
        name = chunk[position].decode("utf-8", errors="replace")
        for reading in readings(stem_of(name)):
            columns.add_one(reading.ytid, number, 0, int(rows[position]), reading.first_milli, reading.second_milli)


def _index_parquet(path: Path, number: int, columns: _Columns, progress: bool) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise UserError(f"archive file {path}: not a readable Parquet file ({exc})") from None
    schema = parquet.schema_arrow
    audio = schema.field("audio").type if "audio" in schema.names else None
    if "video_id" not in schema.names or not (pa.types.is_struct(audio) and audio.get_field_index("bytes") >= 0):
        raise UserError(
            f"archive file {path}: expected columns 'video_id' and 'audio' (a struct with 'bytes'), "
            f"as in the Hugging Face AudioSet mirrors; found {schema.names}"
        )
    groups = parquet.metadata.num_row_groups
    for group in tqdm(range(groups), desc=f"indexing {path.name}", unit="group", disable=not progress):
        ids = parquet.read_row_group(group, columns=["video_id"]).column(0).to_pylist()
        for row, value in enumerate(ids):
            for reading in readings(str(value)) if value is not None else ():
                columns.add_one(reading.ytid, number, group, row, reading.first_milli, reading.second_milli)


def import_h5py():
    try:
        import h5py
    except ImportError:
        raise UserError(
            "reading HDF5 archives needs h5py: pip install 'audioset-tools[archive]'"
        ) from None
    return h5py


class _Columns:
    """Grows the index columns in numpy chunks (a Python object per clip would cost ~10x the memory)."""

    def __init__(self) -> None:
        self._chunks: list[tuple[np.ndarray, ...]] = []
        self._pending: list[tuple[str, int, int, int, int, int]] = []

    def add_one(self, ytid: str, file: int, group: int, row: int, first: int, second: int) -> None:
        self._pending.append((ytid, file, group, row, first, second))
        if len(self._pending) >= _NAME_CHUNK:
            self._flush()

    def add_many(self, ids: np.ndarray, file: int, rows: np.ndarray) -> None:
        self._flush()
        count = len(ids)
        self._chunks.append((
            ids.astype("S11"), np.full(count, file, np.int32), np.zeros(count, np.int32), rows.astype(np.int64),
            np.full(count, NO_TIME, np.int64), np.full(count, NO_TIME, np.int64),
        ))

    def _flush(self) -> None:
        if not self._pending:
            return
        ids, files, groups, rows, first, second = zip(*self._pending)
        self._chunks.append((
            np.array(ids, dtype="S11"), np.array(files, np.int32), np.array(groups, np.int32),
            np.array(rows, np.int64), np.array(first, np.int64), np.array(second, np.int64),
        ))
        self._pending = []

    def finish(self, files: ArchiveFiles, layouts: tuple[str, ...], rates: tuple[int, ...]) -> ArchiveIndex:
        self._flush()
        dtypes = ("S11", np.int32, np.int32, np.int64, np.int64, np.int64)
        merged = [
            np.concatenate([chunk[k] for chunk in self._chunks]) if self._chunks else np.zeros(0, dtype=dtypes[k])
            for k in range(6)
        ]
        self._chunks = []
        # Stable: entries of one ID keep file then row order, so lookups are deterministic.
        order = np.argsort(merged[0], kind="stable")
        merged = [column[order] for column in merged]
        return ArchiveIndex(files, layouts, rates, *merged)


_ARRAYS = ("ytids", "file_numbers", "groups", "rows", "first_milli", "second_milli")


def _save(path: Path, index: ArchiveIndex) -> None:
    meta = {
        "version": INDEX_VERSION,
        "format": index.files.format.value,
        "root": str(index.files.root),
        "files": [dataclasses.astuple(s) for s in index.files.stamps],
        "layouts": list(index.layouts),
        "sample_rates": list(index.sample_rates),
    }
    try:
        with atomic_open(path, "wb") as handle:
            np.savez(handle, meta=np.array(json.dumps(meta)), **{name: getattr(index, name) for name in _ARRAYS})
    except OSError as exc:
        # An index that cannot be cached still works; it is rebuilt next time.
        log.warning("could not cache the archive index at %s: %s", path, exc)


def _load_cached(path: Path, files: ArchiveFiles) -> ArchiveIndex | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            stamps = tuple(FileStamp(*entry) for entry in meta["files"])
            if (meta["version"] != INDEX_VERSION or meta["format"] != files.format.value
                    or meta["root"] != str(files.root) or stamps != files.stamps):
                log.info("archive changed since it was indexed; indexing it again")
                return None
            arrays = {name: data[name] for name in _ARRAYS}
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        log.warning("ignoring an unreadable archive index cache %s: %s", path, exc)
        return None
    return ArchiveIndex(files, tuple(meta["layouts"]), tuple(int(r) for r in meta["sample_rates"]), **arrays)

