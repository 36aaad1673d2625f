"""Meta-learning class splits: seeded, disjoint train / val / test class sets."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .stable_order import salt, splitmix64

SPLIT_NAMES = ("train", "val", "test")


def split_sizes(count: int, proportions: Sequence[float]) -> list[int]:
    """Whole class counts closest to ``proportions`` that add up to ``count``.

    Largest remainder: floor every share, then hand the leftover classes to the largest
    fractional parts (ties go to the earlier split, train before val before test).
    """
    # Rounded so that float noise (142 * 0.7 = 99.39999...) cannot decide a tie.
    shares = [round(count * p, 9) for p in proportions]
    sizes = [math.floor(share) for share in shares]
    leftover = count - sum(sizes)
    by_remainder = sorted(range(len(shares)), key=lambda i: (-round(shares[i] - sizes[i], 9), i))
    for i in by_remainder[:leftover]:
        sizes[i] += 1
    return sizes


def assign_splits(mids: Sequence[str], proportions: Sequence[float], seed: int) -> list[str]:
    """The split of each class, aligned with ``mids``.

    Classes are ordered by a keyed hash of (seed, MID), then cut into consecutive runs of
    :func:`split_sizes`. A class's place in that order does not depend on the other
    classes, so adding or removing a class moves few others between splits.
    """
    if not mids:
        return []
    keys = splitmix64(np.array([salt("split", seed, mid) for mid in mids], dtype=np.uint64))
    order = np.lexsort((np.array(mids, dtype=object).astype(str), keys))
    sizes = split_sizes(len(mids), proportions)
    labels = np.repeat(np.array(SPLIT_NAMES, dtype=object), sizes)
    result = np.empty(len(mids), dtype=object)
    result[order] = labels
    return [str(name) for name in result]
