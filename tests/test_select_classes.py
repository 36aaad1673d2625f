"""selection.classes: exactly the listed classes, in ontology order, whatever the rules say (with warnings)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

import get_relevant_meta_data
from audioset_tools.config import SelectionConfig
from audioset_tools.errors import UserError
from audioset_tools.select.metadata import read_ontology, read_quality, read_segments
from audioset_tools.select.outputs import read_candidates, read_suitable_classes
from audioset_tools.select.selection import select

FIXTURES = Path(__file__).parent / "fixtures" / "metadata"
SEGMENT_FILES = {
    "balanced": "balanced_train_segments.csv",
    "unbalanced": "unbalanced_train_segments.csv",
    "eval": "eval_segments.csv",
}


def _read(folder: Path):
    ontology = read_ontology(folder / "ontology.json")
    quality = read_quality(folder / "qa_true_counts.csv")
    segments = read_segments({k: folder / v for k, v in SEGMENT_FILES.items()}, ontology.ids)
    return ontology, quality, segments


@pytest.fixture(scope="module")
def mini():
    return _read(FIXTURES)


def run(meta, **rules):
    ontology, quality, segments = meta
    return select(ontology, quality, segments, SelectionConfig(**rules), 0)


def test_exactly_the_listed_classes_in_ontology_order(mini):
    # Listed out of order, by name and by MID; each would pass the rules anyway.
    selection = run(mini, classes=["India", "/m/a"], label_policy="any")
    assert [c.mid for c in selection.classes] == ["/m/a", "/m/i"]
    assert [c.index for c in selection.classes] == [0, 1]
    assert selection.warnings == []
    assert selection.dropped["not_listed"] == 9
    # Their candidates are the same as when the rules pick them (order is per class).
    default = run(mini, label_policy="any")
    assert {c.mid: c.num_candidates for c in selection.classes} == {
        c.mid: c.num_candidates for c in default.classes if c.mid in ("/m/a", "/m/i")
    }


def test_rules_do_not_filter_listed_classes_and_each_is_warned_about(mini):
    listed = ["Hotel", "Gamma", "Foxtrot", "/m/e", "Alpha", "Golf"]
    selection = run(mini, classes=listed, label_policy="any", min_candidates=4)
    assert [c.mid for c in selection.classes] == ["/m/a", "/m/c", "/m/e", "/m/f", "/m/g", "/m/h"]
    text = "\n".join(selection.warnings)
    assert len(selection.warnings) == 5, text  # all but Alpha (6 candidates, quality 0.9)
    assert "/m/h 'Hotel'" in text and "not a leaf" in text
    assert "/m/c 'Gamma'" in text and "label quality 0.7 is below selection.quality_threshold 0.8" in text
    assert "/m/f 'Foxtrot'" in text and "nobody rated" in text
    assert "/m/g 'Golf'" in text
    assert "/m/e 'Echo'" in text and "marked blacklist" in text
    assert "/m/a 'Alpha'" not in text


def test_min_candidates_is_reported_not_applied(mini):
    selection = run(mini, classes=["/m/ab"], label_policy="any", min_candidates=100)
    assert [c.mid for c in selection.classes] == ["/m/ab"]
    assert len(selection.warnings) == 1 and "fewer than selection.min_candidates 100" in selection.warnings[0]


def test_exclude_still_wins_and_empty_list_means_the_rules(mini):
    selection = run(mini, classes=["/m/a", "/m/d"], exclude=["/m/d"], label_policy="any")
    assert [c.mid for c in selection.classes] == ["/m/a"]
    assert selection.dropped["excluded"] == 1
    assert [c.mid for c in run(mini, classes=[]).classes] == ["/m/a", "/m/ab", "/m/d", "/m/i"]
    assert "not_listed" not in run(mini).dropped


def test_unknown_name_fails_with_suggestions(mini):
    with pytest.raises(UserError, match=r"selection.classes: 'Alpah' .*Did you mean: 'Alpha'"):
        run(mini, classes=["Alpah"])


def test_classes_and_include_together_are_refused():
    with pytest.raises(ValidationError, match="set classes or include, not both"):
        SelectionConfig(classes=["/m/a"], include=["/m/d"])


def test_include_keeps_its_meaning(mini):
    selection = run(mini, include=["Hotel"], label_policy="any")
    assert [c.mid for c in selection.classes] == ["/m/a", "/m/ab", "/m/d", "/m/h", "/m/i"]


def test_select_step_summary_warns(tmp_path, capsys):
    shutil.copytree(FIXTURES, tmp_path / "metadata")
    (tmp_path / "control.yaml").write_text(
        "paths:\n  metadata_dir: metadata\n  meta_dir: meta\nselection:\n  classes: [Hotel, Alpha]\n"
    )
    assert get_relevant_meta_data.main(["--config", str(tmp_path / "control.yaml"), "-q"]) == 0
    out = capsys.readouterr().out
    assert "Selected 2 classes" in out
    assert "Warning: /m/h 'Hotel' is selected because selection.classes lists it, but it is not a leaf" in out
    classes = read_suitable_classes(tmp_path / "meta")
    assert list(classes["mid"]) == ["/m/a", "/m/h"]
    assert set(read_candidates(tmp_path / "meta")["mid"]) == {"/m/a", "/m/h"}


@pytest.fixture(scope="module")
def real(real_metadata):
    return _read(real_metadata)


def test_real_metadata_named_classes(real):
    # "Speech" is not a leaf, "Dog" is not a leaf; "Meow" and "Radio" are among the default 142.
    selection = run(real, classes=["Radio", "Speech", "/m/07qrkrw", "Dog"])
    assert [c.name for c in selection.classes] == ["Speech", "Dog", "Meow", "Radio"]
    warned = {w.split(" '")[0] for w in selection.warnings}
    assert {"/m/09x0r", "/m/0bt9lr"} <= warned  # Speech, Dog: not leaves
    assert all(c.num_candidates > 0 for c in selection.classes)
    default = {c.mid: c for c in run(real).classes}
    assert "/m/09x0r" not in default and "/m/07qrkrw" in default


def test_real_metadata_unknown_name_suggests(real):
    with pytest.raises(UserError, match=r"'Meo'.*Did you mean"):
        run(real, classes=["Meo"])
