"""The README and docs/: short entry page, commands that work as written, links that resolve."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

from audioset_tools.config import Config

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DOCS = REPO / "docs"
TEST_COMMAND = "python3 -m venv .venv && .venv/bin/pip install -e '.[test,torch,hf,lhotse,dask,jobqueue]' && .venv/bin/python -m pytest"
DEMO_COMMAND = "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/audioset-tools demo"
REAL_RUN = ".venv/bin/python get_relevant_meta_data.py && .venv/bin/python download_data.py"

# Pages that other branches of this session write; the README links them already.
# Remove a name from this set once its page is merged.
PENDING_PAGES: set[str] = set()

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _pages() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def _code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.M | re.S)


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not line.startswith("#"):
            continue
        title = line.lstrip("#").strip().lower()
        anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= 250, f"README.md has {lines} lines; move detail into docs/ (limit 250)"


def test_readme_setup_commands_are_exact():
    blocks = _code_blocks(README.read_text(encoding="utf-8"), "bash")
    commands = [block.strip() for block in blocks]
    assert commands[0] == DEMO_COMMAND
    assert commands[1] == REAL_RUN
    # .ci/run parses the README's test command: keep it on a line of its own.
    assert TEST_COMMAND in commands


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_commands_work_without_an_activated_venv(page):
    for block in _code_blocks(page.read_text(encoding="utf-8"), "bash"):
        for line in block.splitlines():
            assert not re.match(r"(python|audioset-tools|pip) ", line), (
                f"{page.relative_to(REPO)}: {line!r} needs an activated venv; write .venv/bin/..."
            )


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page):
    problems = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        relative = linked.relative_to(REPO).as_posix() if linked.is_relative_to(REPO) else str(linked)
        if relative in PENDING_PAGES:
            continue
        if not linked.exists():
            problems.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked.read_text(encoding="utf-8")):
            problems.append(f"{target}: no heading with anchor #{anchor}")
    assert not problems, f"{page.relative_to(REPO)}: " + "; ".join(problems)


def test_gitignore_covers_every_folder_the_tool_writes_by_default():
    defaults = Config()
    folders = [
        defaults.paths.metadata_dir,
        defaults.paths.meta_dir,
        defaults.paths.output_dir,
        defaults.postprocess.npy_dir,
        defaults.postprocess.features_dir,
        defaults.postprocess.packed_dir,
    ]
    patterns = [
        line.strip().strip("/")
        for line in (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for folder in folders:
        assert any(fnmatch.fnmatch(folder.as_posix(), pattern) for pattern in patterns), (
            f"{folder}/ (a default output folder) is not in .gitignore"
        )


def _plain(text: str) -> str:
    return " ".join(text.replace("`", "").split())


def test_file_formats_page_lists_the_columns_the_code_writes():
    from audioset_tools.dataset.manifest import MANIFEST_COLUMNS
    from audioset_tools.dataset.quarantine import QUARANTINE_COLUMNS
    from audioset_tools.dataset.validate import DETAIL_COLUMNS
    from audioset_tools.download.rebuild import REPORT_COLUMNS
    from audioset_tools.download.unavailable import UNAVAILABLE_COLUMNS
    from audioset_tools.post.derived import INDEX_COLUMNS
    from audioset_tools.select import outputs as meta_outputs

    page = _plain((DOCS / "file-formats.md").read_text(encoding="utf-8"))
    exact = {
        "suitable_classes.csv": meta_outputs.SUITABLE_COLUMNS,
        "candidates.csv": meta_outputs.CANDIDATE_COLUMNS,
        "splits.csv": meta_outputs.SPLITS_COLUMNS,
        "malformed_rows.csv": meta_outputs.MALFORMED_COLUMNS,
        "manifest.csv": MANIFEST_COLUMNS,
        "quarantine.csv": QUARANTINE_COLUMNS,
        "rebuild_report.csv": REPORT_COLUMNS,
        "validation.csv": DETAIL_COLUMNS,
        "unavailable.csv": UNAVAILABLE_COLUMNS,
    }
    stale = [name for name, columns in exact.items() if ", ".join(columns) not in page]
    assert not stale, f"docs/file-formats.md: the columns of {', '.join(stale)} differ from the code"
    # index.csv explains each of its last columns; they must still come in the code's order.
    at = page.index("index.csv")
    for column in INDEX_COLUMNS:
        found = re.search(rf"\b{column}\b", page[at:])
        assert found, f"docs/file-formats.md: index.csv column {column} is not documented"
        at += found.end()


def test_architecture_module_map_names_every_module():
    """The contributors' module map is written by hand; it must at least name every module."""
    package = REPO / "audioset_tools"
    page = (DOCS / "architecture.md").read_text(encoding="utf-8")
    missing = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if path.name in ("__init__.py", "__main__.py") or relative.parts[0] == "commands":
            continue
        if len(relative.parts) == 1:
            names = [f"`{path.name}`"]
        else:
            names = [f"`{relative.parts[0]}/`", f"`{path.name}`"]
        if not all(name in page for name in names):
            missing.append(relative.as_posix())
    for folder in sorted(p for p in package.iterdir() if p.is_dir() and (p / "__init__.py").exists()):
        if f"`{folder.name}/`" not in page:
            missing.append(f"{folder.name}/")
    assert not missing, f"docs/architecture.md's module map does not mention: {', '.join(missing)}"
