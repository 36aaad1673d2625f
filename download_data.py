#!/usr/bin/env python3
"""Download, trim and transcode the seeded candidate clips of each class (see control.yaml)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from audioset_tools.cli import run_script


def main(argv: Sequence[str] | None = None) -> int:
    return run_script("download", argv, prog="download_data.py")


if __name__ == "__main__":
    sys.exit(main())
