"""The command line as a whole: every registered command is reachable and documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from audioset_tools.cli import main
from audioset_tools.commands import COMMAND_MODULES

REPO = Path(__file__).resolve().parents[1]
COMMAND_NAMES = [name.replace("_", "-") for name in COMMAND_MODULES]


def test_top_level_help_lists_every_command_and_the_workflow(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in COMMAND_NAMES:
        assert f"    {name} " in out
    assert "typical workflow" in out


@pytest.mark.parametrize("name", COMMAND_NAMES)
def test_each_command_help_names_the_shared_options(name: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"audioset-tools {name}" in out
    for option in ("--config", "--set", "--quiet"):
        assert option in out


@pytest.mark.parametrize("script", ["get_relevant_meta_data.py", "download_data.py", "rebuild_from_manifest.py"])
def test_top_level_scripts_run_as_programs(script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / script), "--help"], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert result.returncode == 0, result.stderr
    assert f"usage: {script}" in result.stdout


def test_missing_config_is_one_message_and_exit_2(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["select"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: config file not found: control.yaml")
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
