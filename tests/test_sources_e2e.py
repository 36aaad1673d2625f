"""download_data.py with archives in front of YouTube (the local media server), end to end.

Every video is a 30 s time-encoded tone (tests/archive_media.py). The media server serves it
as a 16 kHz mono WAV; each archive holds some of the planned segments, written with the
real h5py / pyarrow / soundfile in the layouts users have on disk. So a clip must come out
exactly its segment whichever source made it, and a clip made from a 16 kHz archive is
byte for byte the clip YouTube's path makes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from archive_media import (
    encode,
    make_mp3_hdf5,
    make_panns_hdf5,
    make_parquet,
    tone,
    write_file,
)
from test_download_helpers import write_meta

from audioset_tools.dataset.manifest import MANIFEST_NAME, read_manifest

REPO = Path(__file__).resolve().parents[1]
pytest.importorskip("h5py", reason="HDF5 archives need the [archive] extra (h5py)")

CLASSES = [("/m/09x0r", "Speech"), ("/m/0jbk", "Animal")]
SEGMENT = 2.0
VIDEO_SECONDS = 30.0
PER_CLASS = 6
TARGET = 3


def _ytid(c: int, n: int) -> str:
    return f"arch{c}vid{n:03d}"


def _start(c: int, n: int) -> float:
    return float(1 + 3 * n + c)


# Per class: which candidates the archive holds; one of them too short (the next source gets it),
# and one video gone from YouTube that the archive does not hold (the next candidate replaces it).
IN_ARCHIVE = {(0, 0), (0, 1), (0, 2), (1, 1), (1, 4)}
SHORT_IN_ARCHIVE = {(0, 1)}
GONE_FROM_YOUTUBE = {(1, 0)}


@pytest.fixture(autouse=True)
def _script_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """The one source video every ytid serves: 30 s of the tone as 16 kHz mono int16 WAV."""
    return write_file(tmp_path_factory.mktemp("video") / "video.wav", tone(0.0, VIDEO_SECONDS, 16000), 16000)


def _world(tmp_path: Path, media_server, video: Path) -> None:
    rows = {}
    for c, (mid, _) in enumerate(CLASSES):
        rows[mid] = []
        for n in range(PER_CLASS):
            ytid = _ytid(c, n)
            media_server.add(ytid, video, "404" if (c, n) in GONE_FROM_YOUTUBE else "ok")
            rows[mid].append((ytid, _start(c, n), _start(c, n) + SEGMENT))
    write_meta(tmp_path / "meta", CLASSES, rows)


def _archive_clips(rate: int, channels: int = 1, keys=IN_ARCHIVE, short=SHORT_IN_ARCHIVE):
    """(ytid, start, samples) of each held clip: the segment's audio, starting at the segment's start."""
    for c, n in sorted(keys):
        seconds = SEGMENT / 2 if (c, n) in short else SEGMENT
        yield _ytid(c, n), _start(c, n), tone(_start(c, n), seconds, rate, channels)


def build_archive(layout: str, root: Path) -> Path:
    """One archive of the held clips in ``layout``; returns what download.sources' path names."""
    if layout == "folder":
        # Our own <ytid>_<start_ms> names, in a tree of subfolders as other tools leave them.
        for ytid, start, samples in _archive_clips(16000):
            write_file(root / "clips" / ytid[:5] / f"{ytid}_{int(start * 1000)}.wav", samples, 16000)
        return root / "clips"
    if layout == "panns":
        return make_panns_hdf5(root / "panns.h5", [(f"Y{y}.wav", s) for y, _, s in _archive_clips(32000)])
    if layout == "passt":
        return make_mp3_hdf5(root / "passt.h5", [(f"Y{y}.mp3", encode(s, 32000, "mp3"))
                                                 for y, _, s in _archive_clips(32000)])
    if layout == "parquet":
        return make_parquet(root / "mirror" / "train-00000.parquet",
                            [(y, encode(s, 48000, "flac")) for y, _, s in _archive_clips(48000, channels=2)])
    raise ValueError(layout)


def _config(tmp_path: Path, media_server, sources: list[dict], **download) -> Path:
    settings = {
        "samples_per_class": TARGET, "url_template": media_server.url_template("wav"), "sources": sources,
        "sleep_between_requests": 0.0, "sleep_jitter": 0.0, "backoff_base_seconds": 0.05,
        "backoff_max_seconds": 0.2, "max_retries": 1, "socket_timeout": 3.0, **download,
    }
    path = tmp_path / "control.yaml"
    path.write_text(yaml.safe_dump({"paths": {"meta_dir": "meta", "output_dir": "out"}, "download": settings}))
    return path


def _download(config: Path, *argv: str) -> int:
    import download_data

    return download_data.main(["--config", str(config), "-q", *argv])


def _dataset_digest(out: Path) -> dict[str, str]:
    """Every file of the dataset (clips, manifests, metadata.csv, card) by content."""
    skip = {"ledger.sqlite3", "ledger.sqlite3-wal", "ledger.sqlite3-shm", ".lock"}
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name not in skip and not {"_reports", "_cache"} & set(p.relative_to(out).parts)
    }


def _expected_sources(archive_name: str) -> dict[str, str]:
    """ytid -> which source made it, for the clips a finished run keeps (first TARGET successes per class)."""
    kept = {}
    for c in range(len(CLASSES)):
        made = []
        for n in range(PER_CLASS):
            if (c, n) in IN_ARCHIVE and (c, n) not in SHORT_IN_ARCHIVE:
                made.append((_ytid(c, n), archive_name))
            elif (c, n) not in GONE_FROM_YOUTUBE:
                made.append((_ytid(c, n), "youtube"))
        kept.update(made[:TARGET])
    return kept


@pytest.mark.parametrize("layout", ["folder", "panns", "passt", "parquet"])
def test_archive_first_then_youtube(tmp_path, media_server, video, layout):
    from archive_media import assert_exact_clip

    _world(tmp_path, media_server, video)
    archive = build_archive(layout, tmp_path / "archive")
    config = _config(tmp_path, media_server, [{"kind": "archive", "name": "mirror", "path": str(archive)},
                                              {"kind": "youtube"}])
    assert _download(config) == 0
    out = tmp_path / "out"
    manifest = read_manifest(out / MANIFEST_NAME)
    assert dict(zip(manifest["ytid"], manifest["source"])) == _expected_sources("mirror")
    for row in manifest.itertuples():
        # The mp3 archive's codec smears the signal a little more than the others.
        from_stereo = row.source == "mirror" and layout == "parquet"
        assert_exact_clip(out / row.file, row.start_seconds, row.end_seconds, 16000, 1,
                          source_channels=2 if from_stereo else 1, tolerance=0.05 if layout == "passt" else 0.01)
        if row.source == "mirror":
            assert media_server.stats(row.ytid).requests == 0, f"{row.ytid} came from the archive"
    # The too-short archive clip was asked of YouTube next, and recorded as the archive's failure.
    short = _ytid(*next(iter(SHORT_IN_ARCHIVE)))
    assert media_server.stats(short).requests > 0 and short in set(manifest["ytid"])
    assert (manifest["source"] == "mirror").sum() == 3
    # The run record says what each source was: the archive's files with size and mtime, yt-dlp's version.
    import json

    archive_identity, youtube_identity = json.loads((out / "_reports" / "run.json").read_text())["latest"]["sources"]
    assert (archive_identity["name"], archive_identity["kind"], youtube_identity["kind"]) == (
        "mirror", "archive", "youtube")
    assert archive_identity["files"] and all(f["size"] > 0 for f in archive_identity["files"])
    assert youtube_identity["tooling"]["yt_dlp"]


def _panns_first(tmp_path: Path, media_server, **download) -> Path:
    archive = build_archive("panns", tmp_path / "archive")
    return _config(tmp_path, media_server, [{"kind": "archive", "name": "panns", "path": str(archive)},
                                            {"kind": "youtube"}], **download)


def test_one_worker_and_four_give_the_same_dataset(tmp_path, media_server, video):
    digests = []
    for workers in (1, 4):
        folder = tmp_path / f"w{workers}"
        folder.mkdir()
        _world(folder, media_server, video)
        assert _download(_panns_first(folder, media_server, workers=workers)) == 0
        digests.append(_dataset_digest(folder / "out"))
    assert digests[0] == digests[1]
    assert sum(name.endswith(".wav") for name in digests[0]) == TARGET * len(CLASSES)


def kill_9_after_clips(config: Path, out: Path, clips: int = 2) -> None:
    """Run download_data.py in its own session and kill -9 it once ``clips`` clips exist (then its whole group)."""
    process = subprocess.Popen([sys.executable, str(REPO / "download_data.py"), "--config", str(config), "-q"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if out.exists() and sum(1 for _ in out.rglob("*.wav")) >= clips:
                os.kill(process.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
        process.wait(timeout=120)
        assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    finally:
        # Worker processes it started (a Dask LocalCluster) lose their parent with it; end them as a shell would.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def test_kill_9_and_resume_gives_the_uninterrupted_dataset(tmp_path, video):
    from media_server import MediaServer

    # Latency keeps the run slow enough for the kill to land mid-run, after the archive's first clips.
    with MediaServer(latency=0.05) as server:
        reference = tmp_path / "reference"
        reference.mkdir()
        _world(reference, server, video)
        assert _download(_panns_first(reference, server, workers=2)) == 0
        folder = tmp_path / "killed"
        folder.mkdir()
        _world(folder, server, video)
        config = _panns_first(folder, server, workers=2)
        out = folder / "out"
        kill_9_after_clips(config, out)
        assert _download(config) == 0
        assert _dataset_digest(out) == _dataset_digest(reference / "out")
        assert not [p for p in out.rglob("*") if p.name.startswith(".") and ".part" in p.name]


def test_rebuilds_swap_youtube_and_an_archive_and_keep_every_byte(tmp_path, media_server, video):
    """A 16 kHz archive and the YouTube path give the same bytes, so only the source column changes."""
    import rebuild_from_manifest

    _world(tmp_path, media_server, video)
    held = {(c, n) for c in range(len(CLASSES)) for n in range(PER_CLASS)} - GONE_FROM_YOUTUBE
    archive = tmp_path / "every-clip"
    for ytid, start, samples in _archive_clips(16000, keys=held, short=()):
        write_file(archive / f"Y{ytid}_{start:g}_{start + SEGMENT:g}.wav", samples, 16000)
    youtube_only = _config(tmp_path, media_server, [{"kind": "youtube"}])
    assert _download(youtube_only) == 0
    built = read_manifest(tmp_path / "out" / MANIFEST_NAME)
    assert set(built["source"]) == {"youtube"}

    media_server.reset_stats()
    archive_only = tmp_path / "archive.yaml"
    archive_only.write_text(yaml.safe_dump({"download": {"sources": [
        {"kind": "archive", "name": "lab", "path": str(archive), "format": "folder"}]}}))
    rebuilt = tmp_path / "rebuilt"
    assert rebuild_from_manifest.main(["--manifest", str(tmp_path / "out" / MANIFEST_NAME), "--output", str(rebuilt),
                                       "--config", str(archive_only), "-q"]) == 0
    assert media_server.total_requests() == 0
    again = read_manifest(rebuilt / MANIFEST_NAME)
    assert set(again["source"]) == {"lab"}
    assert again.drop(columns="source").equals(built.drop(columns="source"))
    report = (rebuilt / "rebuild_report.csv").read_text().splitlines()
    assert report[0].endswith(",source") and all(line.endswith(",lab") for line in report[1:])

    # And back: the archive-built dataset rebuilt from YouTube.
    back = tmp_path / "back"
    assert rebuild_from_manifest.main(["--manifest", str(rebuilt / MANIFEST_NAME), "--output", str(back),
                                       "--config", str(youtube_only), "-q"]) == 0
    returned = read_manifest(back / MANIFEST_NAME)
    assert set(returned["source"]) == {"youtube"}
    assert returned.drop(columns="source").equals(built.drop(columns="source"))


def test_retry_failed_can_name_one_source(tmp_path, media_server, video, capsys):
    _world(tmp_path, media_server, video)
    config = _panns_first(tmp_path, media_server, samples_per_class=PER_CLASS)
    assert _download(config) == 0
    gone = _ytid(*next(iter(GONE_FROM_YOUTUBE)))
    short = _ytid(*next(iter(SHORT_IN_ARCHIVE)))
    asked = media_server.stats(gone).requests
    assert asked > 0
    # Retrying the archive's failures does not ask YouTube about a video it said is gone.
    assert _download(config, "--retry-failed", "panns") == 0
    assert media_server.stats(gone).requests == asked
    assert _download(config, "--retry-failed", "youtube") == 0
    assert media_server.stats(gone).requests > asked
    manifest = read_manifest(tmp_path / "out" / MANIFEST_NAME)
    assert dict(zip(manifest["ytid"], manifest["source"]))[short] == "youtube"
    capsys.readouterr()
    assert _download(config, "--retry-failed", "nosuchsource") == 2
    err = capsys.readouterr().err
    assert "--retry-failed nosuchsource" in err and "panns, youtube" in err and "Traceback" not in err


def test_archive_only_never_touches_the_network_and_fills_from_what_it_holds(tmp_path, media_server, video):
    _world(tmp_path, media_server, video)
    archive = build_archive("parquet", tmp_path / "archive")
    config = _config(tmp_path, media_server, [{"kind": "archive", "path": str(archive)}], samples_per_class=2)
    assert _download(config) == 0
    assert media_server.total_requests() == 0
    manifest = read_manifest(tmp_path / "out" / MANIFEST_NAME)
    held = {_ytid(*key) for key in IN_ARCHIVE - SHORT_IN_ARCHIVE}
    assert set(manifest["ytid"]) <= held and set(manifest["source"]) == {"archive1"}
    assert (manifest.groupby("class_index").size() == 2).all()


def test_an_unreachable_youtube_leaves_the_archive_working(tmp_path, media_server, video, caplog):
    _world(tmp_path, media_server, video)
    archive = build_archive("folder", tmp_path / "archive")
    dead_port = media_server.port + 1 if media_server.port < 65535 else media_server.port - 1
    config = _config(tmp_path, media_server, [{"kind": "archive", "path": str(archive)}, {"kind": "youtube"}],
                     url_template=f"http://127.0.0.1:{dead_port}/media/{{ytid}}.wav")
    code = _download(config)
    assert code == 0
    manifest = read_manifest(tmp_path / "out" / MANIFEST_NAME)
    assert set(manifest["source"]) == {"archive1"} and len(manifest) > 0
    assert "going on with the other sources" in caplog.text


def test_coverage_and_doctor_count_what_each_source_holds(tmp_path, media_server, video, capsys):
    from audioset_tools.cli import main

    _world(tmp_path, media_server, video)
    config = _panns_first(tmp_path, media_server)
    assert main(["sources", "coverage", "--config", str(config), "-q"]) == 0
    shown = capsys.readouterr().out
    planned = PER_CLASS * len(CLASSES)
    held = len(IN_ARCHIVE)
    assert f"planned: {len(CLASSES)} class(es), {planned} candidate(s)" in shown
    assert f"panns    archive  holds {held} ({100 * held / planned:.1f} %)" in shown
    assert f"youtube  youtube  holds cannot tell before asking; asked first for {planned - held}" in shown
    # Class 0 holds three candidates (one too short, which only a download finds out), class 1 two.
    assert f"classes the archives alone can fill: 1 of {len(CLASSES)}" in shown
    assert media_server.total_requests() == 0
    assert not list((tmp_path / "out").glob("*/*.wav")), "coverage downloads nothing"

    assert main(["doctor", "--config", str(config), "--offline"]) == 0
    shown = capsys.readouterr().out
    assert "sources, in order: panns (archive), youtube (youtube)" in shown
    assert f"holds {held} of the {planned} planned candidates" in shown and "yt-dlp" in shown

    broken = _config(tmp_path, media_server, [{"kind": "archive", "path": str(tmp_path / "no-such-archive")}])
    assert main(["doctor", "--config", str(broken), "--offline"]) == 1
    shown = capsys.readouterr().out
    assert "source archive1" in shown and "FAIL" in shown and "yt-dlp" not in shown


def test_a_rebuild_from_an_archive_that_lacks_a_clip_says_so(tmp_path, media_server, video):
    import csv

    import rebuild_from_manifest

    _world(tmp_path, media_server, video)
    assert _download(_config(tmp_path, media_server, [{"kind": "youtube"}])) == 0
    built = read_manifest(tmp_path / "out" / MANIFEST_NAME)
    missing = built["ytid"][0]
    archive = tmp_path / "most-clips"
    for row in built.itertuples():
        if row.ytid != missing:
            write_file(archive / f"{row.ytid}_{int(row.start_seconds * 1000)}.wav",
                       tone(row.start_seconds, SEGMENT, 16000), 16000)
    config = tmp_path / "archive.yaml"
    config.write_text(yaml.safe_dump({"download": {"sources": [{"kind": "archive", "path": str(archive)}]}}))
    rebuilt = tmp_path / "rebuilt"
    code = rebuild_from_manifest.main(["--manifest", str(tmp_path / "out" / MANIFEST_NAME), "--output",
                                       str(rebuilt), "--config", str(config), "-q"])
    assert code == 3  # incomplete: one clip is not to be had from the configured sources
    with open(rebuilt / "rebuild_report.csv", newline="") as handle:
        report = {row["ytid"]: row for row in csv.DictReader(handle)}
    assert report[missing]["status"] == "not_attempted"
    assert "no source in download.sources holds it" in report[missing]["reason"]
    assert {row["status"] for ytid, row in report.items() if ytid != missing} == {"rebuilt"}
