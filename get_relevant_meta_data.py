#!/usr/bin/env python3
"""Choose AudioSet classes and seeded per-class candidate clips (see control.yaml)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from audioset_tools.cli import run_script


def main(argv: Sequence[str] | None = None) -> int:
    return run_script("select", argv, prog="get_relevant_meta_data.py")


if __name__ == "__main__":
    sys.exit(main())
