"""Tests that need something optional skip with a reason that says what is missing and how to get it."""

from __future__ import annotations

import ast
from pathlib import Path

import conftest

TESTS = Path(__file__).resolve().parent


def test_missing_metadata_reason_says_what_the_folder_is_and_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(conftest, "SHARED_AUDIOSET", tmp_path / "shared" / "audioset")
    reason = conftest.missing_real_metadata()
    assert "../shared/audioset" in reason and "official AudioSet metadata" in reason and "is absent" in reason
    assert "https://github.com/audioset/ontology" in reason and "storage.googleapis.com/us_audioset" in reason
    (tmp_path / "shared" / "audioset").mkdir(parents=True)
    for name in conftest.OFFICIAL_FILES[:-1]:
        (tmp_path / "shared" / "audioset" / name).write_text("x")
    assert "lacks eval_segments.csv" in conftest.missing_real_metadata()
    (tmp_path / "shared" / "audioset" / "eval_segments.csv").write_text("x")
    assert conftest.missing_real_metadata() is None


def test_no_test_module_imports_torch_at_module_level():
    """A bare 'import torch' would be a collection error without the [torch] extra."""
    for path in TESTS.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n == "torch" or n.startswith("torch.") or n == "audioset_tools.loaders.torch_data"
                           for n in names) or "importorskip" in path.read_text(), path.name
