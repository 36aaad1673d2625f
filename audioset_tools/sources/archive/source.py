"""An archive behind the :class:`~..base.Source` seam: look a segment up, cut it to the output spec, write it.

The index answers :meth:`ArchiveSource.holds` before any audio is read, so the scheduler
never hands an archive a clip it lacks. :meth:`ArchiveSource.produce` never raises for a
clip's own problem: its :class:`~..base.ClipResult` is ``ok``, ``too_short`` (shorter than
the segment, or zero-padded to look complete: the message says which) or ``decode_error``
(undecodable, or NaN/inf samples), the last two permanent failures of this archive for
that clip (the next source is tried). A clip the index lost between lookup and read is
``unavailable`` here. Archives are local data: they are read in this process, whichever
slot asks.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import soundfile

from ...atomic import atomic_open
from ...dataset.audio_info import sha256_file
from ..base import ClipJob, ClipResult, Slot, Source
from ..outcomes import Outcome
from ..output_spec import OutputSpec
from .convert import Shortfall, fit_to_segment
from .decode import ArchiveDecodeError
from .files import ArchiveFormat
from .index import ArchiveIndex, Location, load_or_build_index
from .read import ArchiveReader
from .scratch import for_this_thread

log = logging.getLogger(__name__)

_SOUNDFILE_FORMATS = {"wav": "WAV", "flac": "FLAC"}


class ArchiveSource(Source):
    """One configured archive: its index plus a reader. Pickles for worker processes."""

    kind = "archive"
    knows_its_holdings = True

    def __init__(self, name: str, index: ArchiveIndex, ffmpeg: str | None = None) -> None:
        super().__init__(name)
        self.index = index
        self.reader = ArchiveReader(index, ffmpeg)

    @classmethod
    def open(cls, path: str | Path, cache_dir: Path, archive_format: str = "auto", name: str = "archive1",
             ffmpeg: str | None = None, progress: bool = False) -> ArchiveSource:
        """List and index the archive (or load its cached index); :class:`UserError` if it is unusable."""
        return cls(name, load_or_build_index(path, archive_format, cache_dir, progress=progress), ffmpeg)

    @property
    def format(self) -> ArchiveFormat:
        return self.index.files.format

    def identity(self) -> dict[str, Any]:
        """What the archive was when indexed (for run records): path, format, files with size and mtime."""
        return {
            "name": self.name,
            "kind": self.kind,
            "format": self.format.value,
            "root": str(self.index.files.root),
            "files": [dataclasses.asdict(s) for s in self.index.files.stamps],
            "clips": len(self.index),
        }

    def locate(self, ytid: str, start_seconds: float, end_seconds: float) -> Location | None:
        return self.index.locate(ytid, start_seconds, end_seconds)

    def has(self, ytid: str, start_seconds: float, end_seconds: float) -> bool:
        return self.locate(ytid, start_seconds, end_seconds) is not None

    def holds(self, job: ClipJob) -> bool:
        return self.has(job.ytid, job.start_seconds, job.end_seconds)

    def preflight(self) -> str:
        return f"{len(self.index):,} clips indexed in {self.index.files.root} ({self.format.value})"

    def coverage(self, segments: Iterable[tuple[str, float, float]]) -> int:
        """How many of these (ytid, start, end) segments the archive holds (before reading any audio)."""
        return sum(self.has(*segment) for segment in segments)

    def order_key(self, ytid: str, start_seconds: float, end_seconds: float) -> tuple[int, int, int]:
        """Sort jobs by this so each Parquet row group is decoded once (archive order; absent clips last)."""
        location = self.locate(ytid, start_seconds, end_seconds)
        if location is None:
            return (len(self.index.files.stamps), 0, 0)
        return self.reader.locality_key(location)

    def produce(self, job: ClipJob, slot: Slot | None = None) -> ClipResult:
        """Write ``job`` (atomically) in ``job.spec``, or say why not; ``slot`` does not matter here.

        Nothing is written unless the outcome is ok; an existing target is replaced only by
        a finished file.
        """
        location = self.locate(job.ytid, job.start_seconds, job.end_seconds)
        if location is None:
            return _failed(Outcome.UNAVAILABLE, f"not in archive {self.name}")
        origin = self.index.describe(location)
        # This thread's buffers: a clip's arrays live until it is written, then serve the next.
        scratch = for_this_thread()
        try:
            decoded = self.reader.read(location, scratch)
        except (ArchiveDecodeError, OSError, pa.ArrowException) as exc:
            # h5py reports a damaged file as OSError, pyarrow as ArrowException.
            return _failed(Outcome.DECODE_ERROR, f"{origin}: {exc}", origin)
        fitted = fit_to_segment(decoded, job.duration, job.spec, scratch)
        if isinstance(fitted, Shortfall):
            return _failed(Outcome(fitted.outcome), f"{origin}: {fitted.message}", origin)
        write_clip(Path(job.target), fitted, job.spec)
        message = f"{len(fitted)} samples from {origin}"
        return ClipResult(
            Outcome.OK, message, attempts=1, file=Path(job.target), sha256=sha256_file(job.target),
            duration=len(fitted) / job.spec.sample_rate, sample_rate=job.spec.sample_rate,
            channels=job.spec.channels, history=(f"{Outcome.OK}: {message}",), origin=origin,
        )

    def produce_segment(self, ytid: str, start_seconds: float, end_seconds: float, spec: OutputSpec,
                        target: Path) -> ClipResult:
        """:meth:`produce` for one segment given by its parts (for scripts and benchmarks)."""
        return self.produce(ClipJob(ytid, start_seconds, end_seconds, Path(target).absolute(), spec))

    def close(self) -> None:
        self.reader.close()


def _failed(outcome: Outcome, message: str, origin: str = "") -> ClipResult:
    return ClipResult(outcome, message, attempts=1, history=(f"{outcome}: {message}",), origin=origin)


def write_clip(target: Path, samples: np.ndarray, spec: OutputSpec) -> None:
    """Write int16 ``samples`` as 16-bit PCM WAV/FLAC under a temporary name, then rename into place."""
    with atomic_open(target, "wb") as handle:
        # Through the descriptor, not the file object: libsndfile then writes by itself instead
        # of calling back into Python (for the GIL) for every block. Nothing else writes to
        # ``handle``, so its buffer stays empty. (libsndfile syncs the samples as it closes;
        # atomic_open syncs again once the header is final.)
        with soundfile.SoundFile(handle.fileno(), "w", spec.sample_rate, samples.shape[1], "PCM_16",
                                 format=_SOUNDFILE_FORMATS[spec.audio_format], closefd=False) as output:
            output.write(samples)

