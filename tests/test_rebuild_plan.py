"""Manifest -> download plans: faithful for a good manifest, refused (nothing fetched) for a bad one."""

from __future__ import annotations

import pandas as pd
import pytest
from dataset_factory import make_dataset

from audioset_tools.dataset.manifest import MANIFEST_NAME, read_manifest
from audioset_tools.download.rebuild import (
    AudioSettings,
    manifest_audio_settings,
    plans_from_manifest,
)
from audioset_tools.errors import UserError


@pytest.fixture
def manifest(tmp_path) -> pd.DataFrame:
    root = tmp_path / "data"
    make_dataset(root, clips_per_class=3)
    return read_manifest(root / MANIFEST_NAME)


def test_plans_reproduce_every_row_in_order(manifest):
    plans = plans_from_manifest(manifest)
    assert [p.class_index for p in plans] == [0, 1, 2]
    assert [p.folder for p in plans] == ["Male_speech_man_speaking", "Child_speech_kid_speaking", "Meow"]
    assert [p.split for p in plans] == ["train", "val", "test"]
    assert all(p.target == len(p.candidates) == 3 for p in plans)
    rows = [
        (c.file, c.ytid, c.start_seconds, c.end_seconds, c.labels, p.mid, p.class_name)
        for p in plans for c in p.candidates
    ]
    expected = list(
        manifest[["file", "ytid", "start_seconds", "end_seconds", "labels", "mid", "class_name"]]
        .itertuples(index=False, name=None)
    )
    assert rows == expected
    assert [c.rank for c in plans[0].candidates] == [0, 1, 2]


def test_audio_settings_come_from_the_manifest(manifest):
    assert manifest_audio_settings(manifest) == AudioSettings("wav", 16000, 1)
    assert AudioSettings("flac", 44100, 2).describe() == "flac, 44100 Hz, stereo"


def test_mixed_audio_settings_are_refused(manifest):
    manifest.loc[1, "sample_rate"] = 22050
    with pytest.raises(UserError, match=r"different audio settings \(wav 16000 Hz 1 ch: 8 row\(s\); wav 22050 Hz"):
        plans_from_manifest(manifest, "m.csv")


def test_empty_manifest_is_refused(manifest):
    with pytest.raises(UserError, match="no clips"):
        plans_from_manifest(manifest.iloc[0:0])


def test_file_name_must_match_ytid_and_start(manifest):
    manifest.loc[4, "start_seconds"] = 12.5
    manifest.loc[4, "end_seconds"] = 14.5
    with pytest.raises(UserError) as caught:
        plans_from_manifest(manifest, "m.csv")
    message = caught.value.message
    assert "m.csv:6: file name" in message and "expected 'vid01clip01_12500.wav'" in message


def test_class_spread_over_folders_or_sharing_one_is_refused(manifest):
    spread = manifest.copy()
    spread.loc[0, "file"] = "Elsewhere/" + spread.loc[0, "file"].split("/")[1]
    with pytest.raises(UserError, match="class 0 is spread over several folders"):
        plans_from_manifest(spread)
    shared = manifest.copy()
    shared.loc[shared["class_index"] == 1, "file"] = shared.loc[shared["class_index"] == 1, "file"].str.replace(
        "Child_speech_kid_speaking", "Male_speech_man_speaking"
    )
    with pytest.raises(UserError, match="class 1 shares the folder 'Male_speech_man_speaking' with class 0"):
        plans_from_manifest(shared)


def test_inconsistent_class_metadata_is_refused(manifest):
    manifest.loc[2, "split"] = "test"
    with pytest.raises(UserError, match="class 0 has several values of split"):
        plans_from_manifest(manifest)


def test_hidden_folder_is_refused(manifest):
    manifest.loc[manifest["class_index"] == 2, "file"] = manifest.loc[
        manifest["class_index"] == 2, "file"
    ].str.replace("Meow/", ".Meow/")
    with pytest.raises(UserError, match="unsafe class folder name '.Meow'"):
        plans_from_manifest(manifest)
