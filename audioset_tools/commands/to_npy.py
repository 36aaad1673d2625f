"""``audioset-tools to-npy``: every clip as a .npy array, mirroring the class folders."""

from __future__ import annotations

import argparse

from ..config import Config
from ..post.npy import convert_to_npy
from ..post.settings import npy_settings
from ._conversion import report
from ._dataset import add_dataset_argument, dataset_folder

NAME = "to-npy"
HELP = "write every clip as a .npy array (float32 or int16, optional z-normalisation)"
DESCRIPTION = """\
Convert the clips of the manifest of DIR (default paths.output_dir) into postprocess.npy_dir,
mirroring the class folders; index.csv and params.json go to the sibling folder
<npy_dir>_meta, so the root holds class folders only. Clips already converted with
the same settings are skipped. Settings: postprocess.npy.*, postprocess.workers."""
CONFIG = "optional"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The dataset folder; every other setting lives in control.yaml (or --set)."""
    add_dataset_argument(parser)


def run(args: argparse.Namespace, config: Config) -> int:
    return report(
        convert_to_npy(
            dataset_folder(args, config, NAME).absolute(),
            config.postprocess.npy_dir,
            npy_settings(config),
            workers=config.postprocess.workers,
            batch_clips=config.postprocess.batch_clips,
        )
    )
