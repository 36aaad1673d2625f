"""Clips per second from local archives against one ffmpeg process per clip, and index memory.

Builds, in a temporary folder, the two archive layouts users have on disk:

- a PANNs-style HDF5 (``audio_name`` ``Y<ytid>.wav``, int16 ``waveform`` (N, 320000) at 32 kHz);
- a Hugging Face-style Parquet (``video_id``, ``audio`` {FLAC bytes, path}, 48 kHz stereo),

each holding ``--clips`` 10 s clips of time-encoded tone, then produces every clip as
16 kHz mono WAV two ways, in the same run, ``--workers`` at a time:

1. archive: the archive source (in-process decode + resample_poly's filter), on worker threads
   sharing one source as the download scheduler runs it (``--processes`` for processes);
2. baseline: each clip's bytes from the archive piped into one ffmpeg subprocess per clip
   (imageio-ffmpeg's binary), cut to the exact length with aresample/apad/atrim.

Before the timed rounds, each method produces one clip of each layout untimed (a warm-up):
one-time start-up (pyarrow's first row-group read takes ~0.15 s, h5py opens the file, the
resampler designs its filter, the ffmpeg binary is paged in) is paid once per run, not per
clip, and would otherwise be charged to whichever method happens to go first. Then the clips
are done in ``--rounds`` slices, alternating which method goes first (A B B A ...), so both
see the same load on a shared machine. Every output of both methods is checked to
have exactly 160,000 frames, and a sample of the archive's outputs is compared with the
signal. CPU time per clip (own + children) is printed too: on a busy machine it is the
steadier figure, and an idle machine's throughput ratio tends to it.

Then it indexes a synthetic PANNs HDF5 with ``--names`` (1.9 M by default) names in a fresh
process and reports its peak resident memory.

Printed targets:
- ``archive speed-up <ratio> target >= 3 met|MISSED``;
- ``index <n> names peak RSS <MB> target <= 1024 met|MISSED``.

Run: python benchmarks/bench_sources.py [--clips 150] [--workers 2] [--rounds 3] [--names 1900000]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
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

from archive_media import assert_exact_clip, encode, make_parquet, to_int16, tone  # noqa: E402

from audioset_tools.sources.archive import ArchiveSource  # noqa: E402
from audioset_tools.sources.output_spec import OutputSpec  # noqa: E402

CLIP_SECONDS = 10.0
SPEC = OutputSpec(16000, 1, "wav")
FRAMES = 160000
PARQUET_ROW_GROUP = 32
LAYOUTS = (("hdf5", "PANNs HDF5, 32 kHz int16", 1), ("parquet", "Parquet, 48 kHz stereo FLAC", 2))
_SOURCE: list[ArchiveSource] = []


def build_hdf5(path: Path, ytids: list[str], starts: list[float]) -> None:
    import h5py

    with h5py.File(path, "w") as handle:
        handle.create_dataset("audio_name", data=np.array([f"Y{y}.wav".encode() for y in ytids], dtype="S20"))
        waveform = handle.create_dataset("waveform", shape=(len(ytids), 320000), dtype=np.int16, chunks=(1, 320000))
        for row, start in enumerate(starts):
            waveform[row] = to_int16(tone(start, CLIP_SECONDS, 32000))[:, 0]
        handle.create_dataset("target", data=np.zeros((len(ytids), 527), dtype=bool))


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (worker processes, ffmpeg)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _init_worker(source: ArchiveSource) -> None:
    _SOURCE[:] = [source]


def _produce(job: tuple[str, float, str]) -> str:
    ytid, start, target = job
    return _SOURCE[0].produce_segment(ytid, start, start + CLIP_SECONDS, SPEC, Path(target)).outcome.value


def run_archive(source: ArchiveSource, jobs: list[tuple[str, float, str]], workers: int, processes: bool) -> None:
    # Archive order: each Parquet row group is decoded about once.
    jobs = sorted(jobs, key=lambda j: source.order_key(j[0], j[1], j[1] + CLIP_SECONDS))
    if processes:
        chunk = max(1, len(jobs) // (workers * 4))
        with concurrent.futures.ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(source,)) as pool:
            outcomes = list(pool.map(_produce, jobs, chunksize=chunk))
    else:
        # As the download scheduler runs a source: threads sharing it; decoding releases the GIL.
        _init_worker(source)
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            outcomes = list(pool.map(_produce, jobs))
    if set(outcomes) != {"ok"}:
        raise SystemExit(f"archive run: not every clip was ok: {sorted(set(outcomes))}")


def _ffmpeg_clip(ffmpeg: str, input_format: list[str], data: bytes, target: Path) -> None:
    cut = f"aresample={SPEC.sample_rate},apad=whole_len={FRAMES},atrim=end_sample={FRAMES}"
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *input_format, "-i", "pipe:0",
         "-af", cut, "-ac", str(SPEC.channels), "-c:a", "pcm_s16le",
         "-fflags", "+bitexact", "-flags", "+bitexact", str(target)],
        input=data, check=True, capture_output=True,
    )


def baseline_inputs(kind: str, path: Path, rows: range) -> list[tuple[list[str], bytes]]:
    """These rows' bytes as the archive holds them, with the ffmpeg input options they need."""
    if kind == "hdf5":
        import h5py

        with h5py.File(path, "r") as handle:
            waveform = handle["waveform"]
            return [(["-f", "s16le", "-ar", "32000", "-ac", "1"], waveform[row].tobytes()) for row in rows]
    import pyarrow.parquet as pq

    # Only the row groups holding these rows, as the archive source reads them.
    parquet = pq.ParquetFile(path)
    starts = np.cumsum([0] + [parquet.metadata.row_group(g).num_rows for g in range(parquet.num_row_groups)])
    first, last = np.searchsorted(starts, rows.start, "right") - 1, np.searchsorted(starts, rows.stop - 1, "right") - 1
    table = parquet.read_row_groups(list(range(first, last + 1)), columns=["audio.bytes"])
    cells = table.column(0).slice(rows.start - starts[first], len(rows)).to_pylist()
    return [([], cell["bytes"]) for cell in cells]


def run_baseline(ffmpeg: str, kind: str, path: Path, jobs: list[tuple[str, float, str]], rows: range,
                 workers: int) -> None:
    """Read the clips' bytes from the archive, then one ffmpeg subprocess per clip, ``workers`` at a time."""
    inputs = baseline_inputs(kind, path, rows)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(_ffmpeg_clip, ffmpeg, options, data, Path(target))
                   for (_, _, target), (options, data) in zip(jobs, inputs)]
        for future in futures:
            future.result()


def timed(run) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    run()
    return time.perf_counter() - wall, cpu_seconds() - cpu


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
            numbers = np.char.zfill(np.arange(begin, begin + count).astype("S11"), 11)
            dataset[begin:begin + count] = np.char.add(np.char.add(b"Y", numbers), b".wav")
        handle.create_dataset("waveform", shape=(names, 320000), dtype=np.int16, chunks=(1, 320000))
    completed = subprocess.run(
        [sys.executable, __file__, "--index-child", str(path), str(work / "index-cache")],
        capture_output=True, text=True, check=True,
    )
    seconds, peak, base = (float(v) for v in completed.stdout.split())
    return seconds, peak, base


def peak_rss_mb() -> float:
    """Peak resident memory of this process image, in MB.

    ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` survives execve on Linux, so a child started
    from this (large) benchmark would report the parent's high-water mark; /proc's VmHWM
    belongs to the new image. Elsewhere, ru_maxrss is what there is.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024


def index_child(path: str, cache: str) -> int:
    import h5py  # noqa: F401 - imported before the baseline so the library is not counted as index memory

    base = peak_rss_mb()
    began = time.perf_counter()
    source = ArchiveSource.open(path, Path(cache))
    elapsed = time.perf_counter() - began
    middle = f"{len(source.index) // 2:011d}"
    if len(source.index) == 0 or not source.has(middle, 0.0, 10.0):
        raise SystemExit("index lookup failed")
    print(f"{elapsed:.3f} {peak_rss_mb():.1f} {base:.1f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=150, help="clips per archive (HDF5 and Parquet each)")
    parser.add_argument("--workers", type=int, default=2, help="archive workers / concurrent ffmpegs")
    parser.add_argument("--processes", action="store_true", help="archive workers are processes, not threads")
    parser.add_argument("--rounds", type=int, default=3, help="alternating slices per layout")
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
        starts = [float(n * 7 % 290) for n in range(args.clips)]
        ytids = {kind: [f"{kind[0]}{n:010d}" for n in range(args.clips)] for kind, _, _ in LAYOUTS}
        paths = {"hdf5": work / "panns.h5", "parquet": work / "hf.parquet"}
        build_hdf5(paths["hdf5"], ytids["hdf5"], starts)
        make_parquet(paths["parquet"], [(y, encode(tone(s, CLIP_SECONDS, 48000, 2), 48000, "flac"))
                                        for y, s in zip(ytids["parquet"], starts)], row_group_size=PARQUET_ROW_GROUP)
        print(f"archives: {args.clips} clips of {CLIP_SECONDS:g} s in a PANNs HDF5 (32 kHz int16) and "
              f"{args.clips} in a Parquet (48 kHz stereo FLAC, row groups of {PARQUET_ROW_GROUP}); "
              f"built in {time.perf_counter() - began:.1f} s; output 16 kHz mono wav; {args.workers} "
              f"{'processes' if args.processes else 'threads'} / concurrent ffmpegs; {args.rounds} rounds")

        outputs = {"archive": work / "archive-out", "baseline": work / "baseline-out"}
        for folder in outputs.values():
            folder.mkdir()
        warm_up = work / "warm-up"
        warm_up.mkdir()
        totals = {"archive": [0.0, 0.0], "baseline": [0.0, 0.0]}  # wall seconds, CPU seconds
        print(f"\n{'layout':<30}{'clips':>6}{'archive clips/s':>17}{'ffmpeg clips/s':>16}"
              f"{'CPU ms/clip archive / ffmpeg':>31}")
        for kind, label, _ in LAYOUTS:
            source = ArchiveSource.open(paths[kind], work / "cache", name=kind)
            layout = {"archive": [0.0, 0.0], "baseline": [0.0, 0.0]}
            first_clip = [(ytids[kind][0], starts[0], str(warm_up / f"{ytids[kind][0]}.wav"))]
            run_archive(source, first_clip, 1, args.processes)
            run_baseline(ffmpeg, kind, paths[kind], first_clip, range(1), 1)
            size = -(-args.clips // args.rounds)
            for number, first in enumerate(range(0, args.clips, size)):
                rows = range(first, min(first + size, args.clips))
                jobs = {method: [(ytids[kind][r], starts[r], str(outputs[method] / f"{ytids[kind][r]}.wav"))
                                 for r in rows] for method in outputs}
                runs = {
                    "archive": lambda: run_archive(source, jobs["archive"], args.workers, args.processes),
                    "baseline": lambda: run_baseline(ffmpeg, kind, paths[kind], jobs["baseline"], rows, args.workers),
                }
                order = ("archive", "baseline") if number % 2 == 0 else ("baseline", "archive")
                for method in order:
                    wall, cpu = timed(runs[method])
                    layout[method][0] += wall
                    layout[method][1] += cpu
            source.close()
            for method in totals:
                totals[method][0] += layout[method][0]
                totals[method][1] += layout[method][1]
            n = args.clips
            print(f"{label:<30}{n:>6}{n / layout['archive'][0]:>17.1f}{n / layout['baseline'][0]:>16.1f}"
                  f"{layout['archive'][1] / n * 1000:>22.1f} / {layout['baseline'][1] / n * 1000:>6.1f}")

        clips = len(LAYOUTS) * args.clips
        for folder in outputs.values():
            check_outputs(folder, clips)
        for kind, _, channels in LAYOUTS:
            for y, s in list(zip(ytids[kind], starts))[:: max(1, args.clips // 5)]:
                assert_exact_clip(outputs["archive"] / f"{y}.wav", s, s + CLIP_SECONDS, 16000, 1, channels)

        archive_rate, baseline_rate = clips / totals["archive"][0], clips / totals["baseline"][0]
        ratio = archive_rate / baseline_rate
        print(f"\narchive clips/s {archive_rate:.1f} ({clips} clips in {totals['archive'][0]:.2f} s, every one exact; "
              f"CPU {totals['archive'][1] / clips * 1000:.1f} ms/clip)")
        print(f"ffmpeg baseline clips/s {baseline_rate:.1f} ({clips} clips in {totals['baseline'][0]:.2f} s, "
              f"every one exact; CPU {totals['baseline'][1] / clips * 1000:.1f} ms/clip)")
        print(f"archive speed-up {ratio:.2f} target >= 3 {'met' if ratio >= 3 else 'MISSED'}")
        print(f"archive CPU per clip, ffmpeg / archive {totals['baseline'][1] / totals['archive'][1]:.2f}x")

        if args.names:
            seconds, peak, base = measure_index(args.names, work)
            print(f"index {args.names} names in {seconds:.1f} s; peak RSS {peak:.0f} MB (after imports {base:.0f} MB)")
            verdict = "met" if peak <= 1024 else "MISSED"
            print(f"index {args.names} names peak RSS {peak:.0f} MB target <= 1024 {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
