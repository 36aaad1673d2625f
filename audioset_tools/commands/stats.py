"""``audioset-tools stats``: normalisation statistics from the meta-train classes only."""

from __future__ import annotations

import argparse
import logging

from ..config import Config
from ._dataset import add_dataset_argument, derived_folder_of
from ..post.stats import STATS_NAME, compute_stats

log = logging.getLogger(__name__)

NAME = "stats"
HELP = "compute mean/std (global and per mel band) over the train split only"
DESCRIPTION = f"""\
Stream over the train-split arrays of the folder chosen by postprocess.stats.source
(melspec: postprocess.features_dir, npy: postprocess.npy_dir) and write <folder>/{STATS_NAME}
with the global and per-channel mean and std and the settings that produced the arrays.
Val and test items are never read. The PyTorch loaders apply it (postprocess.normalisation).
DIR (default paths.output_dir) names the dataset; the folder must hold arrays made from it."""
CONFIG = "optional"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The dataset folder; every other setting lives in control.yaml (or --set)."""
    add_dataset_argument(parser)


def run(args: argparse.Namespace, config: Config) -> int:
    folder, maker = derived_folder_of(args, config, NAME, config.postprocess.stats.source)
    record = compute_stats(folder, maker)
    log.info(
        "%s: %d train item(s) of %d class(es); global mean %.4g, std %.4g",
        folder / STATS_NAME, record["items"], len(record["classes"]),
        record["global"]["mean"], record["global"]["std"],
    )
    return 0
