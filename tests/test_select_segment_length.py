"""selection.segment_seconds: only segments of exactly that length are candidates (fixture metadata)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import get_relevant_meta_data
from audioset_tools.config import SelectionConfig
from audioset_tools.select.metadata import read_ontology, read_quality, read_segments
from audioset_tools.select.outputs import read_candidates
from audioset_tools.select.selection import select

FIXTURES = Path(__file__).parent / "fixtures" / "metadata"
REPO = Path(__file__).resolve().parents[1]
EXTRA_ROWS = (
    'aaaaaaaaaa6, 0.000, 7.250, "/m/a"\n'      # a video that ended early
    'aaaaaaaaaa7, 20.000, 29.999, "/m/a"\n'    # one millisecond short
    'dddddddddd4, 100.000, 110.000, "/m/d"\n'  # exactly 10 s
    'gggggggggg2, 0.000, 4.000, "/m/g"\n'      # short, but /m/g is dropped anyway (unrated)
)


@pytest.fixture
def metadata(tmp_path: Path) -> Path:
    folder = tmp_path / "metadata"
    shutil.copytree(FIXTURES, folder)
    with (folder / "balanced_train_segments.csv").open("a") as handle:
        handle.write(EXTRA_ROWS)
    return folder


def _select(folder: Path, **rules):
    ontology = read_ontology(folder / "ontology.json")
    quality = read_quality(folder / "qa_true_counts.csv")
    names = {"balanced": "balanced_train_segments.csv", "unbalanced": "unbalanced_train_segments.csv",
             "eval": "eval_segments.csv"}
    segments = read_segments({k: folder / v for k, v in names.items()}, ontology.ids)
    selection = select(ontology, quality, segments, SelectionConfig(label_policy="any", **rules), 0)
    found = {c.mid: set() for c in selection.classes}
    for cls, ytid in zip(selection.candidate_class, segments.ytids(selection.candidate_rows).to_pylist()):
        found[selection.classes[cls].mid].add(ytid)
    return selection, found


def test_default_keeps_only_ten_second_segments_and_counts_the_rest(metadata):
    selection, found = _select(metadata)
    assert "aaaaaaaaaa6" not in found["/m/a"] and "aaaaaaaaaa7" not in found["/m/a"]
    assert "dddddddddd4" in found["/m/d"]
    # Only segments of a class that passed the rules count as removed (not /m/g's).
    assert selection.wrong_length_segments == 2


def test_null_keeps_every_length(metadata):
    selection, found = _select(metadata, segment_seconds=None)
    assert {"aaaaaaaaaa6", "aaaaaaaaaa7"} <= found["/m/a"]
    assert selection.wrong_length_segments == 0


def test_other_lengths_can_be_asked_for(metadata):
    selection, found = _select(metadata, segment_seconds=7.25)
    assert found.get("/m/a") == {"aaaaaaaaaa6"}


def test_summary_and_record_report_the_removed_segments(metadata, tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    config = tmp_path / "control.yaml"
    config.write_text(f"paths:\n  metadata_dir: {metadata}\n  meta_dir: meta\nselection:\n  label_policy: any\n")
    assert get_relevant_meta_data.main(["--config", str(config)]) == 0
    assert "segment_seconds 10: removed 2 segments of another length" in capsys.readouterr().out
    candidates = read_candidates(tmp_path / "meta")
    assert ((candidates["end_seconds"] - candidates["start_seconds"]).round(3) == 10.0).all()
    record = json.loads((tmp_path / "meta" / "selection.json").read_text())
    assert record["counts"]["wrong_length_segments"] == 2
    assert record["selection"]["segment_seconds"] == 10.0
