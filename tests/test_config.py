"""The config model: defaults, control.yaml, path resolution and overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from audioset_tools.config import Config, load_config
from audioset_tools.errors import UserError

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ("paths", "selection", "splits", "download", "audio")


def test_repository_control_yaml_states_the_defaults():
    """control.yaml documents every default: loading it must equal the model's defaults."""
    loaded = load_config(REPO / "control.yaml")
    defaults = Config()
    assert loaded.seed == defaults.seed
    for section in SECTIONS[1:]:
        assert getattr(loaded, section) == getattr(defaults, section), section
    for name in ("metadata_dir", "meta_dir", "output_dir"):
        assert getattr(loaded.paths, name) == REPO / getattr(defaults.paths, name)


def test_every_key_of_the_model_is_written_and_commented_in_control_yaml():
    text = (REPO / "control.yaml").read_text()
    raw = yaml.safe_load(text)
    lines = text.splitlines()
    for section in SECTIONS:
        model = getattr(Config(), section)
        for key in type(model).model_fields:
            assert key in raw[section], f"{section}.{key} missing from control.yaml"
            # A comment sits on the key's line or above the run of keys it belongs to
            # (train / val / test share one, as do include / exclude).
            start = lines.index(f"{section}:")
            index = next(i for i in range(start, len(lines)) if lines[i].strip().startswith(f"{key}:"))
            while index > start + 1 and "#" not in lines[index] and ":" in lines[index - 1] and "#" not in lines[index - 1]:
                index -= 1
            assert "#" in lines[index] or "#" in lines[index - 1], f"{section}.{key} has no comment"


def test_issue_defaults():
    config = Config()
    assert config.seed == 0
    assert config.selection.subsets == ["balanced", "unbalanced", "eval"]
    assert config.selection.leaf_only is True
    assert config.selection.quality_threshold == 0.8
    assert config.selection.unknown_quality == "exclude"
    assert config.selection.exclude_restrictions == ["blacklist", "abstract"]
    assert config.selection.min_candidates == 0
    assert config.selection.label_policy == "exclusive"
    assert (config.splits.train, config.splits.val, config.splits.test) == (0.7, 0.1, 0.2)
    assert config.download.end_index is None and config.download.workers == 1
    assert config.download.url_template == "https://www.youtube.com/watch?v={ytid}"
    assert (config.audio.format, config.audio.sample_rate, config.audio.channels) == ("wav", 16000, 1)


def test_relative_paths_resolve_against_the_config_folder(tmp_path, monkeypatch):
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / "control.yaml").write_text("paths:\n  metadata_dir: ../shared/meta\n  meta_dir: out\n")
    monkeypatch.chdir(tmp_path)
    config = load_config("job/control.yaml")
    assert config.paths.metadata_dir == folder / "../shared/meta"
    assert config.paths.meta_dir == folder / "out"
    assert config.paths.output_dir == folder / "AudioSet_Data"
    assert config.source == (folder / "control.yaml").resolve()


def test_overrides_are_parsed_as_yaml_and_validated(tmp_path):
    path = tmp_path / "control.yaml"
    path.write_text("seed: 0\nselection:\n  quality_threshold: 0.8\n")
    config = load_config(path, ["selection.quality_threshold=0.5", "selection.subsets=[eval]", "seed=7"])
    assert config.selection.quality_threshold == 0.5
    assert config.selection.subsets == ["eval"]
    assert config.seed == 7
    with pytest.raises(UserError, match="seed is a value, not a section"):
        load_config(path, ["seed.x=1"])


def test_original_tools_none_string_means_all_classes(tmp_path):
    path = tmp_path / "control.yaml"
    path.write_text("download:\n  end_index: 'None'\n")
    assert load_config(path).download.end_index is None


def test_empty_file_is_all_defaults(tmp_path):
    path = tmp_path / "control.yaml"
    path.write_text("# nothing set\n")
    assert load_config(path).selection == Config().selection


def test_repeated_subset_is_rejected(tmp_path):
    path = tmp_path / "control.yaml"
    path.write_text("selection:\n  subsets: [eval, eval]\n")
    with pytest.raises(UserError, match="each subset may be named once"):
        load_config(path)
