"""The quarantine list, ``<output_dir>/_quarantine/quarantine.csv``: clips cleaning set aside.

This module owns that file's columns and its validation on read. ``post.clean`` writes
it; the download runner reads it so that a rerun never fetches a clip judged bad on its
content again. It needs only pandas, so downloading does not load the post-processing stack.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import UserError
from ..tables import read_text_frame
from .layout import QUARANTINE_DIR, start_ms
from .manifest import REQUIRED_MANIFEST_COLUMNS, check_relative_file, dataset_path

QUARANTINE_LIST = "quarantine.csv"
# Each row is a manifest row plus these columns.
QUARANTINE_COLUMNS = ("reason", "detail", "quarantine_file", "quarantined_at")


def quarantine_list_path(output_dir: Path) -> Path:
    return Path(output_dir) / QUARANTINE_DIR / QUARANTINE_LIST


def read_quarantine_list(output_dir: Path) -> pd.DataFrame:
    """The quarantine list as text columns (a clip quarantined twice is listed twice)."""
    path = quarantine_list_path(output_dir)
    columns = list(REQUIRED_MANIFEST_COLUMNS) + list(QUARANTINE_COLUMNS)
    if not path.is_file():
        return pd.DataFrame({column: pd.Series(dtype=object) for column in columns})
    frame = read_text_frame(path, columns, "quarantine list", "fix it or move it aside")
    for line, relative in enumerate(frame["quarantine_file"], start=2):
        if check_relative_file(relative) is not None or not relative.startswith(QUARANTINE_DIR + "/"):
            raise UserError(f"{path}:{line}: quarantine_file {relative!r} is not under {QUARANTINE_DIR}/")
    for line, (file, start) in enumerate(zip(frame["file"], frame["start_seconds"]), start=2):
        if check_relative_file(file) is not None:
            raise UserError(f"{path}:{line}: file {file!r} is not a path inside the dataset")
        try:
            float(start)
        except ValueError:
            raise UserError(f"{path}:{line}: start_seconds {start!r} is not a number") from None
    return frame


def unmoved_entries(output_dir: Path, listed: pd.DataFrame) -> pd.Series:
    """Entries of a clean interrupted before the move: the clip is in place, no quarantined copy.

    Such an entry does not count: the next clean checks the clip again.
    """
    moved = listed["quarantine_file"].map(lambda q: dataset_path(output_dir, q).is_file()).astype(bool)
    in_place = listed["file"].map(lambda f: dataset_path(output_dir, f).is_file()).astype(bool)
    return ~moved & in_place


def quarantined_segments(output_dir: Path) -> frozenset[tuple[str, str, int]]:
    """``(mid, ytid, start_ms)`` of every segment cleaning set aside for that class.

    Keyed by class MID rather than file name, so a change of audio format (another
    extension) does not bring a bad segment back.
    """
    listed = read_quarantine_list(output_dir)
    if listed.empty:
        return frozenset()
    kept = listed[~unmoved_entries(output_dir, listed)]
    return frozenset(
        (mid, ytid, start_ms(float(start)))
        for mid, ytid, start in zip(kept["mid"], kept["ytid"], kept["start_seconds"])
    )
