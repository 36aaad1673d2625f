#!/usr/bin/env python3
"""Time the whole select step on the full official metadata against a naive baseline.

Baseline (what peer tools do): pandas reads the three segment CSVs, then for each
suitable class a ``str.contains(mid)`` scan over all rows plus a seeded sample.
Ours: ``compute_selection`` at the default settings (read + validate + select +
candidates + splits), then ``write_selection`` timed apart, in a fresh subprocess so that
its peak RSS is measured alone (``getrusage(RUSAGE_CHILDREN)``).

    python benchmarks/bench_select.py [--metadata-dir ../shared/audioset] [--repeat 5]

Targets: ratio >= 10, peak RSS < 1 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_METADATA = REPO.parent / "shared" / "audioset"
SEGMENT_FILES = ("balanced_train_segments.csv", "unbalanced_train_segments.csv", "eval_segments.csv")


def naive_baseline(metadata_dir: Path, seed: int = 0) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, classes) of the naive approach."""
    import pandas as pd

    started, cpu = time.perf_counter(), time.process_time()
    ontology = json.loads((metadata_dir / "ontology.json").read_text())
    quality = pd.read_csv(metadata_dir / "qa_true_counts.csv").set_index("label_id")
    frame = pd.concat(
        [
            pd.read_csv(metadata_dir / name, skiprows=3, header=None, skipinitialspace=True,
                        names=["ytid", "start_seconds", "end_seconds", "labels"])
            for name in SEGMENT_FILES
        ],
        ignore_index=True,
    )
    classes = []
    for node in ontology:
        if node["child_ids"] or "blacklist" in node["restrictions"] or node["id"] not in quality.index:
            continue
        rated, true = quality.loc[node["id"], ["num_rated", "num_true"]]
        if rated and true / rated >= 0.8:
            classes.append(node["id"])
    candidates = 0
    for mid in classes:
        rows = frame[frame["labels"].str.contains(mid, regex=False)]
        candidates += len(rows.sample(frac=1.0, random_state=seed))
    return time.perf_counter() - started, time.process_time() - cpu, len(classes)


def ours_in_child(metadata_dir: Path) -> tuple[float, float, float, float, int]:
    """(compute wall, compute CPU, write wall seconds, peak RSS in MiB, classes) of one fresh process."""
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "control.yaml"
        config.write_text(f"paths:\n  metadata_dir: {metadata_dir}\n  meta_dir: meta\n")
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        result = subprocess.run(
            [sys.executable, __file__, "--child", str(config)], check=True, capture_output=True, text=True
        )
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak_kib < before:  # ru_maxrss of children is the max over all waited-for children
        peak_kib = before
    seconds, cpu, write, classes = result.stdout.split()
    return float(seconds), float(cpu), float(write), peak_kib / 1024, int(classes)


def child(config_path: str) -> None:
    from audioset_tools.config import load_config
    from audioset_tools.select.step import compute_selection, write_selection

    config = load_config(config_path)
    started, cpu = time.perf_counter(), time.process_time()
    result = compute_selection(config)
    computed, computed_cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    write_selection(result, config.paths.meta_dir)
    print(f"{computed:.4f} {computed_cpu:.4f} {time.perf_counter() - started:.4f} {result.report.classes}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metadata-dir", type=Path, default=DEFAULT_METADATA)
    parser.add_argument("--repeat", type=int, default=5, help="runs of ours (median reported)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return 0

    # Ours runs on both sides of the baseline, so a change in machine load during the
    # run affects both measurements alike.
    load_before = os.getloadavg()[0]
    half = max(1, args.repeat // 2)
    runs = [ours_in_child(args.metadata_dir) for _ in range(half)]
    baseline, baseline_cpu, baseline_classes = naive_baseline(args.metadata_dir)
    runs += [ours_in_child(args.metadata_dir) for _ in range(max(1, args.repeat - half))]
    ours = statistics.median(run[0] for run in runs)
    ours_cpu = statistics.median(run[1] for run in runs)
    writing = statistics.median(run[2] for run in runs)
    peak = max(run[3] for run in runs)
    ratio = baseline / ours
    print(f"metadata: {args.metadata_dir}")
    print(f"baseline (pandas + str.contains per class, {baseline_classes} classes): "
          f"{baseline:.2f} s wall, {baseline_cpu:.2f} s CPU")
    walls = sorted(run[0] for run in runs)
    print(f"ours (read + select + candidates + splits, {runs[0][4]} classes, median of {len(runs)}): "
          f"{ours:.2f} s wall, {ours_cpu:.2f} s CPU (wall runs: {', '.join(f'{r[0]:.2f}' for r in runs)}; "
          f"min {walls[0]:.2f}, max {walls[-1]:.2f})")
    print(f"ours, writing the outputs: {writing:.2f} s more")
    print(f"ratio: {ratio:.1f}x wall (target >= 10), {baseline_cpu / ours_cpu:.1f}x CPU; "
          f"{baseline / (ours + writing):.1f}x wall including writing")
    print(f"peak RSS of ours: {peak:.0f} MiB (target < 1024)")
    print(f"load average (1 min) before the runs: {load_before:.2f} on {os.cpu_count()} CPUs")
    if load_before > 0.5:
        # Ours uses every core; another busy process slows it more than the one-core baseline.
        print("note: the machine was not quiet; wall times of ours are pessimistic")
    return 0 if ratio >= 10 and peak < 1024 else 1


if __name__ == "__main__":
    sys.exit(main())
