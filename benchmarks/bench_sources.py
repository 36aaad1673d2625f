"""Clips per second from local archives against one ffmpeg process per clip, and index memory.

Builds, in a temporary folder, the two archive layouts users have on disk:

- a PANNs-style HDF5 (``audio_name`` ``Y<ytid>.wav``, int16 ``waveform`` (N, 320000) at 32 kHz);
- a Hugging Face-style Parquet (``video_id``, ``audio`` {FLAC bytes, path}, 48 kHz stereo),

each holding ``--clips`` 10 s clips of time-encoded tone, then produces every clip as
16 kHz mono WAV two ways, in the same run, on ``--workers`` cores:

1. archive: the archive source (in-process decode + resample_poly, worker processes);
2. baseline: the same bytes piped into one ffmpeg subprocess per clip (imageio-ffmpeg's
   binary), cut to the exact length with apad/atrim.

Every output of both runs is checked to have exactly 160,000 frames, and a sample of the
archive's outputs is compared with the signal. Then it indexes a synthetic PANNs HDF5
with ``--names`` (1.9 M by default) names in a fresh process and reports its peak RSS.

Printed targets:
- ``archive speed-up <ratio> target >= 3 met|MISSED``;
- ``index <n> names peak RSS <MB> target <= 1024 met|MISSED``.

Run: python benchmarks/bench_sources.py [--clips 150] [--workers 2] [--names 1900000]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from archive_media import assert_exact_clip, encode, make_parquet, tone, to_int16  # noqa: E402

from audioset_tools.sources.archive import ArchiveSource  # noqa: E402
from audioset_tools.sources.output_spec import OutputSpec  # noqa: E402

CLIP_SECONDS = 10.0
SPEC = OutputSpec(16000, 1, "wav")
FRAMES = 160000
PARQUET_ROW_GROUP = 32
_SOURCES: list[ArchiveSource] = []


def build_hdf5(path: Path, ytids: list[str], starts: list[float]) -> None:
    import h5py

    with h5py.File(path, "w") as handle:
        handle.create_dataset("audio_name", data=np.array([f"Y{y}.wav".encode() for y in ytids], dtype="S20"))
        waveform = handle.create_dataset("waveform", shape=(len(ytids), 320000), dtype=np.int16, chunks=(1, 320000))
        for row, start in enumerate(starts):
            waveform[row] = to_int16(tone(start, CLIP_SECONDS, 32000))[:, 0]
        handle.create_dataset("target", data=np.zeros((len(ytids), 527), dtype=bool))


def _init_worker(sources: list[ArchiveSource]) -> None:
    _SOURCES[:] = sources


def _produce(job: tuple[int, str, float, str]) -> str:
    number, ytid, start, target = job
    result = _SOURCES[number].produce(ytid, start, start + CLIP_SECONDS, SPEC, Path(target))
    return result.outcome.value


def run_archive(sources: list[ArchiveSource], jobs: list[tuple[int, str, float, str]], workers: int) -> float:
    # Archive order, in contiguous runs per worker: each Parquet row group is decoded about once.
    jobs = sorted(jobs, key=lambda j: (j[0], *sources[j[0]].order_key(j[1], j[2], j[2] + CLIP_SECONDS)))
    began = time.perf_counter()
    if workers == 1:
        _init_worker(sources)
        outcomes = [_produce(job) for job in jobs]
    else:
        chunk = max(1, len(jobs) // (workers * 4))
        with concurrent.futures.ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(sources,)) as pool:
            outcomes = list(pool.map(_produce, jobs, chunksize=chunk))
    elapsed = time.perf_counter() - began
    if set(outcomes) != {"ok"}:
        raise SystemExit(f"archive run: not every clip was ok: {sorted(set(outcomes))}")
    return elapsed


def _ffmpeg_clip(ffmpeg: str, input_format: list[str], data: bytes, target: Path) -> None:
    trim = f"aresample={SPEC.sample_rate},apad=whole_len={FRAMES},atrim=end_sample={FRAMES}"
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *input_format, "-i", "pipe:0",
         "-af", trim, "-ar", str(SPEC.sample_rate), "-ac", str(SPEC.channels), "-c:a", "pcm_s16le",
         "-fflags", "+bitexact", "-flags", "+bitexact", str(target)],
        input=data, check=True, capture_output=True,
    )


def run_baseline(ffmpeg: str, hdf5: Path, parquet: Path, ytids: dict[str, list[str]], out: Path,
                 workers: int) -> float:
    """Read each clip's bytes from the archive, then one ffmpeg subprocess per clip."""
    import h5py
    import pyarrow.parquet as pq

    began = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool, h5py.File(hdf5, "r") as handle:
        futures = []
        waveform = handle["waveform"]
        for row, ytid in enumerate(ytids["hdf5"]):
            raw = waveform[row].tobytes()
            futures.append(pool.submit(_ffmpeg_clip, ffmpeg, ["-f", "s16le", "-ar", "32000", "-ac", "1"], raw,
                                       out / f"{ytid}.wav"))
        table = pq.read_table(parquet, columns=["video_id", "audio"])
        for ytid, cell in zip(table.column("video_id").to_pylist(), table.column("audio").to_pylist()):
            futures.append(pool.submit(_ffmpeg_clip, ffmpeg, [], cell["bytes"], out / f"{ytid}.wav"))
        for future in futures:
            future.result()
    return time.perf_counter() - began


def check_outputs(folder: Path, expected: int) -> None:
    files = sorted(folder.glob("*.wav"))
    if len(files) != expected:
        raise SystemExit(f"{folder.name}: {len(files)} clips written, expected {expected}")
    wrong = [f.name for f in files if soundfile.info(str(f)).frames != FRAMES]
    if wrong:
        raise SystemExit(f"{folder.name}: {len(wrong)} clips without exactly {FRAMES} frames, e.g. {wrong[:3]}")


def measure_index(names: int, work: Path) -> tuple[float, float, float]:
    """Build a PANNs-layout HDF5 of ``names`` names; index it in a fresh process; (seconds, peak MB, base MB)."""
    import h5py

    path = work / "unbalanced_train.h5"
    with h5py.File(path, "w") as handle:
        # Names only; the waveform dataset is declared (chunked) but never written, so it takes no space.
        dataset = handle.create_dataset("audio_name", shape=(names,), dtype="S20", chunks=(65536,))
        for begin in range(0, names, 65536):
            count = min(65536, names - begin)
            dataset[begin:begin + count] = np.char.add(
                np.char.add(b"Y", np.char.zfill(np.arange(begin, begin + count).astype("S11"), 11)), b".wav")
        handle.create_dataset("waveform", shape=(names, 320000), dtype=np.int16, chunks=(1, 320000))
    completed = subprocess.run(
        [sys.executable, __file__, "--index-child", str(path), str(work / "index-cache")],
        capture_output=True, text=True, check=True,
    )
    seconds, peak, base = (float(v) for v in completed.stdout.split())
    return seconds, peak, base


def index_child(path: str, cache: str) -> int:
    import h5py  # noqa: F401 - imported before the baseline so the library is not counted as index memory

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    began = time.perf_counter()
    source = ArchiveSource.open(path, Path(cache))
    elapsed = time.perf_counter() - began
    if not source.has("00000123456", 0.0, 10.0) or len(source.index) == 0:
        raise SystemExit("index lookup failed")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{elapsed:.3f} {peak:.1f} {base:.1f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=150, help="clips per archive (HDF5 and Parquet each)")
    parser.add_argument("--workers", type=int, default=2, help="processes (archive) / concurrent ffmpegs (baseline)")
    parser.add_argument("--names", type=int, default=1_900_000, help="names in the index-memory HDF5 (0 to skip)")
    parser.add_argument("--index-child", nargs=2, metavar=("H5", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.index_child:
        return index_child(*args.index_child)
    logging.basicConfig(level=logging.WARNING)
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    with tempfile.TemporaryDirectory(prefix="bench-sources-") as tmp:
        work = Path(tmp)
        began = time.perf_counter()
        ytids = {"hdf5": [f"h{n:010d}" for n in range(args.clips)], "parquet": [f"q{n:010d}" for n in range(args.clips)]}
        starts = [float(n * 7 % 290) for n in range(args.clips)]
        build_hdf5(work / "panns.h5", ytids["hdf5"], starts)
        make_parquet(work / "hf.parquet",
                     [(y, encode(tone(s, CLIP_SECONDS, 48000, 2), 48000, "flac")) for y, s in zip(ytids["parquet"], starts)],
                     row_group_size=PARQUET_ROW_GROUP)
        print(f"archives: {args.clips} clips of {CLIP_SECONDS:g} s in a PANNs HDF5 (32 kHz int16) and "
              f"{args.clips} in a Parquet (48 kHz stereo FLAC, row groups of {PARQUET_ROW_GROUP}); "
              f"built in {time.perf_counter() - began:.1f} s; output 16 kHz mono wav; {args.workers} workers")

        sources = [ArchiveSource.open(work / "panns.h5", work / "cache", name="panns"),
                   ArchiveSource.open(work / "hf.parquet", work / "cache", name="hf")]
        archive_out, baseline_out = work / "archive-out", work / "baseline-out"
        archive_out.mkdir()
        baseline_out.mkdir()
        jobs = [(number, y, s, str(archive_out / f"{y}.wav"))
                for number, kind in enumerate(("hdf5", "parquet")) for y, s in zip(ytids[kind], starts)]
        archive_seconds = run_archive(sources, jobs, args.workers)
        baseline_seconds = run_baseline(ffmpeg, work / "panns.h5", work / "hf.parquet", ytids, baseline_out,
                                        args.workers)
        check_outputs(archive_out, len(jobs))
        check_outputs(baseline_out, len(jobs))
        for kind, channels in (("hdf5", 1), ("parquet", 2)):
            for y, s in list(zip(ytids[kind], starts))[:: max(1, args.clips // 5)]:
                assert_exact_clip(archive_out / f"{y}.wav", s, s + CLIP_SECONDS, 16000, 1, channels)

        clips = len(jobs)
        archive_rate, baseline_rate = clips / archive_seconds, clips / baseline_seconds
        ratio = archive_rate / baseline_rate
        print(f"archive clips/s {archive_rate:.1f} ({clips} clips in {archive_seconds:.2f} s, exact)")
        print(f"ffmpeg baseline clips/s {baseline_rate:.1f} ({clips} clips in {baseline_seconds:.2f} s, exact)")
        print(f"archive speed-up {ratio:.2f} target >= 3 {'met' if ratio >= 3 else 'MISSED'}")

        if args.names:
            seconds, peak, base = measure_index(args.names, work)
            print(f"index {args.names} names in {seconds:.1f} s; peak RSS {peak:.0f} MB (after imports {base:.0f} MB)")
            print(f"index {args.names} names peak RSS {peak:.0f} MB target <= 1024 {'met' if peak <= 1024 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
