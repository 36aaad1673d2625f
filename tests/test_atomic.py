"""Atomic writes: all or nothing under the final name, normal permissions, no leftovers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from audioset_tools.atomic import (
    atomic_open,
    atomic_write_bytes,
    atomic_write_text,
    is_temporary,
)


def test_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_failure_keeps_old_content_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "wb") as handle:
            handle.write(b"half of the new")
            raise RuntimeError("crash mid-write")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_finished_file_gets_umask_permissions_not_mkstemp_0600(tmp_path: Path) -> None:
    target = tmp_path / "shared.csv"
    atomic_write_text(target, "a,b\n")
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask


def test_temporary_names_are_recognisable(tmp_path: Path) -> None:
    target = tmp_path / "manifest.csv"
    with atomic_open(target) as handle:
        handle.write("x")
        temporaries = [p for p in tmp_path.iterdir() if p != target]
        assert len(temporaries) == 1 and is_temporary(temporaries[0])
    assert not is_temporary(target)
