"""``audioset-tools clean``: quarantine silent, non-finite, unreadable or wrong-length clips."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..config import Config
from ..dataset.layout import QUARANTINE_DIR
from ..dataset.quarantine import QUARANTINE_LIST
from ..errors import UserError
from ..post.clean import clean_dataset
from ..post.derived import forget_clips, load_dataset_manifest
from ..post.settings import clean_settings
from ._dataset import add_dataset_argument, dataset_folder

log = logging.getLogger(__name__)

NAME = "clean"
HELP = "quarantine bad clips (silent, NaN/inf, unreadable, wrong length) and update the manifests"
DESCRIPTION = f"""\
Check every clip of the manifest of DIR (default paths.output_dir) and move bad ones to
{QUARANTINE_DIR}/<class folder>/, listed with their reason in {QUARANTINE_DIR}/{QUARANTINE_LIST};
the manifests are then rewritten without them. No clip is deleted; their arrays in
postprocess.npy_dir and postprocess.features_dir are, with their index rows.
Settings: postprocess.clean.*, postprocess.workers."""
CONFIG = "optional"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_argument(parser)
    parser.add_argument("--dry-run", action="store_true", help="only report what would be quarantined")


def run(args: argparse.Namespace, config: Config) -> int:
    dataset = dataset_folder(args, config, NAME)
    summary = clean_dataset(
        dataset,
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
    if not summary.dry_run:
        _forget_in_derived_folders(dataset, config)
    if summary.missing:
        log.warning("%d clip(s) in the manifest are missing on disk; run audioset-tools validate", len(summary.missing))
    return 0


def _forget_in_derived_folders(dataset: Path, config: Config) -> None:
    """Quarantined clips leave no array behind in npy_dir or features_dir."""
    kept = set(load_dataset_manifest(dataset)["file"])
    for folder in (config.postprocess.npy_dir, config.postprocess.features_dir):
        try:
            removed = forget_clips(folder, kept)
        except UserError as exc:  # the clean itself is done; only the derived folder is stale
            log.warning("%s: not updated (%s); rerun to-npy or melspec", folder, exc.message)
            continue
        if removed:
            log.info("%s: removed %d array(s) of clips no longer in the dataset", folder, removed)
