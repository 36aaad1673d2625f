"""download --dry-run over an existing output folder of thousands of clips: right counts, no file created or changed.

The folder is hashed (every path and every byte) and listed before and after; the ledger's
-shm / -wal side files are the usual way a read-only SQLite reader leaves a trace.
(Speed is measured by benchmarks/bench_dry_run.py, not asserted here.)
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from output_factory import populate_output
from test_download_helpers import write_config, write_meta, ytid

import download_data
import get_relevant_meta_data
from audioset_tools.config import load_config
from audioset_tools.download.job import slice_plans
from audioset_tools.download.ledger import LEDGER_NAME, Ledger

REPO = Path(__file__).resolve().parents[1]
CLASSES = [("/m/a", "Speech"), ("/m/b", "Music"), ("/m/c", "Dog"), ("/m/d", "Cat")]


@pytest.fixture(autouse=True)
def _script_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))


def snapshot(root: Path) -> tuple[str, list[str]]:
    listing = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    digest = hashlib.sha256()
    for name in listing:
        digest.update(name.encode() + b"\0")
        if (root / name).is_file():
            digest.update((root / name).read_bytes())
    return digest.hexdigest(), listing


def _job(tmp_path: Path, per_class: int = 1500) -> Path:
    rows = {
        mid: [(ytid(f"c{c}", n), float(n % 50), float(n % 50) + 10.0) for n in range(per_class)]
        for c, (mid, _) in enumerate(CLASSES)
    }
    write_meta(tmp_path / "meta", CLASSES, rows)
    # Nothing may be fetched: a dry run that reached the network would fail here.
    return write_config(tmp_path, "http://127.0.0.1:9/{ytid}", samples_per_class=1000)


def test_dry_run_over_thousands_of_clips_counts_them_and_changes_nothing(tmp_path, capsys):
    config = _job(tmp_path)
    plans = slice_plans(load_config(config))
    assert populate_output(tmp_path / "out", plans, clips_per_class=800, failed_per_class=50) == 3200
    (tmp_path / "out" / plans[0].candidates[0].file).unlink()  # recorded, but gone from disk
    before = snapshot(tmp_path)
    assert not [name for name in before[1] if name.endswith(("-shm", "-wal"))]

    assert download_data.main(["--config", str(config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert snapshot(tmp_path) == before
    assert "[0] Speech -> Speech/  done 799/1000, would fetch 201, 450 more in reserve, 50 known failed" in out
    assert "[1] Music -> Music/  done 800/1000, would fetch 200, 450 more in reserve, 50 known failed" in out
    assert "dry run: 4 classes, 801 clips to fetch at least" in out
    # The gone clip is the first to fetch again; the known failures are skipped, then the rest in rank order.
    speech = out.split("[1] Music")[0].splitlines()
    assert plans[0].candidates[0].ytid in speech[1]
    assert plans[0].candidates[850].ytid in speech[2]

    assert download_data.main(["--config", str(config), "--dry-run", "--retry-failed"]) == 0
    assert "would fetch 201, 500 more in reserve, 0 known failed" in capsys.readouterr().out
    assert snapshot(tmp_path) == before


def test_dry_run_reads_the_rows_of_a_ledger_still_open_for_writing(tmp_path, capsys):
    """A download running (or killed) leaves its last rows in ledger.sqlite3-wal: they count."""
    config = _job(tmp_path, per_class=20)
    plans = slice_plans(load_config(config))
    populate_output(tmp_path / "out", plans, clips_per_class=3, failed_per_class=0)
    with Ledger(tmp_path / "out" / LEDGER_NAME) as writer:  # keeps -wal and -shm in place
        populate_output(tmp_path / "out", plans[:1], clips_per_class=5, failed_per_class=0)
        listing = snapshot(tmp_path / "out")[1]
        assert f"{LEDGER_NAME}-wal" in listing
        assert download_data.main(["--config", str(config), "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert "[0] Speech -> Speech/  done 5/1000" in out and "[1] Music -> Music/  done 3/1000" in out
        assert snapshot(tmp_path / "out")[1] == listing
        assert writer.clip(plans[0].candidates[4].file) is not None


def test_dry_run_of_the_full_default_plan_on_the_real_metadata(real_metadata, tmp_path, capsys):
    (tmp_path / "control.yaml").write_text(
        f"paths:\n  metadata_dir: {real_metadata}\n  meta_dir: MetaData\n  output_dir: AudioSet_Data\n"
        "download:\n  url_template: 'http://127.0.0.1:9/{ytid}'\n"
    )
    config = str(tmp_path / "control.yaml")
    assert get_relevant_meta_data.main(["--config", config, "-q"]) == 0
    plans = slice_plans(load_config(config))
    assert len(plans) == 142 and sum(len(p.candidates) for p in plans) == 405_355  # 10 s segments only (selection.segment_seconds)
    # 20 clips in the first 71 classes, 5 in the others (target 10): 1,775 clips on disk.
    clips = populate_output(tmp_path / "AudioSet_Data", plans[:71], 20, 5)
    clips += populate_output(tmp_path / "AudioSet_Data", plans[71:], 5, 5)
    assert clips == 1775
    capsys.readouterr()
    before = snapshot(tmp_path)
    assert download_data.main(["--config", config, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert snapshot(tmp_path) == before
    assert out.count("done 10/10, would fetch 0") == 71 and out.count("done 5/10, would fetch 5") == 71
    assert "dry run: 142 classes, 355 clips to fetch at least" in out
