"""Normalisation statistics from the meta-train classes only (``audioset-tools stats``).

Mean and standard deviation, global and per channel (per mel band for spectrograms, per
audio channel for waveforms), accumulated in float64 one array at a time with Chan's
pairwise update, so memory stays flat and no cancellation creeps in. They are saved with
the settings of the arrays they describe; :class:`Normaliser` refuses to apply them to
arrays made with other settings.

Written into the folder's meta folder (:func:`.derived.meta_folder`): ``stats.json`` for
our loaders, and MetaAudio's own format under ``norm_stats/`` (see :func:`metaaudio_stats_names`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..atomic import atomic_write_bytes, atomic_write_text
from ..dataset.manifest import dataset_path
from ..errors import UserError
from .derived import (
    WHOLE,
    index_csv_text,
    index_path,
    meta_folder,
    read_folder_index,
    read_index,
    read_params,
)

log = logging.getLogger(__name__)

STATS_NAME = "stats.json"
METAAUDIO_DIR = "norm_stats"
# MetaAudio's name of the data set and of each kind of data, as its stats file names carry them.
METAAUDIO_DATASET = "AudioSet"
METAAUDIO_TYPES = {"melspec": "spec", "npy": "raw"}
TRAIN = "train"
Mode = Literal["none", "global", "per_channel"]


class RunningMoments:
    """Count, mean and sum of squared deviations per channel, merged batch by batch."""

    def __init__(self) -> None:
        self.count: np.ndarray | None = None
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def update(self, array: np.ndarray) -> None:
        values = np.asarray(array, dtype=np.float64)
        values = values.reshape(values.shape[0], -1) if values.ndim >= 2 else values.reshape(1, -1)
        n = values.shape[1]
        mean = values.mean(axis=1)
        m2 = np.square(values - mean[:, None]).sum(axis=1)
        if self.count is None:
            self.count, self.mean, self.m2 = np.full(len(mean), float(n)), mean, m2
            return
        if len(mean) != len(self.mean):
            raise ValueError(f"{len(mean)} channels where earlier arrays had {len(self.mean)}")
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + np.square(delta) * (self.count * n / total)
        self.count = total

    def channel_std(self) -> np.ndarray:
        return np.sqrt(self.m2 / self.count)

    def global_moments(self) -> tuple[float, float, float]:
        """(count, mean, std) over every channel together."""
        total = float(self.count.sum())
        mean = float((self.mean * self.count).sum() / total)
        m2 = float(self.m2.sum() + (np.square(self.mean - mean) * self.count).sum())
        return total, mean, float(np.sqrt(m2 / total))


def train_digest(train: pd.DataFrame) -> str:
    """Fingerprint of the train items, to tell whether statistics still describe them."""
    return hashlib.sha256(index_csv_text(train.reset_index(drop=True)).encode()).hexdigest()


def stats_path(folder: Path) -> Path:
    """Where ``stats`` writes the statistics of a derived folder (in its meta folder)."""
    return meta_folder(folder) / STATS_NAME


def metaaudio_stats_names(kind: str, proportions: tuple[float, ...]) -> dict[str, str]:
    """MetaAudio's file names for global and per-channel statistics, by our mode name.

    MetaAudio looks its statistics up by name, ``<norm>_<dataset>_<type>_<seed>__<proportions>.npy``:
    norm ``global`` or ``channel``, type ``spec`` or ``raw``, seed ``fixed`` when the class
    splits come from a file (our splits.npy), proportions joined by ``_`` (``0.7_0.1_0.2``).
    Waveforms only get the global file: per-channel statistics of raw audio are not a
    MetaAudio option.
    """
    kind_name = METAAUDIO_TYPES[kind]
    tail = f"{METAAUDIO_DATASET}_{kind_name}_fixed__{'_'.join(str(float(p)) for p in proportions)}.npy"
    names = {"global": f"global_{tail}"}
    if kind == "melspec":
        names["per_channel"] = f"channel_{tail}"
    return names


def metaaudio_stats_arrays(moments: RunningMoments, kind: str) -> dict[str, np.ndarray]:
    """float32 ``[mean, std]`` arrays as MetaAudio loads them: (2, 1, 1) global and
    (2, n_mels, 1) per mel band for spectrograms, (2, 1) global for waveforms."""
    _, mean, std = moments.global_moments()
    if kind == "npy":
        return {"global": np.array([[mean], [std]], dtype=np.float32)}
    per_channel = np.stack([moments.mean, moments.channel_std()])[:, :, None]
    return {
        "global": np.array([mean, std], dtype=np.float32).reshape(2, 1, 1),
        "per_channel": per_channel.astype(np.float32),
    }


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _warn_if_stale(path: Path, record: dict) -> None:
    source_index = index_path(Path(record.get("source", "")))
    if not source_index.is_file():
        return
    index = read_index(source_index, "audioset-tools melspec or to-npy")
    if train_digest(index[index["split"] == TRAIN]) != record.get("train_index_sha256"):
        log.warning("%s: the train items changed since these statistics were computed; rerun audioset-tools stats", path)


def compute_stats(folder: Path, hint: str, proportions: tuple[float, ...] = (0.7, 0.1, 0.2)) -> dict:
    """Statistics of the meta-train items listed in ``folder``'s index; written to stats.json
    and, in MetaAudio's format, to ``norm_stats/`` (file names carry the split ``proportions``).

    Only rows whose split is ``train`` are read at all, so val and test data cannot
    influence the result.
    """
    folder = Path(folder)
    index = read_folder_index(folder, hint)
    params = read_params(folder)
    train = index[index["split"] == TRAIN].reset_index(drop=True)
    if train.empty:
        raise UserError(
            f"{index_path(folder)}: no meta-train items; statistics come from the train split only. "
            f"Check the splits in the dataset manifest."
        )
    moments = RunningMoments()
    show = log.isEnabledFor(logging.INFO)
    for relative, rows in tqdm(train.groupby("file", sort=False), desc="statistics", unit="clip", disable=not show):
        stored = np.load(dataset_path(folder, relative), mmap_mode="r")
        for chunk in rows["chunk"]:
            try:
                moments.update(stored if chunk == WHOLE else stored[chunk])
            except ValueError as exc:
                raise UserError(f"{folder / relative}: {exc}; rerun {hint} to rewrite the folder") from None
    count, mean, std = moments.global_moments()
    record = {
        "source": str(folder),
        "kind": (params or {}).get("kind"),
        "params": (params or {}).get("params"),
        "splits": [TRAIN],
        "classes": sorted(int(c) for c in train["class_index"].unique()),
        "items": int(len(train)),
        "train_index_sha256": train_digest(train),
        "global": {"mean": mean, "std": std, "count": count},
        "per_channel": {
            "mean": moments.mean.tolist(),
            "std": moments.channel_std().tolist(),
            "count": moments.count.tolist(),
        },
    }
    kind = record["kind"]
    if kind in METAAUDIO_TYPES:
        names = metaaudio_stats_names(kind, proportions)
        arrays = metaaudio_stats_arrays(moments, kind)
        target = meta_folder(folder) / METAAUDIO_DIR
        target.mkdir(parents=True, exist_ok=True)
        for mode, name in names.items():
            atomic_write_bytes(target / name, _npy_bytes(arrays[mode]))
        record["metaaudio"] = {mode: f"{METAAUDIO_DIR}/{name}" for mode, name in names.items()}
    atomic_write_text(stats_path(folder), json.dumps(record, indent=2) + "\n")
    return record


@dataclass(frozen=True)
class Normaliser:
    """Applies saved statistics: ``(x - mean) / std``, globally or per channel (axis -2 of a
    spectrogram or a multichannel waveform, so it works on single items and on batches)."""

    mode: Mode
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def from_file(cls, path: Path, mode: Mode, params: dict | None = None) -> Normaliser | None:
        """None for mode ``none``; ``params`` (the arrays' settings) must match the file's."""
        if mode == "none":
            return None
        path = Path(path)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(
                f"no statistics at {path}\n  Run audioset-tools stats first, or set postprocess.normalisation: none."
            ) from None
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: unreadable statistics ({exc}); rerun audioset-tools stats") from None
        if record.get("splits") != [TRAIN]:
            raise UserError(f"{path}: statistics not computed from the train split only; rerun audioset-tools stats")
        if params is not None and record.get("params") != params:
            raise UserError(
                f"{path}: statistics were computed on arrays made with other settings; rerun audioset-tools stats"
            )
        _warn_if_stale(path, record)
        if mode == "global":
            mean = np.asarray(record["global"]["mean"], dtype=np.float32)
            std = np.asarray(record["global"]["std"], dtype=np.float32)
        else:
            mean = np.asarray(record["per_channel"]["mean"], dtype=np.float32)
            std = np.asarray(record["per_channel"]["std"], dtype=np.float32)
            if mean.size == 1:  # a mono waveform: one channel, applied like a global value
                mean, std = mean.reshape(()), std.reshape(())
        return cls(mode=mode, mean=mean, std=np.where(std > 0, std, 1).astype(np.float32))

    def __call__(self, array: np.ndarray) -> np.ndarray:
        x = np.asarray(array, dtype=np.float32)
        if self.mean.ndim == 0:
            return (x - self.mean) / self.std
        return (x - self.mean[:, None]) / self.std[:, None]
