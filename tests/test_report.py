"""report: non-empty PNG figures and a summary whose numbers come from the dataset."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import pytest
from dataset_factory import make_dataset

from audioset_tools.cli import main
from audioset_tools.download.ledger import LEDGER_NAME, Attempt, ClipRecord, Ledger
from audioset_tools.download.report import (
    AVAILABILITY_FIGURE,
    CLIPS_FIGURE,
    OUTCOMES_FIGURE,
    SUMMARY_NAME,
    build_report,
    write_report,
)
from audioset_tools.errors import UserError


def record(ledger: Ledger, row: dict | None, outcome: str, *, ytid: str = "", class_index: int = 0) -> None:
    ytid = row["ytid"] if row else ytid
    start_ms = int(row["start_seconds"] * 1000) if row else 0
    class_index = row["class_index"] if row else class_index
    attempt = Attempt(
        ytid=ytid, start_ms=start_ms, end_ms=start_ms + 2000, class_index=class_index, mid="/m/x",
        folder="f", rank=0, outcome=outcome, message=f"{outcome} message", attempts=1,
        started_at="2026-11-25T12:00:00Z", finished_at="2026-11-25T12:00:01Z",
        file=row["file"] if row and outcome == "ok" else None,
    )
    clip = None
    if outcome == "ok":
        clip = ClipRecord(rank=0, **{k: row[k] for k in ClipRecord.__dataclass_fields__ if k != "rank" and k in row})
    ledger.record_attempt(attempt, clip)


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100
    # Not a blank canvas: something was drawn.
    assert image.min() < image.max()


def test_report_with_ledger(tmp_path):
    root = tmp_path / "data"
    frame = make_dataset(root)
    with Ledger(root / LEDGER_NAME) as ledger:
        # A transient failure later fixed counts once, as ok; rate limits are not availability.
        record(ledger, frame.iloc[0].to_dict(), "transient")
        for row in frame.to_dict("records"):
            record(ledger, row, "ok")
        record(ledger, None, "unavailable", ytid="deadvideo01", class_index=2)
        record(ledger, None, "forbidden", ytid="deadvideo02", class_index=2)
        record(ledger, None, "rate_limited", ytid="slowvideo01", class_index=1)
    report = build_report(root)
    assert report.total_clips == 6
    assert report.total_seconds == pytest.approx(12.0)
    assert report.disk_bytes == sum((root / f).stat().st_size for f in frame["file"])
    assert dict(report.outcomes) == {"ok": 6, "unavailable": 1, "forbidden": 1, "rate_limited": 1}
    availability = report.availability.set_index("class_index")
    assert availability.loc[2, ["tried", "ok"]].tolist() == [4, 2]
    assert availability.loc[1, ["tried", "ok"]].tolist() == [2, 2]

    written = write_report(root)
    out = root / "report"
    assert [p.name for p in written] == [CLIPS_FIGURE, OUTCOMES_FIGURE, AVAILABILITY_FIGURE, SUMMARY_NAME]
    for name in (CLIPS_FIGURE, OUTCOMES_FIGURE, AVAILABILITY_FIGURE):
        assert_png(out / name)
    summary = (out / SUMMARY_NAME).read_text()
    assert "- Clips: 6 in 3 classes" in summary
    assert "0:00:12" in summary
    assert "| unavailable | 1 |" in summary
    assert "Availability: 75.0%" in summary
    assert "- Meow: 2/4 (50%)" in summary
    assert f"![{CLIPS_FIGURE}]({CLIPS_FIGURE})" in summary


def test_report_without_ledger_and_with_missing_file(tmp_path, monkeypatch, capsys):
    root = tmp_path / "data"
    frame = make_dataset(root, clips_per_class=3)
    (root / frame["file"][0]).unlink()
    out = tmp_path / "figures"
    monkeypatch.chdir(tmp_path)  # no control.yaml needed
    assert main(["report", str(root), "--out", str(out), "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [CLIPS_FIGURE, SUMMARY_NAME]
    assert_png(out / CLIPS_FIGURE)
    summary = (out / SUMMARY_NAME).read_text()
    assert "1 clip(s) listed in the manifest are not on disk" in summary
    assert "No download ledger" in summary
    assert "| train | 1 | 3 | 0:00:06 |" in summary
    assert str(out / SUMMARY_NAME) in capsys.readouterr().out


def test_report_is_reproducible(tmp_path):
    root = tmp_path / "data"
    make_dataset(root)
    first = {p.name: p.read_bytes() for p in write_report(root, tmp_path / "a")}
    second = {p.name: p.read_bytes() for p in write_report(root, tmp_path / "b")}
    assert first == second


def test_report_needs_a_manifest(tmp_path, capsys, monkeypatch):
    with pytest.raises(UserError, match="no manifest"):
        build_report(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(tmp_path), "-q"]) == 2
    assert "Traceback" not in capsys.readouterr().err
