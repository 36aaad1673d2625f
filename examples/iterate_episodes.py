"""Iterate few-shot episodes from a post-processed dataset and print their shapes.

Trains nothing: it shows how the loaders fit together. Run after
``audioset-tools melspec``, ``audioset-tools stats`` and ``audioset-tools pack``:

    python examples/iterate_episodes.py --config control.yaml --split train --n-way 5 --k-shot 1

``--source arrays`` reads the unpacked spectrograms instead, ``--source clips`` decodes the
wav files of the dataset. Needs PyTorch: pip install 'audioset-tools[torch]'.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from audioset_tools.config import load_config
from audioset_tools.errors import UserError

EXIT_NO_TORCH = 3
NO_TORCH = "error: this example needs PyTorch; install the extra: pip install 'audioset-tools[torch]'"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="control.yaml", metavar="PATH",
                        help="control file with every parameter (default: ./control.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config key, e.g. --set postprocess.normalisation=global (repeatable)")
    parser.add_argument("--source", choices=("packed", "arrays", "clips"), default="packed",
                        help="packed: postprocess.packed_dir (audioset-tools pack); arrays: the unpacked "
                             "spectrograms or npy waveforms (postprocess.pack.source); clips: decode the audio "
                             "files of paths.output_dir (default: packed)")
    parser.add_argument("--split", choices=("train", "val", "test"), default="train",
                        help="which meta-learning split to draw episodes from (default: train)")
    parser.add_argument("--n-way", type=int, default=5, metavar="N", help="classes per episode (default: 5)")
    parser.add_argument("--k-shot", type=int, default=1, metavar="K",
                        help="support items per class (default: 1)")
    parser.add_argument("--q-query", type=int, default=5, metavar="Q",
                        help="query items per class, disjoint from the supports (default: 5)")
    parser.add_argument("--episodes", type=int, default=3, metavar="E", help="episodes to draw (default: 3)")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="seed of the episode sampler: same seed, same episodes (default: 0)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from audioset_tools.loaders.torch_data import (
            ArrayDataset,
            ClipDataset,
            PackedDataset,
            episode_loader,
        )
    except ImportError as exc:
        if exc.name is None or exc.name.split(".")[0] != "torch":
            raise
        print(NO_TORCH, file=sys.stderr)
        return EXIT_NO_TORCH
    try:
        config = load_config(args.config, args.overrides)
        post = config.postprocess
        kind = post.pack.source
        if args.source == "packed":
            dataset = PackedDataset(post.packed_dir, kind, args.split, post.normalisation)
        elif args.source == "arrays":
            folder = post.features_dir if kind == "melspec" else post.npy_dir
            dataset = ArrayDataset(Path(folder), args.split, post.normalisation)
        else:
            dataset = ClipDataset(config.paths.output_dir, args.split)
        loader = episode_loader(dataset, args.n_way, args.k_shot, args.q_query, args.episodes, args.seed)
        print(f"{args.split}: {len(dataset)} items of {len(dataset.classes)} classes")
        for number, (support_x, support_y, query_x, query_y) in enumerate(loader):
            print(
                f"episode {number}: support_x {tuple(support_x.shape)} support_y {support_y.tolist()} "
                f"query_x {tuple(query_x.shape)} query_y {query_y.tolist()}"
            )
    except UserError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
