"""validate: each kind of damage inflicted on a generated dataset is found, and only that."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from dataset_factory import SAMPLE_RATE, make_dataset, tone

from audioset_tools.cli import main
from audioset_tools.dataset.layout import QUARANTINE_DIR
from audioset_tools.dataset.manifest import MANIFEST_NAME, write_dataset_manifests
from audioset_tools.dataset.validate import (
    VALIDATION_NAME,
    Kind,
    default_details_path,
    validate_dataset,
    write_details,
)
from audioset_tools.errors import UserError
from audioset_tools.post.clean import CleanSettings, clean_dataset


@pytest.fixture
def dataset(tmp_path: Path):
    root = tmp_path / "data"
    frame = make_dataset(root)
    return root, frame


def kinds(result) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for finding in result.findings:
        found.setdefault(finding.kind.value, set()).add(finding.file)
    return found


def test_intact_dataset_has_no_findings(dataset):
    root, frame = dataset
    result = validate_dataset(root, progress=False)
    assert result.checked == len(frame) == 6
    assert result.findings == []
    assert result.is_intact(strict=True)
    assert result.files_to_refetch() == []


def test_deleted_file_is_missing(dataset):
    root, frame = dataset
    victim = frame["file"][1]
    (root / victim).unlink()
    result = validate_dataset(root, progress=False)
    assert kinds(result) == {"missing": {victim}}
    assert not result.is_intact()
    assert result.files_to_refetch() == [victim]


def test_truncated_file_has_wrong_duration(dataset):
    root, frame = dataset
    victim = root / frame["file"][2]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    result = validate_dataset(root, progress=False)
    assert kinds(result) == {"wrong_duration": {frame["file"][2]}}
    (finding,) = result.invalid
    assert int(finding.expected) == 32000
    assert int(finding.found) == pytest.approx(16000, abs=200)
    assert "sha256 differs" in finding.detail


@pytest.mark.parametrize("change", [-1, 1])
def test_one_sample_too_few_or_too_many_is_a_wrong_length(dataset, change):
    # Lengths are exact, in samples: no tolerance in seconds lets a 31,999-sample clip pass.
    root, frame = dataset
    victim = root / frame["file"][0]
    samples, rate = sf.read(victim, dtype="int16")
    samples = samples[:change] if change < 0 else np.concatenate([samples, samples[:change]])
    sf.write(victim, samples, rate, subtype="PCM_16")
    result = validate_dataset(root, progress=False)
    (finding,) = result.invalid
    assert (finding.kind.value, finding.file) == ("wrong_duration", frame["file"][0])
    assert (int(finding.expected), int(finding.found)) == (32000, 32000 + change)


def test_flipped_byte_in_samples_is_a_checksum_only_difference(dataset):
    """Without samples_sha256 (a manifest of an older version) changed samples cannot be told
    from a re-encode; with it they are damage (tests/test_dataset_integrity.py)."""
    root, frame = dataset
    write_dataset_manifests(root, frame.drop(columns="samples_sha256"))
    victim = root / frame["file"][0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    result = validate_dataset(root, progress=False)
    assert kinds(result) == {"checksum_only": {frame["file"][0]}}
    assert result.is_intact() and not result.is_intact(strict=True)
    assert result.files_to_refetch() == []
    assert result.files_to_refetch(strict=True) == [frame["file"][0]]


def test_flipped_byte_in_header_is_unreadable(dataset):
    root, frame = dataset
    victim = root / frame["file"][3]
    data = bytearray(victim.read_bytes())
    data[0] ^= 0xFF  # "RIFF" no longer says RIFF
    victim.write_bytes(bytes(data))
    result = validate_dataset(root, progress=False)
    assert kinds(result) == {"unreadable": {frame["file"][3]}}


def test_extra_file_is_reported_but_other_artefacts_are_not(dataset):
    root, frame = dataset
    stray = root / "Meow" / "zzzzzzzzzzz_0.wav"
    shutil.copy(root / frame["file"][5], stray)
    (root / "Meow" / "notes.txt").write_text("not audio")
    (root / ".Meow.tmp").write_bytes(b"crash leftover")
    (root / "Meow" / ".abc.wav.123.tmp").write_bytes(b"crash leftover")
    (root / "ledger.sqlite").write_bytes(b"")
    result = validate_dataset(root, progress=False)
    assert kinds(result) == {"extra": {"Meow/zzzzzzzzzzz_0.wav"}}
    assert not result.is_intact()
    assert result.files_to_refetch() == []


def test_wrong_sample_rate_and_channels(dataset):
    root, frame = dataset
    resampled = root / frame["file"][4]
    sf.write(resampled, tone(500, rate=22050), 22050, subtype="PCM_16")
    stereo = root / frame["file"][5]
    mono = tone(510)
    sf.write(stereo, np.stack([mono, mono], axis=1), SAMPLE_RATE, subtype="PCM_16")
    result = validate_dataset(root, progress=False)
    assert kinds(result) == {"wrong_sample_rate": {frame["file"][4]}, "wrong_channels": {frame["file"][5]}}
    rate = next(f for f in result.invalid if f.kind is Kind.WRONG_SAMPLE_RATE)
    assert (rate.expected, rate.found) == ("16000", "22050")


def test_garbage_is_unreadable(dataset):
    root, frame = dataset
    (root / frame["file"][1]).write_bytes(b"\x00garbage" * 100)
    result = validate_dataset(root, progress=False)
    assert kinds(result) == {"unreadable": {frame["file"][1]}}


def test_all_silent_clip_is_invalid_but_not_worth_refetching(tmp_path):
    root = tmp_path / "data"
    frame = make_dataset(root, silent={"vid01clip01"})
    silent_file = frame.loc[frame["ytid"] == "vid01clip01", "file"].item()
    result = validate_dataset(root, progress=False)
    assert kinds(result) == {"silent": {silent_file}}
    assert not result.is_intact()
    # Its bytes are those the manifest recorded: the source itself was silent.
    assert result.files_to_refetch() == []


def test_clips_quarantined_by_cleaning_are_not_extra_files(tmp_path):
    root = tmp_path / "data"
    make_dataset(root, silent={"vid01clip01"})
    summary = clean_dataset(root, CleanSettings(), workers=1)
    assert summary.quarantined == {"silent": 1}
    assert any((root / QUARANTINE_DIR).rglob("*.wav"))
    assert kinds(validate_dataset(root, progress=False)) == {}


def test_reencoded_same_samples_is_checksum_only(dataset):
    """Same samples, different bytes (an extra LIST chunk, as another ffmpeg might write)."""
    root, frame = dataset
    victim = root / frame["file"][2]
    samples, rate = sf.read(victim, dtype="int16")
    with sf.SoundFile(victim, "w", samplerate=rate, channels=1, subtype="PCM_16", format="WAV") as out:
        out.title = "encoded by another ffmpeg"
        out.write(samples)
    assert sf.read(victim, dtype="int16")[0].tolist() == samples.tolist()
    result = validate_dataset(root, progress=False)
    assert kinds(result) == {"checksum_only": {frame["file"][2]}}
    (finding,) = result.checksum_only
    assert finding.expected == frame["sha256"][2] and finding.found != finding.expected


def test_class_manifest_problems(dataset):
    root, frame = dataset
    (root / "Meow" / MANIFEST_NAME).unlink()
    lines = (root / "Male_speech_man_speaking" / MANIFEST_NAME).read_text().splitlines()
    (root / "Male_speech_man_speaking" / MANIFEST_NAME).write_text("\n".join(lines[:-1]) + "\n")
    result = validate_dataset(root, progress=False)
    assert kinds(result) == {
        "manifest_mismatch": {"Meow/manifest.csv", "Male_speech_man_speaking/manifest.csv"}
    }


def test_external_manifest_is_compared_with_files_only(dataset, tmp_path):
    root, frame = dataset
    original = tmp_path / "original.csv"
    shutil.copy(root / MANIFEST_NAME, original)
    (root / "Meow" / MANIFEST_NAME).unlink()
    result = validate_dataset(root, original, progress=False)
    assert result.findings == []


def test_several_damages_at_once_and_details_csv(dataset):
    root, frame = dataset
    (root / frame["file"][0]).unlink()
    (root / frame["file"][1]).write_bytes(b"junk")
    result = validate_dataset(root, workers=3, progress=False)
    assert kinds(result) == {"missing": {frame["file"][0]}, "unreadable": {frame["file"][1]}}
    assert result.files_to_refetch() == [frame["file"][0], frame["file"][1]]
    out = default_details_path(root)
    out.parent.mkdir()
    write_details(out, result)
    rows = list(csv.DictReader(out.open()))
    assert [(r["kind"], r["file"]) for r in rows] == [
        ("missing", frame["file"][0]),
        ("unreadable", frame["file"][1]),
    ]
    assert rows[0]["ytid"] == frame["ytid"][0]


def test_no_manifest_is_a_user_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no manifest"):
        validate_dataset(tmp_path / "empty", progress=False)
    with pytest.raises(UserError, match="not found"):
        validate_dataset(tmp_path / "absent", progress=False)


# --- the command -------------------------------------------------------------------


def test_cli_clean_dataset_exits_zero(dataset, capsys, monkeypatch, tmp_path):
    root, _ = dataset
    monkeypatch.chdir(tmp_path)  # no control.yaml here: validate must not need one
    assert main(["validate", str(root), "-q"]) == 0
    out = capsys.readouterr().out
    assert "checked 6 clip(s)" in out and "dataset is intact" in out
    assert default_details_path(root).is_file()
    # Nothing at the root that Hugging Face datasets would read as a split.
    assert default_details_path(root).parent != root and not (root / VALIDATION_NAME).exists()


def test_cli_removes_the_details_file_earlier_versions_left_at_the_root(dataset, monkeypatch, tmp_path):
    root, _ = dataset
    monkeypatch.chdir(tmp_path)
    (root / VALIDATION_NAME).write_text("kind,file,class_name,ytid,detail,expected,found\n")
    (root / "notes").mkdir()
    own = root / "notes" / VALIDATION_NAME
    own.write_text("my,own,file\n")
    assert main(["validate", str(root), "-q"]) == 0
    assert not (root / VALIDATION_NAME).exists() and default_details_path(root).is_file()
    # A file of that name that is not our details file is the user's: kept.
    (root / VALIDATION_NAME).write_text("something else\n")
    assert main(["validate", str(root), "-q"]) == 0
    assert (root / VALIDATION_NAME).read_text() == "something else\n" and own.is_file()


def test_cli_damaged_dataset_exits_one_and_writes_details(dataset, capsys, monkeypatch, tmp_path):
    root, frame = dataset
    monkeypatch.chdir(tmp_path)
    (root / frame["file"][0]).unlink()
    details = root / "checks" / "v.csv"
    assert main(["validate", str(root), "--out", str(details), "-q"]) == 1
    out = capsys.readouterr().out
    assert "DAMAGED" in out and "missing files" in out
    assert frame["file"][0] in details.read_text()
    assert not default_details_path(root).exists()


def test_cli_strict_fails_on_checksum_only(dataset, monkeypatch, tmp_path):
    root, frame = dataset
    monkeypatch.chdir(tmp_path)
    victim = root / frame["file"][0]
    # The same samples in other bytes (a WAVE_FORMAT_EXTENSIBLE header), as another encoder writes them.
    samples, rate = sf.read(victim, dtype="int16")
    sf.write(victim, samples, rate, subtype="PCM_16", format="WAVEX")
    assert main(["validate", str(root), "-q"]) == 0
    assert main(["validate", str(root), "--strict", "-q"]) == 1


def test_cli_bad_folder_is_one_message(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["validate", str(tmp_path / "nowhere"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: dataset folder not found") and "Traceback" not in err


def test_empty_manifest_with_a_stray_clip(tmp_path):
    root = tmp_path / "data"
    frame = make_dataset(root)
    write_dataset_manifests(root, frame.iloc[0:0])
    result = validate_dataset(root, progress=False)
    assert result.checked == 0
    assert kinds(result) == {"extra": set(frame["file"])}
