"""The dataset folder argument shared by every command that acts on a dataset.

validate, report, clean, to-npy, melspec, stats and pack all take ``[DIR]``: the dataset
folder (download_data.py's output). Without it they use ``paths.output_dir`` of
control.yaml, so a job configured once needs no folder on any command line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import DEFAULT_CONFIG_NAME, Config
from ..errors import UserError

METAVAR = "DIR"
HELP = "dataset folder (default: paths.output_dir of control.yaml)"


def add_dataset_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", type=Path, nargs="?", default=None, metavar=METAVAR, help=HELP)


def dataset_folder(args: argparse.Namespace, config: Config | None, command: str) -> Path:
    """The folder given on the command line, else ``paths.output_dir`` of the config file
    (or of ``--set paths.output_dir=...``).

    Without either there is no way to know which dataset is meant: the built-in default
    (./AudioSet_Data) is only used when a control.yaml says so.
    """
    if args.dataset is not None:
        return Path(args.dataset)
    overridden = any(o.partition("=")[0].strip() == "paths.output_dir" for o in getattr(args, "overrides", []))
    if config is None or (config.source is None and not overridden):
        raise UserError(
            f"which dataset? Name its folder (e.g. audioset-tools {command} AudioSet_Data), "
            f"or run next to the {DEFAULT_CONFIG_NAME} that downloaded it, or pass --config PATH "
            f"(its paths.output_dir is used)."
        )
    return config.paths.output_dir


def derived_folder_of(args: argparse.Namespace, config: Config | None, command: str, source: str) -> tuple[Path, str]:
    """The derived folder (melspec | npy) that stats and pack read, and the command that makes it.

    They act on the arrays made from the dataset, not on the dataset itself; when DIR is
    named, the folder's params.json must say it was made from DIR, so that statistics or
    packs of one dataset are never taken for another's.
    """
    from ..post.derived import params_path, read_params
    from ..post.settings import source_folder

    dataset = dataset_folder(args, config, command)
    folder, maker = source_folder(config, source)
    if args.dataset is not None:
        made_from = (read_params(folder) or {}).get("source")
        if made_from and Path(made_from).is_absolute() and Path(made_from).resolve() != dataset.resolve():
            raise UserError(
                f"{params_path(folder)}: these arrays were made from {made_from}, not from {dataset}.\n"
                f"  Run {maker} {dataset} first, or point the derived folder setting (postprocess.*_dir) "
                f"at the arrays of {dataset}."
            )
    return folder, maker
