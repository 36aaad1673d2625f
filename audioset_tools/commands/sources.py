"""``audioset-tools sources coverage``: what each configured source can supply, before downloading."""

from __future__ import annotations

import argparse

from ..config import Config
from ._options import add_class_slice

NAME = "sources"
HELP = "show how many planned clips each configured source (archives, YouTube) can supply"
DESCRIPTION = """\
coverage   For the configured class slice (download.start_index / end_index, or --start /
           --end) and its candidates in paths.meta_dir, count per download.sources entry
           how many candidates it holds and how many it would be asked first for, and how
           many classes the archives alone can fill to download.samples_per_class.
           Archives are indexed (the index is cached in paths.output_dir/_cache and reused
           by the download); YouTube is not contacted, so it is shown as the source of
           what the archives lack. Nothing is downloaded.

Exit code: 0 done, 2 bad input (no selection outputs yet, an unreadable archive)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("coverage",), help="what to show")
    add_class_slice(parser)


def run(args: argparse.Namespace, config: Config) -> int:
    from ..download.coverage import plan_coverage
    from ..download.job import slice_plans
    from ..sources.configured import close_sources, open_sources
    from ..sources.ffmpeg_bin import find_ffmpeg

    plans = slice_plans(config, args.start, args.end)
    sources = open_sources(config, find_ffmpeg(config.download.ffmpeg_path), config.paths.output_dir,
                           progress=not args.quiet)
    try:
        coverage = plan_coverage(plans, sources, config.paths.output_dir, progress=not args.quiet)
    finally:
        close_sources(sources)
    print(coverage.format())
    return 0
