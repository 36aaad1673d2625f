"""The post-processing commands end to end through the real CLI, and their error paths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from post_data import make_dataset, write_clip, write_post_config

from audioset_tools.cli import main
from audioset_tools.config import load_config
from audioset_tools.dataset.manifest import MANIFEST_NAME, read_manifest, write_manifest
from audioset_tools.errors import UserError
from audioset_tools.post.stats import stats_path


def test_clean_convert_spectrogram_stats_pack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = make_dataset(tmp_path / "data")
    write_clip(tmp_path / "data" / manifest["file"][1], np.zeros(16000))
    config = str(write_post_config(tmp_path))
    assert main(["clean", "--config", config]) == 0
    assert len(read_manifest(tmp_path / "data" / MANIFEST_NAME)) == len(manifest) - 1
    assert main(["to-npy", "--config", config, "--set", "postprocess.npy.zscore=true"]) == 0
    assert main(["melspec", "--config", config]) == 0
    assert main(["stats", "--config", config]) == 0
    assert main(["pack", "--config", config]) == 0
    stats = json.loads(stats_path(tmp_path / "mel").read_text())
    assert stats["items"] == 14 and stats["splits"] == ["train"]
    train = np.load(tmp_path / "packed" / "melspec" / "train.npy", mmap_mode="r")
    assert train.shape == (14, 128, 32)
    index = pd.read_csv(tmp_path / "packed" / "melspec" / "train.csv")
    assert list(index["row"]) == list(range(14)) and set(index["split"]) == {"train"}
    assert np.load(tmp_path / "npy" / manifest["file"][0].replace(".wav", ".npy")).std() == pytest.approx(1, abs=1e-4)
    assert main(["stats", "--config", config, "--set", "postprocess.stats.source=npy"]) == 0
    assert json.loads(stats_path(tmp_path / "npy").read_text())["kind"] == "npy"


def test_missing_dataset_is_one_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(write_post_config(tmp_path))
    for command in ("clean", "to-npy", "melspec"):
        assert main([command, "--config", config]) == 2
        err = capsys.readouterr().err
        assert "no dataset manifest" in err and "download_data.py" in err and "Traceback" not in err
    assert main(["stats", "--config", config]) == 2
    assert "Run audioset-tools melspec first" in capsys.readouterr().err
    assert not (tmp_path / "packed").exists()


def test_failed_clip_gives_exit_1(tmp_path: Path) -> None:
    manifest = make_dataset(tmp_path / "data")
    (tmp_path / "data" / manifest["file"][2]).write_bytes(b"junk")
    assert main(["to-npy", "--config", str(write_post_config(tmp_path))]) == 1


def test_class_in_two_splits_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = make_dataset(tmp_path / "data")
    leaked = manifest.copy()
    leaked.loc[0, "split"] = "test"

    write_manifest(tmp_path / "data" / MANIFEST_NAME, leaked)
    assert main(["melspec", "--config", str(write_post_config(tmp_path))]) == 2
    assert "appears in splits test, train" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("  npy:\n    dtype: int16\n    zscore: true\n", "zscore needs dtype float32"),
        ("  melspec:\n    fmax: 9000\n", "fmax <= sample_rate / 2"),
        ("  melspec:\n    chunk_remainder: keep\n", "postprocess.melspec.chunk_remainder"),
        ("  pack:\n    splits: [train, holdout]\n", "postprocess.pack.splits"),
    ],
)
def test_bad_settings_are_rejected_with_the_key(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        load_config(write_post_config(tmp_path, extra))


def test_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    config = load_config(write_post_config(tmp_path))
    assert config.postprocess.features_dir == tmp_path / "mel"
    assert config.postprocess.packed_dir == tmp_path / "packed"
