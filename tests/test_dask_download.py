"""download_data.py on Dask workers (extra [dask]) against the local media server.

The dataset must be the threads executor's (workers: 1) byte for byte, whatever happens to
the workers or the coordinator; only the coordinator writes the output folder.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import yaml
from test_executors import dask_missing, separate_cluster  # noqa: F401  (a fixture)
from test_sources_e2e import (  # noqa: F401  (video: a fixture)
    _config,
    _dataset_digest,
    _download,
    _world,
    kill_9_after_clips,
    video,
)

pytestmark = pytest.mark.skipif(dask_missing() is not None, reason=str(dask_missing()))

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _script_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))


def _youtube_only(folder: Path, server, **download) -> Path:
    return _config(folder, server, [{"kind": "youtube"}], **download)


def _planned(tmp_path: Path, name: str, server, video: Path, **download) -> Path:  # noqa: F811
    """A fresh folder with the selection outputs and a YouTube-only control.yaml; returns the config."""
    folder = tmp_path / name
    folder.mkdir()
    _world(folder, server, video)
    return _youtube_only(folder, server, **download)


def _reference(tmp_path: Path, server, video: Path) -> dict[str, str]:  # noqa: F811
    config = _planned(tmp_path, "threads", server, video, workers=1)
    assert _download(config) == 0
    return _dataset_digest(config.parent / "out")


def test_a_local_cluster_builds_the_threads_dataset(tmp_path, media_server, video):  # noqa: F811
    reference = _reference(tmp_path, media_server, video)
    config = _planned(tmp_path, "dask", media_server, video, workers=2, executor="dask")
    assert _download(config) == 0
    assert _dataset_digest(config.parent / "out") == reference
    runs = json.loads((config.parent / "out" / "_reports" / "run.json").read_text())["runs"]
    assert runs[-1]["exit_code"] == 0


def test_a_separate_scheduler_and_workers_build_the_same_dataset(tmp_path, media_server, video,  # noqa: F811
                                                                 separate_cluster):  # noqa: F811
    address, _ = separate_cluster
    reference = _reference(tmp_path, media_server, video)
    config = _planned(tmp_path, "cluster", media_server, video, executor="dask", dask={"scheduler": address})
    assert _download(config) == 0
    assert _dataset_digest(config.parent / "out") == reference


def test_a_worker_killed_mid_run_changes_nothing(tmp_path, video, monkeypatch):  # noqa: F811
    """The killed worker's clip is tried again (the nanny restarts the process); nothing it half-made remains."""
    from media_server import MediaServer

    from audioset_tools.download import slots

    with MediaServer(latency=0.05) as server:
        reference = _reference(tmp_path, server, video)
        config = _planned(tmp_path, "killed-worker", server, video, workers=2, executor="dask")
        killed = []
        real_run = slots._run_on_worker

        # Once, as the first clip goes to a worker: kill -9 one of the worker processes.
        lock = threading.Lock()

        def run_and_kill(executor, identity, fn, job, *args):
            with lock:
                if not killed:
                    pids = executor._client.run(os.getpid)
                    killed.append(next(iter(pids.values())))
                    os.kill(killed[0], signal.SIGKILL)
            return real_run(executor, identity, fn, job, *args)

        monkeypatch.setattr(slots, "_run_on_worker", run_and_kill)
        assert _download(config) == 0
        assert killed
        assert _dataset_digest(config.parent / "out") == reference


def test_kill_9_of_the_coordinator_then_a_rerun_with_threads(tmp_path, video):  # noqa: F811
    from media_server import MediaServer

    with MediaServer(latency=0.05) as server:
        reference = _reference(tmp_path, server, video)
        config = _planned(tmp_path, "killed", server, video, workers=2, executor="dask")
        out = config.parent / "out"
        kill_9_after_clips(config, out)
        threads = yaml.safe_load(config.read_text())
        threads["download"]["executor"] = "threads"
        config.write_text(yaml.safe_dump(threads))
        assert _download(config) == 0
        assert _dataset_digest(out) == reference


def test_doctor_lists_the_dask_workers_and_their_addresses(tmp_path, media_server, separate_cluster,  # noqa: F811
                                                           capsys):
    from audioset_tools.cli import main

    address, _ = separate_cluster
    config = _youtube_only(tmp_path, media_server, executor="dask", dask={"scheduler": address})
    deadline = time.monotonic() + 60
    while True:
        capsys.readouterr()
        code = main(["doctor", "--config", str(config)])
        shown = capsys.readouterr().out
        if shown.count("Dask worker tcp://127.0.0.1:") == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert code == 0, shown
    assert f"{address}: 2 worker(s) on 1 address(es)" in shown
    assert shown.count("address 127.0.0.1, 1 thread(s); audioset-tools") == 2

    unreachable = _youtube_only(tmp_path, media_server, executor="dask", dask={"scheduler": "tcp://127.0.0.1:9"})
    assert main(["doctor", "--config", str(unreachable)]) == 1
    assert "download.dask.scheduler" in capsys.readouterr().out


def test_workers_sharing_the_output_folder_write_in_place_and_give_the_same_dataset(tmp_path, media_server,  # noqa: F811
                                                                                    video, monkeypatch):
    from audioset_tools.download import slots

    reference = _reference(tmp_path, media_server, video)
    placed_by_coordinator = []
    monkeypatch.setattr(slots, "place_clip", lambda *args: placed_by_coordinator.append(args))
    config = _planned(tmp_path, "shared", media_server, video, workers=2, executor="dask",
                      dask={"shared_output_dir": True})
    assert _download(config) == 0
    assert _dataset_digest(config.parent / "out") == reference
    assert placed_by_coordinator == [], "with a shared folder no clip travels back as bytes"


def test_a_clip_that_differs_from_what_its_worker_reported_is_refused(tmp_path):
    """The coordinator checks a worker's clip in the shared folder: other bytes are a transient failure."""
    import soundfile

    from audioset_tools.download.slots import check_placed_clip, place_clip
    from audioset_tools.sources.base import ClipJob, ClipResult
    from audioset_tools.sources.outcomes import Outcome

    job = ClipJob("abcdefghijk", 0.0, 1.0, tmp_path / "A" / "abcdefghijk_0.wav")
    job.target.parent.mkdir()
    soundfile.write(job.target, [[0.0]] * 16000, 16000, subtype="PCM_16")
    claimed = ClipResult(Outcome.OK, "", 1, file=job.target, sha256="0" * 64, duration=1.0, sample_rate=16000,
                         channels=1)
    refused = check_placed_clip(job, claimed)
    assert refused.outcome is Outcome.TRANSIENT and "checksum" in refused.message and not job.target.exists()
    # Bytes sent back that are not what the worker hashed are refused the same way, and nothing is placed.
    assert place_clip(job, claimed, b"RIFF not the clip").outcome is Outcome.TRANSIENT and not job.target.exists()
