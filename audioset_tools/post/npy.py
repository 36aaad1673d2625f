"""wav -> npy: one array per clip, mirroring the class folders (``audioset-tools to-npy``)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from .audio import ClipReadError, read_clip
from .derived import ConversionSummary, ItemResult, convert_dataset, save_array
from .parallel import default_workers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NpySettings:
    dtype: Literal["float32", "int16"] = "float32"
    zscore: bool = False

    def __post_init__(self) -> None:
        if self.zscore and self.dtype != "float32":
            raise ValueError("zscore needs dtype float32")


def zscore(samples: np.ndarray) -> np.ndarray:
    """Per-clip z-normalisation; a constant clip becomes zeros rather than NaN."""
    centred = samples - samples.mean(dtype=np.float64)
    std = float(centred.std(dtype=np.float64))
    return (centred / std if std > 0 else centred).astype(np.float32)


def clip_to_array(path: Path, settings: NpySettings) -> np.ndarray:
    """``(frames,)`` for mono, ``(channels, frames)`` otherwise."""
    samples, _ = read_clip(path, dtype=settings.dtype)
    return zscore(samples) if settings.zscore else samples


def _convert_batch(batch: list[tuple[str, str]], settings: NpySettings) -> list[ItemResult]:
    results = []
    for source, target in batch:
        try:
            array = clip_to_array(Path(source), settings)
        except ClipReadError as exc:
            results.append(ItemResult(error=str(exc)))
            continue
        save_array(Path(target), array)
        results.append(ItemResult(shape=array.shape))
    return results


def convert_to_npy(
    output_dir: Path,
    npy_dir: Path,
    settings: NpySettings,
    workers: int | None = None,
    batch_clips: int = 32,
) -> ConversionSummary:
    """Write every clip of the dataset as ``.npy`` under ``npy_dir`` (resumable)."""
    return convert_dataset(
        output_dir,
        npy_dir,
        kind="npy",
        params=asdict(settings),
        chunked=False,
        function=_convert_batch,
        settings=settings,
        workers=default_workers(workers),
        batch_clips=batch_clips,
        description="wav -> npy",
    )
