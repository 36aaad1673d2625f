"""Seeded orders that are pure functions of their inputs, on every platform and version.

numpy's ``Generator`` streams are not promised to stay the same across numpy releases,
and a permutation of a list changes when the list changes. Sorting by a keyed hash of
each item's identity has neither problem: an item's position relative to any other item
depends only on the seed, the salt and the two identities. The arithmetic is plain
64-bit unsigned integer math (wrap-around is defined), so results match bit for bit.
"""

from __future__ import annotations

import hashlib

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


def salt(*parts: object) -> np.uint64:
    """A 64-bit value derived from ``parts`` with SHA-256 (never Python's salted hash())."""
    text = "\x1f".join(str(part) for part in parts).encode("utf-8")
    return np.uint64(int.from_bytes(hashlib.sha256(text).digest()[:8], "big"))


def splitmix64(values: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser: a bijective, well-mixed 64-bit hash of each value."""
    z = np.asarray(values, dtype=np.uint64) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def hash_bytes(rows: np.ndarray) -> np.ndarray:
    """FNV-1a of each row of a ``(n, width)`` uint8 array."""
    result = np.full(rows.shape[0], _FNV_OFFSET, dtype=np.uint64)
    for column in range(rows.shape[1]):
        result ^= rows[:, column].astype(np.uint64)
        result *= _FNV_PRIME
    return result
