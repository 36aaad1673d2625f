"""Archive sources: names, format detection, the cached index, and exact clips from every format.

Archives are built in tmp_path from time-encoded audio (tests/archive_media.py) with the
real h5py and pyarrow; each produced clip is checked sample by sample against the
segment of the video it claims to be.
"""

from __future__ import annotations

import os
import random

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile
from archive_media import (
    assert_exact_clip,
    encode,
    make_mp3_hdf5,
    make_panns_hdf5,
    make_parquet,
    to_int16,
    tone,
    write_file,
)

from audioset_tools.atomic import is_temporary
from audioset_tools.errors import UserError
from audioset_tools.sources.archive import (
    ArchiveFormat,
    ArchiveSource,
    list_archive,
)
from audioset_tools.sources.archive import index as index_module
from audioset_tools.sources.archive.convert import fit_to_segment
from audioset_tools.sources.archive.decode import Decoded
from audioset_tools.sources.archive.names import matches_segment, readings
from audioset_tools.sources.outcomes import Outcome
from audioset_tools.sources.output_spec import OutputSpec

MONO_16K = OutputSpec(16000, 1, "wav")


def _h5py():
    return pytest.importorskip("h5py", reason="HDF5 archives need the [archive] extra (h5py)")


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("stem", "expected"),
    [
        ("abcdefghijk", [("abcdefghijk", -1, -1)]),
        ("Yabcdefghijk", [("abcdefghijk", -1, -1)]),
        # 11 characters starting with Y: an ID that starts with Y, not Y + 10 characters.
        ("Yabcdefghij", [("Yabcdefghij", -1, -1)]),
        ("YYabcdefghij", [("Yabcdefghij", -1, -1)]),
        ("ab_de-ghijk_30", [("ab_de-ghijk", 30000, -1)]),
        ("ab_de-ghijk_30.500_40.500", [("ab_de-ghijk", 30500, 40500)]),
        ("Yab_de-ghijk_30000_40000", [("ab_de-ghijk", 30000000, 40000000)]),
        ("Yabcdefghij_30", [("Yabcdefghij", 30000, -1)]),
        ("abcdefghijk_30_40_50", []),
        ("abcdefghij", []),
        ("abcdefghijk-30", []),
        ("../../etc/pass", []),
    ],
)
def test_name_readings(stem, expected):
    assert [(r.ytid, r.first_milli, r.second_milli) for r in readings(stem)] == expected


def test_two_readings_never_fit_one_stem():
    rng = random.Random(7)
    alphabet = "Y_-0123456789ab"
    for _ in range(20000):
        stem = "Y" + "".join(rng.choice(alphabet) for _ in range(rng.randint(10, 16)))
        assert len(readings(stem)) <= 1, stem


@pytest.mark.parametrize(
    ("first", "second", "start", "end", "expected"),
    [
        (-1, -1, 30.0, 40.0, True),
        (30000, -1, 30.0, 40.0, True),  # seconds
        (30000000, -1, 30.0, 40.0, True),  # milliseconds, our own <ytid>_<start_ms>
        (30000000, 40000000, 30.0, 40.0, True),
        (30000, 40000, 30.0, 40.0, True),
        (31000, -1, 30.0, 40.0, False),  # another segment of the same video
        (30000, 39000, 30.0, 40.0, False),
        (30000, 40000000, 30.0, 40.0, False),  # mixed units are not a pattern
    ],
)
def test_name_times_match_segment(first, second, start, end, expected):
    assert matches_segment(first, second, start, end) is expected


# ---------------------------------------------------------------- format detection


def test_auto_format_from_the_path(tmp_path):
    _h5py()
    write_file(tmp_path / "clips" / "a" / "abcdefghijk.wav", tone(0, 1, 16000), 16000)
    (tmp_path / "clips" / "notes.txt").write_text("not audio")
    make_panns_hdf5(tmp_path / "packs" / "bal.h5", [("Yabcdefghijk.wav", tone(0, 1, 32000))])
    make_parquet(tmp_path / "hf" / "data" / "00.parquet", [("abcdefghijk", b"")])
    make_parquet(tmp_path / "hf" / "data" / "01.parquet", [("bbcdefghijk", b"")])

    folder = list_archive(tmp_path / "clips")
    assert folder.format is ArchiveFormat.FOLDER
    assert [s.relative for s in folder.stamps] == ["a/abcdefghijk.wav"]
    assert list_archive(tmp_path / "packs" / "bal.h5").format is ArchiveFormat.HDF5
    assert list_archive(tmp_path / "packs").format is ArchiveFormat.HDF5
    shards = list_archive(tmp_path / "hf")
    assert shards.format is ArchiveFormat.PARQUET
    assert [s.relative for s in shards.stamps] == ["data/00.parquet", "data/01.parquet"]
    pattern = list_archive(str(tmp_path / "hf" / "data" / "0*.parquet"))
    assert pattern.format is ArchiveFormat.PARQUET and len(pattern.stamps) == 2


@pytest.mark.parametrize(
    ("make", "fmt", "message"),
    [
        (lambda p: p / "missing", "auto", "does not exist"),
        (lambda p: str(p / "*.h5"), "auto", "matches no file"),
        (lambda p: p, "auto", "cannot tell its format"),
        (lambda p: p, "hdf5", "holds no hdf5 files"),
        (lambda p: p, "zip", "not one of auto, folder, hdf5, parquet"),
    ],
)
def test_unusable_archive_paths_are_one_clear_message(tmp_path, make, fmt, message):
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(UserError, match=message):
        list_archive(make(tmp_path), fmt)


# ---------------------------------------------------------------- folder archives


FOLDER_CLIPS = [
    # (relative name, ytid, start, end, file rate, channels)
    ("a/abcdefghijk.wav", "abcdefghijk", 30.0, 40.0, 16000, 1),
    ("a/Ybcdefghijkl.flac", "bcdefghijkl", 12.5, 22.5, 48000, 2),
    ("b/cdefghijklm_7.flac", "cdefghijklm", 7.0, 17.0, 44100, 2),
    ("b/Ydefghijklmn_120000.wav", "defghijklmn", 120.0, 127.3, 32000, 1),
    ("efghijklmno_3.250_8.250.wav", "efghijklmno", 3.25, 8.25, 22050, 1),
    ("Y-_012345678_0_10.ogg", "-_012345678", 0.0, 10.0, 48000, 1),
    ("Yfghijklmnop.mp3", "fghijklmnop", 50.0, 60.0, 32000, 1),
    ("Yghijklmnopq.m4a", "ghijklmnopq", 5.0, 15.0, 44100, 2),
]


@pytest.fixture
def folder_archive(tmp_path):
    root = tmp_path / "downloads"
    for name, _ytid, start, end, rate, channels in FOLDER_CLIPS:
        path = root / name
        if path.suffix in (".m4a", ".ogg"):
            # soundfile cannot write m4a and writes only Vorbis ogg: go through ffmpeg's encoders.
            staging = tmp_path / "staging" / (path.stem + ".wav")
            wav = write_file(staging, tone(start, end - start, rate, channels), rate)
            _ffmpeg_convert(wav, path)
        else:
            write_file(path, tone(start, end - start, rate, channels), rate)
    return root


def _ffmpeg_convert(source, target):
    import subprocess

    from media import FFMPEG

    target.parent.mkdir(parents=True, exist_ok=True)
    codec = ["-c:a", "aac", "-b:a", "192k"] if target.suffix == ".m4a" else ["-c:a", "libvorbis", "-q:a", "8"]
    # (mp4 output keeps ffmpeg's default: the index after the media.)
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(source), *codec, str(target)],
                   check=True, capture_output=True)


@pytest.mark.parametrize("spec", [MONO_16K, OutputSpec(22050, 2, "flac")], ids=["16k-mono-wav", "22k-stereo-flac"])
def test_folder_archive_gives_every_clip_exactly(folder_archive, tmp_path, spec):
    source = ArchiveSource.open(folder_archive, tmp_path / "cache", name="peers")
    assert source.format is ArchiveFormat.FOLDER
    out = tmp_path / "out"
    for name, ytid, start, end, _rate, channels in FOLDER_CLIPS:
        target = out / f"{ytid}.{spec.audio_format}"
        result = source.produce_segment(ytid, start, end, spec, target)
        assert result.outcome is Outcome.OK, result
        assert result.origin == name
        assert soundfile.info(str(target)).frames == round((end - start) * spec.sample_rate)
        # Lossy codecs (Vorbis, MP3, AAC) are compared more loosely; the frame count never is.
        lossy = name.endswith((".ogg", ".mp3", ".m4a"))
        assert_exact_clip(target, start, end, spec.sample_rate, spec.channels, channels,
                          tolerance=0.08 if lossy else 0.01)
    assert not [p for p in out.rglob("*") if is_temporary(p)]


def test_a_name_stating_another_segment_is_not_that_clip(folder_archive, tmp_path):
    source = ArchiveSource.open(folder_archive, tmp_path / "cache")
    result = source.produce_segment("cdefghijklm", 8.0, 18.0, MONO_16K, tmp_path / "out" / "x.wav")
    assert result.outcome is Outcome.UNAVAILABLE
    absent = source.produce_segment("zzzzzzzzzzz", 0.0, 10.0, MONO_16K, tmp_path / "x.wav")
    assert absent.outcome is Outcome.UNAVAILABLE
    assert not (tmp_path / "out").exists() and not (tmp_path / "x.wav").exists()
    assert source.coverage([("abcdefghijk", 30.0, 40.0), ("cdefghijklm", 8.0, 18.0), ("zzzzzzzzzzz", 0, 10)]) == 1


def test_a_timed_name_wins_over_an_untimed_one(tmp_path):
    write_file(tmp_path / "a" / "abcdefghijk.wav", tone(0, 10, 16000), 16000)
    write_file(tmp_path / "a" / "abcdefghijk_30.wav", tone(30, 10, 16000), 16000)
    source = ArchiveSource.open(tmp_path / "a", tmp_path / "cache")
    result = source.produce_segment("abcdefghijk", 30.0, 40.0, MONO_16K, tmp_path / "out.wav")
    assert result.origin == "abcdefghijk_30.wav"
    assert_exact_clip(tmp_path / "out.wav", 30.0, 40.0, 16000, 1)


def test_same_rate_int16_is_copied_bit_for_bit_and_output_is_deterministic(tmp_path):
    samples = tone(4, 10, 16000)
    write_file(tmp_path / "a" / "abcdefghijk.flac", samples, 16000)
    source = ArchiveSource.open(tmp_path / "a", tmp_path / "cache")
    source.produce_segment("abcdefghijk", 4.0, 14.0, MONO_16K, tmp_path / "one.wav")
    source.produce_segment("abcdefghijk", 4.0, 14.0, MONO_16K, tmp_path / "two.wav")
    assert (tmp_path / "one.wav").read_bytes() == (tmp_path / "two.wav").read_bytes()
    written, _ = soundfile.read(str(tmp_path / "one.wav"), dtype="int16")
    assert np.array_equal(written, to_int16(samples)[:, 0])


def test_short_corrupt_and_nan_clips_are_classified_not_raised(tmp_path):
    root = tmp_path / "a"
    write_file(root / "shortshorts.wav", tone(0, 9.0, 16000), 16000)
    write_file(root / "almostthere.wav", tone(0, 9.98, 16000), 16000)  # within the codec allowance
    (root / "notaudio123.wav").write_bytes(b"RIFF....garbage")
    nan = tone(0, 10, 16000)
    nan[5000] = np.nan
    soundfile.write(str(root / "nansamples1.wav"), nan, 16000, subtype="FLOAT")
    source = ArchiveSource.open(root, tmp_path / "cache")
    out = tmp_path / "out"

    short = source.produce_segment("shortshorts", 0.0, 10.0, MONO_16K, out / "s.wav")
    assert short.outcome is Outcome.TOO_SHORT and "zero-padded" not in short.message
    assert "lasts 9.000 s" in short.message
    almost = source.produce_segment("almostthere", 0.0, 10.0, MONO_16K, out / "a.wav")
    assert almost.ok and soundfile.info(str(out / "a.wav")).frames == 160000
    assert source.produce_segment("notaudio123", 0.0, 10.0, MONO_16K, out / "c.wav").outcome is Outcome.DECODE_ERROR
    bad = source.produce_segment("nansamples1", 0.0, 10.0, MONO_16K, out / "n.wav")
    assert bad.outcome is Outcome.DECODE_ERROR and "NaN" in bad.message
    assert sorted(p.name for p in out.iterdir()) == ["a.wav"]


def test_fit_to_segment_detects_trailing_zero_padding():
    rate = 32000
    padded = np.zeros((320000, 1), np.float32)
    padded[:256000] = tone(0, 8.0, rate)
    result = fit_to_segment(Decoded(padded, rate), 10.0, MONO_16K)
    assert result.outcome == "too_short" and result.padded
    # A shorter segment inside the real sound is fine: PANNs pads after it.
    assert fit_to_segment(Decoded(padded, rate), 7.5, MONO_16K).shape == (120000, 1)
    silent = np.zeros((320000, 2), np.float32)
    assert fit_to_segment(Decoded(silent, rate), 10.0, MONO_16K).padded


# ---------------------------------------------------------------- HDF5 archives


def test_panns_hdf5_gives_exact_clips_and_reports_padding(tmp_path):
    _h5py()
    segments = {f"p{n:010d}": (float(n * 7 % 60), 10.0) for n in range(12)}
    segments["p0000000003"] = (20.0, 6.2)  # an AudioSet segment cut short by the video's end
    clips = []
    for ytid, (start, length) in segments.items():
        real = 8.0 if ytid == "p0000000005" else length  # PANNs padded this one from 8 s to 10 s
        clips.append((f"Y{ytid}.wav", tone(start, real, 32000)))
    clips.append(("not-a-clip-name.wav", tone(0, 1, 32000)))
    make_panns_hdf5(tmp_path / "balanced_train.h5", clips)
    source = ArchiveSource.open(tmp_path / "balanced_train.h5", tmp_path / "cache", name="panns")
    identity = source.identity()
    assert identity["name"] == "panns" and identity["format"] == "hdf5" and identity["clips"] == len(segments)
    assert [f["relative"] for f in identity["files"]] == ["balanced_train.h5"]
    for row, (ytid, (start, length)) in enumerate(segments.items()):
        target = tmp_path / "out" / f"{ytid}.wav"
        result = source.produce_segment(ytid, start, start + length, MONO_16K, target)
        assert result.origin == f"balanced_train.h5#row{row}"
        if ytid == "p0000000005":
            assert result.outcome is Outcome.TOO_SHORT
            assert "zero-padded" in result.message and not target.exists()
            continue
        assert result.ok, result
        assert_exact_clip(target, start, start + length, 16000, 1)


def test_passt_mp3_hdf5_gives_exact_clips(tmp_path):
    _h5py()
    segments = [(f"m{n:010d}", float(10 + n * 13)) for n in range(4)]
    clips = [(f"Y{ytid}.mp3", encode(tone(start, 10.0, 32000), 32000, "mp3")) for ytid, start in segments]
    make_mp3_hdf5(tmp_path / "mp3" / "audioset_eval.hdf", clips)
    source = ArchiveSource.open(tmp_path / "mp3" / "audioset_eval.hdf", tmp_path / "cache", archive_format="hdf5")
    for ytid, start in segments:
        target = tmp_path / "out" / f"{ytid}.flac"
        result = source.produce_segment(ytid, start, start + 10.0, OutputSpec(16000, 1, "flac"), target)
        assert result.ok, result
        assert_exact_clip(target, start, start + 10.0, 16000, 1, tolerance=0.08)


def test_hdf5_index_of_many_names_finds_each_row(tmp_path):
    h5py = _h5py()
    count = 150_000
    ids = [f"{n:09d}{'_-'[n % 2]}{'YZ'[n % 2]}" for n in range(count)]
    # Mostly PANNs names (the array fast path), some in other spellings (the pattern path).
    names = [f"Y{y}.wav" if n % 10 else f"{y}_{n}.flac" for n, y in enumerate(ids)]
    with h5py.File(tmp_path / "big.h5", "w") as handle:
        handle.create_dataset("audio_name", data=np.array([n.encode() for n in names], dtype="S20"), chunks=(65536,))
        handle.create_dataset("waveform", shape=(count, 320000), dtype=np.int16, chunks=(1, 320000))
    source = ArchiveSource.open(tmp_path / "big.h5", tmp_path / "cache")
    assert len(source.index) == count
    for n in (0, 1, 9, 10, 65535, 65536, 131071, count - 1):
        location = source.locate(ids[n], float(n), float(n) + 10)
        assert location is not None and location.row == n, (n, location)
    assert source.index.holds([ids[5], "00000000000", "bad id"]).tolist() == [True, False, False]


# ---------------------------------------------------------------- Parquet archives


def test_parquet_gives_exact_clips_reading_only_needed_groups_and_columns(tmp_path, monkeypatch):
    segments = [(f"hf{n:09d}", float(n * 3 % 50)) for n in range(10)]
    clips = [(ytid, encode(tone(start, 10.0, 48000, 2), 48000, "flac")) for ytid, start in segments]
    clips[7] = (clips[7][0], b"not flac at all")
    make_parquet(tmp_path / "hf" / "data" / "bal_train" / "00.parquet", clips[:6], row_group_size=4)
    make_parquet(tmp_path / "hf" / "data" / "bal_train" / "01.parquet", clips[6:], row_group_size=4)
    source = ArchiveSource.open(tmp_path / "hf", tmp_path / "cache", name="hf")
    assert source.format is ArchiveFormat.PARQUET

    reads = []
    original = pq.ParquetFile.read_row_group

    def spying(self, i, columns=None, **kwargs):
        reads.append((i, tuple(columns or ())))
        return original(self, i, columns=columns, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", spying)
    spec = OutputSpec(16000, 2, "wav")
    jobs = sorted(segments, key=lambda s: source.order_key(s[0], s[1], s[1] + 10), reverse=True)
    for ytid, start in jobs:
        result = source.produce_segment(ytid, start, start + 10.0, spec, tmp_path / "out" / f"{ytid}.wav")
        if ytid == "hf000000007":
            assert result.outcome is Outcome.DECODE_ERROR
            assert result.origin == "data/bal_train/01.parquet#group0/row1"
            continue
        assert result.ok, result
        assert_exact_clip(tmp_path / "out" / f"{ytid}.wav", start, start + 10.0, 16000, 2, 2)
    # 00.parquet has groups of 4 and 2 rows, 01.parquet one of 4: each decoded once, audio bytes only.
    assert len(reads) == 3 and {columns for _, columns in reads} == {("audio.bytes",)}


def test_parquet_clip_reads_only_its_own_row_group(tmp_path, monkeypatch):
    clips = [(f"hf{n:09d}", encode(tone(0, 10.0, 48000), 48000, "flac")) for n in range(8)]
    make_parquet(tmp_path / "one.parquet", clips, row_group_size=2)
    source = ArchiveSource.open(tmp_path / "one.parquet", tmp_path / "cache")
    reads = []
    original = pq.ParquetFile.read_row_group
    monkeypatch.setattr(pq.ParquetFile, "read_row_group",
                        lambda self, i, columns=None, **k: reads.append(i) or original(self, i, columns=columns, **k))
    assert source.produce_segment("hf000000005", 0.0, 10.0, MONO_16K, tmp_path / "x.wav").ok
    assert reads == [2]


# ---------------------------------------------------------------- the index cache


def test_index_is_cached_and_rebuilt_when_the_archive_changes(tmp_path, monkeypatch):
    root = tmp_path / "a"
    write_file(root / "abcdefghijk.wav", tone(0, 10, 16000), 16000)
    cache = tmp_path / "cache"
    first = ArchiveSource.open(root, cache)
    assert len(list(cache.glob("archive-index-*.npz"))) == 1

    builds = []
    real_build = index_module.build_index
    monkeypatch.setattr(index_module, "build_index", lambda *a, **k: builds.append(1) or real_build(*a, **k))
    again = ArchiveSource.open(root, cache)
    assert builds == [] and again.index.ytids.tolist() == first.index.ytids.tolist()

    write_file(root / "bbcdefghijk.wav", tone(0, 10, 16000), 16000)  # a new file
    assert ArchiveSource.open(root, cache).has("bbcdefghijk", 0, 10) and builds == [1]

    stat = (root / "abcdefghijk.wav").stat()
    os.utime(root / "abcdefghijk.wav", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # touched
    ArchiveSource.open(root, cache)
    assert builds == [1, 1]

    next(cache.glob("archive-index-*.npz")).write_bytes(b"garbage")  # a damaged cache is rebuilt
    assert ArchiveSource.open(root, cache).has("abcdefghijk", 0, 10) and builds == [1, 1, 1]


def test_source_pickles_without_open_handles(tmp_path):
    import pickle

    _h5py()
    make_panns_hdf5(tmp_path / "p.h5", [("Yabcdefghijk.wav", tone(0, 10, 32000))])
    source = ArchiveSource.open(tmp_path / "p.h5", tmp_path / "cache")
    assert source.produce_segment("abcdefghijk", 0, 10, MONO_16K, tmp_path / "a.wav").ok
    copy = pickle.loads(pickle.dumps(source))
    assert copy.produce_segment("abcdefghijk", 0, 10, MONO_16K, tmp_path / "b.wav").ok
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    source.close()


def test_parquet_cell_that_only_ffmpeg_reads_is_decoded_through_a_file(tmp_path):
    # AAC in mp4 (index after the media): libsndfile cannot read it, so ffmpeg decodes it from a file.
    wav = write_file(tmp_path / "staging" / "c.wav", tone(20, 10.0, 44100, 2), 44100)
    m4a = tmp_path / "staging" / "c.m4a"
    _ffmpeg_convert(wav, m4a)
    make_parquet(tmp_path / "x.parquet", [("abcdefghijk", m4a.read_bytes())])
    source = ArchiveSource.open(tmp_path / "x.parquet", tmp_path / "cache")
    result = source.produce_segment("abcdefghijk", 20.0, 30.0, MONO_16K, tmp_path / "out.wav")
    assert result.ok, result
    assert_exact_clip(tmp_path / "out.wav", 20.0, 30.0, 16000, 1, 2, tolerance=0.08)


def test_one_source_shared_by_threads_gives_the_same_bytes(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    _h5py()
    segments = [(f"t{n:010d}", float(n)) for n in range(12)]
    make_panns_hdf5(tmp_path / "p.h5", [(f"Y{y}.wav", tone(s, 10.0, 32000)) for y, s in segments])
    make_parquet(tmp_path / "q.parquet", [(y, encode(tone(s, 10.0, 48000, 2), 48000, "flac")) for y, s in segments],
                 row_group_size=3)
    for name in ("p.h5", "q.parquet"):
        serial = ArchiveSource.open(tmp_path / name, tmp_path / "cache")
        shared = ArchiveSource.open(tmp_path / name, tmp_path / "cache")
        for y, s in segments:
            assert serial.produce_segment(y, s, s + 10, MONO_16K, tmp_path / "serial" / f"{y}.wav").ok
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda job: shared.produce_segment(job[0], job[1], job[1] + 10, MONO_16K,
                                                               tmp_path / "threads" / f"{job[0]}.wav"), segments))
        assert all(r.ok for r in results)
        for y, _ in segments:
            assert (tmp_path / "threads" / f"{y}.wav").read_bytes() == (tmp_path / "serial" / f"{y}.wav").read_bytes()


def test_hdf5_names_without_audio_rows_are_not_indexed(tmp_path):
    h5py = _h5py()
    with h5py.File(tmp_path / "half.h5", "w") as handle:
        handle.create_dataset("audio_name", data=np.array([b"Yabcdefghijk.wav", b"Ybbcdefghijk.wav"], dtype="S20"))
        waveform = handle.create_dataset("waveform", shape=(1, 320000), dtype=np.int16)
        waveform[0] = to_int16(tone(0, 10, 32000))[:, 0]
    source = ArchiveSource.open(tmp_path / "half.h5", tmp_path / "cache")
    assert source.has("abcdefghijk", 0, 10) and not source.has("bbcdefghijk", 0, 10)
    assert source.produce_segment("abcdefghijk", 0, 10, MONO_16K, tmp_path / "a.wav").ok
