"""Reading clips for post-processing, and cutting them into fixed-length chunks."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf


class ClipReadError(Exception):
    """A clip that cannot be decoded; the message says why (per-clip, never fatal to a run)."""


def read_clip(path: Path, dtype: Literal["float32", "float64", "int16"] = "float32") -> tuple[np.ndarray, int]:
    """Samples as ``(frames,)`` for mono or ``(channels, frames)``, and the sample rate."""
    try:
        with sf.SoundFile(str(path)) as clip:
            sample_rate = clip.samplerate
            if dtype == "float32" and clip.subtype == "PCM_16":
                # Same values as libsndfile's own float conversion, at a quarter of the cost.
                data = clip.read(dtype="int16").astype(np.float32) * np.float32(1 / 32768)
            else:
                data = clip.read(dtype=dtype)
    except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as exc:
        raise ClipReadError(f"cannot decode {path.name}: {exc}") from None
    if data.shape[0] == 0:
        raise ClipReadError(f"{path.name} holds no samples")
    if data.ndim == 1:
        return data, int(sample_rate)
    return np.ascontiguousarray(data.T), int(sample_rate)


def to_mono(samples: np.ndarray) -> np.ndarray:
    return samples if samples.ndim == 1 else samples.mean(axis=0, dtype=np.float32)


def chunk_signal(
    signal: np.ndarray, chunk_samples: int, remainder: Literal["pad", "drop"]
) -> list[np.ndarray]:
    """Equal chunks of a mono signal; the last partial one is dropped, or zero-padded when
    it holds at least half a chunk (a sliver of audio in a chunk of zeros is not a sample)."""
    whole, rest = divmod(signal.shape[0], chunk_samples)
    chunks = [signal[i * chunk_samples : (i + 1) * chunk_samples] for i in range(whole)]
    if remainder == "pad" and rest * 2 >= chunk_samples:
        last = np.zeros(chunk_samples, dtype=signal.dtype)
        last[:rest] = signal[whole * chunk_samples :]
        chunks.append(last)
    return chunks
