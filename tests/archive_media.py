"""Time-encoded audio for archive tests, made in numpy, and the archives that hold it.

The signal is the one tests/media.py describes (second ``k`` of a video sounds at
``300 + 50 * (k % 100)`` Hz), but computed directly as a function of the video's time, so
a test can build the exact expected clip for any segment and any output rate and compare
samples, not just which second is heard. Archives (a folder of files, a PANNs HDF5, a
PaSST mp3 HDF5, a Hugging Face style Parquet) are written with the real h5py and pyarrow.
"""

from __future__ import annotations

import io
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile
from media import FFMPEG

AMPLITUDE = 0.5
PANNS_RATE = 32000
PANNS_FRAMES = 320000


def tone(start_seconds: float, duration: float, rate: int, channels: int = 1) -> np.ndarray:
    """``duration`` seconds of the video's signal from ``start_seconds``: float32 (frames, channels)."""
    frames = int(round(duration * rate))
    t = start_seconds + np.arange(frames, dtype=np.float64) / rate
    frequency = 300.0 + 50.0 * (np.floor(t) % 100)
    mono = AMPLITUDE * np.sin(2 * np.pi * frequency * t)
    # Channels differ slightly, so a down-mix is checked, not just a channel copy.
    columns = [mono * (1.0 - 0.1 * c) for c in range(channels)]
    return np.stack(columns, axis=1).astype(np.float32)


def to_int16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(samples.astype(np.float64) * 32768), -32768, 32767).astype(np.int16)


def encode(samples: np.ndarray, rate: int, audio_format: str) -> bytes:
    """WAV / FLAC through soundfile; MP3 through ffmpeg's LAME, as the PaSST packs were made."""
    if audio_format == "mp3":
        # To a file, not a pipe: only then can LAME's header (encoder delay, padding) be written,
        # which decoders need to return the samples without the codec's priming.
        with tempfile.TemporaryDirectory() as folder:
            output = Path(folder) / "clip.mp3"
            subprocess.run(
                [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "s16le", "-ar", str(rate),
                 "-ac", str(samples.shape[1]), "-i", "pipe:0", "-c:a", "libmp3lame", "-b:a", "128k", str(output)],
                input=to_int16(samples).tobytes(), capture_output=True, check=True,
            )
            return output.read_bytes()
    buffer = io.BytesIO()
    soundfile.write(buffer, to_int16(samples), rate, format=audio_format.upper(), subtype="PCM_16")
    return buffer.getvalue()


def write_file(path: Path, samples: np.ndarray, rate: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode(samples, rate, path.suffix.lstrip(".")))
    return path


def make_panns_hdf5(path: Path, clips: list[tuple[str, np.ndarray]]) -> Path:
    """PANNs layout: ``audio_name`` S20, int16 ``waveform`` (N, 320000) zero-padded, ``target`` (N, 527)."""
    import h5py

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        handle.create_dataset("audio_name", data=np.array([name.encode() for name, _ in clips], dtype="S20"))
        waveform = handle.create_dataset("waveform", shape=(len(clips), PANNS_FRAMES), dtype=np.int16)
        for row, (_, samples) in enumerate(clips):
            padded = np.zeros(PANNS_FRAMES, dtype=np.int16)
            mono = to_int16(samples[:PANNS_FRAMES, 0])
            padded[: len(mono)] = mono
            waveform[row] = padded
        handle.create_dataset("target", data=np.zeros((len(clips), 527), dtype=bool))
    return path


def make_mp3_hdf5(path: Path, clips: list[tuple[str, bytes]]) -> Path:
    """PaSST / EfficientAT layout: ``audio_name`` and ``mp3`` as variable-length uint8.

    The names are variable-length strings here (the PANNs helper uses fixed ``S20``), so
    both name encodings are exercised.
    """
    import h5py

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        handle.create_dataset("audio_name", data=[name for name, _ in clips], dtype=h5py.string_dtype())
        mp3 = handle.create_dataset("mp3", shape=(len(clips),), dtype=h5py.vlen_dtype(np.dtype("uint8")))
        for row, (_, data) in enumerate(clips):
            mp3[row] = np.frombuffer(data, dtype=np.uint8)
        handle.create_dataset("target", data=np.zeros((len(clips), 527), dtype=bool))
    return path


def make_parquet(path: Path, clips: list[tuple[str, bytes]], row_group_size: int = 4) -> Path:
    """Hugging Face agkphysics layout: ``video_id``, ``audio`` {bytes, path}, ``labels``, ``human_labels``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "video_id": [ytid for ytid, _ in clips],
        "audio": [{"bytes": data, "path": f"{ytid}.flac"} for ytid, data in clips],
        "labels": [["/m/09x0r"] for _ in clips],
        "human_labels": [["Speech"] for _ in clips],
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def expected_clip(start: float, end: float, sample_rate: int, channels: int, source_channels: int) -> np.ndarray:
    """The video's signal for [start, end) as the output spec holds it (channels mapped like the code under test)."""
    source = tone(start, end - start, sample_rate, source_channels)
    if source_channels == channels:
        return source
    mono = source.mean(axis=1, keepdims=True)
    return np.repeat(mono, channels, axis=1)


def assert_exact_clip(path: Path, start: float, end: float, sample_rate: int, channels: int,
                      source_channels: int = 1, tolerance: float = 0.01, edge_seconds: float = 0.02) -> None:
    """The file holds exactly [start, end) of the video at this rate: frame count and samples.

    Samples are compared with the signal computed directly, away from each second's frequency
    jump (a discontinuity the resampler smooths) and from the clip's ends.
    """
    samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    assert rate == sample_rate
    assert samples.shape == (int(round((end - start) * sample_rate)), channels), samples.shape
    reference = expected_clip(start, end, sample_rate, channels, source_channels)
    t = start + np.arange(len(samples)) / sample_rate
    distance = np.abs(t - np.round(t))
    keep = (distance > edge_seconds) & (t > start + edge_seconds) & (t < end - edge_seconds)
    error = np.abs(samples[keep] - reference[keep]).max()
    assert error < tolerance, f"{path.name}: max error {error:.4f} against [{start}, {end})"
