"""Config keys of exact clips: segment_seconds, and the deprecated tolerances."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from dataset_factory import make_dataset

from audioset_tools.cli import main
from audioset_tools.config import load_config

REPO = Path(__file__).resolve().parents[1]


def test_shipped_control_yaml_selects_ten_second_segments_and_has_no_length_tolerance():
    config = load_config(REPO / "control.yaml")
    assert config.selection.segment_seconds == 10.0
    assert "length_tolerance:" not in (REPO / "control.yaml").read_text()
    assert config.download.duration_tolerance == 0.05


def test_segment_seconds_null_and_bad_values(tmp_path):
    path = tmp_path / "control.yaml"
    path.write_text("selection:\n  segment_seconds: null\n")
    assert load_config(path).selection.segment_seconds is None
    path.write_text("selection:\n  segment_seconds: -1\n")
    with pytest.raises(Exception, match="selection.segment_seconds"):
        load_config(path)


@pytest.mark.parametrize("how", ["file", "override"])
def test_old_length_tolerance_loads_with_a_deprecation_warning(tmp_path, caplog, how):
    path = tmp_path / "control.yaml"
    if how == "file":
        path.write_text("postprocess:\n  clean:\n    expected_seconds: 10.0\n    length_tolerance: 0.0\n")
        overrides = []
    else:
        path.write_text("postprocess:\n  clean:\n    expected_seconds: 10.0\n")
        overrides = ["postprocess.clean.length_tolerance=0.05"]
    with caplog.at_level(logging.WARNING, logger="audioset_tools.config"):
        config = load_config(path, overrides)
    assert config.postprocess.clean.expected_seconds == 10.0
    (record,) = [r for r in caplog.records if "length_tolerance" in r.getMessage()]
    assert "deprecated and ignored" in record.getMessage() and "in samples" in record.getMessage()


def test_validate_duration_tolerance_option_is_deprecated_not_an_error(tmp_path, caplog, capsys):
    root = tmp_path / "data"
    make_dataset(root)
    with caplog.at_level(logging.WARNING):
        code = main(["validate", str(root), "--duration-tolerance", "0.5", "-q"])
    assert code == 0
    assert any("--duration-tolerance is deprecated" in r.getMessage() for r in caplog.records)
    assert "--duration-tolerance" not in capsys.readouterr().out
