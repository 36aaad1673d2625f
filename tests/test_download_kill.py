"""kill -9 of download_data.py at several moments, then a rerun: the dataset equals an uninterrupted run's."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_download_helpers import (
    assert_manifests_equal_disk,
    audio_files,
    write_config,
    write_meta,
)

from audioset_tools.sources.base import is_partial_file

REPO = Path(__file__).resolve().parents[1]
CLASSES = [("/m/a", "Speech"), ("/m/b", "Music"), ("/m/c", "Dog, bark")]
DEAD = {"k0clip00001", "k1clip00000", "k1clip00003", "k2clip00004"}
POLL = 0.005
# Generous: only reached when a run hangs, which is itself the failure being tested for.
DEADLINE = 120.0


def _start(config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPO / "download_data.py"), "--config", str(config), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _kill_when(process: subprocess.Popen, condition) -> bool:
    """SIGKILL ``process`` as soon as ``condition()`` holds; False if it finished first."""
    deadline = time.monotonic() + DEADLINE
    while process.poll() is None and time.monotonic() < deadline:
        if condition():
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(POLL)
    process.communicate(timeout=DEADLINE)
    return False


def _partials(out: Path) -> bool:
    return out.exists() and any(is_partial_file(p) for p in out.rglob("*"))


@pytest.fixture
def world(tmp_path, tone_sources):
    from media_server import MediaServer

    # A little latency per response, so a kill can land while ffmpeg is mid-clip.
    with MediaServer(latency=0.03) as server:
        rows = {}
        for c, (mid, _) in enumerate(CLASSES):
            rows[mid] = []
            for n in range(6):
                yt = f"k{c}clip{n:05d}"
                server.add(yt, tone_sources.webm if n % 2 else tone_sources.m4a, "404" if yt in DEAD else "ok")
                rows[mid].append((yt, float(2 * n), float(2 * n) + 2.5))
        yield server, rows


def _setup(folder: Path, server, rows) -> Path:
    folder.mkdir()
    write_meta(folder / "meta", CLASSES, rows)
    # A long timeout: a transient failure under CPU load would change availability, not test resume.
    return write_config(folder, server.url_template(), samples_per_class=3, workers=2, socket_timeout=20.0)


def _unexpected_outcomes(out: Path) -> list[tuple]:
    with sqlite3.connect(out / "ledger.sqlite3") as db:
        return db.execute(
            "SELECT ytid, outcome, message FROM attempts WHERE outcome NOT IN ('ok', 'unavailable', 'discarded')"
        ).fetchall()


def test_kill_9_at_several_points_then_resume(tmp_path, world):
    server, rows = world
    reference_config = _setup(tmp_path / "reference", server, rows)
    done = subprocess.run(
        [sys.executable, str(REPO / "download_data.py"), "--config", str(reference_config), "-q"],
        capture_output=True, text=True, timeout=DEADLINE,
    )
    assert done.returncode == 0, done.stderr
    reference = tmp_path / "reference" / "out"
    assert_manifests_equal_disk(reference)

    config = _setup(tmp_path / "killed", server, rows)
    out = tmp_path / "killed" / "out"
    kill_points = [
        ("as soon as the ledger exists", lambda: (out / "ledger.sqlite3").exists()),
        ("while a clip is half written", lambda: _partials(out)),
        ("after 2 clips", lambda: len(audio_files(out)) >= 2 if out.exists() else False),
        ("while a clip is half written again", lambda: _partials(out)),
        ("after a class manifest", lambda: any(out.glob("*/manifest.csv"))),
        ("after 7 clips", lambda: len(audio_files(out)) >= 7 if out.exists() else False),
    ]
    killed = []
    for name, condition in kill_points:
        if _kill_when(_start(config), condition):
            killed.append(name)
    # Most points must really have interrupted a run, or the test proves nothing.
    assert len(killed) >= 4, killed

    final = _start(config)
    stdout, stderr = final.communicate(timeout=DEADLINE)
    assert final.returncode == 0, stderr
    assert _unexpected_outcomes(out) == [] and _unexpected_outcomes(reference) == []
    manifest = assert_manifests_equal_disk(out)
    assert not any(is_partial_file(p) for p in out.rglob("*"))
    assert (out / "manifest.csv").read_bytes() == (reference / "manifest.csv").read_bytes()
    for folder in sorted({f.split("/")[0] for f in manifest["file"]}):
        assert (out / folder / "manifest.csv").read_bytes() == (reference / folder / "manifest.csv").read_bytes()
    assert audio_files(out) == audio_files(reference)


def test_ctrl_c_keeps_finished_work_and_true_manifests(tmp_path, world):
    server, rows = world
    config = _setup(tmp_path / "interrupted", server, rows)
    out = tmp_path / "interrupted" / "out"
    process = _start(config)
    deadline = time.monotonic() + DEADLINE
    while process.poll() is None and len(audio_files(out) if out.exists() else ()) < 2:
        assert time.monotonic() < deadline
        time.sleep(POLL)
    if process.poll() is not None:
        pytest.fail("the run finished before it could be interrupted")
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=DEADLINE)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert "INTERRUPTED" in stdout
    manifest = assert_manifests_equal_disk(out)
    assert len(manifest) >= 2
