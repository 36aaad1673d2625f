"""``audioset-tools validate [DIR]``: compare a dataset folder with its manifests."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..dataset.layout import REPORTS_DIR
from ..dataset.validate import (
    DETAIL_COLUMNS,
    VALIDATION_NAME,
    default_details_path,
    summary_text,
    validate_dataset,
    write_details,
)
from ..download.rebuild import repair_dataset
from ..errors import UserError
from ._dataset import add_dataset_argument, dataset_folder
from .rebuild import workers_type

log = logging.getLogger(__name__)

NAME = "validate"
HELP = "check a dataset folder against its manifests"
DESCRIPTION = """\
Compare a dataset folder with its manifests: missing files, audio files no manifest
lists, unreadable audio, wrong length / sample rate / channels, all-silent clips and
sha256 mismatches. Lengths are checked exactly, in samples: a clip of [start, end)
holds round((end - start) x sample_rate) samples per channel. A clip whose checksum
differs while its decoded samples match the manifest's samples_sha256 (or, for a
manifest without that column, have the expected length, rate and channels) is reported
on its own as checksum_only (another ffmpeg build encodes the same clip into different
bytes); --strict counts it as damage. Decoded samples that differ from samples_sha256
(changed_samples) and a manifest that mixes classes (mixed_classes) are damage.

DIR defaults to paths.output_dir of control.yaml. Prints a summary and writes one CSV
row per problem (default DIR/_reports/validation.csv).
--repair fetches missing and damaged clips again through the download pipeline (the
download settings of control.yaml when present), then validates again. Files no
manifest lists are reported, never deleted.
Exit code: 0 intact, 1 damaged (after --repair: still damaged), 2 bad input,
4 (--repair) the download source did not answer before the start (nothing fetched),
5 (--repair) the disk filled up, 130 / 143 (--repair) stopped by Ctrl-C / SIGTERM (run it again to finish)."""
CONFIG = "optional"

EXIT_DAMAGED = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_argument(parser)
    parser.add_argument(
        "--manifest", type=Path, metavar="PATH",
        help="compare with this manifest instead of DIR/manifest.csv (e.g. the one DIR was rebuilt from)",
    )
    parser.add_argument(
        "--out", type=Path, metavar="CSV", help=f"where to write the details (default DIR/{REPORTS_DIR}/{VALIDATION_NAME})"
    )
    parser.add_argument("--strict", action="store_true", help="count checksum-only differences as damage")
    # Deprecated: lengths are now checked exactly, in samples. Still accepted, so that
    # existing scripts keep running, and answered with a warning.
    parser.add_argument("--duration-tolerance", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--workers", type=workers_type, default=2, metavar="N", help="files checked in parallel (default 2)"
    )
    parser.add_argument(
        "--repair", action="store_true",
        help="fetch missing and damaged clips again (with --strict also checksum-only differences)",
    )


def run(args: argparse.Namespace, config: object) -> int:
    if args.duration_tolerance is not None:
        log.warning(
            "--duration-tolerance is deprecated and ignored: every clip must hold exactly "
            "round((end - start) x sample_rate) samples per channel; drop the option"
        )
    dataset = dataset_folder(args, config, NAME)
    result = validate_dataset(dataset, args.manifest, workers=args.workers, progress=not args.quiet)
    if args.repair:
        repaired = repair_dataset(dataset, result, config, strict=args.strict, progress=not args.quiet)
        if repaired is None:
            print("nothing to repair")
        else:
            print(repaired.format())
            if repaired.run.interrupted:
                # Stopped by Ctrl-C or SIGTERM like a rebuild: same exit code, run it again to finish.
                return repaired.run.exit_code
            result = validate_dataset(dataset, args.manifest, workers=args.workers, progress=not args.quiet)
    details = args.out if args.out is not None else default_details_path(dataset)
    written = _write_details(details, result, chosen=args.out is not None)
    if written:
        _remove_legacy_details(dataset, details)
    print(summary_text(result, args.strict))
    print(f"details: {details}" if written else
          f"details not written: {dataset} is read-only (pass --out CSV to write them elsewhere)")
    return 0 if result.is_intact(args.strict) else EXIT_DAMAGED


def _remove_legacy_details(root: Path, written: Path) -> None:
    """Earlier versions wrote DIR/validation.csv, which Hugging Face datasets reads as a split.

    Removed only when it is our own details file (its header) and not the one just written.
    """
    legacy = root / VALIDATION_NAME
    try:
        if legacy.resolve() == written.resolve():
            return
        with legacy.open(encoding="utf-8") as handle:
            header = handle.readline().strip()
    except (OSError, UnicodeDecodeError):
        return
    if header == ",".join(DETAIL_COLUMNS):
        legacy.unlink()


def _write_details(path: Path, result, *, chosen: bool) -> bool:
    """Write the details CSV; False when the default place is a read-only dataset (validate only reads it)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_details(path, result)
    except OSError as exc:
        if chosen:
            raise UserError(f"cannot write the details to {path}: {exc.strerror or exc}") from None
        return False
    return True
