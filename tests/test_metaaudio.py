"""MetaAudio drop-in: class-only derived roots, no arrays of quarantined clips, statistics
in MetaAudio's own file format, and ``postprocess.melspec.style: metaaudio`` features.

The checks do what MetaAudio's loaders do: list the root of a features folder to find
classes, walk it for ``.npy`` files, load ``[mean, std]`` with ``np.load``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
from post_data import DEFAULT_CLASSES, make_dataset, write_clip, write_post_config

from audioset_tools.cli import main
from audioset_tools.dataset.manifest import MANIFEST_NAME, read_manifest
from audioset_tools.post.derived import index_path, meta_folder, read_index
from audioset_tools.post.features import FeatureSettings, compute_melspecs
from audioset_tools.post.melspec import MelParams, log_mel
from audioset_tools.post.stats import stats_path

SR = 16000
SPLIT_TAIL = "AudioSet_spec_fixed__0.7_0.1_0.2.npy"


def _metaaudio_reference(y: np.ndarray) -> np.ndarray:
    """MetaAudio's recipe, written out with librosa: z-normalise the waveform (float32,
    as its numpy code does), mel power spectrogram (librosa < 0.10's reflect padding),
    then 20 / power * log10(mel + machine epsilon), nothing clipped."""
    y = y.astype(np.float32)
    y = (y - np.mean(y)) / np.std(y)
    mel = librosa.feature.melspectrogram(
        y=y, sr=SR, n_fft=1024, hop_length=512, n_mels=128, power=2.0, pad_mode="reflect"
    )
    return 20.0 / 2.0 * np.log10(mel + sys.float_info.epsilon)


def _root_entries(folder: Path) -> list[Path]:
    return sorted(folder.iterdir())


def test_derived_roots_hold_class_folders_only_and_quarantine_leaves_no_array(tmp_path: Path) -> None:
    manifest = make_dataset(tmp_path / "data")
    config = str(write_post_config(tmp_path))
    assert main(["to-npy", "--config", config]) == 0
    assert main(["melspec", "--config", config]) == 0
    classes = {spec.name for spec in DEFAULT_CLASSES}
    for folder in (tmp_path / "npy", tmp_path / "mel"):
        # What MetaAudio's class_split does: every entry of the root is a class.
        assert {p.name for p in _root_entries(folder)} == classes
        assert all(p.is_dir() for p in _root_entries(folder))
        assert index_path(folder).is_file() and index_path(folder).parent == meta_folder(folder)
        assert meta_folder(folder).parent == folder.parent

    bad = manifest["file"][2]
    write_clip(tmp_path / "data" / bad, np.zeros(SR))
    assert main(["clean", "--config", config]) == 0
    assert bad not in set(read_manifest(tmp_path / "data" / MANIFEST_NAME)["file"])
    array = bad[:-4] + ".npy"
    for folder in (tmp_path / "npy", tmp_path / "mel"):
        # Gone at once, before any rerun of the conversion, and from the index too.
        assert not (folder / array).exists()
        assert array not in set(read_index(index_path(folder), "x")["file"])
        walked = {str(Path(root, f).relative_to(folder)) for root, _, files in os.walk(folder) for f in files}
        assert walked == set(read_index(index_path(folder), "x")["file"])


def test_a_rerun_removes_arrays_of_clips_no_longer_listed(tmp_path: Path) -> None:
    manifest = make_dataset(tmp_path / "data")
    config = str(write_post_config(tmp_path))
    assert main(["melspec", "--config", config]) == 0
    stray = tmp_path / "mel" / manifest["file"][0].replace(".wav", ".npy")
    orphan = stray.with_name("zzzzzzzzzzz_0.npy")
    orphan.write_bytes(stray.read_bytes())
    empty_class = tmp_path / "mel" / "Gone"
    empty_class.mkdir()
    (empty_class / "aaaaaaaaaaa_0.npy").write_bytes(stray.read_bytes())
    assert main(["melspec", "--config", config]) == 0
    assert stray.is_file() and not orphan.exists() and not empty_class.exists()


def test_legacy_files_at_the_root_move_to_the_meta_folder(tmp_path: Path) -> None:
    make_dataset(tmp_path / "data")
    config = str(write_post_config(tmp_path))
    assert main(["melspec", "--config", config]) == 0
    mel = tmp_path / "mel"
    os.replace(index_path(mel), mel / "index.csv")
    os.replace(meta_folder(mel) / "params.json", mel / "params.json")
    assert main(["melspec", "--config", config]) == 0
    assert all(p.is_dir() for p in mel.iterdir())
    assert index_path(mel).is_file() and (meta_folder(mel) / "params.json").is_file()
    # stats and pack find a legacy index too.
    os.replace(index_path(mel), mel / "index.csv")
    assert main(["stats", "--config", config]) == 0
    assert all(p.is_dir() for p in mel.iterdir()) and stats_path(mel).is_file()


def test_stats_in_metaaudio_format_equal_numpy_over_the_train_split(tmp_path: Path) -> None:
    manifest = make_dataset(tmp_path / "data")
    config = str(write_post_config(tmp_path))
    assert main(["melspec", "--config", config]) == 0
    assert main(["stats", "--config", config]) == 0
    norm_stats = meta_folder(tmp_path / "mel") / "norm_stats"
    assert sorted(p.name for p in norm_stats.iterdir()) == [f"channel_{SPLIT_TAIL}", f"global_{SPLIT_TAIL}"]
    # MetaAudio's loader: mu, sigma = np.load(stats_file, allow_pickle=True)
    global_stats = np.load(norm_stats / f"global_{SPLIT_TAIL}", allow_pickle=True)
    channel_stats = np.load(norm_stats / f"channel_{SPLIT_TAIL}", allow_pickle=True)
    assert global_stats.dtype == np.float32 and global_stats.shape == (2, 1, 1)
    assert channel_stats.dtype == np.float32 and channel_stats.shape == (2, 128, 1)

    train_files = manifest.loc[manifest["split"] == "train", "file"]
    train = np.stack([np.load(tmp_path / "mel" / f.replace(".wav", ".npy")).astype(np.float64) for f in train_files])
    assert train.shape == (15, 128, 32)
    np.testing.assert_allclose(global_stats[:, 0, 0], [train.mean(), train.std()], rtol=1e-6)
    np.testing.assert_allclose(channel_stats[0, :, 0], train.mean(axis=(0, 2)), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(channel_stats[1, :, 0], train.std(axis=(0, 2)), rtol=1e-6, atol=1e-6)
    # Val and test arrays are not in them: including them changes the numbers.
    everything = np.stack([np.load(tmp_path / "mel" / f.replace(".wav", ".npy")) for f in manifest["file"]])
    assert abs(float(everything.mean()) - float(global_stats[0, 0, 0])) > 1e-3
    # Our loaders keep their own stats.json beside them.
    assert stats_path(tmp_path / "mel").parent == meta_folder(tmp_path / "mel")


def test_stats_names_carry_the_configured_split_proportions(tmp_path: Path) -> None:
    make_dataset(tmp_path / "data")
    config = str(write_post_config(tmp_path, "splits:\n  train: 0.6\n  val: 0.2\n  test: 0.2\n"))
    assert main(["to-npy", "--config", config]) == 0
    assert main(["stats", "--config", config, "--set", "postprocess.stats.source=npy"]) == 0
    raw = meta_folder(tmp_path / "npy") / "norm_stats" / "global_AudioSet_raw_fixed__0.6_0.2_0.2.npy"
    assert np.load(raw).shape == (2, 1) and np.load(raw).dtype == np.float32


def test_metaaudio_style_reproduces_its_recipe(tmp_path: Path) -> None:
    data = tmp_path / "data"
    manifest = make_dataset(data, seconds=10.0, classes=DEFAULT_CLASSES[:2])
    settings = FeatureSettings(MelParams(style="metaaudio", top_db=None))
    summary = compute_melspecs(data, tmp_path / "mel", settings, workers=1)
    assert summary.converted == len(manifest) and not summary.failed
    for relative in manifest["file"]:
        y, _ = sf.read(data / relative, dtype="float32")
        expected = _metaaudio_reference(y)
        ours = np.load(tmp_path / "mel" / relative.replace(".wav", ".npy"))
        assert ours.shape == expected.shape == (128, 313) and ours.dtype == np.float32
        np.testing.assert_allclose(ours, expected, atol=2e-3, rtol=0)


def test_metaaudio_style_clips_nothing() -> None:
    t = np.arange(2 * SR) / SR
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    metaaudio = log_mel(tone, MelParams(style="metaaudio", top_db=None))
    assert float(metaaudio.max() - metaaudio.min()) > 100
    librosa_style = log_mel(tone, MelParams())
    assert float(librosa_style.max() - librosa_style.min()) <= 80 + 1e-4


def test_metaaudio_style_reports_a_constant_clip(tmp_path: Path) -> None:
    data = tmp_path / "data"
    manifest = make_dataset(data, classes=DEFAULT_CLASSES[:1])
    write_clip(data / manifest["file"][0], np.zeros(SR))
    summary = compute_melspecs(data, tmp_path / "mel", FeatureSettings(MelParams(style="metaaudio")), workers=1)
    assert [file for file, _ in summary.failed] == [manifest["file"][0]]
    assert "standard deviation 0" in summary.failed[0][1]


def test_config_style_metaaudio(tmp_path: Path) -> None:
    from audioset_tools.config import load_config
    from audioset_tools.errors import UserError
    from audioset_tools.post.settings import feature_settings

    config = load_config(write_post_config(tmp_path), ["postprocess.melspec.style=metaaudio"])
    assert feature_settings(config).mel.style == "metaaudio" and feature_settings(config).mel.top_db is None
    with pytest.raises(UserError, match="to_db"):
        load_config(write_post_config(tmp_path), ["postprocess.melspec.style=metaaudio", "postprocess.melspec.to_db=false"])


def test_a_metaaudio_style_reader_finds_every_class_and_normalises(tmp_path: Path) -> None:
    """select -> (clips in the folders it names) -> melspec style metaaudio -> stats, then read
    the result the way MetaAudio does: list the data root for classes, keep the folders its
    split file names, look the statistics file up by its naming rule, normalise."""
    import shutil

    import pandas as pd
    from post_data import ClassSpec

    from audioset_tools.config import load_config
    from audioset_tools.select.step import run_select

    fixtures = Path(__file__).parent / "fixtures" / "metadata"
    shutil.copytree(fixtures, tmp_path / "metadata")
    config_text = (
        "paths:\n  metadata_dir: metadata\n  meta_dir: meta\n  output_dir: data\n"
        "selection:\n  label_policy: any\n"
        "postprocess:\n  workers: 1\n  npy_dir: npy\n  features_dir: mel\n  packed_dir: packed\n"
        "  melspec:\n    style: metaaudio\n"
    )
    (tmp_path / "control.yaml").write_text(config_text)
    run_select(load_config(tmp_path / "control.yaml"))
    splits = pd.read_csv(tmp_path / "meta" / "splits.csv", keep_default_na=False)
    specs = tuple(ClassSpec(int(r.class_index), r.folder, r.split, 3) for r in splits.itertuples())
    make_dataset(tmp_path / "data", specs, seconds=10.0)  # clips in the folders select named
    config = str(tmp_path / "control.yaml")
    assert main(["melspec", "--config", config]) == 0
    assert main(["stats", "--config", config]) == 0

    data_path = tmp_path / "mel"
    train, val, test = np.load(tmp_path / "meta" / "splits.npy", allow_pickle=True)
    on_disk = sorted(os.listdir(data_path))  # MetaAudio: every entry of the root is a class
    assert on_disk == sorted([*train, *val, *test])
    found: dict[str, list[str]] = {}
    for root, _, files in os.walk(data_path):
        class_name = Path(root).name
        if class_name in train:
            found[class_name] = [f for f in files if f.endswith(".npy")]
    assert sorted(found) == sorted(train) and all(len(files) == 3 for files in found.values())

    proportions = "_".join(str(p) for p in (0.7, 0.1, 0.2))
    for norm, shape in (("global", (2, 1, 1)), ("channel", (2, 128, 1))):
        name = f"{norm}_AudioSet_spec_fixed__{proportions}.npy"
        mu, sigma = np.load(meta_folder(data_path) / "norm_stats" / name, allow_pickle=True)
        assert (2, *mu.shape) == shape
        sample = np.load(data_path / train[0] / found[train[0]][0])
        assert sample.shape == (128, 313)
        normalised = (sample - mu) / sigma
        assert normalised.shape == (128, 313) and np.isfinite(normalised).all()


def test_clean_with_a_corrupt_derived_index_still_quarantines(tmp_path: Path, caplog) -> None:
    manifest = make_dataset(tmp_path / "data", classes=DEFAULT_CLASSES[:2])
    config = str(write_post_config(tmp_path))
    assert main(["melspec", "--config", config]) == 0
    index_path(tmp_path / "mel").write_text("not,an,index\n")
    write_clip(tmp_path / "data" / manifest["file"][0], np.zeros(SR))
    assert main(["clean", "--config", config]) == 0
    assert manifest["file"][0] not in set(read_manifest(tmp_path / "data" / MANIFEST_NAME)["file"])
    assert "rerun to-npy or melspec" in caplog.text
