"""Decode archive audio in-process, with ffmpeg only for what libsndfile cannot read.

soundfile (libsndfile >= 1.1) reads WAV, FLAC, Ogg/Vorbis/Opus and MP3 from a path or from
bytes in memory (through the thread's in-memory file, see :mod:`.scratch`), with no process
start; ffmpeg (one call, output piped back as float WAV) covers the rest (m4a, webm, ...).
Both give the file's own rate and channels, as int16 for 16-bit audio and float32 otherwise;
converting to the output spec is :mod:`.convert`'s job.
"""

from __future__ import annotations

import dataclasses
import io
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from .scratch import Scratch, empty

_DECODE_TIMEOUT = 300.0


class ArchiveDecodeError(Exception):
    """The archive's data for a clip is not decodable audio."""


@dataclasses.dataclass(frozen=True)
class Decoded:
    # (frames, channels): int16 for 16-bit sources (full scale 32768), kept as integers until
    # the filter needs floats; otherwise float32 in [-1, 1]. :mod:`.convert` takes both, and
    # an int16 clip gives the same output as its float32 copy divided by 32768.
    samples: np.ndarray
    sample_rate: int
    # Decoded from integer samples (PCM, FLAC, an int16 HDF5 row): every value is finite, so
    # the NaN/inf check can be skipped.
    integer_source: bool = False


def default_ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def decode_file(path: Path, ffmpeg: str | None = None, scratch: Scratch | None = None) -> Decoded:
    """Decode a whole file; with a ``scratch``, the samples may be one of its buffers."""
    try:
        return _decode_with_soundfile(str(path), scratch)
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        return _decode_with_ffmpeg(["-i", f"file:{path}"], ffmpeg, str(path))
    except OSError as exc:
        raise ArchiveDecodeError(f"{path}: cannot read ({exc})") from None


def decode_bytes(data: bytes | Any, what: str, ffmpeg: str | None = None, scratch: Scratch | None = None) -> Decoded:
    """Decode one compressed clip held in memory (an MP3 or FLAC cell of an archive).

    ``data`` is bytes or a pyarrow Buffer (read where it lies, not copied). With a
    ``scratch``, the samples may be one of its buffers.
    """
    if not len(data):
        raise ArchiveDecodeError(f"{what}: the archive holds no bytes for this clip")
    try:
        # From the thread's in-memory file where there is one (see .scratch: no GIL needed).
        descriptor = scratch.memory_file(data) if scratch is not None else None
        return _decode_with_soundfile(_readable(data) if descriptor is None else descriptor, scratch)
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        # Through a file, not a pipe: containers such as mp4 with the index at the end need to seek.
        with tempfile.TemporaryDirectory(prefix="audioset-tools-decode-") as folder:
            spilled = Path(folder) / "clip"
            spilled.write_bytes(data)
            return _decode_with_ffmpeg(["-i", f"file:{spilled}"], ffmpeg, what)


def _readable(data: bytes | Any) -> Any:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return io.BytesIO(data)
    import pyarrow as pa

    return pa.BufferReader(data)


def _decode_with_soundfile(file: str | int | Any, scratch: Scratch | None) -> Decoded:
    # closefd=False: a descriptor given here stays its owner's.
    with soundfile.SoundFile(file, closefd=False) as opened:
        subtype = opened.subtype
        rate = opened.samplerate
        # 16-bit audio as int16, exactly (half the memory traffic of float32); the rest as float32.
        dtype = np.int16 if subtype == "PCM_16" else np.float32
        # soundfile.read reads opened.frames frames too; into a kept buffer, no fresh pages.
        out = empty(scratch, "decoded", (opened.frames, opened.channels), dtype) if opened.frames > 0 else None
        samples = opened.read(dtype=np.dtype(dtype).name, always_2d=True, out=out)
    return Decoded(samples, int(rate), integer_source=_is_integer_subtype(subtype))


def _is_integer_subtype(subtype: str) -> bool:
    # Integer PCM, also as FLAC's subtypes (PCM_16, PCM_24); floats and lossy codecs are not.
    return subtype.startswith("PCM_") or subtype in ("ALAW", "ULAW")


def _decode_with_ffmpeg(input_arguments: list[str], ffmpeg: str | None, what: str) -> Decoded:
    # ``file:`` so that no file name is ever taken for a protocol or an option.
    command = [ffmpeg or default_ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin",
               *input_arguments, "-map", "0:a:0", "-c:a", "pcm_f32le", "-f", "wav", "pipe:1"]
    try:
        completed = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                                   timeout=_DECODE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise ArchiveDecodeError(f"{what}: ffmpeg took more than {_DECODE_TIMEOUT:g} s to decode it") from None
    if completed.returncode != 0 or not completed.stdout:
        reason = completed.stderr.decode("utf-8", errors="replace").strip().splitlines()
        raise ArchiveDecodeError(f"{what}: not decodable audio ({reason[-1] if reason else 'no audio stream'})")
    try:
        samples, rate = soundfile.read(io.BytesIO(completed.stdout), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        raise ArchiveDecodeError(f"{what}: ffmpeg's output was not readable ({exc})") from None
    return Decoded(samples, int(rate))
