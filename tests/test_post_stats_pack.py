"""Statistics from the train split only, equal to numpy; packed storage equal to its sources."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from post_data import DEFAULT_CLASSES, ClassSpec, make_dataset, write_clip

from audioset_tools.errors import UserError
from audioset_tools.post.derived import index_path, load_item, params_path, read_index
from audioset_tools.post.features import FeatureSettings, compute_melspecs
from audioset_tools.post.npy import NpySettings, convert_to_npy
from audioset_tools.post.pack import open_packed, pack_dataset
from audioset_tools.post.stats import (
    Normaliser,
    RunningMoments,
    compute_stats,
    stats_path,
)


@pytest.fixture
def melspec_folder(tmp_path: Path) -> tuple[Path, Path]:
    data, features = tmp_path / "data", tmp_path / "mel"
    make_dataset(data)
    compute_melspecs(data, features, FeatureSettings(), workers=1)
    return data, features


def _train_arrays(features: Path) -> list[np.ndarray]:
    index = read_index(index_path(features), "melspec")
    train = index[index["split"] == "train"]
    assert len(train) == sum(c.clips for c in DEFAULT_CLASSES if c.split == "train")
    return [load_item(features, f, c).astype(np.float64) for f, c in zip(train["file"], train["chunk"])]


def test_stats_equal_numpy_over_the_train_split_only(melspec_folder: tuple[Path, Path]) -> None:
    _, features = melspec_folder
    record = compute_stats(features, "melspec")
    everything = np.stack(_train_arrays(features))  # [items, mels, frames]
    assert record["splits"] == ["train"] and record["classes"] == [0, 1, 2]
    assert record["global"]["mean"] == pytest.approx(everything.mean(), rel=1e-10)
    assert record["global"]["std"] == pytest.approx(everything.std(), rel=1e-10)
    np.testing.assert_allclose(record["per_channel"]["mean"], everything.mean(axis=(0, 2)), rtol=1e-10)
    np.testing.assert_allclose(record["per_channel"]["std"], everything.std(axis=(0, 2)), rtol=1e-10)
    assert json.loads((stats_path(features)).read_text())["params"]["mel"]["n_mels"] == 128


def test_val_and_test_data_cannot_change_the_stats(tmp_path: Path, melspec_folder: tuple[Path, Path]) -> None:
    data, features = melspec_folder
    before = compute_stats(features, "melspec")
    index = read_index(index_path(features), "melspec")
    for relative in index.loc[index["split"] != "train", "source"]:
        write_clip(data / relative, np.random.default_rng(3).standard_normal(16000) * 0.9)
    compute_melspecs(data, features, FeatureSettings(), workers=1)
    after = compute_stats(features, "melspec")
    assert after["global"] == before["global"] and after["per_channel"] == before["per_channel"]
    # ... whereas a train clip does change them: the comparison above can fail.
    write_clip(data / index.loc[index["split"] == "train", "source"].iloc[0], np.full(16000, 0.5) + 0.01 * np.arange(16000) % 3)
    compute_melspecs(data, features, FeatureSettings(), workers=1)
    assert compute_stats(features, "melspec")["global"] != before["global"]


def test_running_moments_merge_equals_numpy_on_uneven_batches() -> None:
    rng = np.random.default_rng(0)
    parts = [rng.normal(-40, 12, size=(4, n)) for n in (1, 7, 300, 2)]
    moments = RunningMoments()
    for part in parts:
        moments.update(part)
    joined = np.concatenate(parts, axis=1)
    np.testing.assert_allclose(moments.mean, joined.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(moments.channel_std(), joined.std(axis=1), rtol=1e-12)
    count, mean, std = moments.global_moments()
    assert (count, mean, std) == pytest.approx((joined.size, joined.mean(), joined.std()), rel=1e-12)


def test_no_train_classes_is_a_user_error(tmp_path: Path) -> None:
    data, features = tmp_path / "data", tmp_path / "mel"
    make_dataset(data, classes=(ClassSpec(0, "A", "val", 2), ClassSpec(1, "B", "test", 2)))
    compute_melspecs(data, features, FeatureSettings(), workers=1)
    with pytest.raises(UserError, match="no meta-train items"):
        compute_stats(features, "melspec")


def test_normaliser_applies_saved_stats_and_checks_settings(melspec_folder: tuple[Path, Path]) -> None:
    _, features = melspec_folder
    compute_stats(features, "melspec")
    params = json.loads(params_path(features).read_text())["params"]
    per_channel = Normaliser.from_file(stats_path(features), "per_channel", params)
    normalised = np.stack([per_channel(a) for a in _train_arrays(features)])
    np.testing.assert_allclose(normalised.mean(axis=(0, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(normalised.std(axis=(0, 2)), 1, atol=1e-4)
    whole = Normaliser.from_file(stats_path(features), "global", params)
    normalised = np.stack([whole(a) for a in _train_arrays(features)])
    assert abs(normalised.mean()) < 1e-4 and abs(normalised.std() - 1) < 1e-4
    assert Normaliser.from_file(stats_path(features), "none") is None
    with pytest.raises(UserError, match="other settings"):
        Normaliser.from_file(stats_path(features), "global", {**params, "chunk_seconds": 1.0})


def test_pack_holds_every_item_of_its_split_only(melspec_folder: tuple[Path, Path], tmp_path: Path) -> None:
    _, features = melspec_folder
    results = pack_dataset(features, tmp_path / "packed", ["train", "val", "test"], "melspec")
    assert [r.items for r in results] == [15, 4, 8] and not any(r.skipped for r in results)
    for split in ("train", "val", "test"):
        array, index, _ = open_packed(tmp_path / "packed", "melspec", split)
        assert array.shape == (len(index), 128, 32) and set(index["split"]) == {split}
        for row in index.itertuples():
            np.testing.assert_array_equal(array[row.row], load_item(features, row.file, row.chunk))
    again = pack_dataset(features, tmp_path / "packed", ["train"], "melspec")
    assert again[0].skipped
    # Opening the packs keeps their settings where pack wrote them (no stray *_meta folder).
    _, _, params = open_packed(tmp_path / "packed", "melspec", "train")
    assert params["kind"] == "melspec" and params["source"] == str(features)
    assert (tmp_path / "packed" / "melspec" / "params.json").is_file()
    assert sorted(p.name for p in (tmp_path / "packed").iterdir()) == ["melspec"]


def test_pack_of_chunked_npy_and_mixed_shapes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    manifest = make_dataset(data)
    convert_to_npy(data, tmp_path / "npy", NpySettings(), workers=1)
    write_clip(data / manifest["file"][0], np.sin(np.arange(8000) / 3.0) * 0.2)
    convert_to_npy(data, tmp_path / "npy", NpySettings(), workers=1)
    with pytest.raises(UserError, match="mixes array shapes"):
        pack_dataset(tmp_path / "npy", tmp_path / "packed", ["train"], "to-npy")
    # Val is untouched and packs fine.
    assert pack_dataset(tmp_path / "npy", tmp_path / "packed", ["val"], "to-npy")[0].shape == (16000,)
    compute_melspecs(data, tmp_path / "mel", FeatureSettings(chunk_seconds=0.5), workers=1)
    result = pack_dataset(tmp_path / "mel", tmp_path / "packed", ["train"], "melspec")[0]
    array, index, _ = open_packed(tmp_path / "packed", "melspec", "train")
    assert result.items == len(index) == array.shape[0] and array.shape[1:] == (128, 16)
    assert (index["chunk"] >= 0).all() and index["chunk"].max() == 1


def test_loading_stale_stats_warns(melspec_folder: tuple[Path, Path], caplog: pytest.LogCaptureFixture) -> None:
    data, features = melspec_folder
    compute_stats(features, "melspec")
    with caplog.at_level("WARNING"):
        Normaliser.from_file(stats_path(features), "global")
    assert "changed since" not in caplog.text
    # A train clip re-downloaded at another segment start changes the train items.
    index = read_index(index_path(features), "melspec")
    manifest = pd.read_csv(data / "manifest.csv")
    manifest.loc[0, "start_seconds"] = 30.5
    manifest.to_csv(data / "manifest.csv", index=False)
    assert index.loc[0, "split"] == "train"
    compute_melspecs(data, features, FeatureSettings(), workers=1)
    with caplog.at_level("WARNING"):
        Normaliser.from_file(stats_path(features), "global")
    assert "changed since these statistics were computed" in caplog.text
