"""Every command that acts on a dataset takes it the same way: [DIR], else paths.output_dir of control.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from post_data import make_dataset

from audioset_tools.cli import build_parser, main

DATASET_COMMANDS = ("validate", "report", "clean", "to-npy", "melspec", "stats", "pack")
# In workflow order: each needs what the ones before it made.
WORKFLOW = ("validate", "report", "clean", "to-npy", "melspec", "stats", "pack")
SMALL = "postprocess:\n  workers: 1\n  batch_clips: 8\n"


def _subparser(name: str):
    parser = build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return action.choices[name]


@pytest.mark.parametrize("name", DATASET_COMMANDS)
def test_same_positional_everywhere(name: str) -> None:
    parser = _subparser(name)
    positional = [a for a in parser._actions if not a.option_strings and a.dest != "help"]
    assert [(a.dest, a.metavar, a.nargs) for a in positional] == [("dataset", "DIR", "?")]
    assert positional[0].help == "dataset folder (default: paths.output_dir of control.yaml)"
    assert "[DIR]" in parser.format_usage()


def _outputs(root: Path) -> dict[str, bool]:
    return {
        "validation": (root / "data" / "_reports" / "validation.csv").is_file(),
        "report": (root / "data" / "report" / "summary.md").is_file(),
        "npy": (root / "AudioSet_npy_meta" / "index.csv").is_file(),
        "melspec": (root / "AudioSet_melspec_meta" / "index.csv").is_file(),
        "stats": (root / "AudioSet_melspec_meta" / "stats.json").is_file(),
        "pack": (root / "AudioSet_packed" / "melspec" / "train.npy").is_file(),
    }


def test_explicit_folder_without_any_control_yaml(tmp_path: Path, monkeypatch, capsys) -> None:
    make_dataset(tmp_path / "data")
    monkeypatch.chdir(tmp_path)  # no control.yaml here: defaults, derived folders in the current directory
    for name in WORKFLOW:
        assert main([name, "data", "-q", "--set", "postprocess.workers=1"]) == 0, capsys.readouterr().err
    assert all(_outputs(tmp_path).values()), _outputs(tmp_path)
    params = json.loads((tmp_path / "AudioSet_melspec_meta" / "params.json").read_text())
    assert params["source"] == str(tmp_path / "data")


def test_folder_from_control_yaml(tmp_path: Path, monkeypatch, capsys) -> None:
    job = tmp_path / "job"
    make_dataset(job / "data")
    (job / "control.yaml").write_text("paths:\n  output_dir: data\n" + SMALL)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for name in WORKFLOW:
        assert main([name, "--config", str(job / "control.yaml"), "-q"]) == 0, capsys.readouterr().err
    assert all(_outputs(job).values()), _outputs(job)
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("name", DATASET_COMMANDS)
def test_no_folder_and_no_control_yaml_is_one_clear_message(name: str, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([name, "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: which dataset?") and f"audioset-tools {name} AudioSet_Data" in err
    assert "--config" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_set_output_dir_names_the_folder_too(tmp_path: Path, monkeypatch, capsys) -> None:
    make_dataset(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "--set", "paths.output_dir=data", "-q"]) == 0
    assert "dataset is intact" in capsys.readouterr().out


def test_stats_of_a_dataset_refuses_arrays_made_from_another(tmp_path: Path, monkeypatch, capsys) -> None:
    make_dataset(tmp_path / "first")
    make_dataset(tmp_path / "second")
    monkeypatch.chdir(tmp_path)
    assert main(["melspec", "first", "-q", "--set", "postprocess.workers=1"]) == 0
    for name in ("stats", "pack"):
        assert main([name, "second", "-q"]) == 2
        err = capsys.readouterr().err
        assert f"made from {tmp_path / 'first'}, not from second" in err and "Traceback" not in err
    assert not (tmp_path / "AudioSet_melspec_meta" / "stats.json").exists()
    assert main(["stats", "first", "-q"]) == 0


def test_a_command_imports_only_its_own_libraries() -> None:
    """download (and its --dry-run) must not pay for the report's matplotlib or melspec's scipy."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from audioset_tools.cli import main\n"
        "try:\n    main(['download', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('matplotlib', 'scipy', 'audioset_tools.download.report') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"
