"""Turn a decoded archive clip into exactly the segment, in the output spec (pure functions).

Rules (docs/sources.md explains them to users):

- The archive clip is taken to start at the segment's start. Its first
  ``round(duration * source_rate)`` frames are the segment.
- Non-finite samples (NaN, +-inf) make the clip a ``decode_error``: ffmpeg would turn them
  into full-scale noise without a word.
- The clip must cover the segment to within :data:`CODEC_ALLOWANCE_SECONDS` (a codec's
  priming or padding). Shorter is ``too_short``. Trailing exact-zero samples do not count
  as coverage: PANNs packs pad every clip to 10 s with zeros, so a clip whose last non-zero
  sample comes earlier than that is ``too_short`` too, with its message saying it was
  zero-padded (the result's ``padded`` flag). Digital silence at the very end of a real
  recording is rare and short; when it is longer than the allowance it is reported the
  same way, and the next source is tried, rather than passing padding off as audio.
- Channels: equal counts are kept; down to mono is the mean of the channels; up from mono
  repeats it; any other change goes through mono.
- Rate: ``scipy.signal.resample_poly``'s polyphase filter for the reduced ratio of the two
  rates (:mod:`.resample`, which applies it faster for the common ratios), fed a few frames
  past the segment end when the clip has them (so the end of the clip is filtered like its
  middle), then cut to exactly ``round(duration * output_rate)`` frames; the few frames a
  codec allowance may leave missing are zeros.
- 16-bit output is ``round(x * 32768)`` clipped to int16, so an int16 archive at the
  output rate and channel count is copied bit for bit. 16-bit sources stay int16 until the
  filter, which takes their 1/32768 into its weights: the result is the same as from float32.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..output_spec import OutputSpec, frames_for
from .decode import Decoded
from .resample import mix_to_mono, resample
from .scratch import Scratch, empty

CODEC_ALLOWANCE_SECONDS = 0.05
# Source frames past the segment fed to the resampler (its filter reaches ~10 input frames per side).
_CONTEXT_FRAMES = 256


@dataclasses.dataclass(frozen=True)
class Shortfall:
    """Why a decoded clip cannot be the segment."""

    outcome: str  # "too_short" or "decode_error" (the values of fetch.outcomes.Outcome)
    message: str
    padded: bool = False


def fit_to_segment(decoded: Decoded, duration: float, spec: OutputSpec,
                   scratch: Scratch | None = None) -> np.ndarray | Shortfall:
    """The segment as int16 ``(frames, spec.channels)``, exactly ``round(duration * rate)`` frames.

    With a ``scratch``, the result and the intermediates are its buffers (valid until the
    scratch's next clip); without one, the result is a new array.
    """
    samples, rate = decoded.samples, decoded.sample_rate
    if rate <= 0 or samples.ndim != 2 or samples.shape[1] == 0:
        return Shortfall("decode_error", f"no usable audio (rate {rate}, shape {samples.shape})")
    samples = np.ascontiguousarray(samples)
    if not decoded.integer_source and samples.dtype.kind == "f" and not _all_finite(samples):
        return Shortfall("decode_error", "the archive clip holds NaN or infinite samples")
    needed = frames_for(duration, rate)
    allowance = int(math.ceil(CODEC_ALLOWANCE_SECONDS * rate))
    if len(samples) < needed - allowance:
        return Shortfall(
            "too_short",
            f"the archive clip lasts {len(samples) / rate:.3f} s; the segment lasts {duration:.3f} s",
        )
    content = last_sound_frame(samples)
    if content < needed - allowance:
        return Shortfall(
            "too_short",
            f"the archive clip has sound for {content / rate:.3f} s, then exact zeros to its end "
            f"({len(samples) / rate:.3f} s): zero-padded; the segment lasts {duration:.3f} s",
            padded=True,
        )
    segment = samples[: needed + _CONTEXT_FRAMES]
    output_frames = frames_for(duration, spec.sample_rate)
    if spec.channels == 1:
        resampled = resample(segment, rate, spec.sample_rate, scratch, mono=True)[:output_frames]
    else:
        resampled = resample(_map_channels(segment, spec.channels, scratch), rate, spec.sample_rate,
                             scratch)[:output_frames]
    if len(resampled) < output_frames:
        resampled = np.concatenate(
            [resampled, np.zeros((output_frames - len(resampled), resampled.shape[1]), resampled.dtype)]
        )
    return to_int16(resampled, scratch)


def _all_finite(samples: np.ndarray) -> bool:
    # One pass, no boolean copy of the clip: NaN and +-inf propagate into the sum, and a float64
    # sum of float32 samples cannot overflow (even 10^9 samples of 3.4e38 stay far below 1.8e308).
    return bool(np.isfinite(np.add.reduce(samples, axis=None, dtype=np.float64)))


def last_sound_frame(samples: np.ndarray) -> int:
    """Frames up to and including the last one with any non-zero sample (0 if all are zero)."""
    flat = np.ascontiguousarray(samples).reshape(-1)
    channels = samples.shape[1]
    if flat[-channels:].any():  # the usual case: sound to the very end, no scan needed
        return len(samples)
    nonzero = np.flatnonzero(flat)
    return int(nonzero[-1]) // channels + 1 if len(nonzero) else 0


def _map_channels(samples: np.ndarray, channels: int, scratch: Scratch | None = None) -> np.ndarray:
    have = samples.shape[1]
    if have == channels:
        return samples
    mono = mix_to_mono(samples, scratch)
    return mono if channels == 1 else np.repeat(mono, channels, axis=1)


def to_int16(samples: np.ndarray, scratch: Scratch | None = None) -> np.ndarray:
    result = empty(scratch, "int16", samples.shape, np.int16)
    if samples.dtype == np.int16:
        result[...] = samples
        return result
    # Scaling by a power of two is exact in float32, so float32 gives the float64 result.
    scaled = np.multiply(samples, np.float32(32768.0), dtype=np.float32,
                         out=empty(scratch, "scaled", samples.shape, np.float32))
    np.rint(scaled, out=scaled)
    np.clip(scaled, -32768, 32767, out=scaled)
    result[...] = scaled
    return result
