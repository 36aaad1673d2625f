"""Bad input to get_relevant_meta_data.py: one clear message, exit code 2, nothing written.

Each case starts from a working setup (the miniature official-format metadata and a valid
control.yaml), breaks one thing, runs the script's ``main(argv)`` and checks the message on
stderr, the exit code, and that no file was created or changed anywhere in the job folder.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import get_relevant_meta_data
from audioset_tools.select.metadata import official

FIXTURES = Path(__file__).parent / "fixtures" / "metadata"
GOOD_CONFIG = """\
seed: 0
paths:
  metadata_dir: metadata
  meta_dir: meta
selection:
  quality_threshold: 0.8
splits:
  train: 0.7
  val: 0.1
  test: 0.2
"""


@dataclass(frozen=True)
class Case:
    config: str = GOOD_CONFIG
    args: tuple[str, ...] = ()
    breaks: Callable[[Path], None] | None = None  # damages the metadata folder
    messages: tuple[str, ...] = ()


def _replace(name: str, content: bytes | str) -> Callable[[Path], None]:
    def apply(metadata: Path) -> None:
        data = content.encode() if isinstance(content, str) else content
        (metadata / name).write_bytes(data)

    return apply


def _append_row(row: str) -> Callable[[Path], None]:
    def apply(metadata: Path) -> None:
        path = metadata / "eval_segments.csv"
        path.write_text(path.read_text() + row)

    return apply


def _delete(name: str) -> Callable[[Path], None]:
    return lambda metadata: (metadata / name).unlink()


def _gzip_corrupt(metadata: Path) -> None:
    (metadata / "balanced_train_segments.csv").unlink()
    (metadata / "balanced_train_segments.csv.gz").write_bytes(gzip.compress(b"x" * 100)[:20])


CASES = {
    "unknown top-level key": Case(
        config=GOOD_CONFIG + "sed: 3\n", messages=("control.yaml", "sed: unknown key", "Allowed here: seed, paths")
    ),
    "unknown nested key (original tool's name)": Case(
        config=GOOD_CONFIG.replace("selection:\n", "selection:\n  leafs: true\n"),
        messages=("selection.leafs: unknown key", "leaf_only"),
    ),
    "wrong type": Case(
        config=GOOD_CONFIG.replace("selection:\n", "selection:\n  leaf_only: sometimes\n"),
        messages=("selection.leaf_only", "'sometimes'"),
    ),
    "threshold above 1": Case(
        config=GOOD_CONFIG.replace("quality_threshold: 0.8", "quality_threshold: 1.5"),
        messages=("selection.quality_threshold", "less than or equal to 1", "1.5"),
    ),
    "negative threshold via --set": Case(
        args=("--set", "selection.quality_threshold=-0.1"),
        messages=("selection.quality_threshold", "greater than or equal to 0", "-0.1"),
    ),
    "split proportions not summing to 1": Case(
        config=GOOD_CONFIG.replace("train: 0.7", "train: 0.8"),
        messages=("splits", "must sum to 1, got 1.1"),
    ),
    "start_index after end_index": Case(
        config=GOOD_CONFIG + "download:\n  start_index: 5\n  end_index: 2\n",
        messages=("download", "start_index (5) must not exceed end_index (2)"),
    ),
    "negative count": Case(
        config=GOOD_CONFIG.replace("selection:\n", "selection:\n  min_candidates: -3\n"),
        messages=("selection.min_candidates", "greater than or equal to 0", "-3"),
    ),
    "unknown subset name": Case(
        config=GOOD_CONFIG.replace("selection:\n", "selection:\n  subsets: [balanced, training]\n"),
        messages=("selection.subsets.1", "'balanced', 'unbalanced' or 'eval'", "'training'"),
    ),
    "unknown label policy": Case(
        args=("--set", "selection.label_policy=some"),
        messages=("selection.label_policy", "'any' or 'exclusive'", "'some'"),
    ),
    "YAML syntax error": Case(
        config=GOOD_CONFIG.replace("  meta_dir: meta\n", "  meta_dir: [meta\n"),
        messages=("control.yaml", "not valid YAML at line"),
    ),
    "top level is not a mapping": Case(config="- seed\n- paths\n", messages=("top level must be a mapping",)),
    "malformed --set": Case(args=("--set", "download.workers"), messages=("expected dotted.key=value",)),
    "missing config file": Case(args=("--config", "nowhere/control.yaml"), messages=("config file not found",)),
    "unknown class in include": Case(
        config=GOOD_CONFIG.replace("selection:\n", "selection:\n  include: [Alpah]\n"),
        messages=("selection.include", "'Alpah'", "Did you mean: 'Alpha'"),
    ),
    "no class passes the rules": Case(
        args=("--set", "selection.min_candidates=1000"),
        messages=("no class passes the selection rules", "too_few_candidates 4"),
    ),
    "ontology.json truncated": Case(
        breaks=_replace("ontology.json", (FIXTURES / "ontology.json").read_text()[:300]),
        messages=("ontology.json: not valid JSON at line", "Replace it with the published file"),
    ),
    "quality file with impossible counts": Case(
        breaks=_replace("qa_true_counts.csv", "label_id,num_rated,num_true\n/m/a,10,9\n/m/d,3,7\n"),
        messages=("qa_true_counts.csv, line 3", "num_true (7) exceeds num_rated (3)"),
    ),
    "malformed segment row with strict": Case(
        args=("--set", "selection.strict=true"),
        breaks=_append_row('abc, 1.000, 0.500, "/m/a"\n'),
        messages=("eval_segments.csv, line 7", "YTID 'abc'", "not after start_seconds", "selection.strict"),
    ),
    "missing metadata file, offline": Case(
        breaks=_delete("qa_true_counts.csv"),
        messages=("qa_true_counts.csv is missing from", "http://127.0.0.1:9/qa_true_counts.csv", "and put it at"),
    ),
    "empty segment file": Case(
        breaks=_replace("unbalanced_train_segments.csv", b""),
        messages=("unbalanced_train_segments.csv: cannot be read as a segment CSV", "Empty CSV file"),
    ),
    "corrupt gzip copy": Case(breaks=_gzip_corrupt, messages=("balanced_train_segments.csv.gz: not a valid gzip",)),
    "segment file not UTF-8": Case(
        # A latin-1 byte in an otherwise UTF-8 file.
        breaks=_replace(
            "eval_segments.csv", (FIXTURES / "eval_segments.csv").read_bytes() + b'caf\xe9cafecaf, 1, 2, "/m/a"\n'
        ),
        messages=("eval_segments.csv, line 7: not UTF-8",),
    ),
}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_message_exit_2_and_writes_nothing(name, tmp_path, capsys, monkeypatch):
    case = CASES[name]
    # Any fetch goes to a closed local port: the test never touches the internet.
    for file_name in official.OFFICIAL_URLS:
        monkeypatch.setitem(official.OFFICIAL_URLS, file_name, f"http://127.0.0.1:9/{file_name}")
    metadata = tmp_path / "metadata"
    shutil.copytree(FIXTURES, metadata, ignore=shutil.ignore_patterns("README.md"))
    if case.breaks is not None:
        case.breaks(metadata)
    (tmp_path / "control.yaml").write_text(case.config)
    before = _snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)

    code = get_relevant_meta_data.main(["--config", "control.yaml", *case.args])

    captured = capsys.readouterr()
    assert code == 2
    errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, captured.err
    assert "Traceback" not in captured.err
    for expected in case.messages:
        assert expected in captured.err, f"{expected!r} not in {captured.err!r}"
    assert captured.out == ""
    assert _snapshot(tmp_path) == before
    assert not (tmp_path / "meta").exists()


def test_matrix_is_large_enough():
    assert len(CASES) >= 15


def test_the_good_setup_itself_succeeds(tmp_path, capsys, monkeypatch):
    """The baseline every bad case breaks: proves the failures come from the breakage."""
    shutil.copytree(FIXTURES, tmp_path / "metadata")
    (tmp_path / "control.yaml").write_text(GOOD_CONFIG)
    monkeypatch.chdir(tmp_path)
    assert get_relevant_meta_data.main([]) == 0
    out = capsys.readouterr().out
    assert "Selected 4 classes of 11 ontology nodes" in out
    assert "removed 2 clips" in out
    assert "Malformed metadata rows skipped: 0" in out
    assert (tmp_path / "meta" / "candidates.csv").is_file()


def test_malformed_rows_are_skipped_counted_and_listed_by_default(tmp_path, capsys, monkeypatch):
    shutil.copytree(FIXTURES, tmp_path / "metadata")
    _append_row('abc, 1.000, 0.500, "/m/a"\nddddddddddX, 0.000, 10.000, "/m/d"\n')(tmp_path / "metadata")
    (tmp_path / "control.yaml").write_text(GOOD_CONFIG)
    monkeypatch.chdir(tmp_path)
    assert get_relevant_meta_data.main(["-q"]) == 0
    captured = capsys.readouterr()
    assert "Malformed metadata rows skipped: 1" in captured.out
    assert "eval_segments.csv, line 7" in captured.err
    listed = (tmp_path / "meta" / "malformed_rows.csv").read_text().splitlines()
    assert listed[0] == "file,line,reason" and listed[1].startswith("eval_segments.csv,7,")
    assert "ddddddddddX" in (tmp_path / "meta" / "candidates.csv").read_text()
