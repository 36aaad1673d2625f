"""The repository's .gitignore covers every folder the tool writes by default next to control.yaml."""

from __future__ import annotations

from pathlib import Path

from audioset_tools.config import Config

REPO = Path(__file__).resolve().parents[1]


def _default_folders(model) -> list[Path]:
    found = []
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, Path):
            found.append(value)
        elif hasattr(type(value), "model_fields"):
            found.extend(_default_folders(value))
    return found


def test_every_default_output_folder_is_ignored():
    folders = _default_folders(Config())
    # metadata, MetaData, AudioSet_Data and the three derived folders at least.
    assert len(folders) >= 6
    patterns = {line.strip() for line in (REPO / ".gitignore").read_text().splitlines()}
    for folder in folders:
        assert f"/{folder.as_posix()}/" in patterns, f"{folder} is not in .gitignore"
