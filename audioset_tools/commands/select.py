"""``audioset-tools select`` / get_relevant_meta_data.py: choose classes and candidate clips."""

from __future__ import annotations

import argparse

from ..config import Config
from ..select.step import run_select

NAME = "select"
HELP = "choose AudioSet classes and seeded candidate clips (writes paths.meta_dir)"
DESCRIPTION = """\
Read the official AudioSet metadata (fetched into paths.metadata_dir when missing),
keep the classes that pass the rules in the selection section of control.yaml, order
each class's candidate clips with a seeded, stable permutation, split the classes into
meta-train / val / test, and write suitable_classes.csv, candidates.csv, splits.csv,
splits.npy, malformed_rows.csv and selection.json into paths.meta_dir.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plot",
        action="store_true",
        help="also write quality_threshold.png (classes passing each quality threshold)",
    )


def run(args: argparse.Namespace, config: Config) -> int:
    report = run_select(config, plot=args.plot)
    print(report.summary())
    return 0
