"""``audioset-tools doctor``: check ffmpeg, yt-dlp, the JavaScript runtime, cookies and the output folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import Config
from ..download.doctor import Status, format_checks, run_checks

NAME = "doctor"
HELP = "check that everything a download needs is in place"
DESCRIPTION = """\
Checks ffmpeg (version, https support), yt-dlp (warns when older than about two months),
the JavaScript runtime YouTube extraction needs, the cookies file (never printing its
values), that the output folder is writable, and that the source of download.url_template
answers (one request, through download.proxies when set; --offline skips it). Reads
control.yaml when present, else checks the defaults.

Exit code: 0 all usable (warnings allowed), 1 a check failed, 2 bad configuration."""
CONFIG = "optional"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", type=Path, metavar="DIR", help="check this output folder instead of paths.output_dir")
    parser.add_argument("--offline", action="store_true",
                        help="skip the network check (the one request to download.url_template's host)")


def run(args: argparse.Namespace, config: Config) -> int:
    loaded = config
    if loaded.source is None:
        print("no control.yaml here: checking the default settings")
    checks = run_checks(
        ffmpeg_path=loaded.download.ffmpeg_path,
        js_runtime=loaded.download.js_runtime,
        cookies_file=loaded.download.cookies_file,
        output_dir=args.output if args.output is not None else loaded.paths.output_dir.resolve(),
        url_template=loaded.download.url_template,
        proxies=loaded.download.proxies,
        offline=args.offline,
    )
    print(format_checks(checks))
    return 1 if any(c.status is Status.FAIL for c in checks) else 0
