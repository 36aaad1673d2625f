"""``audioset-tools report [DIR]``: figures and a Markdown summary of a dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..download.report import REPORT_DIR_NAME, write_report
from ..errors import UserError
from ._dataset import add_dataset_argument, dataset_folder

NAME = "report"
HELP = "draw figures and write a short summary of a dataset"
DESCRIPTION = f"""\
Describe a dataset folder: clips per class by split, download outcomes by reason,
availability per class (both from the download ledger when present), total duration
and disk size. Writes PNG figures and summary.md into DIR/{REPORT_DIR_NAME} (or --out).
DIR defaults to paths.output_dir of control.yaml."""
CONFIG = "optional"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_argument(parser)
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help=f"folder for the figures and summary (default DIR/{REPORT_DIR_NAME})"
    )


def run(args: argparse.Namespace, config: object) -> int:
    dataset = dataset_folder(args, config, NAME)
    try:
        written = write_report(dataset, args.out)
    except OSError as exc:
        where = args.out if args.out is not None else dataset / REPORT_DIR_NAME
        raise UserError(
            f"cannot write the report into {where}: {exc.strerror or exc}"
            + ("" if args.out is not None else " (a read-only dataset? pass --out DIR to write it elsewhere)")
        ) from None
    for path in written:
        print(path)
    return 0
