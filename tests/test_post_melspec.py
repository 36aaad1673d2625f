"""The numpy log-mel against librosa on real-world-like signals, and the dataset conversion."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
from post_data import DEFAULT_CLASSES, make_dataset, write_clip

from audioset_tools.post.derived import index_path, load_item, params_path, read_index
from audioset_tools.post.features import FeatureSettings, compute_melspecs
from audioset_tools.post.melspec import (
    MelParams,
    log_mel,
    log_mel_batch,
    mel_filterbank,
)

SR = 16000


def _speech_like(seconds: float, seed: int) -> np.ndarray:
    """Vowel-like bursts: a glottal pulse train shaped by formant resonances, with pauses and noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    pitch = 110 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / SR
    source = sum(np.sin(k * phase) / k for k in range(1, 30))
    formants = sum(np.sin(2 * np.pi * f * t) for f in (700, 1220, 2600)) * 0.3
    envelope = (np.sin(2 * np.pi * 2.5 * t) > -0.2).astype(float)
    return (0.2 * source * (1 + formants) * envelope + 0.01 * rng.standard_normal(n)).astype(np.float32)


def _signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    t = np.arange(10 * SR) / SR
    chirp = np.sin(2 * np.pi * (100 + 350 * t) * t)
    return {
        "speech": _speech_like(10.0, 1),
        "white_noise": (0.1 * rng.standard_normal(10 * SR)).astype(np.float32),
        "tones": (0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32),
        "chirp_quiet": (1e-3 * chirp).astype(np.float32),
        "short_odd": _speech_like(2.345, 2),
    }


def _librosa(y: np.ndarray, params: MelParams) -> np.ndarray:
    mel = librosa.feature.melspectrogram(
        y=y, sr=params.sample_rate, n_fft=params.n_fft, hop_length=params.hop_length,
        n_mels=params.n_mels, fmin=params.fmin, fmax=params.fmax, power=params.power,
        pad_mode=params.pad_mode,
    )
    return librosa.power_to_db(mel, top_db=params.top_db) if params.to_db else mel


@pytest.mark.parametrize("pad_mode", ["reflect", "constant"])
def test_matches_librosa_on_real_signals(pad_mode: str) -> None:
    params = MelParams(pad_mode=pad_mode)
    signals = _signals()
    ours = log_mel_batch(list(signals.values()), params)
    for (name, y), spec in zip(signals.items(), ours):
        expected = _librosa(y, params)
        assert spec.shape == expected.shape, name
        assert spec.dtype == np.float32
        np.testing.assert_allclose(spec, expected, atol=2e-3, rtol=0, err_msg=name)


def test_ten_seconds_at_16k_is_128_by_313() -> None:
    assert log_mel(_signals()["speech"], MelParams()).shape == (128, 313)


@pytest.mark.parametrize(
    "params",
    [
        MelParams(n_fft=512, hop_length=160, n_mels=64, fmin=50.0, fmax=7000.0),
        MelParams(power=1.0, to_db=False),
        MelParams(top_db=None),
    ],
)
def test_matches_librosa_with_other_parameters(params: MelParams) -> None:
    y = _signals()["speech"][: 3 * SR]
    expected = _librosa(y, params)
    tolerance = 2e-3 if params.to_db else 1e-4 * float(np.abs(expected).max())
    np.testing.assert_allclose(log_mel(y, params), expected, atol=tolerance, rtol=1e-4)


def test_filterbank_equals_librosa() -> None:
    np.testing.assert_allclose(
        mel_filterbank(SR, 1024, 128, 0.0, None), librosa.filters.mel(sr=SR, n_fft=1024, n_mels=128), atol=1e-7
    )


def _short_signals() -> list[np.ndarray]:
    """Clips short enough that several share one block of frames (BLOCK_FRAMES)."""
    return [_speech_like(seconds, seed) for seed, seconds in enumerate((0.3, 1.0, 2.345, 0.07, 4.9), start=10)]


@pytest.mark.parametrize("style", ["librosa", "metaaudio"])
def test_batch_equals_one_at_a_time(style: str) -> None:
    """The same clip gives the same bytes alone or in any batch, at any position."""
    params = MelParams(style=style)
    signals = list(_signals().values()) + _short_signals()
    alone = [log_mel(y, params).tobytes() for y in signals]
    orders = [list(range(len(signals))), list(reversed(range(len(signals)))), [5, 0, 6, 7, 1, 8, 2, 9, 3, 4]]
    for order in orders:
        together = log_mel_batch([signals[i] for i in order], params)
        for i, spec in zip(order, together):
            assert spec.tobytes() == alone[i], f"clip {i} differs in batch order {order}"
    # Each short clip next to copies of other clips, so its frames sit at other block rows.
    for i, y in enumerate(_short_signals()):
        crowd = [signals[6], y, signals[8], signals[6], y]
        specs = log_mel_batch(crowd, params)
        assert specs[1].tobytes() == specs[4].tobytes() == alone[5 + i]


def test_dataset_bytes_do_not_depend_on_batch_size(tmp_path: Path) -> None:
    data = tmp_path / "data"
    manifest = make_dataset(data, seconds=1.3)
    compute_melspecs(data, tmp_path / "one", FeatureSettings(), workers=1, batch_clips=1)
    compute_melspecs(data, tmp_path / "many", FeatureSettings(), workers=2, batch_clips=7)
    for relative in manifest["file"]:
        array = relative[:-4] + ".npy"
        assert (tmp_path / "one" / array).read_bytes() == (tmp_path / "many" / array).read_bytes(), relative


def test_dataset_spectrograms_mirror_tree_and_equal_librosa(tmp_path: Path) -> None:
    data, features = tmp_path / "data", tmp_path / "mel"
    manifest = make_dataset(data, seconds=1.0)
    summary = compute_melspecs(data, features, FeatureSettings(), workers=2, batch_clips=4)
    assert summary.converted == len(manifest) and not summary.failed
    index = read_index(index_path(features), "melspec")
    assert list(index["source"]) == list(manifest["file"])
    assert (index["chunk"] == -1).all() and set(index["shape"]) == {"128x32"}
    for row in index.itertuples():
        assert (features / row.file).is_file() and row.file == row.source[:-4] + ".npy"
        y, _ = sf.read(data / row.source, dtype="float32")
        np.testing.assert_allclose(load_item(features, row.file, row.chunk), _librosa(y, MelParams()), atol=2e-3)
    assert sorted(p.name for p in features.iterdir() if p.is_dir()) == sorted(c.name for c in DEFAULT_CLASSES)


def test_rerun_skips_done_and_settings_change_redoes(tmp_path: Path) -> None:
    data, features = tmp_path / "data", tmp_path / "mel"
    manifest = make_dataset(data)
    compute_melspecs(data, features, FeatureSettings(), workers=1)
    again = compute_melspecs(data, features, FeatureSettings(), workers=1)
    assert (again.converted, again.skipped) == (0, len(manifest))
    # A clip re-written after its spectrogram is redone, and only it.
    touched = data / manifest["file"][0]
    write_clip(touched, np.linspace(-0.5, 0.5, SR))
    third = compute_melspecs(data, features, FeatureSettings(), workers=1)
    assert (third.converted, third.skipped) == (1, len(manifest) - 1)
    changed = FeatureSettings(mel=MelParams(n_mels=40))
    fourth = compute_melspecs(data, features, changed, workers=1)
    assert fourth.converted == len(manifest)
    assert set(read_index(index_path(features), "melspec")["shape"]) == {"40x32"}
    assert '"n_mels": 40' in params_path(features).read_text()


def test_chunking_pads_or_drops_the_remainder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_dataset(data, seconds=2.7)
    padded = compute_melspecs(
        data, tmp_path / "pad", FeatureSettings(chunk_seconds=1.0, chunk_remainder="pad"), workers=1
    )
    dropped = compute_melspecs(
        data, tmp_path / "drop", FeatureSettings(chunk_seconds=1.0, chunk_remainder="drop"), workers=1
    )
    clips = padded.converted
    assert padded.items == 3 * clips and dropped.items == 2 * clips
    index = read_index(index_path(tmp_path / "pad"), "melspec")
    assert set(index["shape"]) == {"128x32"} and sorted(set(index["chunk"])) == [0, 1, 2]
    row = index.iloc[2]
    y, _ = sf.read(data / row.source, dtype="float32")
    last = np.zeros(SR, dtype=np.float32)
    last[: len(y) - 2 * SR] = y[2 * SR :]
    np.testing.assert_allclose(load_item(tmp_path / "pad", row.file, 2), _librosa(last, MelParams()), atol=2e-3)
    first = load_item(tmp_path / "drop", row.file, 0)
    np.testing.assert_allclose(first, _librosa(y[:SR], MelParams()), atol=2e-3)


def test_wrong_sample_rate_is_reported_not_fatal(tmp_path: Path) -> None:
    data = tmp_path / "data"
    manifest = make_dataset(data)
    odd = manifest["file"][1]
    write_clip(data / odd, np.sin(np.arange(22050) / 10.0) * 0.3, sample_rate=22050)
    summary = compute_melspecs(data, tmp_path / "mel", FeatureSettings(), workers=1)
    assert [f for f, _ in summary.failed] == [odd]
    assert "22050 Hz" in summary.failed[0][1]
    assert summary.converted == len(manifest) - 1


def test_stereo_clips_are_mixed_down_and_short_remainders_dropped(tmp_path: Path) -> None:
    data = tmp_path / "data"
    manifest = make_dataset(data, seconds=2.3)
    stereo = np.stack([np.sin(np.arange(int(2.3 * SR)) / 7.0), 0.5 * np.cos(np.arange(int(2.3 * SR)) / 3.0)], axis=1)
    write_clip(data / manifest["file"][0], 0.3 * stereo)
    settings = FeatureSettings(chunk_seconds=1.0, chunk_remainder="pad")
    summary = compute_melspecs(data, tmp_path / "mel", settings, workers=1)
    assert summary.items == 2 * len(manifest)  # 0.3 s is less than half a chunk: dropped
    y, _ = sf.read(data / manifest["file"][0], dtype="float32")
    expected = _librosa(y.mean(axis=1)[:SR], MelParams())
    np.testing.assert_allclose(load_item(tmp_path / "mel", manifest["file"][0][:-4] + ".npy", 0), expected, atol=2e-3)
