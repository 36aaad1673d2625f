"""Facts about a finished audio file: duration, format, checksum, silence."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import soundfile

_BLOCK_FRAMES = 1 << 16
_HASH_BLOCK = 1 << 20


class AudioReadError(Exception):
    """The file is missing, not audio, or corrupt."""


@dataclasses.dataclass(frozen=True)
class AudioInfo:
    duration: float
    sample_rate: int
    channels: int
    frames: int


def segment_frames(start_seconds: float, end_seconds: float, sample_rate: int) -> int:
    """Samples per channel of a clip of ``[start, end)``: every clip has exactly this many."""
    return round((end_seconds - start_seconds) * sample_rate)


def probe_audio(path: Path) -> AudioInfo:
    """Read the header of a wav/flac file; the frame count is what a decoder will deliver."""
    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioReadError(f"{path}: not readable audio ({exc})") from exc
    if info.samplerate <= 0 or info.frames < 0:
        raise AudioReadError(f"{path}: invalid audio header")
    return AudioInfo(
        duration=info.frames / info.samplerate,
        sample_rate=int(info.samplerate),
        channels=int(info.channels),
        frames=int(info.frames),
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def samples_sha256(path: Path) -> str:
    """SHA-256 of the decoded samples: interleaved, as little-endian 32-bit integers.

    Unlike the file's sha256 it ignores everything but the audio (headers, metadata
    chunks, the encoder's tag, FLAC framing), so a re-encode of the same samples keeps
    it and any changed sample changes it. Read in blocks so a long file never has to fit
    in memory.
    """
    digest = hashlib.sha256()
    try:
        with soundfile.SoundFile(str(path)) as sound:
            for block in sound.blocks(blocksize=_BLOCK_FRAMES, dtype="int32", always_2d=True):
                digest.update(block.astype("<i4", copy=False).tobytes())
    except (soundfile.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioReadError(f"{path}: not readable audio ({exc})") from exc
    return digest.hexdigest()


def is_silent(path: Path) -> bool:
    """True when every sample is identical (std = 0, the MetaAudio rule), e.g. all zeros.

    Read in blocks so a long file never has to fit in memory.
    """
    try:
        with soundfile.SoundFile(str(path)) as sound:
            first: np.ndarray | None = None
            for block in sound.blocks(blocksize=_BLOCK_FRAMES, dtype="float32", always_2d=True):
                if first is None and len(block):
                    first = block[0].copy()
                if first is not None and not np.all(block == first):
                    return False
    except (soundfile.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioReadError(f"{path}: not readable audio ({exc})") from exc
    return True
