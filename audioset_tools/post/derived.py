"""Derived folders (npy waveforms, spectrograms): their ``index.csv`` and ``params.json``,
and the resumable, parallel conversion of a dataset into one.

A derived folder mirrors the dataset's class folders: clip ``<folder>/<ytid>_<ms>.wav``
becomes ``<folder>/<ytid>_<ms>.npy``, and its root holds nothing but class folders,
because MetaAudio-style loaders take every entry of that root for a class. Everything
about the arrays lives in the sibling folder ``<name>_meta`` (:func:`meta_folder`):
``index.csv`` lists one row per item (a whole clip, or one chunk of it) with the clip's
class, split and segment; ``params.json`` records the settings that produced the arrays;
``stats`` adds its statistics there. An array is reused on a rerun when it is newer than
its clip and than the last change of settings; everything else is recomputed, and arrays
of clips the manifest no longer lists (quarantined, removed) are deleted.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from ..atomic import atomic_open, atomic_write_text
from ..dataset.manifest import (
    MANIFEST_COLUMNS,
    MANIFEST_NAME,
    SPLITS,
    check_relative_file,
    dataset_path,
    read_manifest,
)
from ..errors import UserError
from ..tables import read_text_frame
from .parallel import batches, run_batches

log = logging.getLogger(__name__)

INDEX_NAME = "index.csv"
PARAMS_NAME = "params.json"
# The clip's identity from the manifest (everything up to its file), then where its array is.
CLIP_COLUMNS = MANIFEST_COLUMNS[: MANIFEST_COLUMNS.index("file")]
INDEX_COLUMNS = CLIP_COLUMNS + ("source", "file", "chunk", "shape")
# chunk value of a row whose array is the whole clip rather than one chunk of a stack.
WHOLE = -1
META_SUFFIX = "_meta"
# Files earlier versions kept at the root of a derived folder, moved to its meta folder.
_LEGACY_ROOT_FILES = (INDEX_NAME, PARAMS_NAME, "stats.json")


def meta_folder(folder: Path) -> Path:
    """The sibling folder holding a derived folder's index, parameters and statistics.

    ``AudioSet_melspec`` -> ``AudioSet_melspec_meta``: outside the derived folder, so a
    loader that lists its root sees class folders only.
    """
    folder = Path(folder)
    return folder.with_name(folder.name + META_SUFFIX)


def index_path(folder: Path) -> Path:
    return meta_folder(folder) / INDEX_NAME


def params_path(folder: Path) -> Path:
    return meta_folder(folder) / PARAMS_NAME


def move_legacy_files(folder: Path) -> None:
    """Move index/params/stats that an earlier version wrote into the derived root itself
    to the meta folder (kept there when the meta folder already has its own copy)."""
    folder = Path(folder)
    for name in _LEGACY_ROOT_FILES:
        old = folder / name
        if not old.is_file():
            continue
        new = meta_folder(folder) / name
        new.parent.mkdir(parents=True, exist_ok=True)
        if new.exists():
            old.unlink()
        else:
            os.replace(old, new)
        log.info("moved %s to %s (the derived folder's root holds class folders only)", old, new.parent)


@dataclass(frozen=True)
class ItemResult:
    """What a worker made of one clip: the shape of each item, or why it failed."""

    shape: tuple[int, ...] = ()
    chunks: int | None = None
    error: str | None = None


@dataclass
class ConversionSummary:
    converted: int = 0
    skipped: int = 0
    items: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    index: Path | None = None


def load_dataset_manifest(output_dir: Path) -> pd.DataFrame:
    """The global manifest of a dataset, checked so that no class sits in two splits."""
    path = Path(output_dir) / MANIFEST_NAME
    if not path.is_file():
        raise UserError(
            f"no dataset manifest at {path}\n"
            f"  Run download_data.py first, or point paths.output_dir at the dataset folder."
        )
    frame = read_manifest(path)
    check_class_splits(frame, path)
    return frame


def check_class_splits(frame: pd.DataFrame, where: Path) -> None:
    """Meta-learning splits are by class: a class in two splits would leak between them."""
    splits_per_class = frame.groupby("class_index")["split"].nunique()
    leaking = splits_per_class[splits_per_class > 1]
    if len(leaking):
        first = int(leaking.index[0])
        names = sorted(frame.loc[frame["class_index"] == first, "split"].unique())
        raise UserError(
            f"{where}: class {first} appears in splits {', '.join(names)}; each class must belong "
            f"to exactly one split (train, val or test). Rebuild the manifest from one splits file."
        )


def array_relative_path(source: str) -> str:
    return str(PurePosixPath(source).with_suffix(".npy"))


def save_array(path: Path, array: np.ndarray) -> None:
    """Write under a temporary name, then rename: never a half-written array under ``path``.

    Unlike :func:`atomic_open` there is no fsync: these arrays can be recomputed, and an
    fsync per file costs more than computing one. A file cut short by a power loss fails
    to map on the next run (see :func:`_existing_result`) and is recomputed.
    """
    with atomic_open(path, "wb", durable=False) as handle:
        np.save(handle, array, allow_pickle=False)


def shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in shape)


def parse_shape(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in str(text).split("x")) if str(text) else ()


def read_params(folder: Path) -> dict[str, Any] | None:
    """The settings of a derived folder's arrays (its meta folder's params.json), or None."""
    move_legacy_files(folder)
    path = params_path(folder)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: unreadable ({exc}); delete it to recompute the folder") from None


def _settings_epoch(folder: Path, kind: str, params: dict[str, Any], source: Path) -> int:
    """The time (ns) after which arrays of ``folder`` were made with ``params``: the
    modification time of params.json, rewritten whenever the settings change.

    It is written before any work, so a crash part-way leaves a state a rerun can trust:
    arrays older than it were made with other settings and are redone. Using the file's
    own timestamp keeps the comparison on the filesystem's clock, which can lag
    ``time.time_ns()`` by a scheduler tick.
    """
    path = params_path(folder)
    previous = read_params(folder)
    unchanged = previous and previous.get("kind") == kind and previous.get("params") == params
    if not unchanged:
        if previous:
            log.info("%s: settings changed, recomputing every array", folder)
        record = {"kind": kind, "params": params, "source": str(source)}
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return path.stat().st_mtime_ns


def _is_done(target: Path, source: Path, epoch: int) -> bool:
    try:
        made = target.stat().st_mtime_ns
    except FileNotFoundError:
        return False
    return made >= epoch and made >= source.stat().st_mtime_ns


def _existing_result(target: Path, chunked: bool) -> ItemResult | None:
    try:
        shape = np.load(target, mmap_mode="r").shape
    except (OSError, ValueError):
        return None
    return ItemResult(shape=shape[1:], chunks=shape[0]) if chunked else ItemResult(shape=shape)


def convert_dataset(
    output_dir: Path,
    destination: Path,
    *,
    kind: str,
    params: dict[str, Any],
    chunked: bool,
    function: Callable[[list[tuple[str, str]], Any], list[ItemResult]],
    settings: Any,
    workers: int,
    batch_clips: int,
    description: str,
) -> ConversionSummary:
    """Convert every clip of the dataset's manifest with ``function`` into ``destination``.

    ``function(batch, settings)`` gets ``(clip path, array path)`` pairs, writes each
    array atomically and returns one :class:`ItemResult` per pair; a clip it cannot
    convert is reported there, not raised. ``index.csv`` is rewritten at the end.
    """
    output_dir = Path(output_dir)
    destination = Path(destination)
    manifest = load_dataset_manifest(output_dir)
    destination.mkdir(parents=True, exist_ok=True)
    epoch = _settings_epoch(destination, kind, params, output_dir)
    summary = ConversionSummary()
    results: dict[int, ItemResult] = {}
    todo: list[tuple[int, str, str]] = []
    missing: list[str] = []
    for position, relative in enumerate(manifest["file"]):
        source = dataset_path(output_dir, relative)
        target = dataset_path(destination, array_relative_path(relative))
        if not source.is_file():
            missing.append(relative)
            continue
        existing = _existing_result(target, chunked) if _is_done(target, source, epoch) else None
        if existing is not None:
            results[position] = existing
            summary.skipped += 1
        else:
            todo.append((position, str(source), str(target)))
    for relative in missing:
        summary.failed.append((relative, "listed in the manifest but missing on disk"))
    if summary.skipped:
        log.info("%d clip(s) already converted in %s, skipped", summary.skipped, destination)
    work = batches(todo, batch_clips)
    payloads = [[(source, target) for _, source, target in batch] for batch in work]
    for number, batch_results in run_batches(function, payloads, settings, workers, description):
        for (position, _, _), result in zip(work[number], batch_results):
            results[position] = result
    redone = {position for position, _, _ in todo}
    rows = []
    for position, row in enumerate(manifest.itertuples(index=False)):
        result = results.get(position)
        if result is None:
            continue
        if result.error is not None:
            summary.failed.append((row.file, result.error))
            continue
        if position in redone:
            summary.converted += 1
        chunks = [WHOLE] if result.chunks is None else list(range(result.chunks))
        for chunk in chunks:
            rows.append(_index_row(row, chunk, result.shape))
    index = pd.DataFrame(rows, columns=list(INDEX_COLUMNS))
    summary.items = len(index)
    summary.index = index_path(destination)
    write_index(summary.index, index)
    removed = prune_arrays(destination, set(index["file"]))
    if removed:
        log.info("%s: removed %d array(s) of clips the manifest no longer lists", destination, removed)
    for relative, reason in summary.failed[:20]:
        log.warning("%s: %s", relative, reason)
    if len(summary.failed) > 20:
        log.warning("... and %d more failed clip(s)", len(summary.failed) - 20)
    return summary


def prune_arrays(folder: Path, keep: set[str]) -> int:
    """Delete the ``.npy`` arrays of class folders under ``folder`` that ``keep`` does not
    list (relative paths), then the class folders left empty; return how many arrays went.
    Hidden files (temporaries of a writer) are left alone.

    Clips that cleaning quarantined must leave no array behind: a loader that walks the
    folder (MetaAudio's does) would otherwise train on them. Only ``<class>/<name>.npy``
    files are touched, and only directly under ``folder``'s class folders.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()):
        for array in sorted(class_dir.glob("*.npy")):
            if not array.name.startswith(".") and f"{class_dir.name}/{array.name}" not in keep:
                array.unlink()
                removed += 1
        try:
            class_dir.rmdir()  # only succeeds when nothing else is left in it
        except OSError:
            pass
    return removed


def forget_clips(folder: Path, kept_sources: set[str]) -> int:
    """After clips left the dataset (``clean``): drop their rows from a derived folder's
    index and delete their arrays at once, before the next conversion; return the number
    of arrays deleted. A folder never converted is left alone."""
    folder = Path(folder)
    path = index_path(folder)
    move_legacy_files(folder)
    if not path.is_file():
        return 0
    index = read_index(path, "the step that made it")
    kept = index[index["source"].isin(kept_sources)].reset_index(drop=True)
    if len(kept) != len(index):
        write_index(path, kept)
    return prune_arrays(folder, set(kept["file"]))


def _index_row(row: Any, chunk: int, shape: tuple[int, ...]) -> dict[str, Any]:
    return {
        "class_index": int(row.class_index),
        "mid": row.mid,
        "class_name": row.class_name,
        "split": row.split,
        "ytid": row.ytid,
        "start_seconds": float(row.start_seconds),
        "end_seconds": float(row.end_seconds),
        "source": row.file,
        "file": array_relative_path(row.file),
        "chunk": chunk,
        "shape": shape_text(shape),
    }


def index_csv_text(frame: pd.DataFrame) -> str:
    out = frame[list(INDEX_COLUMNS) + [c for c in frame.columns if c not in INDEX_COLUMNS]].copy()
    for column in ("start_seconds", "end_seconds"):
        out[column] = out[column].map(lambda value: f"{float(value):.3f}")
    buffer = io.StringIO()
    out.to_csv(buffer, index=False, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    return buffer.getvalue()


def write_index(path: Path, frame: pd.DataFrame) -> None:
    atomic_write_text(Path(path), index_csv_text(frame))


def read_index(path: Path, hint: str) -> pd.DataFrame:
    """Read an index; ``hint`` names the command that makes it, for the error message."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no index at {path}\n  Run {hint} first.")
    frame = read_text_frame(path, INDEX_COLUMNS, "index", f"rerun {hint} to rewrite it")
    problems = []
    for line, (relative, split) in enumerate(zip(frame["file"], frame["split"]), start=2):
        problem = check_relative_file(relative)
        if problem is not None:
            problems.append(f"{path}:{line}: file {relative!r}: {problem}")
        if split not in SPLITS:
            problems.append(f"{path}:{line}: split must be one of {', '.join(SPLITS)}, got {split!r}")
        if len(problems) >= 10:
            break
    if problems:
        raise UserError("invalid index:\n  " + "\n  ".join(problems) + f"\n  Rerun {hint} to rewrite it.")
    try:
        for column in ("class_index", "chunk"):
            frame[column] = frame[column].astype("int64")
        for column in ("start_seconds", "end_seconds"):
            frame[column] = frame[column].astype("float64")
    except ValueError as exc:
        raise UserError(f"{path}: bad number in the index ({exc}); rerun {hint}") from None
    check_class_splits(frame, path)
    return frame


def read_folder_index(folder: Path, hint: str) -> pd.DataFrame:
    """The index of a derived folder (in its meta folder; an earlier version's is moved there)."""
    move_legacy_files(folder)
    return read_index(index_path(folder), hint)


def load_item(folder: Path, file: str, chunk: int) -> np.ndarray:
    """One item's array: a whole stored array, or one chunk of a stored stack."""
    array = np.load(dataset_path(folder, file), mmap_mode="r")
    return np.array(array if chunk == WHOLE else array[chunk])
