"""Issue 9, items 4 and 5: a hostile server during resolve is a recorded per-clip outcome, bounded in time and bytes.

Every test runs the real CLI (download_data.py) against the local media server, through
real yt-dlp and ffmpeg. Hangs are caught by generous subprocess timeouts that a fixed run
never comes near; nothing here asserts how fast anything is.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_download_helpers import assert_manifests_equal_disk, write_config, write_meta

import download_data

REPO = Path(__file__).resolve().parents[1]
CLASSES = [("/m/a", "Speech")]
# Only reached when a run hangs, which is the failure these tests look for.
HANG = 120.0


@pytest.fixture(autouse=True)
def _script_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))


def _world(tmp_path: Path, media_server, tone_sources, hostile: str, behaviour: str, **server_options) -> None:
    """One class: the hostile ID ranks first, two good clips follow."""
    media_server.add(hostile, tone_sources.webm, behaviour, **server_options)
    good = ["goodclip001", "goodclip002"]
    for ytid in good:
        media_server.add(ytid, tone_sources.webm)
    rows = {"/m/a": [(hostile, 0.0, 2.0)] + [(ytid, 1.0, 3.0) for ytid in good]}
    write_meta(tmp_path / "meta", CLASSES, rows)


def _outcomes(out: Path, ytid: str) -> list[tuple[str, str]]:
    with sqlite3.connect(out / "ledger.sqlite3") as db:
        return db.execute("SELECT outcome, message FROM attempts WHERE ytid = ?", (ytid,)).fetchall()


def _start(config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPO / "download_data.py"), "--config", str(config), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_redirect_to_a_file_url_is_a_recorded_outcome(tmp_path, media_server, tone_sources, capsys):
    _world(tmp_path, media_server, tone_sources, "redirfile00", "redirect_file")
    config = write_config(tmp_path, media_server.url_template())
    assert download_data.main(["--config", str(config), "-q"]) == 0
    manifest = assert_manifests_equal_disk(tmp_path / "out")
    assert sorted(manifest["ytid"]) == ["goodclip001", "goodclip002"]
    [(outcome, message)] = _outcomes(tmp_path / "out", "redirfile00")
    assert outcome == "decode_error" and "do not follow" in message
    # A rerun does not crash at the same clip either: it is a known failure now.
    assert download_data.main(["--config", str(config), "-q"]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_headers_trickled_one_byte_at_a_time_cannot_hang_a_resolve(tmp_path, media_server, tone_sources):
    # Every byte arrives well within socket_timeout, so only an overall deadline stops it.
    _world(tmp_path, media_server, tone_sources, "trickle0001", "slow_headers", trickle_interval=0.2)
    config = write_config(tmp_path, media_server.url_template(), socket_timeout=5.0, resolve_timeout=1.0)
    process = _start(config)
    try:
        _, stderr = process.communicate(timeout=HANG)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    manifest = assert_manifests_equal_disk(tmp_path / "out")
    assert sorted(manifest["ytid"]) == ["goodclip001", "goodclip002"]
    outcomes = _outcomes(tmp_path / "out", "trickle0001")
    assert [o for o, _ in outcomes] == ["transient"] and "resolving gave up" in outcomes[0][1]


def test_an_endless_html_page_is_cut_off(tmp_path, media_server, tone_sources):
    from audioset_tools.sources.youtube.resolve import MAX_RESPONSE_BYTES

    flood = 8 * MAX_RESPONSE_BYTES
    _world(tmp_path, media_server, tone_sources, "htmlflood01", "html_flood", flood_bytes=flood)
    config = write_config(tmp_path, media_server.url_template(), socket_timeout=20.0)
    assert download_data.main(["--config", str(config), "-q"]) == 0
    manifest = assert_manifests_equal_disk(tmp_path / "out")
    assert sorted(manifest["ytid"]) == ["goodclip001", "goodclip002"]
    [(outcome, message)] = _outcomes(tmp_path / "out", "htmlflood01")
    assert outcome == "decode_error" and "MiB while resolving" in message
    # What the server pushed is the cap plus what socket buffers hold, far from the whole page.
    assert media_server.stats("htmlflood01").bytes_sent < 2 * MAX_RESPONSE_BYTES


def _read_lines(stream, lines: list[str], seen: threading.Event, needle: str) -> None:
    for line in stream:
        lines.append(line)
        if needle in line:
            seen.set()


def _ctrl_c_twice(config, ready, never_ready: str) -> tuple[int, str]:
    """Run download_data.py, press Ctrl-C once ``ready()`` holds, again at the prompt; (exit code, stderr)."""
    process = _start(config)
    lines: list[str] = []
    prompted = threading.Event()
    reader = threading.Thread(target=_read_lines, args=(process.stderr, lines, prompted, "Ctrl-C again"), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + HANG
        while not ready():
            assert process.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, never_ready
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        assert prompted.wait(HANG), "".join(lines)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=HANG)
        reader.join(HANG)
    finally:
        process.kill()
    return process.returncode, "".join(lines)


def test_ctrl_c_works_while_a_resolve_is_stuck(tmp_path, media_server, tone_sources):
    _world(tmp_path, media_server, tone_sources, "trickle0001", "slow_headers", trickle_interval=0.2)
    # A deadline far away: the resolve really is stuck when the user presses Ctrl-C.
    config = write_config(tmp_path, media_server.url_template(), socket_timeout=5.0, resolve_timeout=3600.0)
    code, stderr = _ctrl_c_twice(config, lambda: media_server.stats("trickle0001").bytes_sent >= 2,
                                 "the stuck resolve never started")
    assert code == 130, stderr
    assert "Traceback" not in stderr
    # The prompt came while the resolve was stuck: nothing was fetched yet, and the manifests are written.
    assert not (tmp_path / "out" / "Speech").exists() or not any((tmp_path / "out" / "Speech").glob("*.wav"))
    assert (tmp_path / "out" / "manifest.csv").exists()


def test_second_ctrl_c_stops_an_ffmpeg_reading_from_a_stalled_server(tmp_path, media_server, tone_sources):
    from audioset_tools.sources.base import is_partial_file

    # The resolving GET passes (headers only); ffmpeg's reads then hang for the whole
    # socket_timeout, several times over with reconnects: far beyond HANG.
    _world(tmp_path, media_server, tone_sources, "stalled0001", "stall", stall_after=2000, stall_seconds=3600)
    config = write_config(tmp_path, media_server.url_template(), socket_timeout=600.0)
    out = tmp_path / "out"
    code, stderr = _ctrl_c_twice(config, lambda: any(record.range for record in media_server.stats("stalled0001").log),
                                 "ffmpeg never started reading")
    assert code == 130, stderr
    assert "Traceback" not in stderr
    assert not any(is_partial_file(p) for p in out.rglob("*"))
    assert (out / "manifest.csv").exists()
