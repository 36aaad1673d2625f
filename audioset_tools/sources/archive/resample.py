"""Rational-ratio resampling with ``scipy.signal.resample_poly``'s filter, fast for small ratios.

The filter is resample_poly's default, designed the same way (a Kaiser-windowed sinc, beta
5.0, cutoff at the lower Nyquist, ``10 * max(up, down)`` taps per side, times ``up``) and
kept per rate pair instead of being redesigned for every clip. Output ``m`` is centred on
input position ``m * down / up`` and the input is taken to be zero outside the clip, as in
resample_poly, so the two agree to float32 rounding (the test suite checks this).

For the ratios archives need most (32 kHz or 48 kHz to 16 kHz, 8 kHz to 16 kHz: small
``up`` and ``down``) the filter is applied tap by tap: the input is split once into its
``down`` phases, and each non-zero tap adds a scaled contiguous slice of one phase to the
output. That is a few dozen vectorised numpy operations per clip, which release the GIL
(worker threads decode and resample in parallel), and it skips the taps the sinc puts at
zero (every second one for 2:1). It is about three times faster than resample_poly and
needs no scipy import (scipy.signal takes most of a second to import). Large ratios
(44.1 kHz to 16 kHz is 160/441) would need thousands of slices, so they go to
resample_poly itself, with the cached filter.

Every output sample is the same fixed sequence of float32 operations on the same inputs,
whatever the thread, batch or worker count: results are deterministic.
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


@dataclasses.dataclass(frozen=True)
class _Phase:
    """The taps of output phase ``r`` (outputs ``r, r + up, r + 2 up, ...``).

    Output ``r + q * up`` is ``sum(weight * x[offset + q * down] for offset, weight in taps)``.
    """

    taps: tuple[tuple[int, np.float32], ...]


@dataclasses.dataclass(frozen=True)
class _Plan:
    up: int
    down: int
    filter: np.ndarray  # float64, times up, centred: resample_poly's h before its zero padding
    phases: tuple[_Phase, ...]


def resample(samples: np.ndarray, source_rate: int, target_rate: int, scratch: Scratch | None = None) -> np.ndarray:
    """``samples`` (frames, channels) at ``target_rate``: ``ceil(frames * target / source)`` frames, float32.

    With a ``scratch``, the result and the intermediates are its buffers.
    """
    if source_rate == target_rate:
        return samples
    divisor = math.gcd(source_rate, target_rate)
    up, down = target_rate // divisor, source_rate // divisor
    plan = _plan(up, down)
    samples = np.asarray(samples, dtype=np.float32)
    if max(up, down) > _MAX_TAPWISE_FACTOR:
        # Imported here: scipy.signal is slow to import and only these rate pairs need it.
        from scipy.signal import resample_poly

        window = (plan.filter / up).astype(np.float32)
        return resample_poly(samples, up, down, axis=0, window=window).astype(np.float32, copy=False)
    frames, channels = samples.shape
    result = empty(scratch, "resampled", (-(-frames * up // down), channels), np.float32)
    # Channel by channel: numpy's loops over a (frames, 2) array's rows run two elements at a time.
    for channel in range(channels):
        if channels == 1:
            _resample_tapwise(samples[:, 0], plan, result[:, 0], scratch)
        else:
            column = empty(scratch, "column", (len(result),), np.float32)
            _resample_tapwise(samples[:, channel], plan, column, scratch)
            result[:, channel] = column
    return result


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
        phases.append(_Phase(taps))
    return _Plan(up, down, h, tuple(phases))


def _resample_tapwise(samples: np.ndarray, plan: _Plan, result: np.ndarray, scratch: Scratch | None) -> None:
    """One channel (a 1-D array) through the plan's taps, into ``result``."""
    up, down = plan.up, plan.down
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
        values = samples[first::down][: length - start]
        phase[:start] = 0.0
        phase[start : start + len(values)] = values
        phase[start + len(values) :] = 0.0
        input_phases.append(phase)

    term = empty(scratch, "term", (outputs_per_phase[0],), np.float32)
    for r, (phase, count) in enumerate(zip(plan.phases, outputs_per_phase)):
        total = result if up == 1 else empty(scratch, "total", (count,), np.float32)
        if not phase.taps:
            total[...] = 0.0
        for number, (j, weight) in enumerate(phase.taps):
            index = before + j
            inputs = input_phases[index % down][index // down : index // down + count]
            if number == 0:
                np.multiply(inputs, weight, out=total)
            else:
                np.multiply(inputs, weight, out=term[:count])
                total += term[:count]
        if up > 1:
            result[r::up] = total
