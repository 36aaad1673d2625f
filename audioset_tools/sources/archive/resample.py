"""Rational-ratio resampling with ``scipy.signal.resample_poly``'s filter, fast for small ratios.

The filter is resample_poly's default, designed the same way (a Kaiser-windowed sinc, beta
5.0, cutoff at the lower Nyquist, ``10 * max(up, down)`` taps per side, times ``up``) and
kept per rate pair instead of being redesigned for every clip. Output ``m`` is centred on
input position ``m * down / up`` and the input is taken to be zero outside the clip, as in
resample_poly, so the two agree to float32 rounding (the test suite checks this).

For the ratios archives need most (32 kHz or 48 kHz to 16 kHz, 8 kHz to 16 kHz: small
``up`` and ``down``) the filter is applied tap by tap: the input is split once into its
``down`` phases, and each non-zero tap adds a scaled contiguous slice of one phase to the
output, the two taps of a symmetric pair added before they are scaled. That is a few dozen
vectorised numpy operations per clip, which release the GIL (worker threads decode and
resample in parallel), and it skips the taps the sinc puts at zero (every second one for 2:1). It is about three times faster than resample_poly and
needs no scipy import (scipy.signal takes most of a second to import). Large ratios
(44.1 kHz to 16 kHz is 160/441) would need thousands of slices, so they go to
resample_poly itself, with the cached filter.

Every output sample is the same fixed sequence of elementwise float32 operations on the same
inputs (no reduction whose order could depend on SIMD width or threads), whatever the
thread, worker count or machine: results are deterministic, byte for byte.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from .scratch import Scratch, empty

KAISER_BETA = 5.0
# Taps per side of the filter, per unit of max(up, down) (resample_poly's choice).
HALF_LENGTH_FACTOR = 10
# Above this max(up, down) the tap-by-tap form needs too many slices; resample_poly is faster.
_MAX_TAPWISE_FACTOR = 6
# A tap this much smaller than the largest is one of the sinc's zeros (float noise ~1e-17): skipped.
_ZERO_TAP = 1e-9
# int16 full scale: 2**-15, a power of two, so scaling by it is exact.
_INT16_SCALE = np.float32(1.0 / 32768.0)


@dataclasses.dataclass(frozen=True)
class _Phase:
    """The taps of output phase ``r`` (outputs ``r, r + up, r + 2 up, ...``).

    Output ``r + q * up`` is ``sum(weight * x[offset + q * down] for offset, weight in taps)``.
    Taps of equal weight (the filter is symmetric) are added before they are scaled, once.
    """

    taps: tuple[tuple[int, np.float32], ...]
    groups: tuple[tuple[np.float32, tuple[int, ...]], ...]  # (weight, offsets), in first-tap order


@dataclasses.dataclass(frozen=True)
class _Plan:
    up: int
    down: int
    filter: np.ndarray  # float64, times up, centred: resample_poly's h before its zero padding
    phases: tuple[_Phase, ...]


def resample(samples: np.ndarray, source_rate: int, target_rate: int, scratch: Scratch | None = None,
             mono: bool = False) -> np.ndarray:
    """``samples`` (frames, channels) at ``target_rate``: ``ceil(frames * target / source)`` frames, float32.

    ``samples`` may be float32 in [-1, 1] or int16 (full scale 32768: the filter's weights take
    the 1/32768, exactly, so both give the same floats). At the same rate, the samples are
    returned as they are (int16 stays int16) unless mixed.

    ``mono``: the mean of the channels instead, one channel (mixed while the input is split
    into phases, which saves a pass over the clip). With a ``scratch``, the result and the
    intermediates are its buffers.
    """
    if samples.dtype != np.int16:
        samples = np.asarray(samples, dtype=np.float32)
    if source_rate == target_rate:
        return mix_to_mono(samples, scratch) if mono else samples
    divisor = math.gcd(source_rate, target_rate)
    up, down = target_rate // divisor, source_rate // divisor
    plan = _plan(up, down)
    if max(up, down) > _MAX_TAPWISE_FACTOR:
        # Imported here: scipy.signal is slow to import and only these rate pairs need it.
        from scipy.signal import resample_poly

        window = (plan.filter / up).astype(np.float32)
        samples = mix_to_mono(samples, scratch) if mono else _as_float32(samples)
        return resample_poly(samples, up, down, axis=0, window=window).astype(np.float32, copy=False)
    frames, channels = samples.shape
    out_frames = -(-frames * up // down)
    if mono or channels == 1:
        result = empty(scratch, "resampled", (out_frames, 1), np.float32)
        # The channels' sum through the filter, scaled by 1 / channels with the weights
        # (exactly the mean's result for two channels: halving is exact).
        _resample_tapwise([samples[:, c] for c in range(channels)], plan, result[:, 0], scratch)
        return result
    result = empty(scratch, "resampled", (out_frames, channels), np.float32)
    # Channel by channel: numpy's loops over a (frames, 2) array's rows run two elements at a time.
    column = empty(scratch, "column", (out_frames,), np.float32)
    for channel in range(channels):
        _resample_tapwise([samples[:, channel]], plan, column, scratch)
        result[:, channel] = column
    return result


def mix_to_mono(samples: np.ndarray, scratch: Scratch | None = None) -> np.ndarray:
    """The mean of the channels, (frames, 1) float32: the channels' sum times 1 / channels."""
    channels = samples.shape[1]
    if channels == 1:
        return _as_float32(samples)
    # Column by column into one array: numpy's mean over a short last axis is several times slower.
    total = np.add(samples[:, 0], samples[:, 1], dtype=np.float32,
                   out=empty(scratch, "mixed", (len(samples),), np.float32))
    for column in range(2, channels):
        total += samples[:, column]
    total *= np.float32(1.0 / channels)
    if samples.dtype == np.int16:
        total *= _INT16_SCALE
    return total[:, None]


def _as_float32(samples: np.ndarray) -> np.ndarray:
    if samples.dtype == np.int16:
        return np.multiply(samples, _INT16_SCALE, dtype=np.float32)
    return samples


def lowpass_filter(up: int, down: int) -> np.ndarray:
    """resample_poly's default anti-aliasing filter for ``up/down`` (float64, already times ``up``)."""
    return _plan(up, down).filter.copy()


@functools.lru_cache(maxsize=64)
def _plan(up: int, down: int) -> _Plan:
    max_rate = max(up, down)
    half = HALF_LENGTH_FACTOR * max_rate
    cutoff = 1.0 / max_rate  # relative to the Nyquist frequency of the upsampled signal
    positions = np.arange(2 * half + 1) - half
    h = cutoff * np.sinc(cutoff * positions) * np.kaiser(2 * half + 1, KAISER_BETA)
    h = h / h.sum() * up  # unit gain at DC (firwin's scaling), times up for the zeros stuffed in
    h.setflags(write=False)
    threshold = _ZERO_TAP * np.abs(h).max()
    phases = []
    for r in range(up):
        # Input i meets output m = r + q * up at distance i * up - m * down = j * up - r * down
        # (i = j + q * down), and weighs h[half + that distance] while it is within the filter.
        centre = r * down
        first, last = -((half - centre) // up), (half + centre) // up
        taps = tuple(
            (j, np.float32(h[half + j * up - centre]))
            for j in range(first, last + 1)
            if abs(h[half + j * up - centre]) > threshold
        )
        grouped: dict[float, list[int]] = {}
        for offset, weight in taps:
            grouped.setdefault(float(weight), []).append(offset)
        groups = tuple((np.float32(weight), tuple(offsets)) for weight, offsets in grouped.items())
        phases.append(_Phase(taps, groups))
    return _Plan(up, down, h, tuple(phases))


def _resample_tapwise(columns: list[np.ndarray], plan: _Plan, result: np.ndarray, scratch: Scratch | None) -> None:
    """The mean of ``columns`` (1-D arrays, usually one) through the plan's taps, into ``result``."""
    up, down = plan.up, plan.down
    # The mean's 1 / channels and int16's 1 / 32768, applied with the weights.
    scale = np.float32(1.0 / len(columns)) * (_INT16_SCALE if columns[0].dtype == np.int16 else np.float32(1.0))
    out_frames = len(result)
    outputs_per_phase = [len(range(r, out_frames, up)) for r in range(up)]
    offsets = [j for phase in plan.phases for j, _ in phase.taps]
    before = max(0, -min(offsets))  # zeros in front of the clip, so every offset is a valid index
    # Phase p of the zero-padded input holds padded[p], padded[p + down], ...: a tap's inputs
    # for consecutive outputs of one output phase are then consecutive elements of one of them.
    length = max(
        (before + j) // down + count
        for phase, count in zip(plan.phases, outputs_per_phase)
        for j, _ in phase.taps
    )
    input_phases = []
    for p in range(down):
        phase = empty(scratch, f"phase{p}", (length,), np.float32)
        first = (p - before) % down  # the first input index in this phase
        start = (before + first) // down
        count = max(0, min(len(range(first, len(columns[0]), down)), length - start))
        stop = first + down * count
        phase[:start] = 0.0
        if len(columns) == 1:
            phase[start : start + count] = columns[0][first:stop:down]
        else:
            np.add(columns[0][first:stop:down], columns[1][first:stop:down], dtype=np.float32,
                   out=phase[start : start + count])
            for column in columns[2:]:
                phase[start : start + count] += column[first:stop:down]
        phase[start + count :] = 0.0
        input_phases.append(phase)

    def inputs(offset: int, count: int) -> np.ndarray:
        index = before + offset
        return input_phases[index % down][index // down : index // down + count]

    term = empty(scratch, "term", (outputs_per_phase[0],), np.float32)
    for r, (phase, count) in enumerate(zip(plan.phases, outputs_per_phase)):
        total = result if up == 1 else empty(scratch, "total", (count,), np.float32)
        if not phase.taps:
            total[...] = 0.0
        for number, (weight, offsets) in enumerate(phase.groups):
            weight = weight * scale
            # The first group is written straight into the total, the others added to it.
            into = total if number == 0 else term[:count]
            if len(offsets) == 1:
                np.multiply(inputs(offsets[0], count), weight, out=into)
            else:
                np.add(inputs(offsets[0], count), inputs(offsets[1], count), out=into)
                for offset in offsets[2:]:
                    into += inputs(offset, count)
                into *= weight
            if number > 0:
                total += into
        if up > 1:
            result[r::up] = total
