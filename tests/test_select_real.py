"""Selection on Google's real metadata files in ../shared/audioset (2,084,320 segments)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import get_relevant_meta_data
from audioset_tools.config import SelectionConfig
from audioset_tools.dataset.layout import assign_class_folders
from audioset_tools.select.metadata import read_ontology, read_quality, read_segments
from audioset_tools.select.outputs import read_candidates, read_suitable_classes
from audioset_tools.select.selection import select

SEGMENT_FILES = {
    "balanced": "balanced_train_segments.csv",
    "unbalanced": "unbalanced_train_segments.csv",
    "eval": "eval_segments.csv",
}


@pytest.fixture(scope="session")
def real(real_metadata):
    ontology = read_ontology(real_metadata / "ontology.json")
    quality = read_quality(real_metadata / "qa_true_counts.csv")
    segments = read_segments({k: real_metadata / v for k, v in SEGMENT_FILES.items()}, ontology.ids)
    return ontology, quality, segments


@pytest.fixture(scope="session")
def raw_labels(real_metadata):
    """The label column as pandas reads it: an oracle independent of our reader."""
    frames = [
        pd.read_csv(real_metadata / name, skiprows=3, header=None, skipinitialspace=True,
                    names=["ytid", "start", "end", "labels"])
        for name in SEGMENT_FILES.values()
    ]
    return pd.concat(frames, ignore_index=True)


def run(real, seed=0, **rules):
    ontology, quality, segments = real
    return select(ontology, quality, segments, SelectionConfig(**rules), seed)


def test_every_official_row_is_valid(real):
    segments = real[2]
    assert len(segments) == 2_084_320 and segments.valid.all() and not segments.malformed


@pytest.mark.parametrize("policy", ["any", "exclusive"])
def test_original_tool_selects_142_classes(real, policy):
    selection = run(real, label_policy=policy)
    assert len(selection.classes) == 142
    assert (selection.classes[0].mid, selection.classes[0].name) == ("/m/05zppz", "Male speech, man speaking")
    assert (selection.classes[-1].mid, selection.classes[-1].name) == ("/m/06bz3", "Radio")


@pytest.mark.parametrize("mid", ["/m/05zppz", "/m/06bz3", "/m/07qfr4h"])
def test_candidate_counts_match_an_independent_count(real, raw_labels, mid):
    selection = run(real, label_policy="any")
    by_mid = {c.mid: c for c in selection.classes}
    carries = raw_labels["labels"].str.contains(rf"(?:^|,){mid}(?:,|$)", regex=True)
    # selection.segment_seconds defaults to 10: only segments of exactly 10 s are candidates.
    ten_seconds = ((raw_labels["end"] - raw_labels["start"]) * 1000).round() == 10_000
    expected = int((carries & ten_seconds).sum())
    assert by_mid[mid].num_candidates == expected > 0
    everything = run(real, label_policy="any", segment_seconds=None)
    assert {c.mid: c for c in everything.classes}[mid].num_candidates == int(carries.sum())


def test_segment_seconds_removes_the_shorter_segments_and_counts_them(real, raw_labels):
    ontology, quality, segments = real
    ten = run(real, label_policy="any")
    every = run(real, label_policy="any", segment_seconds=None)
    assert every.wrong_length_segments == 0
    short = set(every.candidate_rows.tolist()) - set(ten.candidate_rows.tolist())
    # Every removed candidate segment is one of another length, and all of them are counted.
    assert ten.wrong_length_segments == len(short) > 1000
    lengths = segments.end[sorted(short)] - segments.start[sorted(short)]
    assert np.all(np.round(lengths * 1000) != 10_000)
    kept = ten.candidate_rows
    assert np.all(np.round((segments.end[kept] - segments.start[kept]) * 1000) == 10_000)
    # The real metadata's segments of other lengths (videos that end early), counted independently.
    other = ((raw_labels["end"] - raw_labels["start"]) * 1000).round() != 10_000
    assert int(other.sum()) >= ten.wrong_length_segments


def test_order_of_a_class_ignores_which_other_classes_are_selected(real):
    full = run(real, label_policy="any")
    radio = len(full.classes) - 1
    others = [c.mid for c in full.classes[:100]]
    fewer = run(real, label_policy="any", exclude=others)
    radio_fewer = len(fewer.classes) - 1
    assert fewer.classes[radio_fewer].mid == "/m/06bz3"
    assert np.array_equal(
        full.candidate_rows[full.candidate_class == radio], fewer.candidate_rows[fewer.candidate_class == radio_fewer]
    )
    # Under exclusive the candidate set changes, but the kept clips keep their relative order.
    ex_full = run(real)
    ex_fewer = run(real, exclude=others)
    kept = set(ex_full.candidate_rows[ex_full.candidate_class == radio].tolist())
    fewer_rows = ex_fewer.candidate_rows[ex_fewer.candidate_class == radio_fewer].tolist()
    assert [r for r in fewer_rows if r in kept] == ex_full.candidate_rows[ex_full.candidate_class == radio].tolist()


def test_exclusive_policy_shares_no_youtube_video(real):
    ontology, quality, segments = real
    selection = run(real, label_policy="exclusive")
    ytids = np.array(segments.ytids(selection.candidate_rows).to_pylist())
    frame = pd.DataFrame({"ytid": ytids, "cls": selection.candidate_class})
    assert frame.groupby("ytid")["cls"].nunique().max() == 1
    assert selection.exclusive_removed_clips > 0
    shared = run(real, label_policy="any")
    frame_any = pd.DataFrame({"ytid": segments.ytids(shared.candidate_rows).to_pylist(), "cls": shared.candidate_class})
    assert frame_any.groupby("ytid")["cls"].nunique().max() > 1  # the policy has something to remove


@pytest.fixture(scope="session")
def two_runs(tmp_path_factory, real_metadata):
    outputs = []
    for name in ("first", "second"):
        folder = tmp_path_factory.mktemp(name)
        (folder / "control.yaml").write_text(f"paths:\n  metadata_dir: {real_metadata}\n  meta_dir: meta\n")
        assert get_relevant_meta_data.main(["--config", str(folder / "control.yaml"), "--plot", "-q"]) == 0
        outputs.append(folder / "meta")
    return outputs


def test_two_runs_write_byte_identical_outputs(two_runs):
    first, second = two_runs
    names = sorted(p.name for p in first.iterdir())
    assert names == [
        "candidates.csv", "malformed_rows.csv", "quality_threshold.png", "selection.json",
        "splits.csv", "splits.npy", "suitable_classes.csv",
    ]
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_outputs_read_back_and_splits_are_disjoint(two_runs):
    meta = two_runs[0]
    classes = read_suitable_classes(meta)
    candidates = read_candidates(meta)
    assert len(classes) == 142
    assert classes["num_candidates"].tolist() == candidates.groupby("class_index").size().tolist()
    assert candidates.groupby("ytid")["class_index"].nunique().max() == 1  # exclusive by default
    train, val, test = np.load(meta / "splits.npy", allow_pickle=True)
    assert (len(train), len(val), len(test)) == (100, 14, 28)
    assert not (set(train) & set(val) or set(train) & set(test) or set(val) & set(test))
    folders = assign_class_folders(zip(classes["mid"], classes["name"]))
    assert set(train) | set(val) | set(test) == set(folders.values())
    assert [folders[mid] for mid in classes.loc[classes["split"] == "val", "mid"]] == list(val)
    assert "Male_speech_man_speaking" in set(train) | set(val) | set(test)
    splits_csv = pd.read_csv(meta / "splits.csv")
    assert splits_csv["split"].value_counts().to_dict() == {"train": 100, "test": 28, "val": 14}
