"""Faults found by a hostile trial (issue 9): ownership, changed selections, locks,
read-only copies, hostile manifest text, changed samples. End to end through the CLI
against the local media server, real yt-dlp and real ffmpeg.
"""

from __future__ import annotations

import csv
import gzip
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from dataset_factory import make_dataset
from test_download_helpers import assert_manifests_equal_disk, audio_files, write_meta
from test_metadata_readers import FIXTURES, HEADER
from test_rebuild_e2e import REPO, _scripts_on_path, downloaded  # noqa: F401  (fixtures)

from audioset_tools.cli import main
from audioset_tools.dataset.manifest import (
    MANIFEST_NAME,
    read_manifest,
    write_dataset_manifests,
)
from audioset_tools.dataset.validate import default_details_path
from audioset_tools.download.ledger import LEDGER_NAME, QUARANTINED, Ledger, utc_now
from audioset_tools.download.rebuild import plans_from_manifest
from audioset_tools.errors import UserError
from audioset_tools.select.metadata import (
    official,
    read_ontology,
    read_segments,
    segments,
)


def _someone_elses_manifest(tmp_path: Path, out: Path) -> Path:
    """Half of the dataset's rows: the same class folders, other clip lists."""
    shared = tmp_path / "someone_else.csv"
    read_manifest(out / MANIFEST_NAME).iloc[[0, 2]].to_csv(shared, index=False)
    return shared


@pytest.mark.parametrize("lost", ["manifest", "manifest_and_ledger"])
def test_rebuild_never_deletes_clips_it_does_not_own(downloaded, tmp_path, media_server, capsys, lost):  # noqa: F811
    config, out = downloaded
    shared = _someone_elses_manifest(tmp_path, out)
    before = audio_files(out)
    assert len(before) == 4
    # After a crash (or by hand) the folder's own manifest is gone; the clips are not.
    (out / MANIFEST_NAME).unlink()
    if lost == "manifest_and_ledger":
        for path in out.glob(LEDGER_NAME + "*"):
            path.unlink()
    code = main(["rebuild", "--manifest", str(shared), "--output", str(out), "--config", str(config), "-q"])
    err = capsys.readouterr().err
    assert code == 2
    assert "rebuilding would delete them" in err and "Traceback" not in err
    assert "2 clip(s)" in err
    assert audio_files(out) == before
    assert media_server.total_requests() == 0


# -- 2: a changed selection, then a resumed download -----------------------------------------

def _reselect(tmp_path: Path, media_server, tone_sources, classes) -> None:
    """Rewrite the selection outputs as if the selection had been rerun with ``classes``."""
    rows = {}
    for mid, _ in classes:
        number = {"/m/a": 0, "/m/b": 1}.get(mid, 9)
        rows[mid] = [(f"c{number}clip{n:05d}", 1.5 + 3 * n, 3.5 + 3 * n) for n in range(2)]
        for yt, _, _ in rows[mid]:
            media_server.add(yt, tone_sources.webm)
    write_meta(tmp_path / "meta", classes, rows)


def test_class_inserted_at_index_0_relabels_finished_clips(downloaded, tmp_path, media_server, tone_sources,  # noqa: F811
                                                           capsys):
    config, out = downloaded
    kept = {row.file: (out / row.file).read_bytes() for row in read_manifest(out / MANIFEST_NAME).itertuples()}
    _reselect(tmp_path, media_server, tone_sources, [("/m/c", "Music"), ("/m/a", "Speech"), ("/m/b", "Dog, bark")])
    media_server.reset_stats()
    assert main(["download", "--config", str(config), "-q"]) == 0
    manifest = assert_manifests_equal_disk(out)
    classes = manifest.drop_duplicates("mid").set_index("mid")
    # Every clip takes its class index, name and split from the current selection.
    assert classes["class_index"].to_dict() == {"/m/c": 0, "/m/a": 1, "/m/b": 2}
    assert classes["split"].to_dict() == {"/m/c": "train", "/m/a": "val", "/m/b": "test"}
    assert manifest.groupby("class_index")["mid"].nunique().max() == 1
    assert manifest.groupby("mid")["split"].nunique().max() == 1
    # The finished clips were kept, not fetched again; only the new class was downloaded.
    for file, data in kept.items():
        assert (out / file).read_bytes() == data
    assert {yt for yt in manifest["ytid"] if media_server.stats(yt).requests} == {"c9clip00000", "c9clip00001"}
    assert main(["validate", str(out), "-q"]) == 0
    plans_from_manifest(manifest)  # what rebuild and the converters accept


def test_class_0_replaced_refuses_to_resume(downloaded, tmp_path, media_server, tone_sources, capsys):  # noqa: F811
    config, out = downloaded
    manifest_before = (out / MANIFEST_NAME).read_bytes()
    _reselect(tmp_path, media_server, tone_sources, [("/m/c", "Music"), ("/m/b", "Dog, bark")])
    media_server.reset_stats()
    assert main(["download", "--config", str(config), "-q"]) == 2
    err = capsys.readouterr().err
    assert "the class selection changed" in err and "Traceback" not in err
    assert "class index 0 was 'Speech' (/m/a, 2 finished clip(s) in Speech/) and is now 'Music' (/m/c)" in err
    assert "new paths.output_dir" in err
    assert (out / MANIFEST_NAME).read_bytes() == manifest_before
    assert media_server.total_requests() == 0


@pytest.mark.parametrize(
    ("edit", "what"),
    [
        (lambda frame: frame.assign(class_index=frame["class_index"].where(frame["class_index"] != 1, 0)),
         "one class index has several values of mid"),
        (lambda frame: frame.assign(split=frame["split"].mask(frame.index == 0, "test")),
         "several values of split"),
    ],
)
def test_validate_detects_a_manifest_that_mixes_classes(tmp_path, capsys, edit, what):
    root = tmp_path / "dataset"
    frame = make_dataset(root)
    write_dataset_manifests(root, edit(frame))
    assert main(["validate", str(root), "-q"]) == 1
    out = capsys.readouterr().out
    assert "classes mixed up in the manifest" in out and "DAMAGED" in out
    assert what in default_details_path(root).read_text()


# -- 7: clean takes the downloader's lock and writes the manifests through the ledger --------

POLL = 0.01
# Only reached when something hangs, which is itself a failure.
DEADLINE = 120.0


def test_clean_is_refused_while_a_download_runs(downloaded, tmp_path, media_server, tone_sources, capsys):  # noqa: F811
    config, out = downloaded
    # A third class whose only clip stalls: the download sits in it, holding the folder.
    classes = [("/m/a", "Speech"), ("/m/b", "Dog, bark"), ("/m/c", "Music")]
    rows = {mid: [(f"c{c}clip{n:05d}", 1.5 + 3 * n, 3.5 + 3 * n) for n in range(2)] for c, (mid, _) in
            enumerate(classes[:2])}
    rows["/m/c"] = [("stalled0000", 1.5, 3.5)]
    media_server.add("stalled0000", tone_sources.webm, behaviour="stall", stall_after=1000, stall_seconds=DEADLINE)
    write_meta(tmp_path / "meta", classes, rows)
    manifest_before = (out / MANIFEST_NAME).read_bytes()
    download = subprocess.Popen(
        [sys.executable, str(REPO / "download_data.py"), "--config", str(config), "-q",
         "--set", "download.socket_timeout=100"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + DEADLINE
        while media_server.stats("stalled0000").requests < 2:  # yt-dlp resolved it, ffmpeg is reading
            assert download.poll() is None and time.monotonic() < deadline
            time.sleep(POLL)
        assert main(["clean", "--config", str(config), "-q"]) == 2
        err = capsys.readouterr().err
        assert f"another download (process {download.pid}) is running in" in err
        assert "Traceback" not in err
        assert download.poll() is None
    finally:
        os.killpg(download.pid, signal.SIGKILL)
        download.wait()
    assert (out / MANIFEST_NAME).read_bytes() == manifest_before
    assert not (out / "_quarantine").exists()


def test_clean_records_quarantines_in_the_ledger(downloaded):  # noqa: F811
    config, out = downloaded
    manifest = read_manifest(out / MANIFEST_NAME)
    silenced = manifest["file"][1]
    samples, rate = soundfile.read(out / silenced)
    soundfile.write(out / silenced, np.zeros_like(samples), rate)
    assert main(["clean", "--config", str(config), "-q"]) == 0
    with Ledger(out / LEDGER_NAME, read_only=True) as ledger:
        assert silenced not in {record.file for record in ledger.clips()}
        outcomes = ledger.outcome_counts()
        assert outcomes.get(QUARANTINED) == 1
        assert sorted(record.file for record in ledger.clips()) == sorted(read_manifest(out / MANIFEST_NAME)["file"])
    assert_manifests_equal_disk(out)


_HOLD_LOCK = """
import sys
from pathlib import Path
from audioset_tools.dataset.lock import dataset_lock
with dataset_lock(Path(sys.argv[1]), "download"):
    print("held", flush=True)
    sys.stdin.read()
"""


@pytest.mark.parametrize("command", ["rebuild", "repair", "clean", "import-unavailable", "download"])
def test_every_command_that_writes_a_dataset_takes_its_lock(downloaded, tmp_path, media_server, capsys,  # noqa: F811
                                                            command):
    config, out = downloaded
    shared = tmp_path / "shared.csv"
    shared.write_bytes((out / MANIFEST_NAME).read_bytes())
    (out / read_manifest(shared)["file"][0]).unlink()  # something for a rebuild or repair to do
    dead = tmp_path / "unavailable.csv"
    dead.write_text("ytid,reason,last_checked\nc0clip00001,gone,2026-11-01T10:00:00Z\n")
    argv = {
        "rebuild": ["rebuild", "--manifest", str(shared), "--output", str(out)],
        "repair": ["validate", str(out), "--repair"],
        "clean": ["clean"],
        "import-unavailable": ["download", "--import-unavailable", str(dead)],
        "download": ["download"],
    }[command] + ["--config", str(config), "-q"]
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(out)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"another download (process {holder.pid}) is running in {out}" in err
        assert "Traceback" not in err
    finally:
        holder.communicate("")
    assert media_server.total_requests() == 0
    with Ledger(out / LEDGER_NAME, read_only=True) as ledger:
        assert not list(ledger.unavailable_videos())


# -- 12: a checksum of the decoded samples tells a re-encode from changed audio --------------

def _flip_a_sample_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # well inside the sample data
    path.write_bytes(bytes(data))


def test_changed_samples_are_damage_and_repair_refetches_them(downloaded, media_server, capsys):  # noqa: F811
    config, out = downloaded
    manifest = read_manifest(out / MANIFEST_NAME)
    assert manifest["samples_sha256"].str.fullmatch("[0-9a-f]{64}").all()
    victim = manifest["file"][0]
    original = (out / victim).read_bytes()
    _flip_a_sample_byte(out / victim)
    assert main(["validate", str(out), "-q"]) == 1
    assert "changed audio samples              1" in capsys.readouterr().out
    assert f"changed_samples,{victim}" in default_details_path(out).read_text()
    assert main(["validate", str(out), "--repair", "--config", str(config), "-q"]) == 0
    text = capsys.readouterr().out
    assert "nothing to repair" not in text and "dataset is intact" in text
    assert (out / victim).read_bytes() == original
    assert media_server.stats(manifest["ytid"][0]).requests > 0
    assert media_server.stats(manifest["ytid"][1]).requests == 0


def test_a_re_encode_of_the_same_samples_is_not_damage(downloaded, capsys):  # noqa: F811
    config, out = downloaded
    victim = out / read_manifest(out / MANIFEST_NAME)["file"][1]
    samples, rate = soundfile.read(victim, dtype="int16")
    soundfile.write(victim, samples, rate, subtype="PCM_16", format="WAVEX")  # other header, same samples
    assert main(["validate", str(out), "-q"]) == 0
    assert "checksum differs, audio matches    1" in capsys.readouterr().out
    assert main(["validate", str(out), "--strict", "-q"]) == 1


def test_an_old_manifest_without_samples_checksum_validates_as_before(downloaded, capsys):  # noqa: F811
    config, out = downloaded
    frame = read_manifest(out / MANIFEST_NAME)
    text = (out / MANIFEST_NAME).read_text().splitlines()
    # The last two columns: drop them as an older version wrote neither.
    assert text[0].endswith(",samples_sha256,source")
    old = out / "old_manifest.csv"
    old.write_text("\n".join(line.rsplit(",", 2)[0] for line in text) + "\n")
    assert "samples_sha256" not in old.read_text()
    _flip_a_sample_byte(out / frame["file"][0])
    assert main(["validate", str(out), "--manifest", str(old), "-q"]) == 0
    assert "checksum differs, audio matches    1" in capsys.readouterr().out


# -- 10: report and validate on a read-only copy ------------------------------------------------

def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def test_report_and_validate_write_nothing_into_the_dataset(downloaded, tmp_path):  # noqa: F811
    config, out = downloaded
    before = _snapshot(out)
    assert main(["report", str(out), "--out", str(tmp_path / "report"), "-q"]) == 0
    assert main(["validate", str(out), "--out", str(tmp_path / "validation.csv"), "-q"]) == 0
    # Not even the ledger's -shm / -wal side files: a reading command leaves the folder alone.
    assert _snapshot(out) == before


def _read_only_mount_works(tmp_path: Path) -> bool:
    probe, mount = tmp_path / "probe_src", tmp_path / "probe_mnt"
    probe.mkdir()
    mount.mkdir()
    try:
        done = subprocess.run(["unshare", "-m", "sh", "-c", 'mount --bind -o ro "$0" "$1"', str(probe), str(mount)],
                              capture_output=True)
    except OSError:
        return False
    return done.returncode == 0


def _on_read_only_copy(source: Path, mount: Path, *argv: str) -> subprocess.CompletedProcess:
    """Run the CLI with ``source`` mounted read-only at ``mount`` (in a private mount namespace)."""
    mount.mkdir(exist_ok=True)
    script = 'mount --bind -o ro "$0" "$1" && shift 1 && exec "$@"'
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script, str(source), str(mount), sys.executable, "-m", "audioset_tools",
         *argv, "-q"],
        capture_output=True, text=True, cwd=REPO,
    )


@pytest.mark.parametrize("journal", ["closed_cleanly", "copied_while_a_download_ran"])
def test_report_and_validate_work_on_a_read_only_copy(downloaded, tmp_path, journal):  # noqa: F811
    if not _read_only_mount_works(tmp_path):
        pytest.skip("this machine cannot make a read-only mount (needs unshare -m with mount rights)")
    config, out = downloaded
    copy = tmp_path / "copy"
    if journal == "closed_cleanly":
        shutil.copytree(out, copy)
    else:
        # Copied while a writer had the ledger open: the copy carries -wal and -shm side files.
        with Ledger(out / LEDGER_NAME) as ledger:
            ledger.import_unavailable([("c0clip00001", "gone", "2026-11-01T10:00:00Z")])
            shutil.copytree(out, copy)
        assert (copy / f"{LEDGER_NAME}-wal").exists()
    mount = tmp_path / "mnt"
    report = _on_read_only_copy(copy, mount, "report", str(mount), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "report" / "outcomes.png").is_file() and "Traceback" not in report.stderr
    validate = _on_read_only_copy(copy, mount, "validate", str(mount), "--out", str(tmp_path / "v.csv"))
    assert validate.returncode == 0, validate.stderr
    assert "dataset is intact" in validate.stdout and (tmp_path / "v.csv").is_file()
    # Without --out: the verdict all the same, and where the details could not go.
    default = _on_read_only_copy(copy, mount, "validate", str(mount))
    assert default.returncode == 0, default.stderr
    assert "dataset is intact" in default.stdout and "read-only (pass --out CSV" in default.stdout
    # The report has nowhere to go by default: one clear message, exit 2.
    refused = _on_read_only_copy(copy, mount, "report", str(mount))
    assert refused.returncode == 2 and "pass --out DIR" in refused.stderr and "Traceback" not in refused.stderr


# -- 11: hostile text in shared files -------------------------------------------------------------

FORMULAS = {"class_name": '=HYPERLINK("http://example.invalid","x")', "labels": "@SUM(1+1)*cmd|' /C calc'!A0",
            "mid": "+cmd"}


def _cells(path: Path, column: str) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [row[column] for row in csv.DictReader(handle)]


def test_formulas_in_a_shared_manifest_are_neutralised(downloaded, tmp_path, capsys):  # noqa: F811
    config, out = downloaded
    frame = read_manifest(out / MANIFEST_NAME)
    hostile = frame.copy()
    first = hostile["class_index"] == 0
    for column, formula in FORMULAS.items():
        hostile.loc[first, column] = formula
    shared = tmp_path / "shared.csv"
    # Saved by a spreadsheet: a UTF-8 byte-order mark first.
    hostile.to_csv(shared, index=False, encoding="utf-8-sig")
    assert shared.read_bytes().startswith(b"\xef\xbb\xbf")
    rebuilt = tmp_path / "rebuilt"
    assert main(["rebuild", "--manifest", str(shared), "--output", str(rebuilt), "--config", str(config), "-q"]) == 0
    written = {
        rebuilt / MANIFEST_NAME: ("class_name", "labels", "mid"),
        rebuilt / "metadata.csv": ("label", "labels", "mid"),
        rebuilt / "rebuild_report.csv": ("class_name",),
    }
    for path, columns in written.items():
        for column in columns:
            cells = _cells(path, column)
            assert not [c for c in cells if c[:1] in "=+-@"], (path.name, column)
            assert any(c.startswith("'") and c[1:] in FORMULAS.values() for c in cells)  # still readable
    # Numbers are numbers: the start and end cells are exactly what they were.
    assert _cells(rebuilt / MANIFEST_NAME, "start_seconds") == _cells(out / MANIFEST_NAME, "start_seconds")
    # Read back, the values are the shared manifest's; the dataset validates and a rerun keeps everything.
    back = read_manifest(rebuilt / MANIFEST_NAME)
    assert back.loc[back["class_index"] == 0, "class_name"].unique().tolist() == [FORMULAS["class_name"]]
    assert main(["validate", str(rebuilt), "-q"]) == 0
    assert main(["rebuild", "--manifest", str(rebuilt / MANIFEST_NAME), "--output", str(rebuilt),
                 "--config", str(config), "-q"]) == 0
    assert {row["status"] for row in csv.DictReader((rebuilt / "rebuild_report.csv").open())} == {"kept"}


def test_a_manifest_with_a_byte_order_mark_is_read(downloaded, tmp_path):  # noqa: F811
    config, out = downloaded
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + (out / MANIFEST_NAME).read_bytes())
    assert main(["validate", str(out), "--manifest", str(bom), "-q"]) == 0


def test_a_gzip_metadata_file_that_expands_without_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(official, "MAX_GUNZIPPED_BYTES", 1 << 20)
    bomb = tmp_path / "eval_segments.csv.gz"
    with gzip.open(bomb, "wb") as handle:
        handle.write(HEADER.encode())
        for _ in range(64):
            handle.write(b"#" * (1 << 16) + b"\n")
    ontology = read_ontology(FIXTURES / "ontology.json")
    with pytest.raises(UserError, match="expands to more than 1 MiB when gunzipped"):
        read_segments({"eval": bomb}, ontology.ids)


def test_an_over_long_metadata_line_is_skipped_and_reported(tmp_path, monkeypatch):
    # A smaller parser block, so a line long enough to break it stays small enough for a test.
    monkeypatch.setattr(segments, "_BLOCK_SIZE", 1 << 14)
    body = (FIXTURES / "eval_segments.csv").read_text().split("\n", 3)[3]
    path = tmp_path / "eval_segments.csv"
    path.write_text(HEADER + body + 'aaaaaaaaaa9, 0.000, 10.000, "' + "x" * 200_000 + '"\n' + body)
    ontology = read_ontology(FIXTURES / "ontology.json")
    read = read_segments({"eval": path}, ontology.ids)
    assert read.valid.sum() == 6  # every other row is kept
    (malformed,) = read.malformed
    assert malformed.line == 4 + body.count("\n") and "skipped" in malformed.reason
    assert read.files[0].malformed == 1 and len(str(malformed)) < 300


def test_future_last_checked_is_clamped_when_merging(downloaded, tmp_path):  # noqa: F811
    config, out = downloaded
    future = tmp_path / "future.csv"
    future.write_text("ytid,reason,last_checked\nc0clip00001,'=gone,2999-01-01T00:00:00Z\n")
    assert main(["download", "--config", str(config), "--import-unavailable", str(future), "-q"]) == 0
    exported = tmp_path / "exported.csv"
    assert main(["download", "--config", str(config), "--export-unavailable", str(exported), "-q"]) == 0
    with exported.open() as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["last_checked"] <= utc_now() and row["reason"] == "'=gone"
    # A real check made after the import still replaces it.
    later = tmp_path / "later.csv"
    later.write_text(f"ytid,reason,last_checked\nc0clip00001,still gone,{utc_now()}\n")
    assert main(["download", "--config", str(config), "--import-unavailable", str(later), "-q"]) == 0
    assert main(["download", "--config", str(config), "--export-unavailable", str(exported), "-q"]) == 0
    assert "still gone" in exported.read_text()


def test_a_resumed_slice_relabels_the_clips_of_other_slices_too(downloaded, tmp_path, media_server,  # noqa: F811
                                                                 tone_sources):
    config, out = downloaded
    _reselect(tmp_path, media_server, tone_sources, [("/m/c", "Music"), ("/m/a", "Speech"), ("/m/b", "Dog, bark")])
    # Only the new class's slice runs; the clips of the other classes still take their new indices.
    assert main(["download", "--config", str(config), "--start", "0", "--end", "1", "-q"]) == 0
    manifest = assert_manifests_equal_disk(out)
    classes = manifest.drop_duplicates("mid").set_index("mid")
    assert classes["class_index"].to_dict() == {"/m/c": 0, "/m/a": 1, "/m/b": 2}
    assert classes["split"].to_dict() == {"/m/c": "train", "/m/a": "val", "/m/b": "test"}
    assert main(["validate", str(out), "-q"]) == 0


def test_a_clip_as_this_machine_fetched_it_is_not_fetched_again_for_other_samples(downloaded, tmp_path,  # noqa: F811
                                                                                   media_server, capsys):
    """A manifest from a machine whose ffmpeg decoded the source into other samples: refetching
    gives the same file, so the rebuild keeps it (and says why) instead of fetching it on every run."""
    config, out = downloaded
    frame = read_manifest(out / MANIFEST_NAME)
    frame.loc[1, ["sha256", "samples_sha256"]] = ["0" * 64, "1" * 64]
    foreign = tmp_path / "from_another_machine.csv"
    frame.to_csv(foreign, index=False)
    for _ in range(2):
        assert main(["rebuild", "--manifest", str(foreign), "--output", str(out), "--config", str(config),
                     "-q"]) == 0
        assert "1 clip(s) decode to other samples than the manifest records" in capsys.readouterr().out
        with (out / "rebuild_report.csv").open() as handle:
            row = next(r for r in csv.DictReader(handle) if r["ytid"] == frame["ytid"][1])
        assert (row["status"], row["check"]) == ("kept", "changed_samples")
    assert media_server.total_requests() == 0
    # Measured against that manifest the samples do differ, and validate says so.
    assert main(["validate", str(out), "--manifest", str(foreign), "-q"]) == 1
