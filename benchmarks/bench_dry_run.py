#!/usr/bin/env python3
"""Time ``audioset-tools download --dry-run`` on the full default plan with an existing output folder.

Setup, in a temporary folder: the select step on the real metadata (142 classes, 405,355
candidates), then an output folder as a long download leaves it: ``--clips-per-class``
finished clips per class (placeholder files plus their ledger rows) and
``--failed-per-class`` remembered failures. Then:

1. the dry run as a user runs it: the real command in a fresh subprocess (imports, config,
   plans, ledger, preview, printing), timed from outside; target <= 5 s;
2. the folder is hashed (every file's path and bytes) before and after: the dry run must
   create or modify nothing, in particular no ``ledger.sqlite3-shm`` / ``-wal``;
3. in process, on the same plans: the preview as it is now against the earlier
   per-candidate preview (one path resolution and up to two ledger queries per candidate),
   kept below as the baseline.

    python benchmarks/bench_dry_run.py [--metadata-dir ../shared/audioset] [--clips-per-class 20]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from output_factory import populate_output  # noqa: E402

from audioset_tools.config import load_config  # noqa: E402
from audioset_tools.dataset.layout import inside, start_ms  # noqa: E402
from audioset_tools.dataset.quarantine import quarantined_segments  # noqa: E402
from audioset_tools.download.job import slice_plans  # noqa: E402
from audioset_tools.download.ledger import LEDGER_NAME, Ledger  # noqa: E402
from audioset_tools.download.plan import ClassPlan  # noqa: E402
from audioset_tools.download.preview import preview_download  # noqa: E402
from audioset_tools.select.step import run_select  # noqa: E402

DEFAULT_METADATA = REPO.parent / "shared" / "audioset"
TARGET_SECONDS = 5.0


def folder_digest(root: Path) -> tuple[str, list[str]]:
    """One hash of every file's relative path and content, and the sorted listing."""
    listing = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    digest = hashlib.sha256()
    for name in listing:
        path = root / name
        digest.update(name.encode() + b"\0")
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest(), listing


def per_candidate_preview(plans: list[ClassPlan], output_dir: Path) -> int:
    """The earlier preview: per candidate, a resolved path and ledger queries, on a plain
    read-only connection (which also leaves -shm / -wal behind). Returns clips done."""
    done = 0
    quarantined = quarantined_segments(output_dir)
    with Ledger(output_dir / LEDGER_NAME, read_only=True) as ledger:
        ledger._db.close()
        ledger._db = sqlite3.connect(f"{(output_dir / LEDGER_NAME).resolve().as_uri()}?mode=ro", uri=True)
        for plan in plans:
            class_done = 0
            for candidate in plan.candidates:
                if (plan.mid, candidate.ytid, start_ms(candidate.start_seconds)) in quarantined:
                    continue
                record = ledger.clip(candidate.file)
                if record is not None and inside(output_dir, candidate.file).is_file() and class_done < plan.target:
                    class_done += 1
                    continue
                ledger.known_failure(candidate.ytid, start_ms(candidate.start_seconds), start_ms(candidate.end_seconds))
            done += class_done
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metadata-dir", type=Path, default=DEFAULT_METADATA,
                        help="folder with the official AudioSet metadata (default ../shared/audioset)")
    parser.add_argument("--clips-per-class", type=int, default=20, help="finished clips per class (default 20)")
    parser.add_argument("--failed-per-class", type=int, default=5, help="remembered failures per class (default 5)")
    parser.add_argument("--skip-baseline", action="store_true", help="do not time the per-candidate preview")
    args = parser.parse_args()
    if not (args.metadata_dir / "ontology.json").is_file():
        print(f"no AudioSet metadata in {args.metadata_dir}; pass --metadata-dir", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="bench-dry-run-") as temp:
        job = Path(temp)
        control = job / "control.yaml"
        # samples_per_class above clips-per-class, so every class still has clips to fetch.
        control.write_text(
            f"paths:\n  metadata_dir: {args.metadata_dir.resolve()}\n  meta_dir: MetaData\n  output_dir: AudioSet_Data\n"
            f"download:\n  samples_per_class: {args.clips_per_class + 5}\n"
        )
        config = load_config(control)
        run_select(config)
        plans = slice_plans(config)
        output_dir = config.paths.output_dir
        clips = populate_output(output_dir, plans, args.clips_per_class, args.failed_per_class)
        candidates = sum(len(plan.candidates) for plan in plans)
        print(f"plan: {len(plans)} classes, {candidates} candidates; output folder: {clips} clips")

        before, listing_before = folder_digest(job)
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "audioset_tools", "download", "--config", str(control), "--dry-run", "-q"],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        seconds = time.perf_counter() - started
        after, listing_after = folder_digest(job)
        if result.returncode != 0:
            print(result.stderr, file=sys.stderr)
            return 1
        print(result.stdout.strip().splitlines()[-1])
        created = sorted(set(listing_after) - set(listing_before))
        unchanged = before == after
        print(f"folder unchanged by the dry run: {'yes' if unchanged else 'NO'}"
              + (f" (new: {', '.join(created)})" if created else ""))
        print(f"dry-run seconds {seconds:.2f} target <= {TARGET_SECONDS:g} {'met' if seconds <= TARGET_SECONDS else 'MISSED'}")

        started = time.perf_counter()
        previews = preview_download(plans, output_dir, retry_failed=False)
        new_seconds = time.perf_counter() - started
        print(f"preview alone (in process): {new_seconds:.3f} s, {sum(p.done for p in previews)} clips done")
        if not args.skip_baseline:
            started = time.perf_counter()
            old_done = per_candidate_preview(plans, output_dir)
            old_seconds = time.perf_counter() - started
            print(f"per-candidate preview (before): {old_seconds:.2f} s, {old_done} clips done")
            print(f"preview speed-up ratio {old_seconds / new_seconds:.0f}x")
        return 0 if unchanged and seconds <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
