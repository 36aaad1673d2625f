"""``audioset-tools pack``: one memory-mappable array per split, plus its index."""

from __future__ import annotations

import argparse
import logging

from ..config import Config
from ..post.pack import pack_dataset
from ._dataset import add_dataset_argument, derived_folder_of

log = logging.getLogger(__name__)

NAME = "pack"
HELP = "pack each split's arrays into one memory-mappable .npy with an index CSV"
DESCRIPTION = """\
Pack the arrays of postprocess.pack.source (melspec or npy) into
postprocess.packed_dir/<source>/<split>.npy ([items, ...], np.load(mmap_mode="r")) and
<split>.csv (one row per item, 'row' = position in the array). All items of a split must
have one shape. A split already packed from unchanged arrays is skipped.
DIR (default paths.output_dir) names the dataset; the folder must hold arrays made from it."""
CONFIG = "optional"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The dataset folder; every other setting lives in control.yaml (or --set)."""
    add_dataset_argument(parser)


def run(args: argparse.Namespace, config: Config) -> int:
    folder, maker = derived_folder_of(args, config, NAME, config.postprocess.pack.source)
    for result in pack_dataset(folder, config.postprocess.packed_dir, list(config.postprocess.pack.splits), maker):
        if result.array is not None:
            state = "up to date" if result.skipped else "written"
            log.info("%s: %d item(s) of shape %s, %s", result.array, result.items, result.shape, state)
    return 0
