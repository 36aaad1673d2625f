"""``audioset-tools demo``: the whole job offline on the built-in miniature AudioSet.

The demo runs the real commands, yt-dlp and ffmpeg against its own 127.0.0.1 server, so
these tests are end to end; each full run takes several seconds.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audioset_tools.cli import main
from audioset_tools.dataset.manifest import read_manifest
from audioset_tools.dataset.quarantine import read_quarantine_list
from audioset_tools.demo import catalog, episodes, steps
from audioset_tools.demo.server import DemoMediaServer, parse_range
from audioset_tools.download.ledger import LEDGER_NAME, Ledger

STEP_NAMES = ["media"] + [name for name, _ in steps.STEPS]
# 7 classes x 3 clips, minus Growling's missing third (its candidates run out), minus the silent one.
CLIPS_AFTER_CLEAN = 19


def check_demo_folder(folder: Path) -> None:
    """What every step must have left in a finished demo folder."""
    assert (folder / steps.MARKER).is_file()
    assert (folder / "control.yaml").is_file()
    # select
    classes = pd.read_csv(folder / "MetaData" / "suitable_classes.csv")
    assert list(classes["name"]) == ["Bark", "Howl", "Growling", "Purr", "Meow", "Chirp, tweet", "Coo"]
    # download: each planted failure recorded with its outcome, the flaky video recovered by a retry
    with Ledger(folder / "AudioSet_Data" / LEDGER_NAME, read_only=True) as ledger:
        latest = ledger.latest_outcomes()
    outcomes = dict(zip(latest["ytid"], latest["outcome"]))
    assert outcomes["demoBark005"] == "unavailable"
    assert outcomes["demoHowl003"] == "forbidden"
    assert outcomes["demoPurr002"] == "decode_error"
    assert outcomes["demoChrp004"] == "too_short"
    assert outcomes["demoCoo0001"] == "ok"
    # clean: the silent clip is quarantined and out of the manifest
    quarantined = read_quarantine_list(folder / "AudioSet_Data")
    assert list(quarantined["ytid"]) == ["demoMeow002"]
    manifest = read_manifest(folder / "AudioSet_Data" / "manifest.csv")
    assert len(manifest) == CLIPS_AFTER_CLEAN
    assert "demoMeow002" not in set(manifest["ytid"])
    # validate (the second run, after clean): no problem rows
    assert len(pd.read_csv(folder / "AudioSet_Data" / "_reports" / "validation.csv")) == 0
    # report
    assert (folder / "AudioSet_Data" / "report" / "summary.md").is_file()
    # melspec, stats, pack
    index = pd.read_csv(folder / "AudioSet_melspec_meta" / "index.csv")
    assert len(index) == CLIPS_AFTER_CLEAN
    stats = json.loads((folder / "AudioSet_melspec_meta" / "stats.json").read_text())
    assert stats["splits"] == ["train"]
    train = np.load(folder / "AudioSet_packed" / "melspec" / "train.npy", mmap_mode="r")
    assert train.shape == (15, 128, 313)
    assert np.isfinite(train).all()


def test_demo_through_the_cli_checks_every_step(tmp_path, capsys) -> None:
    folder = tmp_path / "demo"
    assert main(["demo", "--output", str(folder)]) == 0
    out = capsys.readouterr().out
    for number, name in enumerate(STEP_NAMES, start=1):
        assert f"== {number}/{len(STEP_NAMES)} {name}" in out
    assert out.count("   -> ") == len(STEP_NAMES)
    assert "demo passed" in out
    assert f"everything is in {folder.resolve()}" in out
    check_demo_folder(folder)


def test_demo_in_a_subprocess_with_output(tmp_path) -> None:
    folder = tmp_path / "out"
    completed = subprocess.run(
        [sys.executable, "-m", "audioset_tools", "demo", "--output", str(folder)],
        capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "demo passed" in completed.stdout
    assert "Traceback" not in completed.stderr
    check_demo_folder(folder)
    # Nothing outside the named folder: the working directory holds only it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_default_run_uses_a_temporary_folder_and_removes_it_and_works_without_torch(
    tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(episodes, "torch_available", lambda: False)
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "numpy on the packed arrays" in out
    assert "support [5, 128, 313], query [10, 128, 313]" in out
    assert "removed " in out
    assert list(tmp_path.iterdir()) == []


def test_keep_keeps_the_temporary_folder(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    # Only the first steps: folder handling does not need the whole job.
    monkeypatch.setattr(steps, "STEPS", steps.STEPS[:1])
    assert main(["demo", "--keep"]) == 0
    (kept,) = tmp_path.iterdir()
    assert kept.name.startswith("audioset-tools-demo-")
    assert (kept / "MetaData" / "suitable_classes.csv").is_file()
    assert f"everything is in {kept}" in capsys.readouterr().out


def test_a_broken_step_is_named_exits_1_and_keeps_the_folder(tmp_path, monkeypatch, capsys) -> None:
    # The download check compares the ledger with the catalog: expect the forbidden video to be ok.
    monkeypatch.setitem(catalog.EXPECTED_OUTCOME, catalog.FORBIDDEN, "ok")
    monkeypatch.setattr(steps, "STEPS", steps.STEPS[:3])
    folder = tmp_path / "demo"
    assert main(["demo", "--output", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "demo FAILED at step 'download': unexpected download outcomes: demoHowl003: forbidden (expected ok)" in out
    assert f"kept for inspection: {folder.resolve()}" in out
    assert (folder / "AudioSet_Data" / "manifest.csv").is_file()


def test_a_missing_ffmpeg_fails_the_first_step(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("AUDIOSET_TOOLS_FFMPEG", str(tmp_path / "no-such-ffmpeg"))
    assert main(["demo", "--output", str(tmp_path / "demo")]) == 1
    out = capsys.readouterr().out
    assert "demo FAILED at step 'media'" in out
    assert "no-such-ffmpeg" in out


def test_a_foreign_non_empty_folder_is_refused_untouched(tmp_path, capsys) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("precious")
    assert main(["demo", "--output", str(folder)]) == 2
    assert "not empty and not an earlier demo's" in capsys.readouterr().err
    assert [p.name for p in folder.iterdir()] == ["thesis.tex"]


def test_an_earlier_demo_folder_is_cleared_and_reused(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(steps, "STEPS", steps.STEPS[:1])
    folder = tmp_path / "demo"
    assert main(["demo", "--output", str(folder)]) == 0
    (folder / "MetaData" / "stale.csv").write_text("x")
    assert main(["demo", "--output", str(folder)]) == 0
    assert not (folder / "MetaData" / "stale.csv").exists()
    assert (folder / "MetaData" / "suitable_classes.csv").is_file()


def test_the_metadata_ships_in_the_official_formats() -> None:
    folder = catalog.metadata_folder()
    for name in catalog.METADATA_FILE_NAMES:
        assert (folder / name).is_file(), name
    for name in catalog.METADATA_FILE_NAMES[2:]:
        lines = (folder / name).read_text().splitlines()
        assert lines[0].startswith("# Segments csv created ")
        assert lines[2] == "# YTID, start_seconds, end_seconds, positive_labels"
        assert lines[1] == (
            f"# num_ytids={len(lines) - 3}, num_segs={len(lines) - 3}, "
            + lines[1].split(", ", 2)[2]
        )
    ontology = json.loads((folder / "ontology.json").read_text())
    ids = {node["id"] for node in ontology}
    assert all(child in ids for node in ontology for child in node["child_ids"])


# -- the demo's media server ------------------------------------------------------------------

def _get(url: str, headers: dict[str, str] | None = None):
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10)


def test_server_answers_ranges_with_206_and_content_range(tmp_path) -> None:
    source = tmp_path / "a.webm"
    source.write_bytes(bytes(range(256)) * 4)
    with DemoMediaServer(lambda ytid: (source, "ok") if ytid == "demoBark001" else None) as server:
        with _get(server.base_url + "/media/demoBark001.webm", {"Range": "bytes=10-19"}) as response:
            assert response.status == 206
            assert response.headers["Content-Range"] == "bytes 10-19/1024"
            assert response.headers["Content-Type"] == "audio/webm"
            assert response.read() == source.read_bytes()[10:20]
        with _get(server.base_url + "/media/demoBark001.webm") as response:
            assert response.status == 200
            assert response.headers["Accept-Ranges"] == "bytes"
            assert response.read() == source.read_bytes()
        with pytest.raises(urllib.error.HTTPError) as info:
            _get(server.base_url + "/media/demoBark001.webm", {"Range": "bytes=5000-"})
        assert info.value.code == 416
        with pytest.raises(urllib.error.HTTPError) as info:
            _get(server.base_url + "/media/demoNone001.webm")
        assert info.value.code == 404


def test_server_behaviours(tmp_path) -> None:
    source = tmp_path / "a.webm"
    source.write_bytes(b"0123456789" * 100)
    table = {"demoForb001": "403", "demoFlak001": "500_once", "demoCorr001": "corrupt"}
    with DemoMediaServer(lambda ytid: (source, table[ytid]) if ytid in table else None) as server:
        with pytest.raises(urllib.error.HTTPError) as info:
            _get(server.url_template().format(ytid="demoForb001"))
        assert info.value.code == 403
        with pytest.raises(urllib.error.HTTPError) as info:
            _get(server.url_template().format(ytid="demoFlak001"))
        assert info.value.code == 500
        with _get(server.url_template().format(ytid="demoFlak001")) as response:
            assert response.read() == source.read_bytes()
        assert server.requests("demoFlak001") == 2
        with _get(server.url_template().format(ytid="demoCorr001")) as response:
            body = response.read()
        assert len(body) == 1000 and body != source.read_bytes()


@pytest.mark.parametrize(
    ("header", "expected"),
    [("bytes=0-9", (0, 9)), ("bytes=90-", (90, 99)), ("bytes=-10", (90, 99)), ("bytes=95-200", (95, 99)),
     ("bytes=100-", None), ("bytes=-0", None), ("bytes=5-2", None), ("items=0-1", None), ("bytes=0-1,4-5", None)],
)
def test_parse_range(header: str, expected) -> None:
    assert parse_range(header, 100) == expected


# -- episodes without torch -------------------------------------------------------------------

@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="compares with the [torch] extra's sampler")
def test_numpy_episodes_draw_exactly_what_the_torch_sampler_draws() -> None:
    from audioset_tools.loaders.torch_data import EpisodeSampler

    labels = np.repeat(np.arange(6), [3, 4, 2, 5, 3, 3])
    for seed in (0, 7):
        assert episodes.draw_episodes(labels, 4, 1, 2, 5, seed=seed) == list(
            EpisodeSampler(labels, 4, 1, 2, 5, seed=seed)
        )


def test_numpy_episodes_are_class_major_and_disjoint() -> None:
    labels = np.repeat(np.arange(5), 4)
    for drawn in episodes.draw_episodes(labels, 3, 2, 2, 10, seed=1):
        supports, queries = drawn[:6], drawn[6:]
        assert not set(supports) & set(queries)
        assert [labels[i] for i in supports][::2] == [labels[i] for i in queries][::2]
    with pytest.raises(ValueError, match="6-way episode needs 6"):
        episodes.draw_episodes(labels, 6, 1, 1, 1)


def test_the_demo_needs_no_control_yaml_and_ignores_one_in_the_working_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "control.yaml").write_text("this: [is not valid")
    monkeypatch.setattr(steps, "STEPS", steps.STEPS[:1])
    assert main(["demo", "--output", str(tmp_path / "demo")]) == 0
    assert os.listdir(tmp_path / "demo" / "MetaData")


def test_a_proxy_in_the_environment_does_not_capture_the_demo_server(tmp_path, monkeypatch, capsys) -> None:
    port = socket_port_nobody_listens_on()
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(steps, "STEPS", steps.STEPS[:2])
    before = {name: os.environ.get(name) for name in ("no_proxy", "NO_PROXY")}
    assert main(["demo", "--output", str(tmp_path / "demo")]) == 0, capsys.readouterr().out
    assert {name: os.environ.get(name) for name in ("no_proxy", "NO_PROXY")} == before  # restored


def socket_port_nobody_listens_on() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_set_reaches_every_step_and_config_is_refused(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(steps, "STEPS", steps.STEPS[:1])
    folder = tmp_path / "demo"
    # A rule that keeps fewer classes reaches select: the demo's check then names the step.
    assert main(["demo", "--output", str(folder), "--set", "selection.quality_threshold=0.95"]) == 1
    assert "demo FAILED at step 'select': expected 7 suitable classes from the demo metadata, got 2" in (
        capsys.readouterr().out
    )
    assert main(["demo", "--config", str(tmp_path / "control.yaml")]) == 2
    assert "drop --config" in capsys.readouterr().err
