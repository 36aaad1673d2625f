"""``audioset-tools stats``: normalisation statistics from the meta-train classes only."""

from __future__ import annotations

import argparse
import logging

from ..config import Config
from ..post.stats import METAAUDIO_DIR, compute_stats, stats_path
from ._dataset import add_dataset_argument, derived_folder_of

log = logging.getLogger(__name__)

NAME = "stats"
HELP = "compute mean/std (global and per mel band) over the train split only"
DESCRIPTION = f"""\
Stream over the train-split arrays of the folder chosen by postprocess.stats.source
(melspec: postprocess.features_dir, npy: postprocess.npy_dir) and write, into that
folder's sibling <folder>_meta/: stats.json with the global and per-channel mean and std
and the settings that produced the arrays (the PyTorch loaders apply it, see
postprocess.normalisation), and MetaAudio's float32 [mean, std] files in {METAAUDIO_DIR}/
(global_AudioSet_spec_fixed__<splits>.npy of shape (2, 1, 1), channel_... of shape
(2, n_mels, 1); for npy only global_AudioSet_raw_... of shape (2, 1)).
Val and test items are never read.
DIR (default paths.output_dir) names the dataset; the folder must hold arrays made from it."""
CONFIG = "optional"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The dataset folder; every other setting lives in control.yaml (or --set)."""
    add_dataset_argument(parser)


def run(args: argparse.Namespace, config: Config) -> int:
    folder, maker = derived_folder_of(args, config, NAME, config.postprocess.stats.source)
    splits = config.splits
    record = compute_stats(folder, maker, (splits.train, splits.val, splits.test))
    log.info(
        "%s: %d train item(s) of %d class(es); global mean %.4g, std %.4g",
        stats_path(folder), record["items"], len(record["classes"]),
        record["global"]["mean"], record["global"]["std"],
    )
    for name in record.get("metaaudio", {}).values():
        log.info("MetaAudio statistics: %s", stats_path(folder).parent / name)
    return 0
