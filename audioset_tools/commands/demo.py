"""``audioset-tools demo``: the whole job on a built-in miniature AudioSet, offline (an install self-test)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError

NAME = "demo"
HELP = "run the whole job offline on a built-in miniature AudioSet (also an install self-test)"
DESCRIPTION = """\
Run every step of a real job, through the real code, yt-dlp and ffmpeg, without internet:
select classes from a miniature metadata set in the official formats (shipped with the
package), download their clips from a media server the demo starts on 127.0.0.1 (serving
generated audio; a few videos are missing, forbidden, corrupt or too short, so the ledger
and the report have something to say), then validate, report, clean, melspec, stats, pack
and draw a few N-way K-shot episodes (with PyTorch when installed, numpy otherwise).
Each step says what it did and where to look. Needs no control.yaml: it writes its own into
the demo folder; --set KEY=VALUE changes a setting of that run (e.g. --set download.workers=1).

By default everything happens in a new temporary folder, removed at the end (--keep keeps
it); --output DIR works in DIR instead (new or empty, or an earlier demo's) and keeps it.
Exit code: 0 every step passed, 1 a step failed (named, and the folder is kept), 2 bad input."""
CONFIG = "none"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", type=Path, metavar="DIR",
                        help="run in DIR (new or empty, or an earlier demo's) and keep it")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder at the end")


def run(args: argparse.Namespace, config: object) -> int:
    from ..demo.steps import run_demo

    if args.config is not None:
        raise UserError("demo writes its own control.yaml into the demo folder and reads no other; "
                        "drop --config (use --set KEY=VALUE to change one of its settings)")
    passed_on = ["-v"] * args.verbose + (["-q"] if args.quiet else [])
    for override in args.overrides:
        passed_on += ["--set", override]
    return run_demo(args.output, keep=args.keep, command_options=passed_on)
