"""The manifest format: validation on read, deterministic atomic writes, containment."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from audioset_tools.dataset.manifest import (
    HF_METADATA_NAME,
    MANIFEST_COLUMNS,
    MANIFEST_NAME,
    check_relative_file,
    dataset_path,
    manifest_csv_text,
    read_manifest,
    write_dataset_manifests,
    write_manifest,
)
from audioset_tools.errors import UserError


def _row(class_index: int, folder: str, ytid: str, start: float = 30.0, split: str = "train") -> dict:
    return {
        "class_index": class_index,
        "mid": f"/m/{class_index:04d}",
        "class_name": folder.replace("_", " "),
        "split": split,
        "ytid": ytid,
        "start_seconds": start,
        "end_seconds": start + 10.0,
        "file": f"{folder}/{ytid}_{int(start * 1000)}.wav",
        "sample_rate": 16000,
        "channels": 1,
        "duration": 10.0,
        "sha256": hashlib.sha256(ytid.encode()).hexdigest(),
        "labels": f"/m/{class_index:04d},/m/09x0r",
    }


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        [
            _row(1, "Dog", "bbbbbbbbbbb", split="test"),
            _row(0, "Cat", "aaaaaaaaaaa"),
            _row(0, "Cat", "a-_aaaaaaa1", start=0.5),
            _row(1, "Dog", "ccccccccccc", split="test"),
        ]
    )


def test_round_trip_keeps_values_and_class_order(tmp_path: Path, frame: pd.DataFrame) -> None:
    write_dataset_manifests(tmp_path, frame)
    back = read_manifest(tmp_path / MANIFEST_NAME)
    assert list(back.columns) == list(MANIFEST_COLUMNS)
    # Sorted by class, each class keeping the caller's (rank) order.
    assert list(back["ytid"]) == ["aaaaaaaaaaa", "a-_aaaaaaa1", "bbbbbbbbbbb", "ccccccccccc"]
    assert back["start_seconds"].tolist() == [30.0, 0.5, 30.0, 30.0]
    assert back["class_index"].dtype == "int64"
    cat = read_manifest(tmp_path / "Cat" / MANIFEST_NAME)
    assert list(cat["file"]) == ["Cat/aaaaaaaaaaa_30000.wav", "Cat/a-_aaaaaaa1_500.wav"]
    hf = pd.read_csv(tmp_path / HF_METADATA_NAME)
    assert list(hf.columns[:2]) == ["file_name", "label"]
    assert list(hf["file_name"]) == list(back["file"])


def test_rendering_is_deterministic(frame: pd.DataFrame) -> None:
    assert manifest_csv_text(frame) == manifest_csv_text(frame.copy())
    assert "30.000,40.000" in manifest_csv_text(frame)


def test_stale_class_manifest_is_removed(tmp_path: Path, frame: pd.DataFrame) -> None:
    write_dataset_manifests(tmp_path, frame)
    assert (tmp_path / "Dog" / MANIFEST_NAME).exists()
    write_dataset_manifests(tmp_path, frame[frame["class_index"] == 0])
    assert not (tmp_path / "Dog" / MANIFEST_NAME).exists()
    assert (tmp_path / "Cat" / MANIFEST_NAME).exists()


def test_empty_dataset_writes_header_only(tmp_path: Path, frame: pd.DataFrame) -> None:
    write_dataset_manifests(tmp_path, frame.iloc[0:0])
    assert read_manifest(tmp_path / MANIFEST_NAME).empty


@pytest.mark.parametrize(
    "value, ok",
    [
        ("Cat/x.wav", True),
        ("../x.wav", False),
        ("/etc/passwd", False),
        ("Cat/../../x.wav", False),
        ("Cat//x.wav", False),
        ("Cat\\x.wav", False),
        ("C:/x.wav", False),
        ("", False),
    ],
)
def test_relative_file_check(value: str, ok: bool) -> None:
    assert (check_relative_file(value) is None) is ok


def test_dataset_path_refuses_escape(tmp_path: Path) -> None:
    assert dataset_path(tmp_path, "Cat/x.wav") == tmp_path / "Cat" / "x.wav"
    with pytest.raises(UserError, match="unsafe file path"):
        dataset_path(tmp_path, "../outside.wav")


@pytest.mark.parametrize(
    "column, value, message",
    [
        ("ytid", "short", "ytid must be 11 characters"),
        ("ytid", "../../etc/x", "ytid must be 11 characters"),
        ("file", "../escape.wav", "must not contain"),
        ("start_seconds", "abc", "start_seconds must be a number"),
        ("end_seconds", "0.2", "end_seconds must be greater"),
        ("sample_rate", "-5", "sample_rate must be a whole number"),
        ("channels", "0", "channels must be positive"),
        ("split", "holdout", "split must be one of"),
        ("sha256", "xyz", "sha256 must be 64"),
    ],
)
def test_malformed_row_names_file_and_line(
    tmp_path: Path, frame: pd.DataFrame, column: str, value: str, message: str
) -> None:
    path = tmp_path / MANIFEST_NAME
    bad = frame.copy().astype(object)
    bad.loc[2, column] = value
    path.write_text(bad.to_csv(index=False))
    with pytest.raises(UserError) as info:
        read_manifest(path)
    assert f"{path}:4:" in info.value.message
    assert message in info.value.message


def test_missing_columns_and_duplicates(tmp_path: Path, frame: pd.DataFrame) -> None:
    path = tmp_path / MANIFEST_NAME
    path.write_text(frame.drop(columns=["sha256", "file"]).to_csv(index=False))
    with pytest.raises(UserError, match="missing column\\(s\\): file, sha256"):
        read_manifest(path)
    write_manifest(path, pd.concat([frame, frame.iloc[[0]]]))
    with pytest.raises(UserError, match="already listed on line 2"):
        read_manifest(path)


def test_wrong_field_count_and_absent_file(tmp_path: Path, frame: pd.DataFrame) -> None:
    path = tmp_path / MANIFEST_NAME
    write_manifest(path, frame)
    path.write_text(path.read_text() + "1,2,3\n")
    with pytest.raises(UserError, match=r":6: expected 15 fields, found 3"):
        read_manifest(path)
    with pytest.raises(UserError, match="manifest not found"):
        read_manifest(tmp_path / "nope.csv")


def test_write_refuses_rows_outside_root(tmp_path: Path, frame: pd.DataFrame) -> None:
    bad = frame.copy()
    bad.loc[0, "file"] = "../../evil.wav"
    with pytest.raises(UserError):
        write_dataset_manifests(tmp_path / "data", bad)
    assert not (tmp_path / "data").exists()
