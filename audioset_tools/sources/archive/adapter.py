"""An archive behind the :class:`~..base.Source` seam.

The index answers :meth:`ArchiveClipSource.holds` before any audio is read, so the
scheduler never hands an archive a clip it lacks. Archive outcomes map onto the shared
:class:`~..outcomes.Outcome` values: ``too_short`` and ``decode_error`` are permanent
failures of this source for that clip (the next source is tried); a clip the index lost
between lookup and read is ``unavailable`` here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...dataset.audio_info import sha256_file
from ..base import ClipJob, ClipResult, Slot, Source
from ..outcomes import Outcome
from .source import ArchiveOutcome, ArchiveSource

_OUTCOMES = {
    ArchiveOutcome.OK: Outcome.OK,
    ArchiveOutcome.NOT_IN_ARCHIVE: Outcome.UNAVAILABLE,
    ArchiveOutcome.TOO_SHORT: Outcome.TOO_SHORT,
    ArchiveOutcome.DECODE_ERROR: Outcome.DECODE_ERROR,
}


class ArchiveClipSource(Source):
    kind = "archive"
    knows_its_holdings = True

    def __init__(self, archive: ArchiveSource) -> None:
        super().__init__(archive.name)
        self.archive = archive

    @classmethod
    def open(cls, path: str | Path, cache_dir: Path, archive_format: str = "auto", name: str = "archive1",
             ffmpeg: str | None = None, progress: bool = False) -> ArchiveClipSource:
        return cls(ArchiveSource.open(path, cache_dir, archive_format, name=name, ffmpeg=ffmpeg, progress=progress))

    def preflight(self) -> str:
        index = self.archive.index
        return f"{len(index):,} clips indexed in {index.files.root} ({self.archive.format.value})"

    def holds(self, job: ClipJob) -> bool:
        return self.archive.has(job.ytid, job.start_seconds, job.end_seconds)

    def produce(self, job: ClipJob, slot: Slot) -> ClipResult | None:
        # Archives are local data: read here, whichever slot asks (a Dask worker elsewhere
        # could not see the archive).
        produced = self.archive.produce(job.ytid, job.start_seconds, job.end_seconds, job.spec, Path(job.target))
        outcome = _OUTCOMES[produced.outcome]
        message = produced.message or f"{job.frames} samples from {produced.origin}"
        history = (f"{outcome.value}: {message}",)
        if outcome is not Outcome.OK:
            return ClipResult(outcome, message, attempts=1, history=history, origin=produced.origin)
        return ClipResult(
            outcome, message, attempts=1, file=Path(job.target), sha256=sha256_file(job.target),
            duration=job.frames / job.spec.sample_rate, sample_rate=job.spec.sample_rate,
            channels=job.spec.channels, history=history, origin=produced.origin,
        )

    def identity(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.archive.identity()}

    def coverage(self, segments: list[tuple[str, float, float]]) -> int:
        return self.archive.coverage(segments)

    def close(self) -> None:
        self.archive.close()
