"""``audioset-tools doctor``: check ffmpeg, yt-dlp, the JavaScript runtime, cookies and the output folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import Config
from ..download.doctor import (
    SpaceNeed,
    Status,
    check_archives,
    check_executor,
    check_source_addresses,
    format_checks,
    run_checks,
    space_needed,
)
from ..download.plan import ClassPlan
from ..errors import UserError

NAME = "doctor"
HELP = "check that everything a download needs is in place"
DESCRIPTION = """\
Lists download.sources in the order they are asked, then checks:
- ffmpeg (version, https support) and that the output folder is writable with room for
  the planned clips (download.samples_per_class x the classes of the slice in
  suitable_classes.csv, as 10 s clips in the configured audio format);
- for a youtube source: yt-dlp (warns when older than about two months), yt-dlp-ejs
  (warns when missing or not the version yt-dlp expects), yt-dlp's installed plugins and
  PO-token providers, the JavaScript runtime YouTube extraction needs, the cookies file
  (never printing its values), and that the host of download.url_template answers (one
  request, through download.proxies when set; --offline skips it);
- for each archive: that it can be read and indexed (the index is cached in the output
  folder's _cache/ and reused by the download) and how many planned candidates it holds;
- with download.executor dask: that the scheduler (download.dask.scheduler, or a local
  cluster) answers, and each worker with its address, threads and the audioset-tools and
  yt-dlp versions it runs (--offline skips a remote scheduler).
Reads control.yaml when present, else checks the defaults.

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
    output_dir = args.output if args.output is not None else loaded.paths.output_dir.resolve()
    sources = loaded.download.sources
    print("sources, in order: " + ", ".join(f"{s.name} ({s.kind})" for s in sources))
    checks = run_checks(
        ffmpeg_path=loaded.download.ffmpeg_path,
        js_runtime=loaded.download.js_runtime,
        cookies_file=loaded.download.cookies_file,
        output_dir=output_dir,
        url_template=loaded.download.url_template,
        proxies=loaded.download.proxies,
        offline=args.offline,
        space=_planned_space(loaded),
        extractor_args=loaded.download.youtube.extractor_args,
        youtube=any(s.kind == "youtube" for s in sources),
    )
    checks += check_archives(loaded, output_dir, _planned(loaded))
    d = loaded.download
    checks += check_source_addresses(d.source_addresses)
    checks += check_executor(d.executor, d.workers, d.dask.scheduler, args.offline)
    print(format_checks(checks))
    return 1 if any(c.status is Status.FAIL for c in checks) else 0


def _planned(config: Config) -> list[ClassPlan] | None:
    """The configured slice's plans, or None when the selection has not run yet."""
    from ..download.job import slice_plans

    try:
        return slice_plans(config)
    except UserError:
        return None


def _planned_space(config: Config) -> SpaceNeed | None:
    """Space the configured slice needs, or None when there is no class list yet."""
    from ..select.outputs import read_suitable_classes

    try:
        classes = read_suitable_classes(config.paths.meta_dir)
    except UserError:
        return None
    d = config.download
    indices = classes["index"]
    in_slice = (indices >= d.start_index) & (True if d.end_index is None else indices < d.end_index)
    audio = config.audio
    return space_needed(int(in_slice.sum()) * d.samples_per_class, audio.sample_rate, audio.channels, audio.format)
