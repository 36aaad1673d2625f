"""Cleaning catches each bad kind, quarantines (never deletes) and rewrites the manifests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from media import FFMPEG
from post_data import make_dataset, write_clip

from audioset_tools.dataset.layout import QUARANTINE_DIR
from audioset_tools.dataset.manifest import (
    MANIFEST_NAME,
    read_manifest,
    write_dataset_manifests,
)
from audioset_tools.dataset.quarantine import QUARANTINE_LIST
from audioset_tools.post.clean import CleanSettings, clean_dataset


def _spoil(data: Path, manifest: pd.DataFrame) -> dict[str, str]:
    """One clip of each bad kind; returns file -> expected reason."""
    files = list(manifest["file"])
    bad = {files[0]: "silent", files[5]: "non_finite", files[9]: "wrong_length", files[12]: "unreadable",
           files[14]: "silent"}
    write_clip(data / files[0], np.zeros(16000))
    nan = np.full(16000, 0.1, dtype=np.float32)
    nan[100] = np.nan
    write_clip(data / files[5], nan, subtype="FLOAT")
    write_clip(data / files[9], 0.1 * np.sin(np.arange(12000) / 5.0))
    (data / files[12]).write_bytes(b"garbage")
    write_clip(data / files[14], np.full(16000, 0.25))  # constant DC: zero variance too
    return bad


def test_each_bad_kind_is_caught_and_quarantined(tmp_path: Path) -> None:
    data = tmp_path / "data"
    manifest = make_dataset(data)
    bad = _spoil(data, manifest)
    summary = clean_dataset(data, CleanSettings(), workers=2, batch_clips=4)
    assert summary.checked == len(manifest)
    assert summary.quarantined == {"silent": 2, "non_finite": 1, "wrong_length": 1, "unreadable": 1}
    listed = pd.read_csv(data / QUARANTINE_DIR / QUARANTINE_LIST, dtype=str)
    assert dict(zip(listed["file"], listed["reason"])) == bad
    for relative, target in zip(listed["file"], listed["quarantine_file"]):
        assert not (data / relative).exists()
        assert (data / target).is_file() and target == f"{QUARANTINE_DIR}/{relative}"
    kept = read_manifest(data / MANIFEST_NAME)
    assert set(kept["file"]) == set(manifest["file"]) - set(bad)
    per_class = read_manifest(data / manifest["file"][0].split("/")[0] / MANIFEST_NAME)
    assert set(per_class["file"]).isdisjoint(bad)
    again = clean_dataset(data, CleanSettings(), workers=1)
    assert again.total_quarantined == 0 and again.checked == len(kept)


def test_inf_is_non_finite(tmp_path: Path) -> None:
    data = tmp_path / "data"
    manifest = make_dataset(data)
    inf = np.full(16000, 0.1, dtype=np.float32)
    inf[-1] = np.inf
    write_clip(data / manifest["file"][1], inf, subtype="FLOAT")
    assert clean_dataset(data, CleanSettings(), workers=1).quarantined == {"non_finite": 1}


def test_dry_run_moves_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    manifest = make_dataset(data)
    _spoil(data, manifest)
    before = (data / MANIFEST_NAME).read_bytes()
    summary = clean_dataset(data, CleanSettings(), workers=1, dry_run=True)
    assert summary.total_quarantined == 5
    assert (data / MANIFEST_NAME).read_bytes() == before and not (data / QUARANTINE_DIR).exists()


@pytest.mark.parametrize("change", [-1, 1, 480])
def test_length_is_checked_exactly_in_samples(tmp_path: Path, change: int) -> None:
    data = tmp_path / "data"
    manifest = make_dataset(data)  # 1 s clips, segments of 1 s: exactly 16,000 samples each
    assert clean_dataset(data, CleanSettings(), workers=1, dry_run=True).total_quarantined == 0
    write_clip(data / manifest["file"][2], 0.1 * np.sin(np.arange(16000 + change) / 5.0))
    summary = clean_dataset(data, CleanSettings(), workers=1)
    assert summary.quarantined == {"wrong_length": 1}
    listed = pd.read_csv(data / QUARANTINE_DIR / QUARANTINE_LIST, dtype=str)
    assert f"{16000 + change} samples instead of exactly 16000" in listed["detail"][0]
    ten_seconds = CleanSettings(expected_seconds=10.0)
    assert clean_dataset(data, ten_seconds, workers=1, dry_run=True).total_quarantined == len(manifest) - 1


def test_expected_seconds_is_exact_too(tmp_path: Path) -> None:
    data = tmp_path / "data"
    manifest = make_dataset(data, seconds=2.0)
    write_clip(data / manifest["file"][0], 0.1 * np.sin(np.arange(32000 - 1) / 5.0))
    two_seconds = CleanSettings(expected_seconds=2.0)
    assert clean_dataset(data, two_seconds, workers=1, dry_run=True).quarantined == {"wrong_length": 1}


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "all_nan"])
def test_clip_ffmpeg_made_from_nan_or_inf_is_quarantined(tmp_path: Path, bad: str) -> None:
    # A clip an older version saved from a broken source: the real ffmpeg turned its NaN/inf
    # samples into 16-bit negative full scale, which decodes as ordinary numbers.
    data = tmp_path / "data"
    manifest = make_dataset(data)
    rate = 48000
    source = (0.5 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.float32)
    if bad == "all_nan":
        source[:] = np.nan
    else:
        source[rate // 2] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}[bad]
    write_clip(tmp_path / "broken.wav", source, rate, subtype="FLOAT")
    victim = data / manifest["file"][3]
    subprocess.run(
        [FFMPEG, "-loglevel", "error", "-y", "-i", str(tmp_path / "broken.wav"), "-ar", "16000", "-ac", "1",
         "-c:a", "pcm_s16le", str(victim)],
        check=True,
    )
    samples, _ = sf.read(str(victim), dtype="int16")
    assert np.isfinite(samples).all() and (samples == -32768).any()  # nothing says NaN any more
    summary = clean_dataset(data, CleanSettings(), workers=1)
    assert summary.quarantined == {"non_finite": 1}
    assert (data / QUARANTINE_DIR / manifest["file"][3]).is_file()


def test_loud_clipped_audio_is_not_mistaken_for_a_nan_trace(tmp_path: Path) -> None:
    data = tmp_path / "data"
    manifest = make_dataset(data)
    t = np.arange(16000) / 16000
    write_clip(data / manifest["file"][1], np.clip(3 * np.sin(2 * np.pi * 50 * t), -1, 1))
    write_clip(data / manifest["file"][2], np.clip(3 * np.sin(2 * np.pi * 50 * t) + 0.5, -1, 1))
    assert clean_dataset(data, CleanSettings(), workers=1, dry_run=True).total_quarantined == 0


def test_silence_threshold(tmp_path: Path) -> None:
    data = tmp_path / "data"
    manifest = make_dataset(data)
    hiss = np.random.default_rng(0).standard_normal(16000) * 1e-4
    write_clip(data / manifest["file"][4], hiss)
    assert clean_dataset(data, CleanSettings(), workers=1, dry_run=True).total_quarantined == 0
    loud_enough = CleanSettings(silence_std=1e-3)
    assert clean_dataset(data, loud_enough, workers=1, dry_run=True).quarantined == {"silent": 1}


def test_interrupted_clean_is_finished_by_a_rerun(tmp_path: Path) -> None:
    data = tmp_path / "data"
    manifest = make_dataset(data)
    victim = manifest["file"][3]
    write_clip(data / victim, np.zeros(16000))
    clean_dataset(data, CleanSettings(), workers=1)
    # Simulate a crash after the move but before the manifests were rewritten.
    write_dataset_manifests(data, manifest)
    summary = clean_dataset(data, CleanSettings(), workers=1)
    assert summary.recovered == 1 and summary.total_quarantined == 0
    assert victim not in set(read_manifest(data / MANIFEST_NAME)["file"])
    assert len(pd.read_csv(data / QUARANTINE_DIR / QUARANTINE_LIST)) == 1


def test_a_clip_quarantined_twice_keeps_both_copies(tmp_path: Path) -> None:
    data = tmp_path / "data"
    manifest = make_dataset(data)
    victim = manifest["file"][3]
    write_clip(data / victim, np.zeros(16000))
    clean_dataset(data, CleanSettings(), workers=1)
    write_clip(data / victim, np.zeros(16000))  # re-downloaded, still bad
    write_dataset_manifests(data, manifest)
    clean_dataset(data, CleanSettings(), workers=1)
    listed = pd.read_csv(data / QUARANTINE_DIR / QUARANTINE_LIST, dtype=str)
    assert list(listed["file"]) == [victim, victim]
    assert all((data / target).is_file() for target in listed["quarantine_file"])
    assert len(set(listed["quarantine_file"])) == 2


def test_interrupted_before_the_move_is_rechecked_and_deleted_copies_stay_listed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    manifest = make_dataset(data)
    first, second = manifest["file"][3], manifest["file"][7]
    write_clip(data / first, np.zeros(16000))
    clean_dataset(data, CleanSettings(), workers=1)
    (data / QUARANTINE_DIR / first).unlink()  # the user reclaims the space
    # A run that listed `second` and then died before moving it (the clip has since been fixed).
    listed = pd.read_csv(data / QUARANTINE_DIR / QUARANTINE_LIST, dtype=str, keep_default_na=False)
    ghost = listed.iloc[[0]].assign(file=second, quarantine_file=f"{QUARANTINE_DIR}/{second}")
    pd.concat([listed, ghost]).to_csv(data / QUARANTINE_DIR / QUARANTINE_LIST, index=False)
    summary = clean_dataset(data, CleanSettings(), workers=1)
    assert summary.total_quarantined == 0
    after = pd.read_csv(data / QUARANTINE_DIR / QUARANTINE_LIST, dtype=str)
    assert list(after["file"]) == [first]
    assert second in set(read_manifest(data / MANIFEST_NAME)["file"])
