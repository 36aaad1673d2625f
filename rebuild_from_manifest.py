#!/usr/bin/env python3
"""Rebuild a dataset from its manifest.csv alone: the same clips, names and audio settings."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from audioset_tools.cli import run_script


def main(argv: Sequence[str] | None = None) -> int:
    return run_script("rebuild", argv, prog="rebuild_from_manifest.py")


if __name__ == "__main__":
    sys.exit(main())
