"""``audioset-tools clean``: quarantine silent, non-finite, unreadable or wrong-length clips."""

from __future__ import annotations

import argparse
import logging

from ..config import Config
from ..layout import QUARANTINE_DIR
from ..post.clean import clean_dataset
from ..post.settings import clean_settings
from ..quarantine import QUARANTINE_LIST
from ._dataset import add_dataset_argument, dataset_folder

log = logging.getLogger(__name__)

NAME = "clean"
HELP = "quarantine bad clips (silent, NaN/inf, unreadable, wrong length) and update the manifests"
DESCRIPTION = f"""\
Check every clip of the manifest of DIR (default paths.output_dir) and move bad ones to
{QUARANTINE_DIR}/<class folder>/, listed with their reason in {QUARANTINE_DIR}/{QUARANTINE_LIST};
the manifests are then rewritten without them. Nothing is deleted.
Settings: postprocess.clean.*, postprocess.workers."""
CONFIG = "optional"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_argument(parser)
    parser.add_argument("--dry-run", action="store_true", help="only report what would be quarantined")


def run(args: argparse.Namespace, config: Config) -> int:
    summary = clean_dataset(
        dataset_folder(args, config, NAME),
        clean_settings(config),
        workers=config.postprocess.workers,
        batch_clips=config.postprocess.batch_clips,
        dry_run=args.dry_run,
    )
    reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(summary.quarantined.items())) or "none"
    verb = "would quarantine" if summary.dry_run else "quarantined"
    log.info("checked %d clip(s); %s %d: %s", summary.checked, verb, summary.total_quarantined, reasons)
    if summary.recovered:
        log.info("finished an interrupted clean: %d manifest row(s) dropped", summary.recovered)
    if summary.missing:
        log.warning("%d clip(s) in the manifest are missing on disk; run audioset-tools validate", len(summary.missing))
    return 0
