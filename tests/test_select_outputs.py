"""The files of paths.meta_dir: what the select step writes and how later steps read them."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audioset_tools.config import load_config
from audioset_tools.dataset.layout import assign_class_folders
from audioset_tools.errors import UserError
from audioset_tools.select.outputs import (
    CANDIDATE_COLUMNS,
    SUITABLE_COLUMNS,
    read_candidates,
    read_suitable_classes,
)
from audioset_tools.select.step import run_select

FIXTURES = Path(__file__).parent / "fixtures" / "metadata"


@pytest.fixture()
def meta_dir(tmp_path):
    shutil.copytree(FIXTURES, tmp_path / "metadata")
    (tmp_path / "control.yaml").write_text(
        "paths:\n  metadata_dir: metadata\n  meta_dir: meta\nselection:\n  label_policy: any\n"
    )
    report = run_select(load_config(tmp_path / "control.yaml"), plot=True)
    assert report.classes == 4
    return tmp_path / "meta"


def test_suitable_classes_read_back(meta_dir):
    frame = read_suitable_classes(meta_dir)
    assert tuple(frame.columns) == SUITABLE_COLUMNS
    assert frame["mid"].tolist() == ["/m/a", "/m/ab", "/m/d", "/m/i"]
    assert frame["name"].tolist()[2] == "Delta, the fourth"  # a comma inside a quoted name
    assert frame["num_candidates"].tolist() == [6, 3, 4, 3]
    assert frame["quality"].tolist() == [0.9, 1.0, 0.8, 1.0]
    assert set(frame["split"]) <= {"train", "val", "test"}


def test_candidates_read_back(meta_dir):
    frame = read_candidates(meta_dir)
    assert tuple(frame.columns) == CANDIDATE_COLUMNS
    assert frame["class_index"].is_monotonic_increasing
    for _, group in frame.groupby("class_index"):
        assert group["rank"].tolist() == list(range(len(group)))
    row = frame[frame["ytid"] == "dddddddddd1"].iloc[0]
    assert (row["start_seconds"], row["end_seconds"], row["subset"], row["labels"]) == (5.5, 15.5, "balanced", "/m/d")
    shared = frame[frame["ytid"] == "shared00001"]
    assert sorted(shared["mid"]) == ["/m/a", "/m/d"] and set(shared["labels"]) == {"/m/a,/m/d"}


def test_splits_files_agree(meta_dir):
    classes = read_suitable_classes(meta_dir)
    # MetaAudio matches split entries against the class folders it lists: folder names,
    # the very ones the download step gives the same classes.
    folders = assign_class_folders(zip(classes["mid"], classes["name"]))
    train, val, test = np.load(meta_dir / "splits.npy", allow_pickle=True)
    for name, names in (("train", train), ("val", val), ("test", test)):
        assert list(names) == [folders[mid] for mid in classes.loc[classes["split"] == name, "mid"]]
    assert "Delta_the_fourth" in set(train) | set(val) | set(test)
    splits = pd.read_csv(meta_dir / "splits.csv", keep_default_na=False)
    assert list(splits.columns) == ["split", "class_index", "mid", "name", "folder"] and len(splits) == 4
    assert dict(zip(splits["mid"], splits["folder"])) == folders
    assert dict(zip(splits["mid"], splits["name"])) == dict(zip(classes["mid"], classes["name"]))


def test_splits_npy_names_the_folders_the_download_step_creates(meta_dir):
    """The select step knows each class's folder before any download: a plan of any class
    slice puts the class in exactly the folder splits.npy names."""
    from audioset_tools.download.plan import plan_download

    train, val, test = np.load(meta_dir / "splits.npy", allow_pickle=True)
    by_split = {"train": set(train), "val": set(val), "test": set(test)}
    suitable, candidates = read_suitable_classes(meta_dir), read_candidates(meta_dir)
    for start in range(len(suitable)):
        (plan,) = plan_download(
            suitable, candidates, start_index=start, end_index=start + 1, samples_per_class=2, audio_format="wav"
        )
        assert plan.folder in by_split[plan.split]
        assert all(c.file.startswith(plan.folder + "/") for c in plan.candidates)


def test_selection_json_records_parameters_and_checksums(meta_dir):
    record = json.loads((meta_dir / "selection.json").read_text())
    assert record["selection"]["label_policy"] == "any" and record["seed"] == 0
    assert record["splits"] == {"train": 0.7, "val": 0.1, "test": 0.2, "seed": 0}
    ontology = record["inputs"]["ontology.json"]
    assert ontology["sha256"] == hashlib.sha256((FIXTURES / "ontology.json").read_bytes()).hexdigest()
    assert ontology["official"] is False
    assert set(record["inputs"]) == {
        "ontology.json", "qa_true_counts.csv", "balanced_train_segments.csv",
        "unbalanced_train_segments.csv", "eval_segments.csv",
    }
    assert record["counts"]["classes"] == 4 and record["counts"]["candidates"] == 16
    assert record["counts"]["exclusive_removed_clips"] == 0


def test_quality_plot_is_a_png(meta_dir):
    assert (meta_dir / "quality_threshold.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_outputs_say_what_to_run(tmp_path):
    for reader in (read_suitable_classes, read_candidates):
        with pytest.raises(UserError, match="run get_relevant_meta_data.py"):
            reader(tmp_path / "nothing")


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        ("candidates.csv", lambda t: t.replace("dddddddddd1", "ddd/../etc"), r"line \d+: ytid is not a valid"),
        ("candidates.csv", lambda t: t.replace('"balanced"', '"training"', 1), r"line \d+: subset must be one of"),
        ("candidates.csv", lambda t: t.replace("class_index,", "klass,", 1), "expected columns"),
        ("candidates.csv", lambda t: t.replace("15.5", "abc"), "corrupt"),
        ("suitable_classes.csv", lambda t: t.replace(",train\n", ",meta\n", 1) if ",train\n" in t
         else t.replace(",test\n", ",meta\n", 1), r"line \d+: split must be one of"),
        ("suitable_classes.csv", lambda t: t.replace("\n1,", "\n7,", 1), "must count 0, 1, 2"),
        ("suitable_classes.csv", lambda t: "", "corrupt"),
    ],
)
def test_corrupt_outputs_are_clear_errors(meta_dir, name, edit, message):
    path = meta_dir / name
    path.write_text(edit(path.read_text()))
    reader = read_candidates if name == "candidates.csv" else read_suitable_classes
    with pytest.raises(UserError, match=message):
        reader(meta_dir)
