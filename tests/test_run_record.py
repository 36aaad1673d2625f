"""The tooling of every run, in the ledger (runs table, attempts.run_id) and in _reports/run.json."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from test_download_helpers import assert_manifests_equal_disk, write_config, write_meta

import download_data
from audioset_tools.download.ledger import LEDGER_NAME, Ledger
from audioset_tools.download.run_record import run_record_path
from audioset_tools.sources.youtube.ytdlp_tooling import tooling_versions

REPO = Path(__file__).resolve().parents[1]
# Written by the ledger code of commit ed93480 (before the runs table): one clip, one dead video.
OLD_LEDGER = Path(__file__).parent / "fixtures" / "ledger_before_runs.sqlite3"


@pytest.fixture(autouse=True)
def _script_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_an_existing_ledger_is_migrated_in_place_and_keeps_its_records(tmp_path):
    path = tmp_path / LEDGER_NAME
    shutil.copy(OLD_LEDGER, path)
    assert "runs" not in _tables(path)
    # Read-only, an old ledger is read as it is: no runs, nothing written.
    with Ledger(path, read_only=True) as ledger:
        assert ledger.runs() == [] and [c.ytid for c in ledger.clips()] == ["abcdefghijk"]
    assert "runs" not in _tables(path)

    with Ledger(path) as ledger:
        assert [c.ytid for c in ledger.clips()] == ["abcdefghijk"]
        assert ledger.known_failure("deadvideo00", 0, 2000).outcome == "unavailable"
        run_id = ledger.begin_run("download", {"yt_dlp": "2026.10.26", "yt_dlp_ejs": "0.8.0"})
        clip = ledger.clips()[0]
        ledger.record_attempt(_ok_attempt(clip), clip)
        ledger.finish_run(0, {"ok": 1})
        runs = ledger.runs()
    assert "runs" in _tables(path)
    assert [(r["id"], r["yt_dlp"], r["yt_dlp_ejs"], r["exit_code"], r["outcomes"]) for r in runs] == [
        (run_id, "2026.10.26", "0.8.0", 0, {"ok": 1})
    ]
    # The clip's newest ok attempt belongs to that run; the old attempts keep no run.
    assert runs[0]["clips_kept"] == 1
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT run_id FROM attempts ORDER BY id").fetchall() == [(None,), (None,), (run_id,)]
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("2",)


def _ok_attempt(clip):
    from audioset_tools.download.ledger import Attempt

    return Attempt(
        ytid=clip.ytid, start_ms=1000, end_ms=3000, class_index=0, mid=clip.mid, folder="Speech", rank=0,
        outcome="ok", message="again", attempts=1, started_at="2026-12-01T00:00:00Z",
        finished_at="2026-12-01T00:00:01Z", file=clip.file, sha256=clip.sha256, duration=2.0, sample_rate=16000,
        channels=1,
    )


def test_every_run_is_recorded_with_its_tooling(tmp_path, media_server, tone_sources):
    rows = {"/m/a": []}
    for n in range(3):
        ytid = f"runrec{n:05d}"
        media_server.add(ytid, tone_sources.webm, "404" if n == 0 else "ok")
        rows["/m/a"].append((ytid, float(n), float(n) + 2.0))
    write_meta(tmp_path / "meta", [("/m/a", "Speech")], rows)
    config = write_config(tmp_path, media_server.url_template(), samples_per_class=1)
    assert download_data.main(["--config", str(config), "-q"]) == 0
    assert download_data.main(["--config", str(config), "-q", "--set", "download.samples_per_class=2"]) == 0
    out = tmp_path / "out"
    assert_manifests_equal_disk(out)

    record = json.loads(run_record_path(out).read_text())
    versions = tooling_versions()
    assert record["format"] == 1 and len(record["runs"]) == 2 and record["latest"] == record["runs"][-1]
    for run in record["runs"]:
        assert (run["command"], run["yt_dlp"], run["yt_dlp_ejs"], run["exit_code"]) == (
            "download", versions["yt_dlp"], versions["yt_dlp_ejs"], 0
        )
        assert run["finished_at"] >= run["started_at"]
    assert [r["outcomes"] for r in record["runs"]] == [{"ok": 1, "unavailable": 1}, {"ok": 1}]
    assert [r["clips_kept"] for r in record["runs"]] == [1, 1]
    # Not at the root, where Hugging Face datasets would read it as a split.
    assert run_record_path(out).parent.name == "_reports"
    assert not list(out.glob("*.json"))
