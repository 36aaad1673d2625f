"""Post-processing speed, as ratios against baselines measured in the same run.

1. Log-mel throughput: ``audioset-tools melspec``'s library function (batched numpy,
   all cores) against librosa run one clip at a time in one process, both reading the
   wav files and writing one .npy per clip. Target >= 3x.
2. Episode loading: 5-way 1-shot 15-query episodes from packed storage against a
   dataset decoding one wav file per item (the same sampler, the same DataLoader).
   Target >= 20x.

Run: python benchmarks/bench_postprocess.py [--clips 128] [--seconds 10] [--workers N]
Needs the [torch] and [test] extras (torch, librosa).
"""

from __future__ import annotations

import os

# One BLAS thread everywhere, set before numpy loads: the baseline then runs at its best
# (BLAS threads spinning against a busy machine slow librosa several times over) and
# the library's worker processes do the same for themselves.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import logging  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402

from audioset_tools.dataset.manifest import write_dataset_manifests  # noqa: E402
from audioset_tools.loaders.torch_data import ClipDataset, PackedDataset, episode_loader  # noqa: E402
from audioset_tools.post.features import FeatureSettings, compute_melspecs  # noqa: E402
from audioset_tools.post.pack import pack_dataset  # noqa: E402
from audioset_tools.post.parallel import default_workers  # noqa: E402

SR = 16000


def make_dataset(root: Path, classes: int, clips_per_class: int, seconds: float) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    rows = []
    for c in range(classes):
        for n in range(clips_per_class):
            ytid = f"b{c:03d}n{n:05d}x"[:11]
            relative = f"class_{c:03d}/{ytid}_0.wav"
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            signal = 0.3 * np.sin(2 * np.pi * (200 + 40 * c + n) * t) + 0.05 * rng.standard_normal(t.size)
            sf.write(str(path), signal, SR, subtype="PCM_16")
            rows.append({
                "class_index": c, "mid": f"/m/b{c:03d}", "class_name": f"class {c}", "split": "train",
                "ytid": ytid, "start_seconds": 0.0, "end_seconds": seconds, "file": relative,
                "sample_rate": SR, "channels": 1, "duration": seconds,
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "labels": f"/m/b{c:03d}",
            })
    frame = pd.DataFrame(rows)
    write_dataset_manifests(root, frame)
    return frame


def librosa_one_at_a_time(root: Path, files: list[str], out: Path) -> None:
    for relative in files:
        y, sr = librosa.load(root / relative, sr=None)
        mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=1024, hop_length=512, n_mels=128, pad_mode="reflect")
        target = out / relative.replace(".wav", ".npy")
        target.parent.mkdir(parents=True, exist_ok=True)
        np.save(target, librosa.power_to_db(mel))


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the worker processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def episodes_per_second(dataset, episodes: int) -> float:
    loader = episode_loader(dataset, n_way=5, k_shot=1, q_query=15, episodes=episodes, seed=0)
    for _ in episode_loader(dataset, 5, 1, 15, episodes=2, seed=1):
        pass  # warm the page cache and the imports
    start = time.perf_counter()
    for episode in loader:
        assert episode.query_x.shape[0] == 75
    return episodes / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=128, help="clips for the spectrogram benchmark")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=None, help="default: all cores")
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5, help="best of this many runs of each side")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # DataLoader worker processes run torch single-threaded; do the same here, for both sides
    # (two intra-op threads on a busy 2-core machine made torch.stack 70x slower).
    torch.set_num_threads(1)
    workers = default_workers(args.workers)
    with tempfile.TemporaryDirectory(prefix="bench_post_") as tmp:
        root = Path(tmp)
        classes = 8
        frame = make_dataset(root / "data", classes, max(16, args.clips // classes), args.seconds)
        files = list(frame["file"])
        print(f"{len(files)} clips of {args.seconds:g} s at {SR} Hz, {workers} worker(s)")

        librosa_one_at_a_time(root / "data", files[:4], root / "warm")  # imports, caches
        # Other load on this machine takes cores from our worker processes more than from
        # the one-process baseline: the wall ratio is only comparable at a similar load.
        load_before = os.getloadavg()[0]
        # Best of interleaved repeats: other load on the machine hits both sides alike.
        baseline = ours = baseline_cpu = ours_cpu = float("inf")
        for repeat in range(args.repeats):
            start, cpu = time.perf_counter(), cpu_seconds()
            librosa_one_at_a_time(root / "data", files, root / f"librosa{repeat}")
            baseline = min(baseline, time.perf_counter() - start)
            baseline_cpu = min(baseline_cpu, cpu_seconds() - cpu)
            start, cpu = time.perf_counter(), cpu_seconds()
            compute_melspecs(root / "data", root / f"mel{repeat}", FeatureSettings(), workers=workers)
            ours = min(ours, time.perf_counter() - start)
            ours_cpu = min(ours_cpu, cpu_seconds() - cpu)
        ratio = baseline / ours
        print(
            f"log-mel: librosa one clip at a time {len(files) / baseline:.1f} clips/s, "
            f"batched on {workers} core(s) {len(files) / ours:.1f} clips/s -> {ratio:.1f}x (target >= 3x; "
            f"best of {args.repeats}, 1-min load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after)"
        )
        # CPU time is what other load on the machine cannot distort: the per-core gain.
        print(
            f"log-mel CPU per clip (all processes): librosa {1000 * baseline_cpu / len(files):.2f} ms, "
            f"ours {1000 * ours_cpu / len(files):.2f} ms -> {baseline_cpu / ours_cpu:.1f}x per core"
        )

        pack_dataset(root / "mel0", root / "packed", ["train"], "melspec")
        wav_rate = episodes_per_second(ClipDataset(root / "data", "train"), args.episodes)
        packed_rate = episodes_per_second(PackedDataset(root / "packed", "melspec", "train"), args.episodes)
        print(
            f"episodes (5-way 1-shot 15-query): wav decoded per item {wav_rate:.1f}/s, "
            f"packed log-mel {packed_rate:.1f}/s -> {packed_rate / wav_rate:.1f}x (target >= 20x)"
        )


if __name__ == "__main__":
    main()
