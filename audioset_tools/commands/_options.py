"""Options that several commands share, defined once so their help reads the same everywhere."""

from __future__ import annotations

import argparse


def add_retry_failed(parser: argparse.ArgumentParser) -> None:
    """``--retry-failed [SOURCE]``: True for every source, the source's name for one, False when absent."""
    parser.add_argument(
        "--retry-failed", nargs="?", const=True, default=False, metavar="SOURCE",
        help="also try again clips that failed permanently before (unavailable, too short, ...); with a "
             "source's name (as in download.sources, e.g. youtube or archive1), only that source's failures",
    )


def _class_index(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a class index (whole number >= 0), got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a class index >= 0, got {value}")
    return value


def add_class_slice(parser: argparse.ArgumentParser) -> None:
    """``--start I`` / ``--end J``: the class slice, overriding download.start_index / end_index."""
    parser.add_argument("--start", type=_class_index, metavar="I",
                        help="first class index (overrides download.start_index)")
    parser.add_argument("--end", type=_class_index, metavar="J",
                        help="end class index, exclusive (overrides download.end_index)")
