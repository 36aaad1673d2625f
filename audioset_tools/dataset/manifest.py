"""The dataset manifests: ``manifest.csv`` (global and per class) and Hugging Face ``metadata.csv``
(with the dataset card ``README.md`` of :mod:`hf_card` that tells ``datasets`` what to load).

This module owns their columns, their validation on read and their atomic writing.
A manifest row describes one finished clip; ``file`` is its path relative to the
dataset root (in the per-class manifests too), always with forward slashes, never
leaving the root.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import pandas as pd

from ..atomic import atomic_write_text
from ..errors import UserError
from ..tables import (
    from_spreadsheet_safe,
    raise_if_errors,
    read_csv_rows,
    spreadsheet_safe,
)
from .hf_card import write_dataset_card
from .ids import is_valid_ytid

MANIFEST_NAME = "manifest.csv"
HF_METADATA_NAME = "metadata.csv"

MANIFEST_COLUMNS = (
    "class_index",
    "mid",
    "class_name",
    "split",
    "ytid",
    "start_seconds",
    "end_seconds",
    "file",
    "sample_rate",
    "channels",
    "duration",
    "sha256",
    "labels",
    "samples_sha256",
    "source",
)
# Columns a manifest written by an older version lacks; read as empty. ``source`` names the
# configured source that made the clip (youtube, archive1, ...): provenance only, never
# used to decide anything when the manifest is read back.
OPTIONAL_MANIFEST_COLUMNS = ("samples_sha256", "source")
REQUIRED_MANIFEST_COLUMNS = tuple(c for c in MANIFEST_COLUMNS if c not in OPTIONAL_MANIFEST_COLUMNS)
SPLITS = ("train", "val", "test")
# Free text a shared manifest may carry; written spreadsheet-safe (tables.spreadsheet_safe).
TEXT_COLUMNS = ("mid", "class_name", "labels", "source")

_INT_COLUMNS = ("class_index", "sample_rate", "channels")
_FLOAT_COLUMNS = ("start_seconds", "end_seconds", "duration")
_SHA256_RE = re.compile(r"\A[0-9a-f]{64}\Z")


def check_relative_file(value: str) -> str | None:
    """Why ``value`` is not a safe dataset-relative path, or None when it is.

    Safe means: relative, forward slashes only, no empty, ``.`` or ``..`` parts, so
    that joining it to the dataset root can never point outside the root.
    """
    if not value:
        return "empty path"
    if "\\" in value or "\x00" in value:
        return "backslashes and NUL characters are not allowed"
    path = PurePosixPath(value)
    if path.is_absolute() or re.match(r"\A[A-Za-z]:", value):
        return "must be relative to the dataset folder"
    parts = value.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "must not contain empty, '.' or '..' parts"
    return None


def dataset_path(root: Path, relative_file: str) -> Path:
    """Join a validated manifest ``file`` to ``root``; refuses anything that would leave it."""
    problem = check_relative_file(relative_file)
    if problem is not None:
        raise UserError(f"unsafe file path {relative_file!r} in a manifest: {problem}")
    return Path(root) / PurePosixPath(relative_file)


def empty_manifest() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=_dtype(column)) for column in MANIFEST_COLUMNS})


def _dtype(column: str) -> str:
    if column in _INT_COLUMNS:
        return "int64"
    if column in _FLOAT_COLUMNS:
        return "float64"
    return "object"


# Bounds far beyond any real clip, so hostile numbers become a message, not an overflow.
_MAX_INT = 2**31 - 1
_MAX_SECONDS = 1e7


def _row_problems(row: dict[str, str]) -> list[str]:
    problems: list[str] = []
    for column in _INT_COLUMNS:
        text = row[column].strip()
        # ASCII only: str.isdigit() also accepts superscripts ('¹'), which int() refuses.
        if not (text.isascii() and text.isdigit()):
            problems.append(f"{column} must be a whole number >= 0, got {text!r}")
        elif int(text) > _MAX_INT:
            problems.append(f"{column} must be at most {_MAX_INT}, got {text!r}")
        elif column != "class_index" and int(text) == 0:
            problems.append(f"{column} must be positive, got {text!r}")
    numbers: dict[str, float] = {}
    for column in _FLOAT_COLUMNS:
        text = row[column].strip()
        try:
            # ASCII only: float() also reads other scripts' digits, which no tool of ours writes.
            numbers[column] = float(text) if text.isascii() else float("nan")
        except ValueError:
            problems.append(f"{column} must be a number, got {row[column]!r}")
            continue
        if not math.isfinite(numbers[column]) or numbers[column] < 0:
            problems.append(f"{column} must be a finite number >= 0, got {row[column]!r}")
        elif numbers[column] > _MAX_SECONDS:
            problems.append(f"{column} must be at most {_MAX_SECONDS:g} s, got {row[column]!r}")
    if "start_seconds" in numbers and "end_seconds" in numbers:
        if numbers["end_seconds"] <= numbers["start_seconds"]:
            problems.append("end_seconds must be greater than start_seconds")
    if not is_valid_ytid(row["ytid"]):
        problems.append(f"ytid must be 11 characters of [A-Za-z0-9_-], got {row['ytid']!r}")
    file_problem = check_relative_file(row["file"])
    if file_problem is not None:
        problems.append(f"file {row['file']!r}: {file_problem}")
    if row["split"] not in SPLITS:
        problems.append(f"split must be one of {', '.join(SPLITS)}, got {row['split']!r}")
    if not _SHA256_RE.match(row["sha256"]):
        problems.append(f"sha256 must be 64 lowercase hex digits, got {row['sha256']!r}")
    samples = row.get("samples_sha256", "")
    if samples and not _SHA256_RE.match(samples):
        problems.append(f"samples_sha256 must be empty or 64 lowercase hex digits, got {samples!r}")
    if not row["mid"]:
        problems.append("mid is empty")
    return problems


def read_manifest(path: Path) -> pd.DataFrame:
    """Read and validate a manifest; raise :class:`UserError` naming the file and line of each problem.

    Extra columns are kept (after the standard ones). Line numbers count the header as line 1.
    """
    path = Path(path)
    table = read_csv_rows(
        path, REQUIRED_MANIFEST_COLUMNS, "manifest", "Expected the manifest.csv written by download_data.py."
    )
    errors = list(table.errors)
    rows: list[list[str]] = []
    seen_files: dict[str, int] = {}
    for line_number, row in table.rows:
        for column in TEXT_COLUMNS:
            if column in row:  # an optional column (source) may be absent from an older manifest
                row[column] = from_spreadsheet_safe(row[column])
        for problem in _row_problems(row):
            errors.append((line_number, f"{path}:{line_number}: {problem}"))
        previous = seen_files.get(row["file"])
        if previous is not None:
            errors.append((line_number, f"{path}:{line_number}: file {row['file']!r} already listed on line {previous}"))
        else:
            seen_files[row["file"]] = line_number
        rows.append(list(row.values()))
    raise_if_errors(errors, "invalid manifest")
    header = table.header
    frame = pd.DataFrame(rows, columns=header, dtype=object)
    for column in OPTIONAL_MANIFEST_COLUMNS:
        if column not in frame:
            frame[column] = ""
            header = [*header, column]
    for column in _INT_COLUMNS:
        frame[column] = frame[column].astype("int64")
    for column in _FLOAT_COLUMNS:
        frame[column] = frame[column].astype("float64")
    ordered = list(MANIFEST_COLUMNS) + [c for c in header if c not in MANIFEST_COLUMNS]
    return frame[ordered].reset_index(drop=True) if len(frame) else _with_extras(empty_manifest(), ordered)


def _with_extras(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    for column in columns:
        if column not in frame:
            frame[column] = pd.Series(dtype="object")
    return frame[columns]


def manifest_csv_text(frame: pd.DataFrame) -> str:
    """Render a manifest deterministically: standard columns first, fixed number formats."""
    missing = [column for column in REQUIRED_MANIFEST_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"manifest frame lacks column(s): {', '.join(missing)}")
    frame = frame.assign(**{c: "" for c in OPTIONAL_MANIFEST_COLUMNS if c not in frame.columns})
    columns = list(MANIFEST_COLUMNS) + [c for c in frame.columns if c not in MANIFEST_COLUMNS]
    out = frame[columns].copy()
    for column in OPTIONAL_MANIFEST_COLUMNS:
        out[column] = out[column].fillna("")
    for column in TEXT_COLUMNS:
        out[column] = out[column].map(spreadsheet_safe)
    for column in ("start_seconds", "end_seconds"):
        out[column] = out[column].map(lambda value: f"{float(value):.3f}")
    out["duration"] = out["duration"].map(lambda value: f"{float(value):.6f}")
    buffer = io.StringIO()
    out.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def write_manifest(path: Path, frame: pd.DataFrame) -> None:
    atomic_write_text(Path(path), manifest_csv_text(frame))


def hf_metadata_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The audiofolder view: ``file_name`` first, then the label columns ``datasets`` turns into features."""
    return pd.DataFrame(
        {
            "file_name": frame["file"],
            "label": frame["class_name"].map(spreadsheet_safe),
            "mid": frame["mid"].map(spreadsheet_safe),
            "split": frame["split"],
            "ytid": frame["ytid"],
            "start_seconds": frame["start_seconds"].map(lambda value: f"{float(value):.3f}"),
            "end_seconds": frame["end_seconds"].map(lambda value: f"{float(value):.3f}"),
            "labels": frame["labels"].map(spreadsheet_safe),
        }
    )


def _class_folder(relative_file: str) -> str:
    return relative_file.split("/", 1)[0]


def existing_class_manifests(root: Path) -> Iterable[Path]:
    return sorted(p for p in Path(root).glob(f"*/{MANIFEST_NAME}") if p.is_file())


def write_dataset_manifests(root: Path, frame: pd.DataFrame) -> None:
    """Write every manifest of a dataset from one frame of finished clips.

    Rows are sorted by class_index with each class's own order kept (callers pass rank
    order). Per-class manifests of folders that no longer hold any clip are removed so
    the manifests always describe exactly what the dataset holds.
    """
    root = Path(root)
    for relative in frame["file"]:
        dataset_path(root, relative)  # refuses any row that would write outside root
    ordered = frame.sort_values("class_index", kind="stable").reset_index(drop=True)
    folders = ordered["file"].map(_class_folder) if len(ordered) else pd.Series(dtype="object")
    for folder, rows in ordered.groupby(folders, sort=True):
        # Same format as the global manifest (paths relative to the dataset root), so one
        # reader serves both and a per-class manifest can be concatenated back losslessly.
        write_manifest(root / folder / MANIFEST_NAME, rows)
    kept = set(folders)
    for stale in existing_class_manifests(root):
        if stale.parent.name not in kept:
            stale.unlink()
    write_manifest(root / MANIFEST_NAME, ordered)
    hf = hf_metadata_frame(ordered)
    buffer = io.StringIO()
    hf.to_csv(buffer, index=False, lineterminator="\n")
    atomic_write_text(root / HF_METADATA_NAME, buffer.getvalue())
    write_dataset_card(root, list(ordered["file"]), HF_METADATA_NAME, int(ordered["class_index"].nunique()))
