"""Packed storage (``audioset-tools pack``): every array of one split in one ``.npy`` file.

``<packed_dir>/<kind>/<split>.npy`` holds an array ``[items, ...]`` that
``np.load(..., mmap_mode="r")`` maps without reading; ``<split>.csv`` is its index (the
derived folder's index columns plus ``row``, the position in the array), and
``params.json`` the settings of the arrays. Loading an episode is one fancy index.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..atomic import atomic_write_text
from ..dataset.manifest import dataset_path
from ..errors import UserError
from .derived import (
    WHOLE,
    index_csv_text,
    index_path,
    params_path,
    read_folder_index,
    read_index,
    read_params,
    write_index,
)

log = logging.getLogger(__name__)

PACKED_PARAMS_NAME = "params.json"


@dataclass(frozen=True)
class PackResult:
    split: str
    array: Path | None
    items: int
    shape: tuple[int, ...]
    skipped: bool


def packed_folder(packed_dir: Path, kind: str) -> Path:
    return Path(packed_dir) / kind


def _item_shape(rows: pd.DataFrame, folder: Path, split: str, hint: str) -> tuple[int, ...]:
    shapes = rows["shape"].unique()
    if len(shapes) > 1:
        first, other = shapes[0], shapes[1]
        example = rows.loc[rows["shape"] == other, "file"].iloc[0]
        raise UserError(
            f"{index_path(folder)}: the {split} split mixes array shapes {first} and {other} "
            f"(e.g. {example}); packing needs one shape. Clean with postprocess.clean.expected_seconds "
            f"set, or cut clips into chunks with postprocess.melspec.chunk_seconds, then rerun {hint}."
        )
    return tuple(int(n) for n in str(shapes[0]).split("x"))


def _up_to_date(array_path: Path, csv_path: Path, text: str, folder: Path, rows: pd.DataFrame) -> bool:
    if not array_path.is_file() or not csv_path.is_file() or csv_path.read_text(encoding="utf-8") != text:
        return False
    made = array_path.stat().st_mtime_ns
    return all(dataset_path(folder, f).stat().st_mtime_ns <= made for f in rows["file"].unique())


def pack_split(folder: Path, packed_dir: Path, split: str, hint: str) -> PackResult:
    """Pack the ``split`` items of a derived folder; reused when nothing changed since."""
    folder = Path(folder)
    params = read_params(folder)
    if params is None:
        raise UserError(f"no {params_path(folder)}; run {hint} first")
    index = read_folder_index(folder, hint)
    rows = index[index["split"] == split].reset_index(drop=True)
    destination = packed_folder(packed_dir, params["kind"])
    if rows.empty:
        log.warning("no %s items in %s; nothing to pack for that split", split, folder)
        return PackResult(split, None, 0, (), skipped=True)
    shape = _item_shape(rows, folder, split, hint)
    rows.insert(0, "row", range(len(rows)))
    array_path, csv_path = destination / f"{split}.npy", destination / f"{split}.csv"
    text = index_csv_text(rows)
    if _up_to_date(array_path, csv_path, text, folder, rows):
        log.info("%s is up to date", array_path)
        return PackResult(split, array_path, len(rows), shape, skipped=True)
    destination.mkdir(parents=True, exist_ok=True)
    atomic_write_text(destination / PACKED_PARAMS_NAME, json.dumps({**params, "source": str(folder)}, indent=2) + "\n")
    first = np.load(dataset_path(folder, rows["file"].iloc[0]), mmap_mode="r")
    _write_packed(array_path, rows, folder, (len(rows), *shape), first.dtype, split)
    write_index(csv_path, rows)
    return PackResult(split, array_path, len(rows), shape, skipped=False)


def _write_packed(path: Path, rows: pd.DataFrame, folder: Path, shape: tuple[int, ...], dtype, split: str) -> None:
    # open_memmap needs a file name, so atomic_open's handle does not fit: same pattern by hand.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        packed = np.lib.format.open_memmap(tmp_name, mode="w+", dtype=dtype, shape=shape)
        show = log.isEnabledFor(logging.INFO)
        groups = rows.groupby("file", sort=False)
        for relative, group in tqdm(groups, desc=f"packing {split}", unit="clip", disable=not show):
            stored = np.load(dataset_path(folder, relative), mmap_mode="r")
            for row, chunk in zip(group["row"], group["chunk"]):
                item = stored if chunk == WHOLE else stored[chunk]
                if item.shape != shape[1:]:
                    raise UserError(
                        f"{folder / relative}: shape {item.shape} differs from the index's {shape[1:]}; "
                        f"the folder changed since its index was written, rerun the step that made it"
                    )
                packed[row] = item
        packed.flush()
        del packed
        with open(tmp_name, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def pack_dataset(folder: Path, packed_dir: Path, splits: list[str], hint: str) -> list[PackResult]:
    return [pack_split(folder, packed_dir, split, hint) for split in splits]


def open_packed(packed_dir: Path, kind: str, split: str) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """The memory-mapped array of a split, its index and its settings."""
    destination = packed_folder(packed_dir, kind)
    array_path = destination / f"{split}.npy"
    if not array_path.is_file():
        raise UserError(f"no packed {split} split at {array_path}\n  Run audioset-tools pack first.")
    index = read_index(destination / f"{split}.csv", "audioset-tools pack")
    array = np.load(array_path, mmap_mode="r")
    if "row" not in index.columns or len(index) != array.shape[0] or list(index["row"]) != [
        str(n) for n in range(len(index))
    ]:
        raise UserError(f"{destination / f'{split}.csv'} does not match {array_path}; rerun audioset-tools pack")
    index["row"] = index["row"].astype("int64")
    if (index["split"] != split).any():
        raise UserError(f"{destination / f'{split}.csv'} lists items of another split; rerun audioset-tools pack")
    return array, index, _packed_params(destination)


def _packed_params(destination: Path) -> dict:
    """The params.json pack wrote beside its arrays.

    A packed folder holds split files, not class folders, so its settings stay in the
    folder itself (read directly: the derived folders' move of root files to ``_meta``
    does not apply here).
    """
    path = destination / PACKED_PARAMS_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: unreadable ({exc}); rerun audioset-tools pack") from None
