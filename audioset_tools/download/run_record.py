"""``<output_dir>/_reports/run.json``: which tooling fetched the dataset, run by run.

It sits in ``_reports/`` rather than at the dataset root: Hugging Face ``datasets`` reads
files at the root as splits. The ledger's ``runs`` table is the source; this file is a
readable copy rewritten at the end of every run (also after an interruption).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import atomic_write_text
from ..dataset.layout import REPORTS_DIR
from .ledger import Ledger

RUN_RECORD_NAME = "run.json"
RUN_RECORD_FORMAT = 1


def run_record_path(output_dir: Path) -> Path:
    return Path(output_dir) / REPORTS_DIR / RUN_RECORD_NAME


def write_run_record(output_dir: Path, ledger: Ledger) -> Path:
    """Write every run of the ledger (the last one is the run just ended) to ``_reports/run.json``."""
    runs = ledger.runs()
    record = {
        "format": RUN_RECORD_FORMAT,
        "latest": runs[-1] if runs else None,
        # clips_kept: how many of the dataset's clips each run fetched.
        "runs": runs,
    }
    path = run_record_path(output_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return path
