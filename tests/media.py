"""Test media whose audio encodes time, and the checks that read the time back.

Every source is a sine tone whose frequency steps once per second:
second ``k`` of the source (``k <= t < k + 1``) sounds at ``tone_frequency(k)`` Hz.
The pattern repeats every ``CYCLE_SECONDS`` (100 s), so sources of any length (benchmarks
use 5-minute ones) can be made; within a cycle every second is unique.
Decoding any clip and naming the frequency of each of its seconds therefore tells
exactly which seconds of the source it holds, so a test can prove a clip is
``[start, end]`` of its source rather than merely "10 s of something".

Functions:

- :func:`make_tone_source` writes a time-encoded source (``.webm`` = Opus, ``.m4a`` = AAC,
  ``.mp3``, ``.flac`` or ``.wav``, picked by the suffix) with the real ffmpeg.
- :func:`make_non_finite_source` writes a float WAV time-encoded source with a burst of NaN
  and infinite samples (what a broken upload can decode to).
- :func:`make_video_only_source` writes a webm with a video stream and no audio
  (the "not audio" case).
- :func:`clip_seconds` decodes a clip and returns the source second of each of its seconds.
- :func:`alignment_error` measures, by cross-correlation with the fully decoded source,
  how far (in seconds) a clip starts from where it should.
- :func:`decode` decodes any file to float32 mono samples at a given rate (through ffmpeg,
  so it reads what soundfile cannot, e.g. webm).

Generation costs a fraction of a second per file; ``tests/conftest.py`` caches the
sources once per test session.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import soundfile

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()

BASE_FREQUENCY = 300.0
STEP_FREQUENCY = 50.0
# 16 kHz output keeps everything below 8 kHz; 100 steps of 50 Hz stay far below it.
CYCLE_SECONDS = 100
MAX_SECONDS = 3600

_CODECS = {
    # Cues first, as in the DASH webm streams YouTube serves: a seek needs no trip to the end.
    ".webm": ["-c:a", "libopus", "-b:a", "32k", "-cues_to_front", "1"],
    # faststart puts the index first, as streaming sites serve mp4 audio.
    ".m4a": ["-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart"],
    ".mp3": ["-c:a", "libmp3lame", "-b:a", "64k"],
    ".flac": ["-c:a", "flac"],
    ".wav": ["-c:a", "pcm_s16le"],
}


def tone_frequency(second: int) -> float:
    """Frequency (Hz) of the tone during source second ``second``."""
    return BASE_FREQUENCY + STEP_FREQUENCY * (second % CYCLE_SECONDS)


def make_tone_source(path: Path, duration: float, sample_rate: int = 48000, channels: int = 2) -> Path:
    """Write a time-encoded source of ``duration`` seconds; the codec follows the suffix."""
    path = Path(path)
    if path.suffix not in _CODECS:
        raise ValueError(f"unsupported test media suffix {path.suffix!r}; use one of {sorted(_CODECS)}")
    if not 0 < duration <= MAX_SECONDS:
        raise ValueError(f"duration must be in (0, {MAX_SECONDS}] s")
    expression = f"0.5*sin(2*PI*({BASE_FREQUENCY}+{STEP_FREQUENCY}*mod(floor(t),{CYCLE_SECONDS}))*t)"
    # Stereo sources make the channel down-mix part of what the tests exercise.
    exprs = "|".join([expression] * channels)
    _run_ffmpeg(
        ["-f", "lavfi", "-i", f"aevalsrc=exprs='{exprs}':s={sample_rate}:d={duration}", *_CODECS[path.suffix], str(path)]
    )
    return path


def make_non_finite_source(path: Path, duration: float, bad_from: float, bad_seconds: float = 0.01,
                           sample_rate: int = 48000) -> Path:
    """A mono 32-bit float WAV tone source whose samples in ``[bad_from, bad_from + bad_seconds)``
    are NaN, except the last tenth of them, which are +inf."""
    seconds = np.arange(int(round(duration * sample_rate))) / sample_rate
    frequency = BASE_FREQUENCY + STEP_FREQUENCY * (np.floor(seconds) % CYCLE_SECONDS)
    samples = (0.5 * np.sin(2 * np.pi * frequency * seconds)).astype("<f4")
    first, count = int(bad_from * sample_rate), max(1, int(bad_seconds * sample_rate))
    samples[first:first + count] = np.nan
    samples[first + count - max(1, count // 10):first + count] = np.inf
    soundfile.write(str(path), samples, sample_rate, subtype="FLOAT", format="WAV")
    return Path(path)


def make_video_only_source(path: Path, duration: float = 5.0) -> Path:
    """Write a tiny VP8 webm with no audio stream at all."""
    _run_ffmpeg(
        ["-f", "lavfi", "-i", f"testsrc=size=32x32:rate=5:duration={duration}", "-c:v", "libvpx", "-an", str(path)]
    )
    return Path(path)


def _run_ffmpeg(arguments: list[str]) -> None:
    completed = subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *arguments],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({completed.returncode}): {completed.stderr.strip()}")


def decode(path: Path, sample_rate: int = 16000) -> np.ndarray:
    """Decode ``path`` to float32 mono samples at ``sample_rate`` with ffmpeg."""
    completed = subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(path),
         "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "-"],
        capture_output=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"ffmpeg could not decode {path}: {completed.stderr.decode(errors='replace').strip()}")
    return np.frombuffer(completed.stdout, dtype="<f4").copy()


def dominant_frequency(samples: np.ndarray, sample_rate: int) -> float:
    """Frequency of the strongest spectral peak (Hz), windowed to keep leakage low."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * sample_rate / len(samples))


def source_second(frequency: float) -> int:
    """The source second (modulo ``CYCLE_SECONDS``) whose tone is closest to ``frequency``."""
    return int(round((frequency - BASE_FREQUENCY) / STEP_FREQUENCY))


def clip_seconds(path: Path, sample_rate: int = 16000, start_offset: float = 0.0) -> list[int]:
    """Source second (modulo ``CYCLE_SECONDS``) heard in each whole second of the clip.

    Each second is analysed on its middle 80 %, so a clip that starts a few
    milliseconds early or late still reads correctly; whether it starts exactly
    on time is :func:`alignment_error`'s job. ``start_offset`` is the fractional
    part of a clip's start (0 for whole-second starts).
    """
    samples = decode(path, sample_rate)
    seconds = []
    # The first whole source second inside the clip begins (1 - frac) into the clip.
    first = (1.0 - start_offset) % 1.0
    position = first
    # A second counts once its analysed part is complete (codecs may end a few ms early).
    while position + 0.9 <= len(samples) / sample_rate:
        lo = int((position + 0.1) * sample_rate)
        hi = int((position + 0.9) * sample_rate)
        seconds.append(source_second(dominant_frequency(samples[lo:hi], sample_rate)))
        position += 1.0
    return seconds


def alignment_error(clip: Path, source: Path, start: float, sample_rate: int = 16000,
                    search: float = 0.25) -> float:
    """Seconds by which ``clip`` starts after ``start`` in ``source`` (negative = before).

    The source is decoded whole (no seeking, an independent path from the code under
    test) and the clip is slid over ``start +- search`` to find the best match.
    """
    clip_samples = decode(clip, sample_rate)
    source_samples = decode(source, sample_rate)
    centre = int(round(start * sample_rate))
    reach = int(search * sample_rate)
    length = min(len(clip_samples), 2 * sample_rate)
    probe = clip_samples[:length]
    best_lag, best_score = 0, -np.inf
    for lag in range(-reach, reach + 1):
        begin = centre + lag
        if begin < 0 or begin + length > len(source_samples):
            continue
        window = source_samples[begin:begin + length]
        denominator = np.linalg.norm(window) * np.linalg.norm(probe)
        if denominator == 0:
            continue
        score = float(np.dot(window, probe) / denominator)
        if score > best_score:
            best_lag, best_score = lag, score
    if best_score < 0.9:
        raise AssertionError(f"{clip} does not match {source} near {start} s (best correlation {best_score:.3f})")
    return best_lag / sample_rate
