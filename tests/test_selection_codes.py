"""The sort shortcuts inside selection agree with plain Python on tricky inputs."""

from __future__ import annotations

import numpy as np
import pytest

from audioset_tools.select.selection import _later_duplicates, _ytid_codes

ALPHABET = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", np.uint8)


def random_ytids(rng: np.random.Generator, count: int, distinct: int, shared_prefix: bool) -> np.ndarray:
    pool = ALPHABET[rng.integers(0, len(ALPHABET), (distinct, 11))]
    if shared_prefix:
        # Many YTIDs that differ only in their last 3 bytes: the 8-byte sort alone is not enough.
        pool[:, :8] = pool[0, :8]
    return np.ascontiguousarray(pool[rng.integers(0, distinct, count)])


@pytest.mark.parametrize("shared_prefix", [False, True])
def test_ytid_codes_rank_distinct_ytids_in_byte_order(shared_prefix):
    rng = np.random.default_rng(7)
    ytids = random_ytids(rng, 3000, 700, shared_prefix)
    codes = _ytid_codes(ytids)
    texts = [row.tobytes() for row in ytids]
    ranks = {text: rank for rank, text in enumerate(sorted(set(texts)))}
    assert codes.tolist() == [ranks[text] for text in texts]


def test_ytid_codes_of_nothing():
    assert _ytid_codes(np.zeros((0, 11), np.uint8)).tolist() == []


@pytest.mark.parametrize("big_start", [False, True])
def test_later_duplicates_flag_all_but_the_first_of_each_segment(big_start):
    rng = np.random.default_rng(3)
    ytid = rng.integers(0, 50, 2000)
    start = rng.integers(0, 20, 2000) * 1000 + (2**40 if big_start else 0)
    flagged = _later_duplicates(ytid, start)
    seen: set[tuple[int, int]] = set()
    expected = []
    for key in zip(ytid.tolist(), start.tolist()):
        expected.append(key in seen)
        seen.add(key)
    assert flagged.tolist() == expected
    assert not _later_duplicates(np.arange(5), np.zeros(5, np.int64)).any()
