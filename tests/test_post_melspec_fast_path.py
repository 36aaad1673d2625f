"""The shortcuts of the fast log-mel path against the plain computation: the banded mel
projection, odd FFT sizes, empty filters, and block-at-a-time conversion of a dataset."""

from __future__ import annotations

import warnings
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
from post_data import make_dataset, write_clip

from audioset_tools.post.derived import index_path, load_item, read_index
from audioset_tools.post.features import FeatureSettings, compute_melspecs
from audioset_tools.post.melspec import (
    BLOCK_FRAMES,
    MelParams,
    _bands,
    _project,
    log_mel,
    mel_filterbank,
)

SR = 16000

SHAPES = [
    MelParams(),
    MelParams(n_fft=512, hop_length=160, n_mels=64, fmin=50.0, fmax=7000.0),
    MelParams(n_fft=255, hop_length=100, n_mels=40),  # odd FFT size
    MelParams(n_fft=1023, hop_length=512),
    MelParams(n_fft=256, hop_length=128, n_mels=128),  # more bands than bins: empty filters
    MelParams(n_mels=1),
]


def _noise(samples: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(samples) * np.linspace(0.2, 1.0, samples)).astype(np.float32)


@pytest.mark.parametrize("params", SHAPES, ids=lambda p: f"fft{p.n_fft}-mels{p.n_mels}")
def test_banded_projection_equals_dense_product(params: MelParams) -> None:
    basis = mel_filterbank(params.sample_rate, params.n_fft, params.n_mels, params.fmin, params.fmax)
    power = np.random.default_rng(3).random((300, basis.shape[1]), dtype=np.float32) ** 4
    out = np.full((300, params.n_mels), np.nan, dtype=np.float32)
    _project(power, params, out)
    np.testing.assert_allclose(out, power @ basis.T, rtol=1e-5, atol=1e-9)
    bands = _bands(params.sample_rate, params.n_fft, params.n_mels, params.fmin, params.fmax)
    # Every filter in exactly one band, in order; nonzero weights only inside its bins.
    assert [b.first for b in bands][0] == 0 and bands[-1].stop == params.n_mels
    assert all(a.stop == b.first for a, b in zip(bands, bands[1:]))
    for band in bands:
        outside = np.delete(basis[band.first : band.stop], np.s_[band.low : band.high], axis=1)
        assert not outside.any()


def test_default_filterbank_is_cut_into_a_few_narrow_bands() -> None:
    bands = _bands(SR, 1024, 128, 0.0, None)
    assert 2 <= len(bands) <= 32
    # The point of the bands: far less arithmetic than the dense [128, 513] product.
    assert sum((b.high - b.low) * (b.stop - b.first) for b in bands) < 0.25 * 128 * 513


@pytest.mark.parametrize("params", SHAPES[2:], ids=lambda p: f"fft{p.n_fft}-mels{p.n_mels}")
def test_unusual_shapes_match_librosa(params: MelParams) -> None:
    y = _noise(12345)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # librosa warns about empty filters
        mel = librosa.feature.melspectrogram(
            y=y, sr=SR, n_fft=params.n_fft, hop_length=params.hop_length, n_mels=params.n_mels,
            fmin=params.fmin, fmax=params.fmax, pad_mode=params.pad_mode,
        )
    expected = librosa.power_to_db(mel, top_db=params.top_db)
    ours = log_mel(y, params)
    assert ours.shape == expected.shape == (params.n_mels, params.n_frames(y.size))
    np.testing.assert_allclose(ours, expected, atol=2e-3, rtol=0)


# librosa, the reference here, warns that the frame is longer than the signal: that is the case under test.
@pytest.mark.filterwarnings("ignore:n_fft=.*is too large for input signal:UserWarning")
def test_constant_padding_of_a_signal_shorter_than_half_a_frame() -> None:
    y = _noise(300)
    params = MelParams(pad_mode="constant")
    mel = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=1024, hop_length=512, n_mels=128, pad_mode="constant")
    np.testing.assert_allclose(log_mel(y, params), librosa.power_to_db(mel), atol=2e-3, rtol=0)


def test_clips_of_mixed_lengths_and_failures_are_converted_block_by_block(tmp_path: Path) -> None:
    data = tmp_path / "data"
    manifest = make_dataset(data, seconds=1.0)
    # Lengths that straddle block boundaries (a 10 s clip alone is 313 frames), and an
    # unreadable clip in the middle of a batch: every other clip is still right.
    seconds = [0.5, 10.0, 3.3, 17.0, 0.2, 6.0, 1.0]
    for relative, length in zip(manifest["file"], seconds * 10):
        write_clip(data / relative, _noise(int(length * SR), seed=len(relative) + int(10 * length)))
    broken = manifest["file"][3]
    (data / broken).write_bytes(b"RIFF not really a wave file")
    summary = compute_melspecs(data, tmp_path / "mel", FeatureSettings(), workers=1, batch_clips=len(manifest))
    assert [f for f, _ in summary.failed] == [broken]
    assert summary.converted == len(manifest) - 1
    assert max(seconds) * SR / 512 > BLOCK_FRAMES  # one clip alone fills more than a block
    index = read_index(index_path(tmp_path / "mel"), "melspec")
    for row in index.itertuples():
        y, _ = sf.read(data / row.source, dtype="float32")
        np.testing.assert_allclose(load_item(tmp_path / "mel", row.file, row.chunk), log_mel(y, MelParams()), atol=1e-4)
