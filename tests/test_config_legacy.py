"""The original tool's control.yaml runs (old keys read in their new places), and duplicated keys are errors."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

import get_relevant_meta_data
from audioset_tools.config import load_config
from audioset_tools.errors import UserError
from audioset_tools.select.outputs import read_suitable_classes

FIXTURES = Path(__file__).parent / "fixtures"
# The original tool's control.yaml, verbatim (../shared/ORIGINAL_TOOL.md).
ORIGINAL = FIXTURES / "original_control.yaml"
NEW_KEYS = {
    "classes.leafs": "selection.leaf_only",
    "classes.quality_threshold": "selection.quality_threshold",
    "data.max_per_class": "download.samples_per_class",
    "data.start_index": "download.start_index",
    "data.end_index": "download.end_index",
    "dir.meta_folder": "paths.meta_dir",
}


def _job(tmp_path: Path, cookies: bool = False) -> Path:
    """The original control.yaml next to a metadata folder, as its user would have it."""
    shutil.copy(ORIGINAL, tmp_path / "control.yaml")
    shutil.copytree(FIXTURES / "metadata", tmp_path / "metadata", dirs_exist_ok=True)
    if cookies:
        (tmp_path / "cookies.txt").write_text("# Netscape HTTP Cookie File\n")
    return tmp_path / "control.yaml"


def test_original_file_is_the_documented_one():
    text = ORIGINAL.read_text()
    for key in ("leafs: True", "max_per_class: 10", "end_index: 'None'", "df_file: 'big_data.csv'",
                "cookie_path: 'cookies.txt'", "meta_folder: 'MetaData'"):
        assert key in text


def test_each_old_key_is_read_in_its_new_place_with_one_warning(tmp_path, caplog):
    control = _job(tmp_path, cookies=True)
    with caplog.at_level(logging.INFO):
        config = load_config(control)
    assert config.seed == 0
    assert config.selection.leaf_only is True and config.selection.quality_threshold == 0.8
    assert config.download.samples_per_class == 10
    assert config.download.start_index == 0 and config.download.end_index is None  # 'None' means null
    assert config.paths.meta_dir == tmp_path / "MetaData"
    assert config.download.cookies_file == tmp_path / "cookies.txt"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    expected = {**NEW_KEYS, "dir.cookie_path": "download.cookies_file"}
    assert len(warnings) == len(expected)
    for old, new in expected.items():
        assert sum(f"{old} is the original tool's key, read as {new}" in w for w in warnings) == 1, old
    notes = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(notes) == 1 and "dir.df_file is ignored" in notes[0]


def test_a_missing_cookie_file_means_no_cookies_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        config = load_config(_job(tmp_path))
    assert config.download.cookies_file is None
    assert any("dir.cookie_path" in r.getMessage() and "does not exist" in r.getMessage() for r in caplog.records)


def test_select_step_runs_with_the_original_file(tmp_path, capsys):
    control = _job(tmp_path)
    assert get_relevant_meta_data.main(["--config", str(control)]) == 0
    err = capsys.readouterr().err
    assert "classes.leafs is the original tool's key, read as selection.leaf_only" in err
    assert "dir.df_file is ignored" in err
    classes = read_suitable_classes(tmp_path / "MetaData")
    # The documented result of the miniature metadata with the default rules (fixtures/metadata/README.md).
    assert list(classes["mid"]) == ["/m/a", "/m/ab", "/m/d", "/m/i"]


def test_old_and_new_key_for_one_setting_is_an_error(tmp_path):
    control = _job(tmp_path)
    control.write_text(control.read_text() + "download:\n  samples_per_class: 20\n")
    with pytest.raises(UserError, match="both data.max_per_class .* and download.samples_per_class are set"):
        load_config(control)


def test_unknown_key_in_an_old_section_is_an_error(tmp_path):
    control = _job(tmp_path)
    control.write_text(control.read_text().replace("  start_index: 0\n", "  start_indx: 0\n"))
    with pytest.raises(UserError, match=r"data.start_indx: unknown key .*max_per_class, start_index, end_index"):
        load_config(control)


def test_set_overrides_the_translated_value(tmp_path, caplog):
    config = load_config(_job(tmp_path), ["download.samples_per_class=3"])
    assert config.download.samples_per_class == 3
    with caplog.at_level(logging.WARNING):
        config = load_config(_job(tmp_path), ["data.max_per_class=4", "data.end_index=None"])
    assert config.download.samples_per_class == 4 and config.download.end_index is None
    assert "--set data.max_per_class: the original tool's key, read as download.samples_per_class" in caplog.text


@pytest.mark.parametrize(
    ("text", "key", "lines"),
    [
        ("seed: 0\nselection:\n  leaf_only: true\n  quality_threshold: 0.5\n  leaf_only: false\n",
         "selection.leaf_only", (3, 5)),
        ("seed: 0\npaths:\n  meta_dir: a\nseed: 1\n", "seed", (1, 4)),
        ("postprocess:\n  melspec:\n    n_mels: 64\n    hop_length: 256\n    n_mels: 128\n",
         "postprocess.melspec.n_mels", (3, 5)),
        ("selection:\n  include: [Alpha]\nsplits:\n  seed: 1\nselection:\n  leaf_only: false\n",
         "selection", (1, 5)),
        ("classes:\n  leafs: True\nclasses:\n  leafs: False\n", "classes", (1, 3)),
    ],
)
def test_duplicated_key_names_the_key_and_both_lines(tmp_path, text, key, lines):
    control = tmp_path / "control.yaml"
    control.write_text(text)
    with pytest.raises(UserError) as caught:
        load_config(control)
    message = caught.value.message
    assert f"key {key} is given twice, at line {lines[0]} and line {lines[1]}" in message
    assert str(control) in message


def test_duplicate_through_the_cli_is_one_message_and_exit_2(tmp_path, capsys):
    (tmp_path / "control.yaml").write_text("seed: 0\nseed: 1\n")
    assert get_relevant_meta_data.main(["--config", str(tmp_path / "control.yaml")]) == 2
    err = capsys.readouterr().err
    assert "key seed is given twice, at line 1 and line 2" in err and "Traceback" not in err
    assert not (tmp_path / "MetaData").exists()



def test_a_top_level_list_of_classes_points_to_selection_classes(tmp_path):
    control = tmp_path / "control.yaml"
    control.write_text("classes: [Meow, Radio]\n")
    with pytest.raises(UserError, match="belongs under the selection section .selection.classes."):
        load_config(control)
