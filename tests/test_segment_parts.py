"""A large segment file is cut into parts parsed in parallel: the result must not depend on it.

The cut only happens above a size threshold, so these tests lower it (and the block size)
to make small files go through several parts and several batches per part.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audioset_tools.errors import UserError
from audioset_tools.select.metadata import read_ontology, read_segments
from audioset_tools.select.metadata import segments as segments_module

FIXTURES = Path(__file__).parent / "fixtures" / "metadata"
HEADER = (
    "# Segments csv created Sun Mar  5 10:54:31 2017\n"
    "# num_ytids=1, num_segs=1, num_unique_labels=1, num_positive_labels=1\n"
    "# YTID, start_seconds, end_seconds, positive_labels\n"
)
LABELS = ['"/m/a"', '"/m/d,/m/a"', '"/m/root"', '"/m/a,/m/root"']
BAD = {
    7: 'short1, 30.000, 40.000, "/m/a"',
    40: 'aaaaaaaaa40, 40.000, 30.000, "/m/a"',
    41: "aaaaaaaaa41, 0.000, 10.000",
    77: 'aaaaaaaaa77, 0.000, 10.000, "/m/nope"',
    78: "",
    79: "# a comment in the middle",
    118: 'aaaaaaaaa18, x, 10.000, "/m/a"',
    119: 'aaaaaaaaa19, 0.000, 10.000, "/m/a", "/m/d"',
}


@pytest.fixture(scope="module")
def ontology():
    return read_ontology(FIXTURES / "ontology.json")


def body_lines(count: int) -> list[str]:
    """Numbered by file line (the header has 3 lines), some of them malformed."""
    lines = []
    for line in range(4, 4 + count):
        lines.append(BAD.get(line, f"a{line:010d}, {line}.500, {line + 10}.000, {LABELS[line % len(LABELS)]}"))
    return lines


def force_parts(monkeypatch, parts: int) -> None:
    monkeypatch.setattr(segments_module, "_MIN_PART", 64)
    monkeypatch.setattr(segments_module, "_WORKERS", parts)
    monkeypatch.setattr(segments_module, "_BLOCK_SIZE", 512)


def read_as_text(segments, ontology) -> dict:
    rows = np.flatnonzero(segments.valid)
    return {
        "valid": segments.valid.tolist(),
        "start": segments.start[rows].tolist(),
        "end": segments.end[rows].tolist(),
        "ytids": segments.ytids(rows).to_pylist(),
        "labels": segments.labels_text(rows).to_pylist(),
        "codes": [[ontology.ids[c] for c in segments.labels_of(r)] for r in rows],
        "malformed": [(m.file, m.line, m.reason) for m in segments.malformed],
        "files": [(f.subset, f.rows, f.malformed, f.sha256) for f in segments.files],
    }


@pytest.mark.parametrize("parts", [2, 3])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_parts_give_the_same_segments_as_one_pass(tmp_path, ontology, monkeypatch, parts, newline):
    path = tmp_path / "unbalanced_train_segments.csv"
    # No final newline: the last part must still read its last row.
    path.write_bytes((HEADER + "\n".join(body_lines(130))).replace("\n", newline).encode())
    whole = read_as_text(read_segments({"unbalanced": path}, ontology.ids), ontology)

    force_parts(monkeypatch, parts)
    assert len(segments_module._split_lines(path.read_bytes(), parts)) == parts
    split = read_as_text(read_segments({"unbalanced": path}, ontology.ids), ontology)

    assert split == whole
    assert [line for _, line, _ in split["malformed"]] == [7, 40, 41, 77, 118, 119]
    assert split["ytids"][-1] == "a0000000133"


def test_rows_keep_file_order_across_parts_and_files(tmp_path, ontology, monkeypatch):
    big = tmp_path / "unbalanced_train_segments.csv"
    big.write_text(HEADER + "\n".join(body_lines(60)) + "\n")
    small = tmp_path / "eval_segments.csv"
    small.write_text(HEADER + 'zzzzzzzzzz1, 1.000, 2.000, "/m/a"\n')
    force_parts(monkeypatch, 2)
    segments = read_segments({"eval": small, "unbalanced": big}, ontology.ids)
    ytids = segments.ytids(np.flatnonzero(segments.valid)).to_pylist()
    assert ytids[-1] == "zzzzzzzzzz1"
    assert ytids[:-1] == sorted(ytids[:-1])  # the big file's rows, in line order


def test_non_utf8_in_a_later_part_names_its_line(tmp_path, ontology, monkeypatch):
    lines = body_lines(100)
    path = tmp_path / "unbalanced_train_segments.csv"
    data = (HEADER + "\n".join(lines[:90])).encode() + b'\naaaaaaaaa94, 1, 2, "/m/\xff"\n'
    path.write_bytes(data)
    force_parts(monkeypatch, 2)
    with pytest.raises(UserError, match=r"unbalanced_train_segments.csv, line 94: not UTF-8"):
        read_segments({"unbalanced": path}, ontology.ids)


@pytest.mark.parametrize("parts", [1, 2, 3, 7])
def test_split_lines_cuts_only_after_line_ends(monkeypatch, parts):
    monkeypatch.setattr(segments_module, "_MIN_PART", 16)
    data = b"".join(f"line {i} ".encode() * (i % 5 + 1) + b"\n" for i in range(50))
    pieces = segments_module._split_lines(data, parts)
    assert b"".join(bytes(p) for p in pieces) == data
    assert len(pieces) == parts
    assert all(bytes(p).endswith(b"\n") for p in pieces)


def test_split_lines_keeps_a_file_without_line_ends_whole(monkeypatch):
    monkeypatch.setattr(segments_module, "_MIN_PART", 16)
    data = b"x" * 1000
    assert [bytes(p) for p in segments_module._split_lines(data, 2)] == [data]
