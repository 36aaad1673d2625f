"""The output every source must produce: format, sample rate, channels, exact length."""

from __future__ import annotations

import dataclasses

AUDIO_FORMATS = ("wav", "flac")


@dataclasses.dataclass(frozen=True)
class OutputSpec:
    """What a finished clip looks like; plain values, so it pickles to worker processes."""

    sample_rate: int = 16000
    channels: int = 1
    audio_format: str = "wav"

    def __post_init__(self) -> None:
        if self.audio_format not in AUDIO_FORMATS:
            raise ValueError(f"audio_format must be one of {AUDIO_FORMATS}, got {self.audio_format!r}")
        if self.sample_rate <= 0 or self.channels <= 0:
            raise ValueError(f"sample_rate and channels must be positive, got {self.sample_rate}, {self.channels}")


def frames_for(duration: float, sample_rate: int) -> int:
    """Samples per channel of a clip of ``duration`` seconds: ``round(duration * rate)``."""
    # Python's round is half-to-even and exact on the float it gets; durations come from
    # metadata with millisecond precision, far from any .5 boundary at audio rates.
    return int(round(duration * sample_rate))
