"""A few N-way K-shot episodes from the packed demo data: the PyTorch loaders when torch is
installed (extra ``[torch]``), otherwise the same draw on the memory-mapped numpy arrays."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..post.pack import open_packed
from ..post.stats import Normaliser, stats_path


@dataclass(frozen=True)
class EpisodeShapes:
    backend: str  # "torch" or "numpy"
    episodes: int
    support: tuple[int, ...]
    query: tuple[int, ...]
    classes: int


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def draw_episodes(labels: np.ndarray, n_way: int, k_shot: int, q_query: int, episodes: int,
                  seed: int = 0, epoch: int = 0) -> list[list[int]]:
    """Item positions of each episode: N*K supports then N*Q queries, class-major.

    The same draw as :class:`audioset_tools.loaders.torch_data.EpisodeSampler` (generator
    ``default_rng([seed, epoch])``, classes with fewer than K+Q items left out), without torch.
    """
    labels = np.asarray(labels)
    needed = k_shot + q_query
    members = {int(c): np.flatnonzero(labels == c) for c in np.unique(labels)}
    eligible = np.array([c for c, found in members.items() if len(found) >= needed], dtype=np.int64)
    if len(eligible) < n_way:
        raise ValueError(f"only {len(eligible)} class(es) have {needed} items; a {n_way}-way episode needs {n_way}")
    rng = np.random.default_rng([seed, epoch])
    drawn = []
    for _ in range(episodes):
        supports: list[int] = []
        queries: list[int] = []
        for label in rng.choice(eligible, n_way, replace=False):
            picked = rng.choice(members[int(label)], needed, replace=False)
            supports.extend(int(i) for i in picked[:k_shot])
            queries.extend(int(i) for i in picked[k_shot:])
        drawn.append(supports + queries)
    return drawn


def sample_episodes(packed_dir: Path, kind: str, split: str, *, n_way: int, k_shot: int, q_query: int,
                    episodes: int, seed: int = 0, use_torch: bool | None = None) -> EpisodeShapes:
    """Draw ``episodes`` episodes of one packed split, normalised per channel by its stats.json."""
    if use_torch is None:
        use_torch = torch_available()
    if use_torch:
        from ..loaders.torch_data import PackedDataset, episode_loader

        dataset = PackedDataset(packed_dir, kind, split, normalisation="per_channel")
        count = 0
        for episode in episode_loader(dataset, n_way, k_shot, q_query, episodes, seed=seed):
            support, query = tuple(episode.support_x.shape), tuple(episode.query_x.shape)
            count += 1
        return EpisodeShapes("torch", count, support, query, len(dataset.classes))
    array, index, params = open_packed(Path(packed_dir), kind, split)
    source = Path(params.get("source", Path(packed_dir) / kind))
    normaliser = Normaliser.from_file(stats_path(source), "per_channel", params.get("params"))
    classes = sorted({int(c) for c in index["class_index"]})
    labels = np.array([classes.index(int(c)) for c in index["class_index"]], dtype=np.int64)
    count = 0
    for positions in draw_episodes(labels, n_way, k_shot, q_query, episodes, seed):
        batch = normaliser(array[np.asarray(positions, dtype=np.int64)])
        support, query = batch[: n_way * k_shot], batch[n_way * k_shot:]
        count += 1
    return EpisodeShapes("numpy", count, tuple(support.shape), tuple(query.shape), len(classes))
