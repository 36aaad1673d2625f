"""wav -> npy: values, dtypes, z-normalisation, mirrored tree, resumability."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from post_data import make_dataset, write_clip

from audioset_tools.post.derived import index_path, read_index
from audioset_tools.post.npy import NpySettings, convert_to_npy


def test_float32_arrays_equal_the_decoded_wav(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "npy"
    manifest = make_dataset(data)
    summary = convert_to_npy(data, out, NpySettings(), workers=2, batch_clips=3)
    assert summary.converted == len(manifest) and not summary.failed
    for relative in manifest["file"]:
        array = np.load(out / relative.replace(".wav", ".npy"))
        expected, _ = sf.read(data / relative, dtype="float32")
        assert array.dtype == np.float32 and array.shape == (16000,)
        np.testing.assert_array_equal(array, expected)
    index = read_index(index_path(out), "to-npy")
    assert list(index["split"]) == list(manifest["split"]) and set(index["shape"]) == {"16000"}


def test_int16_keeps_the_pcm_values(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "npy"
    manifest = make_dataset(data)
    convert_to_npy(data, out, NpySettings(dtype="int16"), workers=1)
    relative = manifest["file"][3]
    array = np.load(out / relative.replace(".wav", ".npy"))
    assert array.dtype == np.int16
    np.testing.assert_array_equal(array, sf.read(data / relative, dtype="int16")[0])


def test_zscore_gives_zero_mean_unit_std_per_clip(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "npy"
    manifest = make_dataset(data)
    convert_to_npy(data, out, NpySettings(zscore=True), workers=1)
    for relative in manifest["file"]:
        array = np.load(out / relative.replace(".wav", ".npy")).astype(np.float64)
        assert abs(array.mean()) < 1e-5 and abs(array.std() - 1) < 1e-4


def test_zscore_refuses_int16() -> None:
    with pytest.raises(ValueError):
        NpySettings(dtype="int16", zscore=True)


def test_rerun_skips_and_a_changed_setting_redoes(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "npy"
    manifest = make_dataset(data)
    convert_to_npy(data, out, NpySettings(), workers=1)
    assert convert_to_npy(data, out, NpySettings(), workers=1).skipped == len(manifest)
    redo = convert_to_npy(data, out, NpySettings(dtype="int16"), workers=1)
    assert redo.converted == len(manifest)
    assert np.load(out / manifest["file"][0].replace(".wav", ".npy")).dtype == np.int16


def test_unreadable_clip_is_reported_and_left_out_of_the_index(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "npy"
    manifest = make_dataset(data)
    broken = manifest["file"][2]
    (data / broken).write_bytes(b"RIFF not really a wav")
    summary = convert_to_npy(data, out, NpySettings(), workers=1)
    assert [f for f, _ in summary.failed] == [broken]
    assert broken not in set(read_index(index_path(out), "to-npy")["source"])


def test_stereo_clip_becomes_channels_first(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "npy"
    manifest = make_dataset(data)
    stereo = 0.2 * np.stack([np.sin(np.arange(16000) / 5.0), np.cos(np.arange(16000) / 9.0)], axis=1)
    write_clip(data / manifest["file"][0], stereo)
    convert_to_npy(data, out, NpySettings(), workers=1)
    array = np.load(out / manifest["file"][0].replace(".wav", ".npy"))
    assert array.shape == (2, 16000)
    np.testing.assert_array_equal(array, sf.read(data / manifest["file"][0], dtype="float32")[0].T)
