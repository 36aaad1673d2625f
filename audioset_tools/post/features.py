"""Log-mel spectrograms of a whole dataset, in parallel batches (``audioset-tools melspec``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from .audio import ClipReadError, chunk_signal, read_clip, to_mono
from .derived import ConversionSummary, ItemResult, convert_dataset, save_array
from .melspec import BLOCK_FRAMES, MelParams, log_mel_batch, zscore
from .parallel import default_workers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureSettings:
    mel: MelParams = MelParams()
    # Variable-length option: None = one spectrogram per clip.
    chunk_seconds: float | None = None
    chunk_remainder: Literal["pad", "drop"] = "pad"

    @property
    def chunk_samples(self) -> int | None:
        if self.chunk_seconds is None:
            return None
        return max(1, round(self.chunk_seconds * self.mel.sample_rate))

    def as_dict(self) -> dict:
        return {
            "mel": self.mel.as_dict(),
            "chunk_seconds": self.chunk_seconds,
            "chunk_remainder": self.chunk_remainder,
        }


def _signals(path: Path, settings: FeatureSettings) -> list[np.ndarray]:
    samples, sample_rate = read_clip(path)
    if sample_rate != settings.mel.sample_rate:
        raise ClipReadError(
            f"{path.name} is {sample_rate} Hz but postprocess.melspec.sample_rate is "
            f"{settings.mel.sample_rate}; download at that rate (audio.sample_rate) or change the setting"
        )
    mono = to_mono(samples)
    if settings.mel.style == "metaaudio":
        try:
            mono = zscore(mono)  # the whole clip, before any chunking, as MetaAudio does
        except ValueError as exc:
            raise ClipReadError(f"{path.name}: {exc}") from None
    if settings.mel.pad_mode == "reflect" and mono.shape[0] <= settings.mel.n_fft // 2:
        raise ClipReadError(f"{path.name} has {mono.shape[0]} samples, too few for reflect padding")
    if settings.chunk_samples is None:
        return [mono]
    chunks = chunk_signal(mono, settings.chunk_samples, settings.chunk_remainder)
    if not chunks:
        raise ClipReadError(
            f"{path.name} ({mono.shape[0] / sample_rate:.2f} s) is too short for one "
            f"{settings.chunk_seconds:g} s chunk"
        )
    return chunks


def _convert_batch(batch: list[tuple[str, str]], settings: FeatureSettings) -> list[ItemResult]:
    """Read, transform and save the clips a block of frames at a time.

    Holding only about one block of signals keeps the working memory under the
    allocator's trim threshold, so it is reused instead of being returned to the system
    and faulted in again: reading a whole batch first (32 clips of 10 s) cost about 200
    page faults and 0.3 ms of system time more per clip.
    """
    results: list[ItemResult | None] = [None] * len(batch)
    pending: list[tuple[int, list[np.ndarray]]] = []
    frames = 0
    for position, (source, _) in enumerate(batch):
        try:
            pieces = _signals(Path(source), settings)
        except ClipReadError as exc:
            results[position] = ItemResult(error=str(exc))
            continue
        pending.append((position, pieces))
        frames += sum(settings.mel.n_frames(piece.shape[0]) for piece in pieces)
        if frames >= BLOCK_FRAMES:
            _transform_and_save(pending, batch, settings, results)
            pending, frames = [], 0
    _transform_and_save(pending, batch, settings, results)
    return results  # type: ignore[return-value]


def _transform_and_save(
    pending: list[tuple[int, list[np.ndarray]]],
    batch: list[tuple[str, str]],
    settings: FeatureSettings,
    results: list[ItemResult | None],
) -> None:
    """Spectrograms of the pending clips' pieces, saved per clip into ``results``."""
    spectrograms = iter(log_mel_batch([piece for _, pieces in pending for piece in pieces], settings.mel))
    for position, pieces in pending:
        results[position] = _save(batch[position][1], [next(spectrograms) for _ in pieces], settings)


def _save(target: str, spectrograms: list[np.ndarray], settings: FeatureSettings) -> ItemResult:
    if settings.chunk_samples is None:
        save_array(Path(target), spectrograms[0])
        return ItemResult(shape=spectrograms[0].shape)
    stack = np.stack(spectrograms)
    save_array(Path(target), stack)
    return ItemResult(shape=stack.shape[1:], chunks=stack.shape[0])


def compute_melspecs(
    output_dir: Path,
    features_dir: Path,
    settings: FeatureSettings,
    workers: int | None = None,
    batch_clips: int = 32,
) -> ConversionSummary:
    """Write the log-mel spectrogram of every clip under ``features_dir`` (resumable)."""
    return convert_dataset(
        output_dir,
        features_dir,
        kind="melspec",
        params=settings.as_dict(),
        chunked=settings.chunk_samples is not None,
        function=_convert_batch,
        settings=settings,
        workers=default_workers(workers),
        batch_clips=batch_clips,
        description="log-mel",
    )
