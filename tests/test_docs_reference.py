"""The committed configuration and CLI references match the code they are generated from."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def generator():
    spec = importlib.util.spec_from_file_location("docs_reference", REPO / "tools" / "docs_reference.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def pages(generator):
    return generator.rendered_pages()


def test_committed_references_are_up_to_date(generator, pages):
    stale = [
        name
        for name, text in pages.items()
        if not (generator.REFERENCE_DIR / name).is_file()
        or (generator.REFERENCE_DIR / name).read_text(encoding="utf-8") != text
    ]
    assert not stale, (
        f"docs/reference/{', docs/reference/'.join(stale)} out of date with the code; "
        f"regenerate with: {generator.REGENERATE}"
    )


def test_every_config_key_has_a_description(generator):
    missing = generator.undocumented_keys()
    assert not missing, (
        "config keys without Field(description=...) in audioset_tools/config.py: "
        + ", ".join(missing)
        + f"; add one (the comment from control.yaml), then run {generator.REGENERATE}"
    )


def _leaf_keys(mapping: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in mapping.items():
        if isinstance(value, dict):
            keys += _leaf_keys(value, f"{prefix}{key}.")
        else:
            keys.append(f"{prefix}{key}")
    return keys


def test_every_key_of_the_shipped_control_yaml_is_in_the_reference(generator, pages):
    shipped = yaml.safe_load((REPO / "control.yaml").read_text(encoding="utf-8"))
    documented = {doc.key for doc in generator.config_keys()}
    assert set(_leaf_keys(shipped)) <= documented
    for key in _leaf_keys(shipped):
        assert f"| `{key}` |" in pages["config.md"]


def test_config_reference_shows_defaults_and_allowed_values(pages):
    config_page = pages["config.md"]
    assert "| `download.workers` | integer | `1` | >= 1; <= 64 |" in config_page
    assert "| `selection.label_policy` | string | `exclusive` | one of any, exclusive |" in config_page
    assert "| `postprocess.melspec.fmax` | number or null | `null` | > 0.0; null |" in config_page


def test_cli_reference_lists_every_command_and_option(pages):
    from audioset_tools import cli

    cli_page = pages["cli.md"]
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, sub in subparsers.choices.items():
        assert f"## `audioset-tools {name}`" in cli_page
        for action in sub._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}" in cli_page or f", {option}`" in cli_page, (name, option)
    for script in ("get_relevant_meta_data.py", "download_data.py", "rebuild_from_manifest.py"):
        assert f"## `{script}`" in cli_page


def test_rendering_does_not_depend_on_the_terminal_width(generator, pages, monkeypatch):
    monkeypatch.setenv("COLUMNS", "37")
    assert generator.rendered_pages() == pages


def test_check_reports_a_stale_page(generator, pages, tmp_path):
    for name, text in pages.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert generator.stale_pages(tmp_path) == []
    (tmp_path / "cli.md").write_text(pages["cli.md"] + "edited by hand\n", encoding="utf-8")
    assert generator.stale_pages(tmp_path) == ["cli.md"]


def test_nested_lists_of_sections_and_mappings_are_documented(generator):
    # Keys other branches add (lists of source sections, mappings of extractor arguments)
    # must come out with their own rows rather than break the generator.
    from typing import Literal

    from pydantic import BaseModel, Field

    class Archive(BaseModel):
        kind: Literal["archive"] = Field("archive", description="an archive")
        path: str = Field(".", description="where it is")

    class Remote(BaseModel):
        kind: Literal["youtube"] = Field("youtube", description="the remote")

    class Section(BaseModel):
        sources: list[Archive | Remote] = Field(default_factory=lambda: [Remote()], description="tried in order")
        args: dict[str, list[str]] = Field(default_factory=dict, description="passed through")

    docs = {doc.key: doc for doc in generator.config_keys(Section)}
    assert list(docs) == [
        "sources", "sources[kind=archive].kind", "sources[kind=archive].path", "sources[kind=youtube].kind", "args"
    ]
    assert docs["sources"].default == "[{kind: youtube}]"
    assert docs["sources[kind=archive].kind"].allowed == "one of archive"
    assert docs["args"].type == "mapping of string to list of string"
