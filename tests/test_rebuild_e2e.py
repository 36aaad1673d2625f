"""Download against the local server, rebuild from the manifest alone, validate, repair.

Real yt-dlp and the real ffmpeg (imageio-ffmpeg's) on both sides, so the rebuilt clips
must be byte-identical to the downloaded ones.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pandas as pd
import pytest
from test_download_helpers import assert_manifests_equal_disk, write_config, write_meta

import download_data
import rebuild_from_manifest
from audioset_tools.cli import main
from audioset_tools.config import Config, load_config
from audioset_tools.dataset.audio_info import probe_audio, segment_frames
from audioset_tools.dataset.manifest import MANIFEST_NAME, read_manifest
from audioset_tools.dataset.validate import default_details_path, validate_dataset
from audioset_tools.download.rebuild import (
    EXIT_GONE,
    EXIT_INCOMPLETE,
    REBUILD_REPORT_NAME,
)
from audioset_tools.errors import UserError

REPO = Path(__file__).resolve().parents[1]
CLASSES = [("/m/a", "Speech"), ("/m/b", "Dog, bark")]


@pytest.fixture(autouse=True)
def _scripts_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))


@pytest.fixture
def downloaded(tmp_path, media_server, tone_sources):
    """A dataset of 2 classes x 2 clips downloaded by download_data.py; returns (config, out folder)."""
    rows = {}
    for c, (mid, _) in enumerate(CLASSES):
        rows[mid] = []
        for n in range(2):
            yt = f"c{c}clip{n:05d}"
            media_server.add(yt, tone_sources.m4a if n else tone_sources.webm)
            rows[mid].append((yt, 1.5 + 3 * n, 3.5 + 3 * n))
    write_meta(tmp_path / "meta", CLASSES, rows)
    config = write_config(tmp_path, media_server.url_template(), samples_per_class=2)
    assert download_data.main(["--config", str(config), "-q"]) == 0
    out = tmp_path / "out"
    assert len(read_manifest(out / MANIFEST_NAME)) == 4
    media_server.reset_stats()
    return config, out


def report_rows(folder: Path) -> dict[str, dict[str, str]]:
    with (folder / REBUILD_REPORT_NAME).open() as handle:
        return {row["ytid"]: row for row in csv.DictReader(handle)}


def test_rebuild_gives_the_same_files(downloaded, tmp_path, media_server, capsys):
    config, out = downloaded
    original = read_manifest(out / MANIFEST_NAME)
    rebuilt = tmp_path / "elsewhere" / "rebuilt"
    # Only the manifest travels: copy it away from the dataset it describes.
    manifest = tmp_path / "shared_manifest.csv"
    shutil.copy(out / MANIFEST_NAME, manifest)
    code = rebuild_from_manifest.main(
        ["--manifest", str(manifest), "--output", str(rebuilt), "--config", str(config), "-q"]
    )
    assert code == 0
    assert "COMPLETE" in capsys.readouterr().out
    again = assert_manifests_equal_disk(rebuilt)
    # Same names, durations and (same ffmpeg) checksums; the manifest itself is byte-identical.
    pd.testing.assert_frame_equal(again, original)
    assert (rebuilt / MANIFEST_NAME).read_bytes() == (out / MANIFEST_NAME).read_bytes()
    for row in original.itertuples():
        assert (rebuilt / row.file).read_bytes() == (out / row.file).read_bytes()
        # Sample-exact in rebuilds too (opus and AAC sources, fractional starts).
        expected = segment_frames(row.start_seconds, row.end_seconds, row.sample_rate)
        assert probe_audio(rebuilt / row.file).frames == expected
    assert {row["status"] for row in report_rows(rebuilt).values()} == {"rebuilt"}
    assert {row["check"] for row in report_rows(rebuilt).values()} == {"identical"}
    # Exactly the manifest's clips were asked for, nothing else.
    assert {yt for yt in original["ytid"] if media_server.stats(yt).requests} == set(original["ytid"])
    # And the rebuilt folder validates as identical against the manifest it came from.
    result = validate_dataset(rebuilt, manifest, progress=False)
    assert result.findings == [] and result.checked == 4

    # A second run keeps everything and fetches nothing.
    media_server.reset_stats()
    assert rebuild_from_manifest.main(
        ["--manifest", str(manifest), "--output", str(rebuilt), "--config", str(config), "-q"]
    ) == 0
    assert media_server.total_requests() == 0
    assert {row["status"] for row in report_rows(rebuilt).values()} == {"kept"}


def test_vanished_video_is_reported_not_fatal(downloaded, tmp_path, media_server, capsys):
    config, out = downloaded
    media_server.set_behaviour("c1clip00001", "404")
    rebuilt = tmp_path / "rebuilt"
    code = main(["rebuild", "--manifest", str(out / MANIFEST_NAME), "--output", str(rebuilt),
                 "--config", str(config), "-q"])
    assert code == EXIT_GONE
    text = capsys.readouterr().out
    assert "gone           1" in text and "gone because unavailable: 1" in text
    rows = report_rows(rebuilt)
    assert rows["c1clip00001"]["status"] == "gone"
    assert rows["c1clip00001"]["reason"].startswith("unavailable")
    assert [rows[yt]["status"] for yt in ("c0clip00000", "c0clip00001", "c1clip00000")] == ["rebuilt"] * 3
    manifest = assert_manifests_equal_disk(rebuilt)
    assert "c1clip00001" not in set(manifest["ytid"])
    # The rebuild did not go looking for a replacement clip: only manifest IDs were requested.
    assert media_server.total_requests() == sum(
        media_server.stats(yt).requests for yt in read_manifest(out / MANIFEST_NAME)["ytid"]
    )
    # Rerun: the dead video is remembered, not fetched again, and still reported.
    media_server.reset_stats()
    assert main(["rebuild", "--manifest", str(out / MANIFEST_NAME), "--output", str(rebuilt),
                 "--config", str(config), "-q"]) == EXIT_GONE
    assert media_server.total_requests() == 0
    assert report_rows(rebuilt)["c1clip00001"]["status"] == "gone"


def test_transient_failure_is_incomplete(downloaded, tmp_path, media_server):
    config, out = downloaded
    media_server.set_behaviour("c0clip00000", "500", fail_times=100)
    rebuilt = tmp_path / "rebuilt"
    code = main(["rebuild", "--manifest", str(out / MANIFEST_NAME), "--output", str(rebuilt),
                 "--config", str(config), "-q"])
    assert code == EXIT_INCOMPLETE
    assert report_rows(rebuilt)["c0clip00000"]["status"] == "failed"


def test_damaged_files_in_the_output_are_fetched_again(downloaded, tmp_path, media_server):
    config, out = downloaded
    original = read_manifest(out / MANIFEST_NAME)
    rebuilt = tmp_path / "rebuilt"
    # Someone copied part of the dataset, and one file came out truncated.
    for row in original.itertuples():
        (rebuilt / row.file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(out / row.file, rebuilt / row.file)
    (rebuilt / original["file"][0]).unlink()
    truncated = rebuilt / original["file"][1]
    truncated.write_bytes(truncated.read_bytes()[:20000])
    code = main(["rebuild", "--manifest", str(out / MANIFEST_NAME), "--output", str(rebuilt),
                 "--config", str(config), "-q"])
    assert code == 0
    statuses = {yt: row["status"] for yt, row in report_rows(rebuilt).items()}
    assert statuses == {"c0clip00000": "rebuilt", "c0clip00001": "rebuilt", "c1clip00000": "kept",
                        "c1clip00001": "kept"}
    assert media_server.stats("c1clip00000").requests == 0
    for row in original.itertuples():
        assert (rebuilt / row.file).read_bytes() == (out / row.file).read_bytes()
        # Sample-exact in rebuilds too (opus and AAC sources, fractional starts).
        expected = segment_frames(row.start_seconds, row.end_seconds, row.sample_rate)
        assert probe_audio(rebuilt / row.file).frames == expected


def test_validate_repair_refetches_damage(downloaded, media_server, capsys):
    config, out = downloaded
    original = read_manifest(out / MANIFEST_NAME)
    (out / original["file"][2]).unlink()
    (out / original["file"][3]).write_bytes(b"not audio at all")
    keep = out / original["file"][0]
    before = keep.stat().st_mtime_ns
    assert main(["validate", str(out), "-q"]) == 1
    assert main(["validate", str(out), "--repair", "--config", str(config), "-q"]) == 0
    text = capsys.readouterr().out
    assert "dataset is intact" in text.rsplit("rebuild summary", 1)[1]
    assert keep.stat().st_mtime_ns == before
    assert media_server.stats(original["ytid"][0]).requests == 0
    assert media_server.stats(original["ytid"][2]).requests > 0
    pd.testing.assert_frame_equal(read_manifest(out / MANIFEST_NAME), original)
    assert "missing" not in default_details_path(out).read_text().split("\n", 1)[1]


def _bad_manifest(tmp_path: Path, out: Path, edit) -> Path:
    lines = (out / MANIFEST_NAME).read_text().splitlines()
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(edit(lines)) + "\n")
    return path


def _drop_column(lines: list[str]) -> list[str]:
    """Drop the labels column (one label each here, so a plain split on commas is exact)."""
    position = lines[0].split(",").index("labels")
    return [",".join(field for i, field in enumerate(line.split(",")) if i != position) for line in lines]


def _escape(lines: list[str]) -> list[str]:
    return [lines[0], lines[1].replace("Speech/", "../../Speech/", 1), *lines[2:]]


def _duplicate(lines: list[str]) -> list[str]:
    return [*lines, lines[1]]


def _malformed(lines: list[str]) -> list[str]:
    return [lines[0], lines[1].replace(",train,", ",training,", 1), *lines[2:]]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_drop_column, "missing column(s): labels"),
        (_escape, "must not contain empty, '.' or '..' parts"),
        (_duplicate, "already listed on line 2"),
        (_malformed, "bad.csv:2: split must be one of train, val, test"),
    ],
)
def test_bad_manifest_is_refused_before_fetching(downloaded, tmp_path, media_server, capsys, edit, message,
                                                 monkeypatch):
    config, out = downloaded
    bad = _bad_manifest(tmp_path, out, edit)
    target = tmp_path / "never"
    empty = tmp_path / "no_config_here"
    empty.mkdir()
    monkeypatch.chdir(empty)  # rebuild needs no control.yaml
    code = rebuild_from_manifest.main(["--manifest", str(bad), "--output", str(target), "-q"])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not target.exists()
    assert media_server.total_requests() == 0


def test_rebuild_refuses_to_overwrite_another_dataset(downloaded, tmp_path, media_server, capsys):
    config, out = downloaded
    original = read_manifest(out / MANIFEST_NAME)
    partial = tmp_path / "partial.csv"
    (original.iloc[[0, 2]]).to_csv(partial, index=False)
    code = main(["rebuild", "--manifest", str(partial), "--output", str(out), "--config", str(config), "-q"])
    assert code == 2
    assert "rebuilding would delete them" in capsys.readouterr().err
    assert media_server.total_requests() == 0
    assert_manifests_equal_disk(out)
    assert len(read_manifest(out / MANIFEST_NAME)) == 4


def test_other_encoder_bytes_are_their_own_category(downloaded, tmp_path, capsys):
    """A manifest written where ffmpeg encoded differently: same audio, other sha256."""
    config, out = downloaded
    frame = read_manifest(out / MANIFEST_NAME)
    frame.loc[1, "sha256"] = "0" * 64
    foreign = tmp_path / "from_another_machine.csv"
    frame.to_csv(foreign, index=False)
    rebuilt = tmp_path / "rebuilt"
    assert main(["rebuild", "--manifest", str(foreign), "--output", str(rebuilt),
                 "--config", str(config), "-q"]) == 0
    assert "1 clip(s) have another sha256" in capsys.readouterr().out
    row = report_rows(rebuilt)[frame["ytid"][1]]
    assert (row["status"], row["check"]) == ("rebuilt", "checksum_only")
    assert row["sha256_actual"] == read_manifest(out / MANIFEST_NAME)["sha256"][1]
    assert main(["validate", str(rebuilt), "--manifest", str(foreign), "-q"]) == 0
    assert main(["validate", str(rebuilt), "--manifest", str(foreign), "--strict", "-q"]) == 1
    assert "checksum_only" in default_details_path(rebuilt).read_text()


def test_imported_unavailable_list_is_skipped(downloaded, tmp_path, media_server):
    config, out = downloaded
    dead = tmp_path / "unavailable.csv"
    dead.write_text("ytid,reason,last_checked\nc0clip00001,Video unavailable,2026-11-01T10:00:00Z\n")
    rebuilt = tmp_path / "rebuilt"
    code = main(["rebuild", "--manifest", str(out / MANIFEST_NAME), "--output", str(rebuilt),
                 "--config", str(config), "--unavailable", str(dead), "-q"])
    assert code == EXIT_GONE
    row = report_rows(rebuilt)["c0clip00001"]
    assert row["status"] == "gone" and "imported unavailable.csv" in row["reason"]
    assert media_server.stats("c0clip00001").requests == 0
    # --retry-failed tries it anyway, and the server still has it.
    assert main(["rebuild", "--manifest", str(out / MANIFEST_NAME), "--output", str(rebuilt),
                 "--config", str(config), "--retry-failed", "-q"]) == 0
    assert report_rows(rebuilt)["c0clip00001"]["status"] == "rebuilt"


def test_throttling_stop_is_incomplete_and_resumable(downloaded, tmp_path, media_server):
    config, out = downloaded
    media_server.set_behaviour("c0clip00000", "429", fail_times=1000)
    rebuilt = tmp_path / "rebuilt"
    argv = ["rebuild", "--manifest", str(out / MANIFEST_NAME), "--output", str(rebuilt), "--config", str(config),
            "--set", "download.max_consecutive_rate_limits=1", "-q"]
    assert main(argv) == EXIT_INCOMPLETE
    statuses = {yt: row["status"] for yt, row in report_rows(rebuilt).items()}
    assert statuses["c0clip00000"] == "failed"
    assert set(statuses.values()) <= {"failed", "not_attempted", "rebuilt"}
    assert "not_attempted" in statuses.values()
    media_server.set_behaviour("c0clip00000", "ok")
    assert main(argv) == 0
    assert_manifests_equal_disk(rebuilt)
    pd.testing.assert_frame_equal(read_manifest(rebuilt / MANIFEST_NAME), read_manifest(out / MANIFEST_NAME))


def test_optional_config_is_defaults_plus_overrides_without_control_yaml(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    defaults = load_config(None, [], required=False)
    assert defaults.source is None
    assert defaults.download == Config().download
    assert defaults.paths.output_dir == tmp_path / "AudioSet_Data"
    assert load_config(None, ["download.workers=2"], required=False).download.workers == 2
    with pytest.raises(UserError, match="--set overrides"):
        load_config(None, ["download.bogus=1"], required=False)
    with pytest.raises(UserError, match="config file not found"):
        load_config("named.yaml", [], required=False)
    (tmp_path / "control.yaml").write_text("download:\n  workers: 3\n")
    assert load_config(None, [], required=False).download.workers == 3


def test_bad_unavailable_list_is_refused_before_writing(downloaded, tmp_path, media_server, capsys):
    config, out = downloaded
    bad = tmp_path / "unavailable.csv"
    bad.write_text("ytid,reason\nc0clip00001,gone\n")
    target = tmp_path / "never"
    assert main(["rebuild", "--manifest", str(out / MANIFEST_NAME), "--output", str(target),
                 "--config", str(config), "--unavailable", str(bad), "-q"]) == 2
    assert "last_checked" in capsys.readouterr().err
    assert not target.exists() and media_server.total_requests() == 0
