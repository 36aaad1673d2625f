"""Issue 9, item 8: a full disk is not a network error.

The output folder lives on a real 1 MiB tmpfs (the test needs root to mount one and is
skipped, with that reason, when mounting is not permitted). The real CLI fills it: the run
must stop with its own message and exit code, keep an intact ledger, leave no partial
file, say the same on a rerun while the disk is still full (never "unreadable ledger"),
and finish normally once there is room again.
"""

from __future__ import annotations

import errno
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from test_download_helpers import assert_manifests_equal_disk, write_config, write_meta

import download_data
from audioset_tools.errors import EXIT_DISK_FULL
from audioset_tools.sources.base import is_partial_file

REPO = Path(__file__).resolve().parents[1]
CLIPS = 20


@pytest.fixture(autouse=True)
def _script_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()}); needs root")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _grow(disk: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)


def test_full_disk_stops_cleanly_and_resumes(tmp_path, small_disk, media_server, tone_sources, capsys):
    ytids = [f"full{n:07d}" for n in range(CLIPS)]
    for ytid in ytids:
        media_server.add(ytid, tone_sources.webm)
    write_meta(tmp_path / "meta", [("/m/a", "Speech")], {"/m/a": [(y, 1.0, 3.5) for y in ytids]})
    config = write_config(tmp_path, media_server.url_template(), samples_per_class=CLIPS, workers=2)
    out = small_disk / "out"
    argv = ["--config", str(config), "-q", "--set", f"paths.output_dir={out}"]

    assert download_data.main(argv) == EXIT_DISK_FULL
    captured = capsys.readouterr()
    assert "is full" in captured.err and "network" not in captured.err.lower()
    assert "Traceback" not in captured.err and "During handling" not in captured.err
    assert "network seems down" not in captured.out
    assert not any(is_partial_file(p) for p in out.rglob("*"))
    # The ledger is intact and agrees with the disk: every clip it holds is there.
    with sqlite3.connect(f"{(out / 'ledger.sqlite3').as_uri()}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        recorded = [row[0] for row in db.execute("SELECT file FROM clips")]
    assert all((out / file).stat().st_size > 0 for file in recorded)
    assert len(recorded) < CLIPS

    # Still full: the same clear stop, and the intact ledger is not called unreadable.
    assert download_data.main(argv) == EXIT_DISK_FULL
    captured = capsys.readouterr()
    assert "is full" in captured.err and "not a readable" not in captured.err and "Traceback" not in captured.err

    _grow(small_disk)
    assert download_data.main(argv) == 0
    assert len(assert_manifests_equal_disk(out)) == CLIPS


def test_enospc_from_the_write_layer_is_the_disk_full_stop(tmp_path, media_server, tone_sources, monkeypatch, capsys):
    # Where no tmpfs can be mounted this still proves the path: the manifest write fails with ENOSPC.
    from audioset_tools.download import runner

    for n in range(2):
        media_server.add(f"wfull{n:06d}", tone_sources.webm)
    write_meta(tmp_path / "meta", [("/m/a", "Speech")], {"/m/a": [(f"wfull{n:06d}", 1.0, 3.0) for n in range(2)]})
    config = write_config(tmp_path, media_server.url_template())

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out" / "manifest.csv"))

    monkeypatch.setattr(runner, "write_dataset_manifests", full)
    assert download_data.main(["--config", str(config), "-q"]) == EXIT_DISK_FULL
    err = capsys.readouterr().err
    assert "is full" in err and "Traceback" not in err and "During handling" not in err
    monkeypatch.undo()
    monkeypatch.syspath_prepend(str(REPO))
    assert download_data.main(["--config", str(config), "-q"]) == 0
    assert len(assert_manifests_equal_disk(tmp_path / "out")) == 2


def test_a_folder_that_is_a_file_is_one_line(tmp_path, capsys):
    write_meta(tmp_path / "meta", [("/m/a", "Speech")], {"/m/a": [("fileclip001", 1.0, 3.0)]})
    config = write_config(tmp_path, "http://127.0.0.1:9/{ytid}")
    (tmp_path / "out").write_text("I am a file")
    code = download_data.main(["--config", str(config), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.count("\n") == 1 and str(tmp_path / "out") in err


def test_subprocess_stops_with_exit_5(tmp_path, small_disk, media_server, tone_sources):
    # The exit status a shell, systemd or SLURM sees.
    ytids = [f"sfull{n:06d}" for n in range(CLIPS)]
    for ytid in ytids:
        media_server.add(ytid, tone_sources.webm)
    write_meta(tmp_path / "meta", [("/m/a", "Speech")], {"/m/a": [(y, 1.0, 3.5) for y in ytids]})
    config = write_config(tmp_path, media_server.url_template(), samples_per_class=CLIPS)
    done = subprocess.run(
        [sys.executable, str(REPO / "download_data.py"), "--config", str(config), "-q",
         "--set", f"paths.output_dir={small_disk / 'out'}"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == EXIT_DISK_FULL, done.stderr
    assert "Traceback" not in done.stderr


def test_doctor_warns_when_the_planned_clips_do_not_fit(tmp_path, small_disk, capsys):
    from audioset_tools.cli import main as cli_main

    classes = [(f"/m/{n}", f"Class {n}") for n in range(4)]
    write_meta(tmp_path / "meta", classes, {mid: [(f"doc{n:08d}", 0.0, 10.0)] for n, (mid, _) in enumerate(classes)})
    config = write_config(tmp_path, "http://127.0.0.1:9/{ytid}", samples_per_class=100)
    # 400 planned 10 s clips at 16 kHz take about 128 MiB; the disk has 1 MiB.
    assert cli_main(["doctor", "--config", str(config), "--output", str(small_disk)]) in (0, 1)
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "output folder" in line)
    assert line.startswith("[warn]") and "400 planned clips" in line
    # With room for them, the same check is ok.
    subprocess.run(["mount", "-o", "remount,size=512m", str(small_disk)], check=True)
    cli_main(["doctor", "--config", str(config), "--output", str(small_disk)])
    line = next(line for line in capsys.readouterr().out.splitlines() if "output folder" in line)
    assert line.startswith("[  ok]") and "enough for the 400 planned clips" in line


def test_ffmpeg_running_out_of_space_is_a_disk_full_error_not_a_clip_failure(small_disk, media_server, tone_sources,
                                                                           ffmpeg_exe):
    from audioset_tools.sources.base import ClipJob
    from audioset_tools.sources.youtube.clip import fetch_clip
    from audioset_tools.sources.youtube.settings import FetchSettings

    media_server.add("ffmpegfull1", tone_sources.webm)
    # Leave a few KiB: ffmpeg opens its output, then fails writing the samples.
    filler = small_disk / "filler"
    with filler.open("wb") as handle:
        try:
            handle.write(b"\0" * (1024 * 1024 - 8 * 1024))
        except OSError:
            pass
    settings = FetchSettings(url_template=media_server.url_template(), ffmpeg=ffmpeg_exe, max_retries=0)
    job = ClipJob("ffmpegfull1", 1.0, 9.0, small_disk / "Speech" / "ffmpegfull1_1000.wav")
    with pytest.raises(OSError) as raised:
        fetch_clip(job, settings)
    assert raised.value.errno == errno.ENOSPC
    assert not any(is_partial_file(p) for p in small_disk.rglob("*"))
