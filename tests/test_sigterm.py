"""Issue 9, item 6: SIGTERM (kill, systemd, SLURM, Docker) gets the graceful stop of the first Ctrl-C.

A real download_data.py process is sent SIGTERM while ffmpeg is mid-clip: it must write
its manifests, let its ffmpeg children end, leave no partial file and remove the private
cookie copies from its temporary folder, then exit 143.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_download_helpers import assert_manifests_equal_disk, write_config, write_meta

from audioset_tools.sources.base import is_partial_file

REPO = Path(__file__).resolve().parents[1]
# Only reached when a run hangs, which is itself a failure.
HANG = 120.0


def _ffmpeg_processes_under(folder: Path) -> list[str]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                line = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue
            if "ffmpeg" in line and str(folder) in line:
                found.append(line)
    return found


def _sigterm_mid_clip(argv: list[str], folder: Path, **popen) -> tuple[int, str, str]:
    """Start ``argv``, send SIGTERM once a clip of ``folder`` is in flight, return (code, stdout, stderr)."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
    try:
        deadline = time.monotonic() + HANG
        while not (folder.exists() and any(is_partial_file(p) for p in folder.rglob("*"))):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no clip was ever in flight"
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=HANG)
    finally:
        process.kill()
    return process.returncode, stdout, stderr


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux /proc to look for orphaned ffmpeg processes")
def test_sigterm_stops_like_the_first_ctrl_c(tmp_path, tone_sources):
    from media_server import MediaServer

    # Latency keeps each clip in flight long enough for the signal to land mid-clip.
    with MediaServer(latency=0.3) as server:
        ytids = [f"term{n:07d}" for n in range(12)]
        for ytid in ytids:
            server.add(ytid, tone_sources.webm)
        write_meta(tmp_path / "meta", [("/m/a", "Speech")], {"/m/a": [(y, 1.0, 3.5) for y in ytids]})
        cookies = tmp_path / "cookies.txt"
        cookies.write_text("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t2000000000\tSID\tvalue\n")
        config = write_config(tmp_path, server.url_template(), samples_per_class=12, workers=2,
                              cookies_file=str(cookies), socket_timeout=20.0)
        private_tmp = tmp_path / "tmp"
        private_tmp.mkdir()
        out = tmp_path / "out"
        process = subprocess.Popen(
            [sys.executable, str(REPO / "download_data.py"), "--config", str(config), "-q"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(private_tmp)},
        )
        try:
            deadline = time.monotonic() + HANG
            while not (out.exists() and any(is_partial_file(p) for p in out.rglob("*"))):
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "no clip was ever in flight"
                time.sleep(0.01)
            assert any(private_tmp.iterdir()), "the run made no private cookie copy"
            process.send_signal(signal.SIGTERM)
            stdout, stderr = process.communicate(timeout=HANG)
        finally:
            process.kill()
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr and "TERMINATED" in stdout
    manifest = assert_manifests_equal_disk(out)
    assert 0 < len(manifest) < 12
    assert not any(is_partial_file(p) for p in out.rglob("*"))
    assert list(private_tmp.iterdir()) == []
    assert _ffmpeg_processes_under(out) == []


def _downloaded(tmp_path: Path, server, tone_sources, prefix: str) -> Path:
    """Download a 6-clip dataset into tmp_path/out from ``server``; return its control.yaml."""
    import download_data

    sys.path.insert(0, str(REPO))
    ytids = [f"{prefix}{n:07d}" for n in range(6)]
    for ytid in ytids:
        server.add(ytid, tone_sources.webm)
    write_meta(tmp_path / "meta", [("/m/a", "Speech")], {"/m/a": [(y, 1.0, 3.5) for y in ytids]})
    config = write_config(tmp_path, server.url_template(), samples_per_class=6, workers=2, socket_timeout=20.0)
    assert download_data.main(["--config", str(config), "-q"]) == 0
    return config


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux /proc to look for orphaned ffmpeg processes")
def test_sigterm_stops_a_rebuild_gracefully_too(tmp_path, tone_sources):
    from media_server import MediaServer

    with MediaServer(latency=0.3) as server:
        config = _downloaded(tmp_path, server, tone_sources, "rter")
        rebuilt = tmp_path / "rebuilt"
        code, stdout, stderr = _sigterm_mid_clip(
            [sys.executable, str(REPO / "rebuild_from_manifest.py"), "--manifest", str(tmp_path / "out" / "manifest.csv"),
             "--output", str(rebuilt), "--config", str(config), "-q"],
            rebuilt,
        )
    assert code == 143, stderr
    assert "Traceback" not in stderr
    assert 0 < len(assert_manifests_equal_disk(rebuilt)) < 6
    assert _ffmpeg_processes_under(rebuilt) == []


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux /proc to look for orphaned ffmpeg processes")
def test_sigterm_stops_validate_repair_like_a_rebuild(tmp_path, tone_sources):
    from media_server import MediaServer

    with MediaServer(latency=0.3) as server:
        config = _downloaded(tmp_path, server, tone_sources, "vrep")
        out = tmp_path / "out"
        for clip in list(out.rglob("*.wav")):
            clip.unlink()  # every clip missing: the repair has all of them to fetch again
        code, stdout, stderr = _sigterm_mid_clip(
            [sys.executable, "-m", "audioset_tools", "validate", str(out), "--repair", "--config", str(config), "-q"],
            out, cwd=REPO,
        )
    assert code == 143, (stdout, stderr)
    assert "Traceback" not in stderr
    assert len(assert_manifests_equal_disk(out)) < 6
    assert _ffmpeg_processes_under(out) == []
