"""Cleaning catches each bad kind, quarantines (never deletes) and rewrites the manifests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from audioset_tools.manifest import MANIFEST_NAME, read_manifest, write_dataset_manifests
from audioset_tools.layout import QUARANTINE_DIR
from audioset_tools.post.clean import CleanSettings, clean_dataset
from audioset_tools.quarantine import QUARANTINE_LIST
from post_data import make_dataset, write_clip


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


def test_expected_length_and_tolerance(tmp_path: Path) -> None:
    data = tmp_path / "data"
    manifest = make_dataset(data)  # 1 s clips, segments of 1 s
    write_clip(data / manifest["file"][2], 0.1 * np.sin(np.arange(16000 + 480) / 5.0))  # +30 ms
    assert clean_dataset(data, CleanSettings(), workers=1, dry_run=True).total_quarantined == 0
    strict = CleanSettings(length_tolerance=0.0)
    assert clean_dataset(data, strict, workers=1, dry_run=True).quarantined == {"wrong_length": 1}
    ten_seconds = CleanSettings(expected_seconds=10.0)
    assert clean_dataset(data, ten_seconds, workers=1, dry_run=True).total_quarantined == len(manifest)


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
