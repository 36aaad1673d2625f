"""``audioset-tools download`` / ``download_data.py``: fetch every class of the slice."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import Config
from ..download.job import (
    download_slice,
    dry_run_slice,
    export_unavailable_list,
    import_unavailable_list,
)
from ..download.preview import format_preview
from ..errors import (
    EXIT_DISK_FULL,
    EXIT_NETWORK,
    EXIT_TERMINATED,
    EXIT_THROTTLED,
    EXIT_TOOLING,
)
from ..sources.youtube.ytdlp_tooling import TOOLING_FIX
from ._options import add_class_slice, add_retry_failed

NAME = "download"
HELP = "download, trim and transcode the candidate clips of a class slice"
DESCRIPTION = f"""\
Fill each class of suitable_classes.csv[start:end) with download.samples_per_class clips,
trying candidates.csv in rank order. Reruns resume: finished clips are kept, known-dead
videos skipped (unless --retry-failed), interrupted work redone. Writes the clips, a
ledger (ledger.sqlite3), manifest.csv (global and per class), metadata.csv and
_reports/run.json (each run's yt-dlp and yt-dlp-ejs versions) into paths.output_dir.

Exit code: 0 done (every class full or out of candidates), {EXIT_THROTTLED} stopped because
YouTube kept throttling, {EXIT_NETWORK} stopped because the network seems down (rerun later
to resume either), 2 bad input or configuration, {EXIT_DISK_FULL} stopped because the disk is full
(free space, then rerun to resume), {EXIT_TOOLING} stopped because yt-dlp could not extract
download.max_consecutive_tooling_errors videos in a row for reasons of its own (JS
challenge, JavaScript runtime, SABR-only formats; update it: {TOOLING_FIX},
then rerun to resume), 130 interrupted (Ctrl-C), {EXIT_TERMINATED} stopped by SIGTERM.
The first Ctrl-C or SIGTERM finishes the clips in flight and writes the manifests; a second
one aborts at once."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_class_slice(parser)
    add_retry_failed(parser)
    parser.add_argument("--dry-run", action="store_true", help="list what would be fetched; download nothing")
    parser.add_argument("--export-unavailable", type=Path, metavar="CSV",
                        help="write the videos known to be gone to CSV and exit")
    parser.add_argument("--import-unavailable", type=Path, metavar="CSV",
                        help="merge another user's unavailable.csv into the ledger and exit")


def run(args: argparse.Namespace, config: Config) -> int:
    output_dir = config.paths.output_dir
    if args.export_unavailable is not None:
        count = export_unavailable_list(output_dir, args.export_unavailable)
        print(f"wrote {count} unavailable video(s) to {args.export_unavailable}")
        return 0
    if args.import_unavailable is not None:
        count = import_unavailable_list(output_dir, args.import_unavailable)
        print(f"imported {count} unavailable video(s) into {output_dir}; they are skipped from now on")
        return 0
    if args.dry_run:
        print(format_preview(dry_run_slice(config, start=args.start, end=args.end, retry_failed=args.retry_failed)))
        return 0
    summary = download_slice(
        config, start=args.start, end=args.end, retry_failed=args.retry_failed, progress=not args.quiet
    )
    print(summary.format())
    return summary.exit_code
