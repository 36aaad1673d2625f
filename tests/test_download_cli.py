"""download_data.py / audioset-tools download: slices, dry run, exit codes, unavailable lists, hostile input."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from test_download_helpers import assert_manifests_equal_disk, write_config, write_meta

import download_data
from audioset_tools.dataset.manifest import read_manifest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _script_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))


def _world(tmp_path, media_server, tone_sources, classes, per_class=3, dead=()):
    rows = {}
    for c, (mid, _) in enumerate(classes):
        rows[mid] = []
        for n in range(per_class):
            yt = f"c{c}clip{n:05d}"
            media_server.add(yt, tone_sources.webm, "404" if yt in dead else "ok")
            rows[mid].append((yt, float(n), float(n) + 2.0))
    write_meta(tmp_path / "meta", classes, rows)
    return rows


def _snapshot(root: Path, skip: Path) -> dict[str, int]:
    return {
        str(p): p.stat().st_size for p in root.rglob("*")
        if p.is_file() and skip not in p.parents
    }


def test_slices_add_up_to_one_dataset(tmp_path, media_server, tone_sources, capsys):
    classes = [("/m/a", "Speech"), ("/m/b", "Music"), ("/m/c", "Dog")]
    _world(tmp_path, media_server, tone_sources, classes)
    config = write_config(tmp_path, media_server.url_template(), samples_per_class=2)
    assert download_data.main(["--config", str(config), "-q", "--end", "1"]) == 0
    assert download_data.main(["--config", str(config), "-q", "--start", "1", "--end", "2"]) == 0
    assert download_data.main(["--config", str(config), "-q", "--set", "download.start_index=2"]) == 0
    out = tmp_path / "out"
    manifest = assert_manifests_equal_disk(out)
    assert list(manifest["class_name"]) == ["Speech", "Speech", "Music", "Music", "Dog", "Dog"]
    assert list(manifest["split"].unique()) == ["train", "val", "test"]
    assert "download summary" in capsys.readouterr().out


def test_dry_run_lists_and_writes_nothing(tmp_path, media_server, tone_sources, capsys):
    classes = [("/m/a", "Speech")]
    _world(tmp_path, media_server, tone_sources, classes, per_class=4)
    config = write_config(tmp_path, media_server.url_template(), samples_per_class=2)
    assert download_data.main(["--config", str(config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would fetch 2, 2 more in reserve" in out and "c0clip00000" in out and "c0clip00002" not in out
    assert not (tmp_path / "out").exists() and media_server.total_requests() == 0
    assert download_data.main(["--config", str(config), "-q", "--end", "1"]) == 0
    capsys.readouterr()
    assert download_data.main(["--config", str(config), "--dry-run", "--set", "download.samples_per_class=3"]) == 0
    assert "done 2/3, would fetch 1" in capsys.readouterr().out


def test_throttling_stop_has_its_own_exit_code(tmp_path, media_server, tone_sources, capsys):
    classes = [("/m/a", "Speech")]
    rows = _world(tmp_path, media_server, tone_sources, classes, per_class=3)
    for yt, _, _ in rows["/m/a"]:
        media_server.add(yt, tone_sources.webm, "429", retry_after=0.05)
    config = write_config(tmp_path, media_server.url_template(), max_consecutive_rate_limits=2)
    assert download_data.main(["--config", str(config), "-q"]) == 3
    out = capsys.readouterr().out
    assert "STOPPED" in out and "cookies_file" in out and "fewer workers" in out
    assert_manifests_equal_disk(tmp_path / "out")
    for yt, _, _ in rows["/m/a"]:
        media_server.add(yt, tone_sources.webm)
    assert download_data.main(["--config", str(config), "-q"]) == 0
    assert len(assert_manifests_equal_disk(tmp_path / "out")) == 2


def test_unavailable_export_and_import(tmp_path, media_server, tone_sources, capsys):
    classes = [("/m/a", "Speech")]
    _world(tmp_path, media_server, tone_sources, classes, per_class=3, dead={"c0clip00000"})
    config = write_config(tmp_path, media_server.url_template())
    assert download_data.main(["--config", str(config), "-q"]) == 0
    shared = tmp_path / "unavailable.csv"
    assert download_data.main(["--config", str(config), "--export-unavailable", str(shared)]) == 0
    exported = pd.read_csv(shared)
    assert list(exported["ytid"]) == ["c0clip00000"] and list(exported.columns) == ["ytid", "reason", "last_checked"]

    # Another user, another folder: importing spares them the dead video.
    other = tmp_path / "other"
    other.mkdir()
    (other / "meta").symlink_to(tmp_path / "meta")
    other_config = write_config(other, media_server.url_template())
    assert download_data.main(["--config", str(other_config), "--import-unavailable", str(shared)]) == 0
    media_server.reset_stats()
    assert download_data.main(["--config", str(other_config), "-q"]) == 0
    assert media_server.stats("c0clip00000").requests == 0
    assert len(assert_manifests_equal_disk(other / "out")) == 2

    bad = tmp_path / "bad.csv"
    bad.write_text("ytid,reason,last_checked\n../etc/pwd0,x,2026-01-01\n")
    assert download_data.main(["--config", str(other_config), "--import-unavailable", str(bad)]) == 2
    assert "bad.csv:2" in capsys.readouterr().err


def test_hostile_class_names_and_labels_stay_inside(tmp_path, media_server, tone_sources):
    classes = [("/m/a", "../../escape"), ("/m/b", "/etc/passwd"), ("/m/c", ".."), ("/m/d", "a\\..\\b"),
               ("/m/e", "C:\\evil"), ("/m/f", ". ")]
    rows = _world(tmp_path, media_server, tone_sources, classes, per_class=1)
    # Labels are copied into manifests, never into paths: make them as nasty as CSV allows.
    candidates = pd.read_csv(tmp_path / "meta" / "candidates.csv", dtype=str)
    candidates["labels"] = '/m/a,"quoted"\n../../x'
    candidates.to_csv(tmp_path / "meta" / "candidates.csv", index=False)
    config = write_config(tmp_path, media_server.url_template(), samples_per_class=1)
    before = _snapshot(tmp_path, tmp_path / "out")
    assert download_data.main(["--config", str(config), "-q"]) == 0
    assert _snapshot(tmp_path, tmp_path / "out") == before
    out = tmp_path / "out"
    manifest = assert_manifests_equal_disk(out)
    assert len(manifest) == len(classes)
    folders = {f.split("/")[0] for f in manifest["file"]}
    assert len(folders) == len(classes)
    for folder in folders:
        assert (out / folder).resolve().parent == out.resolve() and not folder.startswith(".")
    assert set(read_manifest(out / "manifest.csv")["labels"]) == {'/m/a,"quoted"\n../../x'}
    assert len(rows) == len(classes)


def test_hostile_ytid_is_refused_before_anything_is_written(tmp_path, media_server, tone_sources, capsys):
    classes = [("/m/a", "Speech")]
    _world(tmp_path, media_server, tone_sources, classes, per_class=2)
    path = tmp_path / "meta" / "candidates.csv"
    candidates = pd.read_csv(path, dtype=str)
    candidates.loc[1, "ytid"] = "../../etc/x"
    candidates.to_csv(path, index=False)
    config = write_config(tmp_path, media_server.url_template())
    assert download_data.main(["--config", str(config), "-q"]) == 2
    assert "candidates.csv, line 3" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and media_server.total_requests() == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--set", "download.workers=0"], "download.workers"),
        (["--start", "5"], "lists 1 classes"),
        (["--start", "-1"], None),
        (["--set", "download.cookies_file=missing.txt"], "file not found"),
    ],
)
def test_bad_input_exits_2_without_traceback(tmp_path, media_server, tone_sources, capsys, argv, message):
    _world(tmp_path, media_server, tone_sources, [("/m/a", "Speech")], per_class=1)
    config = write_config(tmp_path, media_server.url_template())
    with pytest.raises(SystemExit) if message is None else _no_raise():
        code = download_data.main(["--config", str(config), "-q", *argv])
        assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if message:
        assert message in err
    assert not any((tmp_path / "out").glob("*/*.wav"))


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_network_down_stops_cleanly_without_marking_anything_dead(tmp_path, media_server, tone_sources, capsys):
    classes = [("/m/a", "Speech"), ("/m/b", "Music")]
    rows = _world(tmp_path, media_server, tone_sources, classes, per_class=6)
    # The network fails after the run started (an offline start is caught before it: test_offline.py):
    # every connection is reset.
    for mid in rows:
        for yt, _, _ in rows[mid]:
            media_server.add(yt, tone_sources.webm, "reset_then_ok", fail_times=100)
    config = write_config(tmp_path, media_server.url_template(), max_retries=0, max_consecutive_transient=3)
    assert download_data.main(["--config", str(config), "-q"]) == 4
    out = capsys.readouterr().out
    assert "network seems down" in out and "transient         3" in out
    import sqlite3

    with sqlite3.connect(tmp_path / "out" / "ledger.sqlite3") as db:
        assert db.execute("SELECT DISTINCT outcome FROM attempts").fetchall() == [("transient",)]
        assert db.execute("SELECT COUNT(*) FROM failures").fetchone() == (0,)
    assert_manifests_equal_disk(tmp_path / "out")
    for mid in rows:
        for yt, _, _ in rows[mid]:
            media_server.add(yt, tone_sources.webm)
    config = write_config(tmp_path, media_server.url_template())
    assert download_data.main(["--config", str(config), "-q"]) == 0
    assert len(assert_manifests_equal_disk(tmp_path / "out")) == 4
