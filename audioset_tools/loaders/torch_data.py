"""PyTorch datasets, an N-way K-shot episode sampler and its collate (extra ``[torch]``).

This is the only module that imports torch; the rest of audioset-tools runs without it.

Every dataset covers exactly one split (train, val or test), so a loader cannot mix
meta-train and meta-test classes, and loads lazily. ``dataset[i]`` returns
``(x, label)``: ``x`` a float32 tensor (a waveform ``[frames]`` or ``[channels, frames]``,
or a spectrogram ``[n_mels, frames]``), ``label`` an int, the position of the item's class
in ``dataset.classes`` (sorted by AudioSet class index).

Typical use::

    dataset = PackedDataset("AudioSet_packed", "melspec", "train", normalisation="per_channel")
    loader = episode_loader(dataset, n_way=5, k_shot=1, q_query=5, episodes=100, seed=0)
    for support_x, support_y, query_x, query_y in loader:
        ...  # support_x [5*1, 128, 313], support_y [5] in 0..4, query_x [5*5, 128, 313]
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..dataset.manifest import MANIFEST_NAME, SPLITS, dataset_path
from ..errors import UserError
from ..post.audio import read_clip
from ..post.derived import (
    load_dataset_manifest,
    load_item,
    read_folder_index,
    read_params,
)
from ..post.pack import open_packed
from ..post.stats import Mode, Normaliser, stats_path

log = logging.getLogger(__name__)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise UserError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")


class _SplitDataset(Dataset):
    """Rows of one split with their class labels; subclasses load the arrays."""

    def __init__(self, rows: pd.DataFrame, split: str, where: Path) -> None:
        _check_split(split)
        rows = rows[rows["split"] == split].reset_index(drop=True)
        if rows.empty:
            raise UserError(f"{where}: no items in the {split} split")
        self.split = split
        self.rows = rows
        self.classes = (
            rows[["class_index", "mid", "class_name"]]
            .drop_duplicates("class_index")
            .sort_values("class_index")
            .reset_index(drop=True)
        )
        position = {int(c): i for i, c in enumerate(self.classes["class_index"])}
        self.labels = np.array([position[int(c)] for c in rows["class_index"]], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)


class ClipDataset(_SplitDataset):
    """Decoded audio clips of one split, straight from the dataset's manifest."""

    def __init__(self, output_dir: Path, split: str, normaliser: Normaliser | None = None) -> None:
        self.root = Path(output_dir)
        super().__init__(load_dataset_manifest(self.root), split, self.root / MANIFEST_NAME)
        self.normaliser = normaliser

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        samples, _ = read_clip(dataset_path(self.root, self.rows.at[i, "file"]))
        if self.normaliser is not None:
            samples = self.normaliser(samples)
        return torch.from_numpy(samples), int(self.labels[i])


def _normaliser(mode: Mode, stats_file: Path | None, default: Path, params: dict | None) -> Normaliser | None:
    return Normaliser.from_file(stats_file or default, mode, params)


class ArrayDataset(_SplitDataset):
    """Arrays of a derived folder (to-npy or melspec output), one ``.npy`` read per item.

    ``normalisation`` applies the folder's ``stats.json`` (in ``<folder>_meta/``, or ``stats_file``), which must
    have been computed on arrays made with the folder's current settings.
    """

    def __init__(
        self, folder: Path, split: str, normalisation: Mode = "none", stats_file: Path | None = None
    ) -> None:
        self.folder = Path(folder)
        super().__init__(read_folder_index(self.folder, "audioset-tools melspec or to-npy"), split, self.folder)
        params = (read_params(self.folder) or {}).get("params")
        self.normaliser = _normaliser(normalisation, stats_file, stats_path(self.folder), params)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        array = load_item(self.folder, self.rows.at[i, "file"], int(self.rows.at[i, "chunk"]))
        array = self.normaliser(array) if self.normaliser is not None else array.astype(np.float32)
        return torch.from_numpy(array), int(self.labels[i])


class PackedDataset(_SplitDataset):
    """One split of packed storage, memory-mapped: items are read from the page cache.

    Statistics default to the ``stats.json`` of the folder that was packed.
    Implements ``__getitems__``, so a DataLoader fetches a whole episode with one fancy index.
    """

    def __init__(
        self,
        packed_dir: Path,
        kind: str,
        split: str,
        normalisation: Mode = "none",
        stats_file: Path | None = None,
    ) -> None:
        _check_split(split)
        self.array, index, packed_params = open_packed(Path(packed_dir), kind, split)
        self.array_path = Path(self.array.filename)
        super().__init__(index, split, Path(packed_dir) / kind)
        source = Path(packed_params.get("source", Path(packed_dir) / kind))
        self.normaliser = _normaliser(normalisation, stats_file, stats_path(source), packed_params.get("params"))

    def __getstate__(self) -> dict:
        # A pickled memmap carries its whole contents; DataLoader workers started with
        # "spawn" get the path instead and map the file themselves.
        return {**self.__dict__, "array": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.array = np.load(self.array_path, mmap_mode="r")

    def _finish(self, array: np.ndarray) -> torch.Tensor:
        array = self.normaliser(array) if self.normaliser is not None else array.astype(np.float32, copy=False)
        return torch.from_numpy(np.ascontiguousarray(array))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self._finish(np.array(self.array[i])), int(self.labels[i])

    def __getitems__(self, indices: list[int]) -> ItemBatch:
        batch = self._finish(self.array[np.asarray(indices, dtype=np.int64)])
        return ItemBatch([(batch[j], int(self.labels[i])) for j, i in enumerate(indices)], batch)


class ItemBatch(list):
    """``(x, label)`` items that are views of one tensor, which collate can use without copying."""

    def __init__(self, items: list[tuple[torch.Tensor, int]], stacked: torch.Tensor) -> None:
        super().__init__(items)
        self.stacked = stacked


class EpisodeSampler(Sampler[list[int]]):
    """Index lists of N-way K-shot Q-query episodes, for a DataLoader's ``batch_sampler``.

    Each list holds the N*K supports then the N*Q queries, class-major (the K supports of
    the episode's first class, then of its second, ...; queries likewise), so supports and
    queries never share an item. Classes with fewer than K+Q items are left out. Episodes
    depend only on (labels, seed, epoch): iteration ``e`` uses ``np.random.default_rng([seed, e])``;
    call :meth:`set_epoch` to draw new episodes for a new epoch.
    """

    def __init__(
        self, labels: np.ndarray, n_way: int, k_shot: int, q_query: int, episodes: int, seed: int = 0
    ) -> None:
        for name, value in (("n_way", n_way), ("k_shot", k_shot), ("episodes", episodes)):
            if int(value) < 1:
                raise UserError(f"{name} must be >= 1, got {value}")
        if int(q_query) < 0:
            raise UserError(f"q_query must be >= 0, got {q_query}")
        self.n_way, self.k_shot, self.q_query, self.episodes = int(n_way), int(k_shot), int(q_query), int(episodes)
        self.seed = int(seed)
        self.epoch = 0
        labels = np.asarray(labels)
        needed = self.k_shot + self.q_query
        self.members = {int(c): np.flatnonzero(labels == c) for c in np.unique(labels)}
        self.eligible = np.array([c for c, members in self.members.items() if len(members) >= needed], dtype=np.int64)
        excluded = len(self.members) - len(self.eligible)
        if excluded:
            log.info("%d class(es) with fewer than K+Q = %d items left out of the episodes", excluded, needed)
        if len(self.eligible) < self.n_way:
            raise UserError(
                f"only {len(self.eligible)} class(es) have at least K+Q = {needed} items; "
                f"a {self.n_way}-way episode needs {self.n_way}. Lower n_way, k_shot or q_query."
            )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.episodes

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        needed = self.k_shot + self.q_query
        for _ in range(self.episodes):
            supports: list[int] = []
            queries: list[int] = []
            for label in rng.choice(self.eligible, self.n_way, replace=False):
                picked = rng.choice(self.members[int(label)], needed, replace=False)
                supports.extend(int(i) for i in picked[: self.k_shot])
                queries.extend(int(i) for i in picked[self.k_shot :])
            yield supports + queries


class Episode(NamedTuple):
    """Support and query tensors; labels are 0..N-1 in the episode's class order."""

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor


class EpisodeCollate:
    """Turns the items of one :class:`EpisodeSampler` list into an :class:`Episode`."""

    def __init__(self, n_way: int, k_shot: int, q_query: int) -> None:
        self.n_way, self.k_shot, self.q_query = n_way, k_shot, q_query

    def __call__(self, batch: list[tuple[torch.Tensor, int]]) -> Episode:
        n, k, q = self.n_way, self.k_shot, self.q_query
        if len(batch) != n * (k + q):
            raise ValueError(f"an {n}-way {k}-shot {q}-query episode has {n * (k + q)} items, got {len(batch)}")
        original = np.array([label for _, label in batch])
        support_classes = original[: n * k].reshape(n, k)
        query_classes = original[n * k :].reshape(n, q)
        if (support_classes != support_classes[:, :1]).any() or (query_classes != support_classes[:, :1]).any():
            raise ValueError("items are not in EpisodeSampler order (supports then queries, class-major)")
        try:
            x = batch.stacked if isinstance(batch, ItemBatch) else torch.stack([item for item, _ in batch])
        except RuntimeError as exc:
            raise UserError(
                f"items of different shapes cannot form one episode tensor ({exc}); pack equal-length "
                f"arrays (postprocess.clean.expected_seconds or postprocess.melspec.chunk_seconds)"
            ) from None
        ways = torch.arange(n)
        return Episode(x[: n * k], ways.repeat_interleave(k), x[n * k :], ways.repeat_interleave(q))


def episode_loader(
    dataset: _SplitDataset,
    n_way: int,
    k_shot: int,
    q_query: int,
    episodes: int,
    seed: int = 0,
    num_workers: int = 0,
) -> DataLoader:
    """A DataLoader yielding :class:`Episode` s drawn from one split's dataset."""
    sampler = EpisodeSampler(dataset.labels, n_way, k_shot, q_query, episodes, seed)
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=EpisodeCollate(n_way, k_shot, q_query),
        num_workers=num_workers,
    )
