"""``audioset-tools export lhotse [DIR]``: a dataset as manifests of another toolkit."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import Config
from ..errors import UserError

NAME = "export"
HELP = "write a dataset as lhotse manifests (RecordingSet, SupervisionSet, CutSet)"
DESCRIPTION = """\
Export the dataset of paths.output_dir (or DIR) for another toolkit.

  lhotse   audioset_recordings.jsonl.gz, audioset_supervisions.jsonl.gz and
           audioset_cuts.jsonl.gz: one recording per clip, one supervision spanning it
           with the class (custom: class_name, mid, class_index, split, labels, ytid,
           start_seconds, end_seconds), and the cuts joining them. Checked with lhotse's
           own validation before writing. Needs the [lhotse] extra:
           pip install 'audioset-tools[lhotse]'

Load them with lhotse.load_manifest(path) or CutSet.from_file(path).
Exit code: 0 written, 2 bad input (no manifest, a clip missing, lhotse not installed)."""
CONFIG = "optional"
FORMATS = ("lhotse",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("format", choices=FORMATS, help="what to export to")
    parser.add_argument(
        "dataset", type=Path, nargs="?", metavar="DIR", help="dataset folder (default: paths.output_dir)"
    )
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="where to write the manifests (default DIR/_lhotse)"
    )
    parser.add_argument(
        "--relative-paths", action="store_true",
        help="store audio paths relative to DIR (then load with RecordingSet.with_path_prefix(DIR))",
    )


def run(args: argparse.Namespace, config: Config) -> int:
    from ..dataset.lhotse_export import DEFAULT_OUT_NAME, export_lhotse

    root = args.dataset if args.dataset is not None else config.paths.output_dir
    if not Path(root).is_dir():
        raise UserError(f"dataset folder {root} not found; pass DIR or set paths.output_dir")
    out = args.out if args.out is not None else Path(root) / DEFAULT_OUT_NAME
    result = export_lhotse(root, out, relative_paths=args.relative_paths, progress=not args.quiet)
    print(f"exported {result.clips} clip(s):")
    for path in (result.recordings, result.supervisions, result.cuts):
        print(f"  {path}")
    return 0
