"""``audioset-tools report DIR``: figures and a Markdown summary of a dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError
from ..report import REPORT_DIR_NAME, write_report

NAME = "report"
HELP = "draw figures and write a short summary of a dataset"
DESCRIPTION = f"""\
Describe a dataset folder: clips per class by split, download outcomes by reason,
availability per class (both from the download ledger when present), total duration
and disk size. Writes PNG figures and summary.md into DIR/{REPORT_DIR_NAME} (or --out)."""
CONFIG = "none"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", type=Path, metavar="DIR", help="dataset folder (download_data.py's output_dir)")
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help=f"folder for the figures and summary (default DIR/{REPORT_DIR_NAME})"
    )


def run(args: argparse.Namespace, config: object) -> int:
    try:
        written = write_report(args.dataset, args.out)
    except OSError as exc:
        where = args.out if args.out is not None else args.dataset / REPORT_DIR_NAME
        raise UserError(
            f"cannot write the report into {where}: {exc.strerror or exc}"
            + ("" if args.out is not None else " (a read-only dataset? pass --out DIR to write it elsewhere)")
        ) from None
    for path in written:
        print(path)
    return 0
