"""The archive source's reused per-thread buffers never leak one clip into the next.

:meth:`ArchiveSource.produce` decodes, mixes, resamples and converts each clip in buffers its
thread keeps for the next clip (:mod:`audioset_tools.sources.archive.scratch`). A clip must
come out the same whatever came before it in that thread: longer or shorter, another rate,
another channel count, another format.
"""

from __future__ import annotations

import threading

import numpy as np
import soundfile
from archive_media import encode, make_parquet, tone, write_file

from audioset_tools.sources.archive import ArchiveSource
from audioset_tools.sources.archive.convert import fit_to_segment
from audioset_tools.sources.archive.scratch import Scratch
from audioset_tools.sources.output_spec import OutputSpec

MONO_16K = OutputSpec(16000, 1, "wav")


def test_a_scratch_array_is_reused_and_sized_to_each_request():
    scratch = Scratch()
    first = scratch.empty("a", (1000, 2), np.float32)
    first[...] = 1.0
    again = scratch.empty("a", (10, 3), np.int16)
    assert again.shape == (10, 3) and again.dtype == np.int16
    assert np.shares_memory(first, again)  # the same buffer, not a new one
    assert not np.shares_memory(scratch.empty("b", (10,), np.float32), first)  # names are separate
    big = Scratch(keep_bytes=1024)
    assert not np.shares_memory(big.empty("a", (1000,), np.float32), big.empty("a", (1000,), np.float32))


def test_each_clip_is_the_same_whatever_its_thread_produced_before(tmp_path):
    root = tmp_path / "a"
    # Long and short, 48 kHz stereo FLAC, 32 kHz mono WAV, 16 kHz (no resampling), 44.1 kHz (resample_poly).
    clips = {
        "longstereo1": (tone(3, 10.0, 48000, 2), 48000, "flac", 3.0, 13.0),
        "shortmono32": (tone(7, 2.0, 32000), 32000, "wav", 7.0, 9.0),
        "same16kmono": (tone(1, 4.0, 16000), 16000, "flac", 1.0, 5.0),
        "cd44100ster": (tone(5, 3.0, 44100, 2), 44100, "wav", 5.0, 8.0),
        "threechanne": (tone(2, 3.0, 48000, 3), 48000, "wav", 2.0, 5.0),
    }
    for ytid, (samples, rate, suffix, _, _) in clips.items():
        write_file(root / f"{ytid}.{suffix}", samples, rate)
    make_parquet(tmp_path / "p.parquet", [("parquetclip", encode(tone(0, 6.0, 48000, 2), 48000, "flac"))])
    folder = ArchiveSource.open(root, tmp_path / "cache")
    parquet = ArchiveSource.open(tmp_path / "p.parquet", tmp_path / "cache")
    segments = [(folder, y, start, end) for y, (_, _, _, start, end) in clips.items()]
    segments.append((parquet, "parquetclip", 0.0, 6.0))

    def expected(source, ytid, start, end) -> np.ndarray:
        # No scratch: fresh arrays, nothing left over from anything.
        decoded = source.reader.read(source.locate(ytid, start, end))
        return fit_to_segment(decoded, end - start, MONO_16K)

    outputs = []

    def produce_all() -> None:
        # Twice over, in an order that alternates long and short, so every buffer is reused.
        for number, (source, ytid, start, end) in enumerate(segments * 2):
            target = tmp_path / "out" / f"{number}-{ytid}.wav"
            assert source.produce_segment(ytid, start, end, MONO_16K, target).ok
            outputs.append((source, ytid, start, end, target))

    worker = threading.Thread(target=produce_all)
    worker.start()
    worker.join()
    assert len(outputs) == 2 * len(segments)
    for source, ytid, start, end, target in outputs:
        written, rate = soundfile.read(str(target), dtype="int16", always_2d=True)
        assert rate == 16000 and np.array_equal(written, expected(source, ytid, start, end)), target.name


def test_the_in_memory_file_holds_exactly_the_latest_data_and_is_not_shared_after_a_fork(monkeypatch):
    import os

    scratch = Scratch()
    first = scratch.memory_file(b"x" * 100_000)
    if first is None:  # no memfd here (not Linux): callers read the bytes another way
        assert not hasattr(os, "memfd_create")
        return
    second = scratch.memory_file(b"short")
    assert second == first  # the same file, written over
    assert os.read(second, 1_000_000) == b"short"  # truncated: nothing of the longer data left
    real_pid = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: real_pid + 1)  # as a forked child sees it
    child = scratch.memory_file(b"child")
    assert child != first and os.read(child, 100) == b"child"


def test_cells_decode_the_same_without_an_in_memory_file(tmp_path, monkeypatch):
    # Where memfd is missing (not Linux) cells are read from Arrow's buffer in place instead.
    clips = [(f"pq{n:09d}", encode(tone(n, 4.0, 48000, 2), 48000, "flac")) for n in range(3)]
    make_parquet(tmp_path / "p.parquet", clips, row_group_size=2)
    source = ArchiveSource.open(tmp_path / "p.parquet", tmp_path / "cache")
    for ytid, _ in clips:
        assert source.produce_segment(ytid, 0.0, 4.0, MONO_16K, tmp_path / "memfd" / f"{ytid}.wav").ok
    monkeypatch.setattr(Scratch, "memory_file", lambda self, data: None)
    for ytid, _ in clips:
        assert source.produce_segment(ytid, 0.0, 4.0, MONO_16K, tmp_path / "buffer" / f"{ytid}.wav").ok
        assert (tmp_path / "buffer" / f"{ytid}.wav").read_bytes() == (tmp_path / "memfd" / f"{ytid}.wav").read_bytes()
