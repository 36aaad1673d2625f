"""``audioset-tools rebuild`` / ``rebuild_from_manifest.py``: reproduce a dataset from its manifest."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import Config
from ..download.rebuild import (
    EXIT_GONE,
    EXIT_INCOMPLETE,
    REBUILD_REPORT_NAME,
    rebuild_dataset,
)
from ..errors import EXIT_DISK_FULL, EXIT_TERMINATED
from ._options import add_retry_failed

NAME = "rebuild"
HELP = "fetch exactly the clips a manifest.csv lists into a folder"
DESCRIPTION = f"""\
Rebuild a dataset from the global manifest.csv that download_data.py wrote, possibly on
another machine: the same clips (ytid, start, end), class folders, file names and audio
settings (from the manifest). No selection step, no extra clips. Runs through the
download pipeline, so it resumes, keeps clips already present and intact, uses the
ledger, pacing, cookies and workers of control.yaml when there is one (defaults
otherwise), and shows progress bars.

Writes the clips, the manifests, the ledger and {REBUILD_REPORT_NAME} (one row per
manifest clip: kept / rebuilt / gone / failed / not_attempted, with the reason).

Trust: the manifest is data, never code. Whoever wrote it, a rebuild only reads IDs,
times, class names and audio settings from it, all validated: it cannot name a file
outside --output, pick a URL, a program or an option. The control file is different:
control.yaml is code you run. Its ffmpeg_path, js_runtime, url_template, proxies and
cookies_file choose which programs run and where requests go, and rebuild reads
./control.yaml from the current folder when --config is not given. Use a shared
manifest freely; never use a control.yaml you did not write or read.

Exit code: 0 complete, {EXIT_GONE} some clips are no longer available (the rest is complete),
or the download source did not answer before the start (nothing fetched),
{EXIT_INCOMPLETE} incomplete (throttled, transient failures or yt-dlp out of date: run again later), 2 bad input
(nothing fetched), {EXIT_DISK_FULL} the disk filled up (free space, run again to resume),
130 interrupted, {EXIT_TERMINATED} stopped by SIGTERM."""
CONFIG = "optional"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", type=Path, required=True, metavar="PATH", help="the manifest.csv to reproduce")
    parser.add_argument("--output", type=Path, required=True, metavar="DIR", help="folder to rebuild into")
    parser.add_argument(
        "--workers", type=workers_type, metavar="N", help="parallel downloads, 1..64 (overrides download.workers)"
    )
    parser.add_argument(
        "--unavailable", type=Path, metavar="CSV",
        help="an unavailable.csv (from download_data.py --export-unavailable): skip the videos it lists",
    )
    add_retry_failed(parser)


def workers_type(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 64, got {text!r}")
    return int(text)


def run(args: argparse.Namespace, config: Config) -> int:
    loaded = config
    if args.workers is not None:
        loaded = loaded.model_copy(update={"download": loaded.download.model_copy(update={"workers": args.workers})})
    result = rebuild_dataset(
        args.manifest, args.output, loaded, unavailable=args.unavailable,
        retry_failed=args.retry_failed, progress=not args.quiet,
    )
    print(result.format())
    print(f"details: {args.output / REBUILD_REPORT_NAME}")
    # A graceful stop (first Ctrl-C or SIGTERM) says so in its exit code, as a download does.
    return result.run.exit_code if result.run.interrupted else result.exit_code
