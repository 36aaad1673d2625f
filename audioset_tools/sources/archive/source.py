"""An archive as a source of clips: look a segment up, cut it to the output spec, write it atomically.

:meth:`ArchiveSource.produce` never raises for a clip's own problem: it returns an
:class:`ArchiveClipResult` whose outcome is ``ok``, ``not_in_archive``, ``too_short`` or
``decode_error`` (the last two carry the same values as the YouTube path's outcomes).
``not_in_archive`` is not a failure of the clip, only a reason to try the next source.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import soundfile

from ...atomic import atomic_open
from ...dataset.ids import is_valid_ytid
from ..output_spec import OutputSpec
from .convert import Shortfall, fit_to_segment
from .decode import ArchiveDecodeError
from .files import ArchiveFormat
from .index import ArchiveIndex, Location, load_or_build_index
from .read import ArchiveReader
from .scratch import for_this_thread

log = logging.getLogger(__name__)

_SOUNDFILE_FORMATS = {"wav": "WAV", "flac": "FLAC"}


class ArchiveOutcome(str, enum.Enum):
    OK = "ok"
    NOT_IN_ARCHIVE = "not_in_archive"
    # Shorter than the segment, or zero-padded to look complete (see ``padded``).
    TOO_SHORT = "too_short"
    # Not decodable, or NaN/inf samples.
    DECODE_ERROR = "decode_error"

    def __str__(self) -> str:
        return self.value


@dataclasses.dataclass(frozen=True)
class ArchiveClipResult:
    ytid: str
    outcome: ArchiveOutcome
    message: str = ""
    # Where in the archive the clip was found (``file`` or ``file#row``), for provenance.
    origin: str = ""
    # Frames per channel written (exactly the segment's count when ok).
    frames: int = 0
    padded: bool = False

    @property
    def ok(self) -> bool:
        return self.outcome is ArchiveOutcome.OK


class ArchiveSource:
    """One configured archive: its index plus a reader. Pickles for worker processes."""

    def __init__(self, name: str, index: ArchiveIndex, ffmpeg: str | None = None) -> None:
        self.name = name
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
            "format": self.format.value,
            "root": str(self.index.files.root),
            "files": [dataclasses.asdict(s) for s in self.index.files.stamps],
            "clips": len(self.index),
        }

    def locate(self, ytid: str, start_seconds: float, end_seconds: float) -> Location | None:
        return self.index.locate(ytid, start_seconds, end_seconds)

    def has(self, ytid: str, start_seconds: float, end_seconds: float) -> bool:
        return self.locate(ytid, start_seconds, end_seconds) is not None

    def coverage(self, segments: Iterable[tuple[str, float, float]]) -> int:
        """How many of these (ytid, start, end) segments the archive holds (before reading any audio)."""
        return sum(self.has(*segment) for segment in segments)

    def order_key(self, ytid: str, start_seconds: float, end_seconds: float) -> tuple[int, int, int]:
        """Sort jobs by this so each Parquet row group is decoded once (archive order; absent clips last)."""
        location = self.locate(ytid, start_seconds, end_seconds)
        if location is None:
            return (len(self.index.files.stamps), 0, 0)
        return self.reader.locality_key(location)

    def produce(self, ytid: str, start_seconds: float, end_seconds: float, spec: OutputSpec,
                target: Path) -> ArchiveClipResult:
        """Write the segment to ``target`` (atomically) in ``spec``, or say why not.

        Nothing is written unless the outcome is ok; an existing ``target`` is replaced
        only by a finished file.
        """
        if not is_valid_ytid(ytid):
            raise ValueError(f"invalid YouTube ID {ytid!r}")
        if not 0 <= start_seconds < end_seconds:
            raise ValueError(f"{ytid}: need 0 <= start < end, got [{start_seconds}, {end_seconds}]")
        location = self.locate(ytid, start_seconds, end_seconds)
        if location is None:
            return ArchiveClipResult(ytid, ArchiveOutcome.NOT_IN_ARCHIVE, f"not in archive {self.name}")
        origin = self.index.describe(location)
        # This thread's buffers: a clip's arrays live until it is written, then serve the next.
        scratch = for_this_thread()
        try:
            decoded = self.reader.read(location, scratch)
        except (ArchiveDecodeError, OSError, pa.ArrowException) as exc:
            # h5py reports a damaged file as OSError, pyarrow as ArrowException.
            return ArchiveClipResult(ytid, ArchiveOutcome.DECODE_ERROR, f"{origin}: {exc}", origin)
        fitted = fit_to_segment(decoded, end_seconds - start_seconds, spec, scratch)
        if isinstance(fitted, Shortfall):
            return ArchiveClipResult(ytid, ArchiveOutcome(fitted.outcome), f"{origin}: {fitted.message}", origin,
                                     padded=fitted.padded)
        write_clip(Path(target), fitted, spec)
        return ArchiveClipResult(ytid, ArchiveOutcome.OK, "", origin, frames=len(fitted))

    def close(self) -> None:
        self.reader.close()


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

