"""PyTorch loaders: one split each, seeded episodes, disjoint supports and queries."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

torch = pytest.importorskip(
    "torch", reason="the PyTorch loaders need the [torch] extra: pip install -e '.[torch]'"
)

from post_data import ClassSpec, make_dataset

from audioset_tools.errors import UserError
from audioset_tools.loaders.torch_data import (  # noqa: E402
    ArrayDataset,
    ClipDataset,
    EpisodeCollate,
    EpisodeSampler,
    PackedDataset,
    episode_loader,
)
from audioset_tools.post.features import FeatureSettings, compute_melspecs
from audioset_tools.post.pack import pack_dataset
from audioset_tools.post.stats import compute_stats

REPO = Path(__file__).resolve().parents[1]

# 4 train classes, one too small for 2-shot 2-query; 2 val, 2 test.
CLASSES = (
    ClassSpec(0, "Bark", "train", 6),
    ClassSpec(1, "Meow", "train", 5),
    ClassSpec(2, "Chirp", "train", 4),
    ClassSpec(3, "Hiss", "train", 3),
    ClassSpec(4, "Moo", "val", 4),
    ClassSpec(5, "Oink", "val", 4),
    ClassSpec(6, "Neigh", "test", 4),
    ClassSpec(7, "Quack", "test", 5),
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("torch")
    data, features, packed = root / "data", root / "mel", root / "packed"
    make_dataset(data, classes=CLASSES)
    compute_melspecs(data, features, FeatureSettings(), workers=1)
    compute_stats(features, "melspec")
    pack_dataset(features, packed, ["train", "val", "test"], "melspec")
    return {"data": data, "features": features, "packed": packed}


def test_each_dataset_holds_one_split_with_documented_items(dataset: dict[str, Path]) -> None:
    for split, names in (("train", {"Bark", "Meow", "Chirp", "Hiss"}), ("test", {"Neigh", "Quack"})):
        clips = ClipDataset(dataset["data"], split)
        arrays = ArrayDataset(dataset["features"], split)
        packed = PackedDataset(dataset["packed"], "melspec", split)
        for ds in (clips, arrays, packed):
            assert set(ds.classes["class_name"]) == names and set(ds.rows["split"]) == {split}
            assert len(ds) == sum(c.clips for c in CLASSES if c.split == split)
        x, label = clips[0]
        assert x.dtype == torch.float32 and x.shape == (16000,) and isinstance(label, int)
        expected, _ = sf.read(dataset["data"] / clips.rows.at[0, "file"], dtype="float32")
        assert torch.equal(x, torch.from_numpy(expected))
        for i in range(len(arrays)):
            a, la = arrays[i]
            p, lp = packed[i]
            assert a.shape == (128, 32) and torch.equal(a, p) and la == lp
            assert arrays.classes.at[la, "class_index"] == arrays.rows.at[i, "class_index"]


def test_sampler_is_deterministic_per_seed_and_epoch(dataset: dict[str, Path]) -> None:
    labels = PackedDataset(dataset["packed"], "melspec", "train").labels
    first = list(EpisodeSampler(labels, 3, 2, 2, episodes=20, seed=5))
    assert first == list(EpisodeSampler(labels, 3, 2, 2, episodes=20, seed=5))
    assert first != list(EpisodeSampler(labels, 3, 2, 2, episodes=20, seed=6))
    sampler = EpisodeSampler(labels, 3, 2, 2, episodes=20, seed=5)
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_episodes_are_class_major_disjoint_and_skip_small_classes(dataset: dict[str, Path]) -> None:
    labels = PackedDataset(dataset["packed"], "melspec", "train").labels
    n, k, q = 3, 2, 2
    sampler = EpisodeSampler(labels, n, k, q, episodes=200, seed=0)
    small = 3  # "Hiss" has 3 items < K+Q = 4
    seen: set[int] = set()
    for episode in sampler:
        assert len(episode) == n * (k + q)
        supports, queries = episode[: n * k], episode[n * k :]
        assert not set(supports) & set(queries) and len(set(episode)) == len(episode)
        support_classes = labels[supports].reshape(n, k)
        query_classes = labels[queries].reshape(n, q)
        assert (support_classes == support_classes[:, :1]).all()
        assert (query_classes == support_classes[:, :1]).all()
        assert len(set(support_classes[:, 0])) == n
        seen.update(labels[episode].tolist())
    assert small not in seen and seen == {0, 1, 2}


def test_too_few_eligible_classes_is_a_clear_error(dataset: dict[str, Path]) -> None:
    labels = PackedDataset(dataset["packed"], "melspec", "train").labels
    with pytest.raises(UserError, match="only 3 class"):
        EpisodeSampler(labels, 4, 2, 2, episodes=1)


def test_loader_yields_episode_tensors_with_relabelled_targets(dataset: dict[str, Path]) -> None:
    ds = PackedDataset(dataset["packed"], "melspec", "train", normalisation="per_channel")
    reference = ArrayDataset(dataset["features"], "train", normalisation="per_channel")
    loader = episode_loader(ds, n_way=3, k_shot=2, q_query=1, episodes=4, seed=1)
    sampler_lists = list(EpisodeSampler(ds.labels, 3, 2, 1, episodes=4, seed=1))
    for (support_x, support_y, query_x, query_y), indices in zip(loader, sampler_lists):
        assert support_x.shape == (6, 128, 32) and query_x.shape == (3, 128, 32)
        assert support_y.tolist() == [0, 0, 1, 1, 2, 2] and query_y.tolist() == [0, 1, 2]
        for row, i in zip(torch.cat([support_x, query_x]), indices):
            torch.testing.assert_close(row, reference[i][0])
    # Normalisation applied: train items average ~0 per band.
    everything = torch.stack([ds[i][0] for i in range(len(ds))])
    assert everything.mean(dim=(0, 2)).abs().max() < 1e-3


def test_collate_rejects_items_out_of_episode_order() -> None:
    items = [(torch.zeros(2), label) for label in (0, 1, 1, 0)]  # queries swapped
    with pytest.raises(ValueError, match="EpisodeSampler order"):
        EpisodeCollate(2, 1, 1)(items)


def test_core_imports_without_torch() -> None:
    """Every module but torch_data imports with torch made unimportable."""
    code = (
        "import sys, importlib, pkgutil\n"
        "sys.modules['torch'] = None\n"
        "import audioset_tools\n"
        "names = [m.name for m in pkgutil.walk_packages(audioset_tools.__path__, 'audioset_tools.')]\n"
        "names = [n for n in names if n not in ('audioset_tools.loaders.torch_data', 'audioset_tools.__main__')]\n"
        "assert 'audioset_tools.post.stats' in names, names\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "try:\n"
        "    import audioset_tools.loaders.torch_data\n"
        "except ImportError:\n"
        "    print('blocked')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "blocked"


def test_example_script_prints_episode_shapes(dataset: dict[str, Path], tmp_path: Path) -> None:
    config = tmp_path / "control.yaml"
    config.write_text(
        "postprocess:\n"
        f"  features_dir: {dataset['features']}\n"
        f"  packed_dir: {dataset['packed']}\n"
    )
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "iterate_episodes.py"), "--config", str(config),
         "--n-way", "2", "--k-shot", "1", "--q-query", "2", "--episodes", "3", "--split", "test"],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("support_x (2, 128, 32)") == 3
    assert "query_x (4, 128, 32)" in result.stdout


def test_packed_dataset_pickles_as_a_path_and_works_in_spawned_workers(dataset: dict[str, Path]) -> None:
    ds = PackedDataset(dataset["packed"], "melspec", "train")
    payload = pickle.dumps(ds)
    assert len(payload) < ds.array.nbytes / 10
    clone = pickle.loads(payload)
    assert torch.equal(clone[3][0], ds[3][0])
    loader = episode_loader(ds, 2, 1, 1, episodes=3, seed=2, num_workers=1)
    loader.multiprocessing_context = "spawn"
    episodes = list(loader)
    reference = list(episode_loader(ds, 2, 1, 1, episodes=3, seed=2))
    for got, expected in zip(episodes, reference):
        assert all(torch.equal(a, b) for a, b in zip(got, expected))
