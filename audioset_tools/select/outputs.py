"""The files of ``paths.meta_dir``: their columns, writing (atomically) and reading back.

Written by get_relevant_meta_data.py, read by every later step:

- ``suitable_classes.csv``: ``index, mid, name, quality, num_rated, num_candidates, split``
- ``candidates.csv``: ``class_index, mid, rank, ytid, start_seconds, end_seconds, subset, labels``
- ``splits.csv`` (``split, class_index, mid, name, folder``) and ``splits.npy`` (train, val,
  test lists of class FOLDER names, loadable as ``train, val, test = np.load(path,
  allow_pickle=True)``: MetaAudio matches classes by the folder names it finds on disk)
- ``malformed_rows.csv``: ``file, line, reason`` of every skipped metadata row
- ``selection.json``: parameters, input checksums and counts of the run
- ``quality_threshold.png`` (optional)
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from ..atomic import atomic_open, atomic_write_bytes, atomic_write_text
from ..dataset.ids import YTID_PATTERN
from ..dataset.layout import assign_class_folders
from ..errors import UserError
from .metadata import SUBSETS, MalformedRow
from .splits import SPLIT_NAMES

SUITABLE_CLASSES = "suitable_classes.csv"
CANDIDATES = "candidates.csv"
SPLITS_CSV = "splits.csv"
SPLITS_NPY = "splits.npy"
MALFORMED = "malformed_rows.csv"
SELECTION_JSON = "selection.json"
QUALITY_PLOT = "quality_threshold.png"

SUITABLE_COLUMNS = ("index", "mid", "name", "quality", "num_rated", "num_candidates", "split")
CANDIDATE_COLUMNS = ("class_index", "mid", "rank", "ytid", "start_seconds", "end_seconds", "subset", "labels")
SPLITS_COLUMNS = ("split", "class_index", "mid", "name", "folder")
MALFORMED_COLUMNS = ("file", "line", "reason")

_RUN_FIRST = "run get_relevant_meta_data.py (audioset-tools select) first"


def write_suitable_classes(meta_dir: Path, rows: Sequence[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SUITABLE_COLUMNS)
    for row in rows:
        quality = row["quality"]
        writer.writerow([*(row[c] for c in SUITABLE_COLUMNS[:3]), "" if quality is None else repr(quality),
                         *(row[c] for c in SUITABLE_COLUMNS[4:])])
    atomic_write_text(meta_dir / SUITABLE_CLASSES, buffer.getvalue())


def write_candidates(meta_dir: Path, table: pa.Table) -> None:
    """``table`` holds :data:`CANDIDATE_COLUMNS`; written by pyarrow (15x faster than pandas)."""
    table = table.select(list(CANDIDATE_COLUMNS))
    with atomic_open(meta_dir / CANDIDATES, "wb") as handle:
        handle.write((",".join(CANDIDATE_COLUMNS) + "\n").encode())
        pacsv.write_csv(table, handle, pacsv.WriteOptions(include_header=False, quoting_style="needed"))


def write_splits(meta_dir: Path, classes: Sequence[dict[str, Any]]) -> None:
    """``classes`` are ALL suitable classes (``mid``, ``name``, ``index``, ``split``): their
    folder names come from the same pure function the download step uses on the same list,
    so they are known here, before any download."""
    folders = assign_class_folders((row["mid"], row["name"]) for row in classes)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SPLITS_COLUMNS)
    for split in SPLIT_NAMES:
        for row in classes:
            if row["split"] == split:
                writer.writerow([split, row["index"], row["mid"], row["name"], folders[row["mid"]]])
    atomic_write_text(meta_dir / SPLITS_CSV, buffer.getvalue())
    # An object array of three lists of folder names, so MetaAudio-style code can unpack it
    # directly and match them against the class folders it lists on disk.
    lists = np.empty(len(SPLIT_NAMES), dtype=object)
    for i, split in enumerate(SPLIT_NAMES):
        lists[i] = [folders[row["mid"]] for row in classes if row["split"] == split]
    payload = io.BytesIO()
    np.save(payload, lists, allow_pickle=True)
    atomic_write_bytes(meta_dir / SPLITS_NPY, payload.getvalue())


def write_malformed(meta_dir: Path, malformed: Sequence[MalformedRow]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MALFORMED_COLUMNS)
    for row in malformed:
        writer.writerow([row.file, row.line, row.reason])
    atomic_write_text(meta_dir / MALFORMED, buffer.getvalue())


def write_selection_json(meta_dir: Path, record: dict[str, Any]) -> None:
    atomic_write_text(meta_dir / SELECTION_JSON, json.dumps(record, indent=2, sort_keys=True) + "\n")


def write_quality_plot(
    meta_dir: Path, thresholds: Sequence[float], curve: dict[str, list[int]], chosen: float
) -> Path:
    """PNG of how many classes pass each quality threshold, with the chosen one marked."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on servers or CI
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), dpi=100)
    axes = figure.subplots()
    axes.plot(thresholds, curve["all_nodes"], marker="o", markersize=3, label="all nodes")
    axes.plot(thresholds, curve["leaf_only"], marker="o", markersize=3, label="leaf classes only")
    axes.axvline(chosen, color="grey", linestyle="--", label=f"chosen threshold {chosen:g}")
    axes.set_xlabel("quality threshold (num_true / num_rated)")
    axes.set_ylabel("classes passing")
    axes.set_title("AudioSet classes passing each label-quality threshold")
    axes.grid(alpha=0.3)
    axes.legend()
    payload = io.BytesIO()
    # A fixed creation-date-free PNG keeps reruns byte-identical.
    figure.savefig(payload, format="png", metadata={"Software": None})
    target = meta_dir / QUALITY_PLOT
    atomic_write_bytes(target, payload.getvalue())
    return target


def read_suitable_classes(meta_dir: Path) -> pd.DataFrame:
    """suitable_classes.csv, checked; UserError naming the file when missing or corrupt."""
    path = Path(meta_dir) / SUITABLE_CLASSES
    frame = _read_csv(
        path,
        SUITABLE_COLUMNS,
        dtype={"mid": str, "name": str, "split": str, "quality": str},
    )
    try:
        frame["index"] = _integers(frame["index"])
        frame["num_rated"] = _integers(frame["num_rated"])
        frame["num_candidates"] = _integers(frame["num_candidates"])
        frame["quality"] = pd.to_numeric(frame["quality"].replace("", None), errors="raise").astype(float)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{path}: corrupt ({exc}); {_RUN_FIRST} again") from None
    if not frame["index"].equals(pd.Series(range(len(frame)), dtype="int64")):
        raise UserError(f"{path}: column index must count 0, 1, 2, ... in order; {_RUN_FIRST} again")
    bad_split = ~frame["split"].isin(SPLIT_NAMES)
    if bad_split.any():
        line = int(np.flatnonzero(bad_split.to_numpy())[0]) + 2
        raise UserError(f"{path}, line {line}: split must be one of {', '.join(SPLIT_NAMES)}; {_RUN_FIRST} again")
    return frame


def read_candidates(meta_dir: Path) -> pd.DataFrame:
    """candidates.csv, checked; UserError naming the file (and line) when missing or corrupt."""
    path = Path(meta_dir) / CANDIDATES
    frame = _read_csv(
        path,
        CANDIDATE_COLUMNS,
        dtype={"mid": str, "ytid": str, "subset": str, "labels": str},
    )
    try:
        frame["class_index"] = _integers(frame["class_index"])
        frame["rank"] = _integers(frame["rank"])
        frame["start_seconds"] = pd.to_numeric(frame["start_seconds"], errors="raise").astype(float)
        frame["end_seconds"] = pd.to_numeric(frame["end_seconds"], errors="raise").astype(float)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{path}: corrupt ({exc}); {_RUN_FIRST} again") from None
    checks = (
        (~frame["ytid"].str.fullmatch(YTID_PATTERN).fillna(False).astype(bool), "ytid is not a valid YouTube ID"),
        (~frame["subset"].isin(SUBSETS), f"subset must be one of {', '.join(SUBSETS)}"),
        (~(frame["end_seconds"] > frame["start_seconds"]), "end_seconds must exceed start_seconds"),
    )
    for bad, what in checks:
        if bad.any():
            line = int(np.flatnonzero(bad.to_numpy())[0]) + 2
            raise UserError(f"{path}, line {line}: {what}; {_RUN_FIRST} again")
    return frame


def _read_csv(path: Path, columns: Sequence[str], dtype: dict[str, Any]) -> pd.DataFrame:
    if not path.is_file():
        raise UserError(f"{path} not found: {_RUN_FIRST} (with the same paths.meta_dir)")
    try:
        frame = pd.read_csv(path, dtype=dtype, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{path}: corrupt ({str(exc).strip()}); {_RUN_FIRST} again") from None
    if tuple(frame.columns) != tuple(columns):
        raise UserError(
            f"{path}: expected columns {', '.join(columns)}, found {', '.join(map(str, frame.columns))}; "
            f"{_RUN_FIRST} again"
        )
    return frame


def _integers(column: pd.Series) -> pd.Series:
    if column.dtype.kind not in "iu":
        raise ValueError(f"column {column.name} must hold whole numbers")
    return column.astype("int64")
