"""The archive's resampler: resample_poly's filter and results, faster; deterministic.

:mod:`audioset_tools.sources.archive.resample` applies ``scipy.signal.resample_poly``'s
default filter tap by tap for small ratios and hands large ones to resample_poly. These
tests hold it to resample_poly itself (the same filter, the same samples to float32
rounding, the same length) and to what a resampler is for: a band-limited tone comes out
clean and a tone above the new Nyquist frequency does not come out at all.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import firwin, resample_poly

from audioset_tools.sources.archive.resample import lowpass_filter, mix_to_mono, resample

# (source, target): the archive layouts' rates to 16 kHz, and ratios up, down and odd.
RATE_PAIRS = [
    (32000, 16000), (48000, 16000), (8000, 16000), (48000, 32000), (24000, 16000), (96000, 16000),
    (16000, 48000), (12000, 16000), (44100, 16000), (22050, 16000),
]


def _ratio(source: int, target: int) -> tuple[int, int]:
    divisor = math.gcd(source, target)
    return target // divisor, source // divisor


@pytest.mark.parametrize(("source", "target"), RATE_PAIRS)
def test_filter_is_resample_polys_default(source, target):
    up, down = _ratio(source, target)
    reference = firwin(2 * 10 * max(up, down) + 1, 1.0 / max(up, down), window=("kaiser", 5.0)) * up
    assert np.abs(lowpass_filter(up, down) - reference).max() < 1e-12


@pytest.mark.parametrize(("source", "target"), RATE_PAIRS)
@pytest.mark.parametrize("frames", [1, 7, 1001, 48_256])
def test_same_samples_as_resample_poly_on_white_noise(source, target, frames):
    noise = (np.random.default_rng(frames).standard_normal((frames, 2)) * 0.3).astype(np.float32)
    up, down = _ratio(source, target)
    ours = resample(noise, source, target)
    reference = resample_poly(noise, up, down, axis=0)
    assert ours.dtype == np.float32 and ours.shape == reference.shape == (-(-frames * up // down), 2)
    # Float32 rounding only: a thousand times below the 16-bit output's step (3e-5).
    assert np.abs(ours - reference).max() < 1e-6


def _tone(frequency: float, rate: int, seconds: float = 2.0) -> np.ndarray:
    return np.sin(2 * np.pi * frequency * np.arange(int(seconds * rate)) / rate)


def _middle(samples: np.ndarray) -> np.ndarray:
    return samples[len(samples) // 10 : -len(samples) // 10]  # away from the clip's zero-padded ends


@pytest.mark.parametrize(("source", "target"), [(32000, 16000), (48000, 16000), (44100, 16000), (8000, 16000)])
def test_a_band_limited_tone_comes_out_clean(source, target):
    frequency = 0.4 * min(source, target) / 2  # well inside the passband
    signal = _tone(frequency, source)[:, None]
    expected = _middle(_tone(frequency, target))

    def snr_db(out: np.ndarray) -> float:
        return 10 * np.log10(np.mean(expected**2) / np.mean((_middle(out[:, 0]) - expected) ** 2))

    ours = snr_db(resample(signal.astype(np.float32), source, target))
    # resample_poly in float64: the filter's own limit (about 88 dB down, 65 dB up by 2).
    reference = snr_db(resample_poly(signal, *_ratio(source, target), axis=0))
    assert ours > 60 and ours > reference - 1.0, (ours, reference)


@pytest.mark.parametrize(("source", "target"), [(32000, 16000), (48000, 16000), (44100, 16000)])
def test_a_tone_above_the_new_nyquist_frequency_is_filtered_out(source, target):
    frequency = (target / 2 + source / 2) / 2  # would alias into the band if it got through
    out = resample(_tone(frequency, source)[:, None].astype(np.float32), source, target)[:, 0]
    attenuation_db = 10 * np.log10(np.mean(_middle(out) ** 2) / 0.5)
    assert attenuation_db < -60, attenuation_db


def test_same_rate_is_untouched_and_results_do_not_depend_on_history():
    clip = (np.random.default_rng(1).standard_normal((32_000, 1)) * 0.2).astype(np.float32)
    assert resample(clip, 16000, 16000) is clip
    first = resample(clip, 32000, 16000).copy()
    resample(np.ones((99_999, 2), np.float32), 48000, 16000)  # something else in between
    assert np.array_equal(resample(clip, 32000, 16000), first)


@pytest.mark.parametrize(("source", "target"), [(48000, 16000), (32000, 16000), (16000, 16000), (44100, 16000)])
@pytest.mark.parametrize("channels", [2, 3])
def test_mono_is_the_mean_of_the_channels_resampled(source, target, channels):
    clip = (np.random.default_rng(channels).standard_normal((30_011, channels)) * 0.3).astype(np.float32)
    mixed = resample(clip, source, target, mono=True)
    up, down = _ratio(source, target)
    reference = resample_poly(clip.astype(np.float64).mean(axis=1, keepdims=True), up, down, axis=0)
    assert mixed.shape == reference.shape and np.abs(mixed - reference).max() < 1e-6
    if channels == 2:
        # Mixed while splitting into phases, with the halving moved into the weights: the same
        # floats as mixing first (halving is exact), not merely close.
        assert np.array_equal(mixed, resample(mix_to_mono(clip), source, target))


@pytest.mark.parametrize(("source", "target"), [(48000, 16000), (32000, 16000), (16000, 16000), (44100, 16000),
                                                (8000, 16000)])
@pytest.mark.parametrize(("channels", "output_channels"), [(1, 1), (2, 1), (3, 1), (2, 2), (1, 2)])
def test_int16_audio_gives_the_same_clip_as_its_float32_copy(source, target, channels, output_channels):
    # 16-bit sources stay int16 until the filter, which takes their 1/32768 into its weights.
    from audioset_tools.sources.archive.convert import fit_to_segment
    from audioset_tools.sources.archive.decode import Decoded
    from audioset_tools.sources.archive.scratch import Scratch
    from audioset_tools.sources.output_spec import OutputSpec

    rng = np.random.default_rng(source + channels)
    clip = np.clip(rng.standard_normal((source * 2, channels)) * 9000, -32768, 32767).astype(np.int16)
    spec = OutputSpec(target, output_channels, "wav")
    as_int16 = fit_to_segment(Decoded(clip, source, integer_source=True), 1.9, spec, Scratch())
    as_float = fit_to_segment(Decoded(clip.astype(np.float32) / np.float32(32768), source), 1.9, spec)
    assert as_int16.dtype == np.int16 and as_int16.shape == (round(1.9 * target), output_channels)
    assert np.array_equal(as_int16, as_float)
