"""The shared CSV readers and the formats built on them refuse bad files with one clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from audioset_tools.dataset.quarantine import quarantine_list_path, read_quarantine_list
from audioset_tools.errors import UserError
from audioset_tools.post.derived import read_index
from audioset_tools.tables import raise_if_errors, read_csv_rows, read_text_frame


def test_rows_carry_their_line_numbers_and_bad_field_counts(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n\n3\n4,5\n")
    table = read_csv_rows(path, ["a"], "table", "expected a,b")
    assert [line for line, _ in table.rows] == [2, 5]
    assert table.rows[1][1] == {"a": "4", "b": "5"}
    assert table.errors == [(4, f"{path}:4: expected 2 fields, found 1")]


def test_missing_columns_repeated_header_and_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,c\n")
    with pytest.raises(UserError, match=r"not a table, missing column\(s\): b\n  expected a,b"):
        read_csv_rows(path, ["a", "b"], "table", "expected a,b")
    path.write_text("a,a\n")
    with pytest.raises(UserError, match="repeated column names"):
        read_csv_rows(path, ["a"], "table", "")
    path.write_bytes(b"a\n\xff\n")
    with pytest.raises(UserError, match="cannot read the table"):
        read_csv_rows(path, ["a"], "table", "")
    with pytest.raises(UserError, match="table not found"):
        read_csv_rows(tmp_path / "none.csv", ["a"], "table", "")


def test_errors_are_reported_in_line_order_and_capped(tmp_path: Path) -> None:
    errors = [(line, f"line {line}") for line in range(30, 5, -1)]
    with pytest.raises(UserError) as info:
        raise_if_errors(errors, "invalid table")
    lines = info.value.message.splitlines()
    assert lines[0] == "invalid table:"
    assert lines[1].strip() == "line 6" and lines[20].strip() == "line 25"
    assert lines[-1].strip() == "... and 5 more problem(s)"
    raise_if_errors([], "never raised")


def test_text_frame_keeps_text_and_names_the_remedy(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b\nNA,\n")
    frame = read_text_frame(path, ["a", "b"], "table", "rerun it")
    assert frame.to_dict("records") == [{"a": "NA", "b": ""}]
    with pytest.raises(UserError, match=r"the table lacks column\(s\) c; rerun it"):
        read_text_frame(path, ["a", "c"], "table", "rerun it")


def test_index_and_quarantine_list_use_them(tmp_path: Path) -> None:
    index = tmp_path / "index.csv"
    index.write_text("class_index,file\n0,x.npy\n")
    with pytest.raises(UserError, match=r"the index lacks column\(s\) mid.*rerun audioset-tools melspec"):
        read_index(index, "audioset-tools melspec")
    listing = quarantine_list_path(tmp_path)
    listing.parent.mkdir()
    listing.write_text("file,reason\nA/x.wav,silent\n")
    with pytest.raises(UserError, match="the quarantine list lacks column.*fix it or move it aside"):
        read_quarantine_list(tmp_path)
