"""Issue 9, item 9: hostile or broken input gives one clear message and exit 2, never a traceback.

Each case goes through the real CLI entry points (download_data.py, rebuild_from_manifest.py,
audioset-tools select) the way a user meets it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from test_download_helpers import assert_manifests_equal_disk, write_config, write_meta

import download_data
import rebuild_from_manifest
from audioset_tools.cli import main as cli_main
from audioset_tools.dataset.layout import OWN_ROOT_NAMES
from audioset_tools.dataset.manifest import MANIFEST_NAME

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "metadata"


@pytest.fixture(autouse=True)
def _scripts_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))


def assert_one_message(err: str, *needles: str) -> None:
    assert "Traceback" not in err, err
    assert err.startswith("error: "), err
    for needle in needles:
        assert needle in err, err


OUR_FILES = ["manifest.csv", "metadata.csv", "ledger.sqlite3", "rebuild_report.csv"]


@pytest.fixture
def downloaded(tmp_path, media_server, tone_sources):
    """Classes named like the tool's own files, downloaded: (config, output folder)."""
    classes = [(f"/m/{n}", name) for n, name in enumerate(OUR_FILES)]
    rows = {}
    for n, (mid, _) in enumerate(classes):
        rows[mid] = [(f"own{n}clip{k:03d}", 1.0, 3.0) for k in range(1)]
        for ytid, _, _ in rows[mid]:
            media_server.add(ytid, tone_sources.webm)
    write_meta(tmp_path / "meta", classes, rows)
    config = write_config(tmp_path, media_server.url_template(), samples_per_class=1)
    assert download_data.main(["--config", str(config), "-q"]) == 0
    return config, tmp_path / "out"


def test_class_names_like_our_own_files_get_other_folders(downloaded):
    _, out = downloaded
    manifest = assert_manifests_equal_disk(out)
    folders = {file.split("/")[0] for file in manifest["file"]}
    assert len(folders) == len(OUR_FILES)
    assert not folders & OWN_ROOT_NAMES
    for name in OUR_FILES:
        assert (out / name).is_file() or name == "rebuild_report.csv"


def test_a_shared_manifest_cannot_put_a_class_over_our_files(downloaded, tmp_path, capsys):
    config, out = downloaded
    hostile = tmp_path / "hostile.csv"
    text = (out / MANIFEST_NAME).read_text()
    first_folder = text.splitlines()[1].split(",")[7].split("/")[0]
    hostile.write_text(text.replace(f"{first_folder}/", "manifest.csv/"))
    code = rebuild_from_manifest.main(["--manifest", str(hostile), "--output", str(tmp_path / "re"),
                                       "--config", str(config), "-q"])
    assert code == 2
    assert_one_message(capsys.readouterr().err, "manifest.csv", "own files")


@pytest.mark.parametrize(
    ("column", "value", "needle"),
    [
        ("class_index", "\u00b9", "class_index must be a whole number"),
        ("start_seconds", "\u00b9.000", "start_seconds"),
        ("start_seconds", "1e30", "start_seconds must be at most"),
        ("sample_rate", "9" * 30, "sample_rate must be at most"),
        ("channels", "9" * 25, "channels must be at most"),
        ("class_index", "9" * 25, "class_index must be at most"),
        ("duration", "1e400", "duration must be a finite number"),
    ],
)
def test_odd_numbers_in_a_shared_manifest(downloaded, tmp_path, capsys, column, value, needle):
    import csv

    config, out = downloaded
    with (out / MANIFEST_NAME).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows[0][column] = value
    hostile = tmp_path / "odd.csv"
    with hostile.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    code = rebuild_from_manifest.main(["--manifest", str(hostile), "--output", str(tmp_path / "re"),
                                       "--config", str(config), "-q"])
    assert code == 2
    assert_one_message(capsys.readouterr().err, f"{hostile}:2", needle)


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"])
def test_unavailable_list_with_an_overflowing_time(tmp_path, capsys, moment):
    write_meta(tmp_path / "meta", [("/m/a", "Speech")], {"/m/a": [("abcdefghijk", 1.0, 3.0)]})
    config = write_config(tmp_path, "http://127.0.0.1:9/{ytid}")
    shared = tmp_path / "unavailable.csv"
    shared.write_text(f"ytid,reason,last_checked\nabcdefghijk,gone,{moment}\n")
    assert download_data.main(["--config", str(config), "--import-unavailable", str(shared)]) == 2
    assert_one_message(capsys.readouterr().err, f"{shared}:2", "last_checked")


def test_a_damaged_ledger_page_is_one_message(downloaded, capsys):
    import sqlite3

    config, out = downloaded
    ledger = out / "ledger.sqlite3"
    with sqlite3.connect(ledger) as db:
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'clips'").fetchone()[0]
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    # Overwrite the clips table's page: the file still opens, its first read fails.
    with ledger.open("r+b") as handle:
        handle.seek((root - 1) * page_size)
        handle.write(b"\xff" * page_size)
    capsys.readouterr()
    assert download_data.main(["--config", str(config), "-q"]) == 2
    assert_one_message(capsys.readouterr().err, str(ledger), "Move it aside")


def test_an_output_folder_that_is_a_file(tmp_path, capsys):
    write_meta(tmp_path / "meta", [("/m/a", "Speech")], {"/m/a": [("abcdefghijk", 1.0, 3.0)]})
    config = write_config(tmp_path, "http://127.0.0.1:9/{ytid}")
    (tmp_path / "out").write_text("a file")
    assert download_data.main(["--config", str(config), "-q"]) == 2
    err = capsys.readouterr().err
    assert_one_message(err, str(tmp_path / "out"))
    assert err.count("\n") == 1


def test_a_read_only_output_folder(tmp_path, capsys):
    # Root ignores permission bits, so a read-only mount stands in for a read-only folder.
    write_meta(tmp_path / "meta", [("/m/a", "Speech")], {"/m/a": [("abcdefghijk", 1.0, 3.0)]})
    config = write_config(tmp_path, "http://127.0.0.1:9/{ytid}")
    out = tmp_path / "out"
    out.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(out)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        out.chmod(0o555)
    try:
        code = download_data.main(["--config", str(config), "-q"])
    finally:
        if mounted.returncode == 0:
            subprocess.run(["umount", "-l", str(out)], check=False)
        else:
            out.chmod(0o755)
    if mounted.returncode != 0 and code == 0:
        pytest.skip("cannot make a folder read-only here (root without mount rights)")
    assert code == 2
    assert_one_message(capsys.readouterr().err, str(out), "Read-only file system" if mounted.returncode == 0 else "")


def test_a_deeply_nested_ontology(tmp_path, capsys):
    metadata = tmp_path / "metadata"
    shutil.copytree(FIXTURES, metadata)
    depth = 200_000
    (metadata / "ontology.json").write_text(
        '[{"id": "/m/a", "name": "A", "child_ids": ' + "[" * depth + "]" * depth + "}]"
    )
    config = tmp_path / "control.yaml"
    config.write_text("paths:\n  metadata_dir: metadata\n  meta_dir: meta\n")
    assert cli_main(["select", "--config", str(config), "-q"]) == 2
    assert_one_message(capsys.readouterr().err, "ontology.json", "nested too deeply")


def test_rebuild_help_says_what_is_code_and_what_is_data(capsys):
    with pytest.raises(SystemExit):
        cli_main(["rebuild", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "the manifest is data, never code" in text
    assert "control.yaml is code you run" in text and "ffmpeg_path" in text and "js_runtime" in text
