"""Compare a dataset folder with its manifests: what is missing, damaged, extra or re-encoded.

Like mirdata's ``validate()``, :func:`validate_dataset` reports problems instead of
raising, so the caller decides what to do (print, fail, re-fetch). Only a dataset
whose global manifest cannot be read at all raises :class:`UserError`.
"""

from __future__ import annotations

import csv
import enum
import io
import logging
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from ..atomic import atomic_write_text, is_temporary
from ..errors import UserError
from ..tables import spreadsheet_safe
from .audio_info import (
    AudioReadError,
    is_silent,
    probe_audio,
    samples_sha256,
    segment_frames,
    sha256_file,
)
from .layout import QUARANTINE_DIR, REPORTS_DIR
from .manifest import (
    MANIFEST_NAME,
    dataset_path,
    existing_class_manifests,
    read_manifest,
)

log = logging.getLogger(__name__)

VALIDATION_NAME = "validation.csv"


def default_details_path(root: Path) -> Path:
    """``<root>/_reports/validation.csv``: outside the root, where datasets would read it as a split."""
    return Path(root) / REPORTS_DIR / VALIDATION_NAME


# Files with these suffixes are clips; anything else (ledgers, reports, CSVs) is not ours to judge.
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".webm"})


class Kind(str, enum.Enum):
    """What is wrong. The values are written to the details CSV."""

    MISSING = "missing"
    UNREADABLE = "unreadable"
    WRONG_DURATION = "wrong_duration"
    WRONG_SAMPLE_RATE = "wrong_sample_rate"
    WRONG_CHANNELS = "wrong_channels"
    SILENT = "silent"
    # The bytes differ from the manifest's sha256 but the decoded audio has the expected
    # length, rate and channels: another ffmpeg build writes different bytes for the
    # same clip, so this is reported on its own rather than as corruption.
    CHECKSUM_ONLY = "checksum_only"
    # The bytes and the decoded samples both differ from the manifest (its samples_sha256),
    # with the right length, rate and channels: the audio itself was changed.
    CHANGED_SAMPLES = "changed_samples"
    EXTRA = "extra"
    MANIFEST_MISMATCH = "manifest_mismatch"
    # One class index for several classes, one class in several splits or folders: the
    # manifest mixes two selections (e.g. resumed after the selection changed).
    MIXED_CLASSES = "mixed_classes"


# Problems of files the manifest lists; re-fetching them can help.
INVALID_KINDS = frozenset(
    {Kind.UNREADABLE, Kind.WRONG_DURATION, Kind.WRONG_SAMPLE_RATE, Kind.WRONG_CHANNELS, Kind.SILENT,
     Kind.CHANGED_SAMPLES}
)


@dataclass(frozen=True)
class Finding:
    kind: Kind
    file: str
    detail: str
    expected: str = ""
    found: str = ""
    ytid: str = ""
    class_name: str = ""


@dataclass(frozen=True)
class ValidationResult:
    """Everything :func:`validate_dataset` found. ``missing`` and ``invalid`` are the damage."""

    manifest: pd.DataFrame = field(repr=False)
    checked: int
    missing: list[Finding]
    invalid: list[Finding]
    checksum_only: list[Finding]
    extra: list[Finding]
    manifest_problems: list[Finding]

    @property
    def findings(self) -> list[Finding]:
        return self.missing + self.invalid + self.checksum_only + self.extra + self.manifest_problems

    def is_intact(self, strict: bool = False) -> bool:
        """No damage; ``strict`` also refuses checksum-only differences."""
        damaged = self.missing or self.invalid or self.extra or self.manifest_problems
        return not damaged and not (strict and self.checksum_only)

    def files_to_refetch(self, strict: bool = False) -> list[str]:
        """Manifest files a re-fetch could fix, in manifest order.

        A silent clip whose bytes match the manifest was silent at the source, so
        fetching it again cannot help and it is left out.
        """
        wanted: set[str] = {f.file for f in self.missing}
        for finding in self.invalid:
            if finding.kind is Kind.SILENT and finding.found == "sha256 matches":
                continue
            wanted.add(finding.file)
        if strict:
            wanted.update(f.file for f in self.checksum_only)
        return [name for name in self.manifest["file"] if name in wanted]

    def counts(self) -> dict[str, int]:
        counts = {kind.value: 0 for kind in Kind}
        for finding in self.findings:
            counts[finding.kind.value] += 1
        return counts


def validate_dataset(
    root: Path,
    manifest_path: Path | None = None,
    *,
    workers: int = 2,
    progress: bool = True,
) -> ValidationResult:
    """Check every clip of the dataset in ``root`` against a manifest.

    ``manifest_path`` defaults to ``root/manifest.csv``; then the per-class manifests are
    also checked against it. Given another manifest (e.g. the one a dataset was rebuilt
    from), only the files are compared with it.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"dataset folder not found: {root}")
    own_manifest = manifest_path is None
    manifest_path = root / MANIFEST_NAME if own_manifest else Path(manifest_path)
    if not manifest_path.is_file():
        raise UserError(
            f"no manifest at {manifest_path}\n"
            f"  validate compares a dataset with the manifest.csv that download_data.py writes; "
            f"pass --manifest PATH if it lives elsewhere."
        )
    manifest = read_manifest(manifest_path)
    rows = manifest.to_dict("records")
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        checks: Iterator[list[Finding]] = pool.map(
            lambda row: check_clip(root, row), rows
        )
        per_clip = list(tqdm(checks, total=len(rows), desc="validate", unit="clip", disable=not progress))
    found = [finding for findings in per_clip for finding in findings]
    listed = set(manifest["file"])
    result = ValidationResult(
        manifest=manifest,
        checked=len(rows),
        missing=[f for f in found if f.kind is Kind.MISSING],
        invalid=[f for f in found if f.kind in INVALID_KINDS],
        checksum_only=[f for f in found if f.kind is Kind.CHECKSUM_ONLY],
        extra=list(find_extra_files(root, listed)),
        manifest_problems=(list(check_class_manifests(root, manifest)) if own_manifest else [])
        + list(check_class_consistency(manifest)),
    )
    log.debug("validated %d clips in %s: %s", result.checked, root, result.counts())
    return result


def check_clip(root: Path, row: dict) -> list[Finding]:
    """Every problem of one manifest row's file (empty when it is intact).

    The length is checked in samples, exactly: a clip of ``[start, end)`` holds
    ``round((end - start) * sample_rate)`` samples per channel, no more, no fewer.
    """
    relative = row["file"]

    def finding(kind: Kind, detail: str, expected: object = "", found: object = "") -> Finding:
        return Finding(kind, relative, detail, str(expected), str(found), row["ytid"], row["class_name"])

    path = dataset_path(root, relative)
    if not path.is_file():
        return [finding(Kind.MISSING, "file listed in the manifest is not on disk")]
    try:
        info = probe_audio(path)
    except AudioReadError as exc:
        return [finding(Kind.UNREADABLE, f"cannot decode the audio: {exc}")]
    actual_sha = sha256_file(path)
    sha_matches = actual_sha == row["sha256"]
    checksum_note = "" if sha_matches else "; its sha256 differs from the manifest too"
    problems: list[Finding] = []
    if info.sample_rate != row["sample_rate"]:
        problems.append(finding(
            Kind.WRONG_SAMPLE_RATE, f"sample rate is not the manifest's{checksum_note}",
            row["sample_rate"], info.sample_rate,
        ))
    if info.channels != row["channels"]:
        problems.append(finding(
            Kind.WRONG_CHANNELS, f"channel count is not the manifest's{checksum_note}",
            row["channels"], info.channels,
        ))
    # At the file's own rate: a wrong rate is its own finding, not also a wrong length.
    expected_frames = segment_frames(row["start_seconds"], row["end_seconds"], info.sample_rate)
    if info.frames != expected_frames:
        problems.append(finding(
            Kind.WRONG_DURATION,
            f"holds {info.frames} samples per channel instead of exactly {expected_frames} "
            f"(truncated, or made by an older version?){checksum_note}",
            expected_frames, info.frames,
        ))
    try:
        silent = is_silent(path)
    except AudioReadError as exc:
        problems.append(finding(Kind.UNREADABLE, f"the audio stops decoding part-way: {exc}"))
    else:
        if silent:
            problems.append(finding(
                Kind.SILENT, "every sample is the same (all silence)",
                "", "sha256 matches" if sha_matches else "sha256 differs",
            ))
    if not problems and not sha_matches:
        problems.append(_checksum_finding(path, row, actual_sha, finding))
    return problems


def _checksum_finding(path: Path, row: dict, actual_sha: str, finding) -> Finding:
    """Another sha256 with the right length, rate and channels: a re-encode, or changed audio?

    The manifest's samples_sha256 (the decoded samples' checksum) tells them apart; a
    manifest written before that column existed cannot, and the clip counts as re-encoded.
    """
    expected_samples = str(row.get("samples_sha256") or "")
    if expected_samples:
        try:
            actual_samples = samples_sha256(path)
        except AudioReadError as exc:
            return finding(Kind.UNREADABLE, f"the audio stops decoding part-way: {exc}")
        if actual_samples != expected_samples:
            return finding(
                Kind.CHANGED_SAMPLES,
                "the decoded samples differ from the manifest's samples_sha256 (the audio was changed)",
                expected_samples, actual_samples,
            )
        return finding(
            Kind.CHECKSUM_ONLY,
            "sha256 differs but the decoded samples are the manifest's (samples_sha256 matches): "
            "the same audio encoded into other bytes",
            row["sha256"], actual_sha,
        )
    return finding(
        Kind.CHECKSUM_ONLY,
        "sha256 differs but the decoded audio has the expected length, rate and channels "
        "(normal when another ffmpeg build encoded it; otherwise the samples were changed)",
        row["sha256"], actual_sha,
    )


def find_extra_files(root: Path, listed: set[str]) -> Iterable[Finding]:
    """Audio files under ``root`` that no manifest row names.

    Hidden files and folders (crash leftovers) and the quarantine folder are skipped:
    clips set aside by cleaning are listed in its own quarantine.csv.
    """
    for folder, dirs, files in os.walk(root):
        at_root = Path(folder) == Path(root)
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and not (at_root and d == QUARANTINE_DIR)
        )
        for name in sorted(files):
            path = Path(folder) / name
            if name.startswith(".") or is_temporary(path) or path.suffix.lower() not in AUDIO_SUFFIXES:
                continue
            relative = path.relative_to(root).as_posix()
            if relative not in listed:
                yield Finding(Kind.EXTRA, relative, "audio file that no manifest lists")


def check_class_manifests(root: Path, manifest: pd.DataFrame) -> Iterable[Finding]:
    """Each class folder's manifest.csv must list exactly the global manifest's rows of that folder."""
    expected: dict[str, set[str]] = {}
    for file in manifest["file"]:
        expected.setdefault(file.split("/", 1)[0], set()).add(file)
    seen: set[str] = set()
    for path in existing_class_manifests(root):
        folder = path.parent.name
        seen.add(folder)
        relative = f"{folder}/{MANIFEST_NAME}"
        try:
            class_rows = read_manifest(path)
        except UserError as exc:
            yield Finding(Kind.MANIFEST_MISMATCH, relative, f"unreadable per-class manifest: {exc.message}")
            continue
        listed = set(class_rows["file"])
        wanted = expected.get(folder, set())
        if listed != wanted:
            yield Finding(
                Kind.MANIFEST_MISMATCH, relative,
                f"lists {len(listed - wanted)} file(s) the global manifest does not have "
                f"and lacks {len(wanted - listed)} it has",
                len(wanted), len(listed),
            )
            continue
        merged = class_rows.merge(manifest, on="file", suffixes=("", "_global"))
        if not (merged["sha256"] == merged["sha256_global"]).all():
            yield Finding(Kind.MANIFEST_MISMATCH, relative, "sha256 values disagree with the global manifest")
    for folder in sorted(set(expected) - seen):
        yield Finding(
            Kind.MANIFEST_MISMATCH, f"{folder}/{MANIFEST_NAME}",
            "per-class manifest is missing", len(expected[folder]), 0,
        )


def check_class_consistency(manifest: pd.DataFrame) -> Iterable[Finding]:
    """A manifest must give each class index one class (MID, name, split, folder) and each MID one index.

    A dataset resumed after its selection changed can break this while every file is
    intact; rebuild and the converters then refuse the manifest, so validate says so first.
    """
    if manifest.empty:
        return
    folders = manifest["file"].map(lambda file: file.rpartition("/")[0])
    frame = manifest.assign(folder=folders)
    # One class index must name one class in one split and one folder; one class must keep
    # one index and one split.
    for key, columns in (("class_index", ("mid", "class_name", "split", "folder")), ("mid", ("class_index", "split"))):
        for value, rows in frame.groupby(key, sort=True):
            subject = "one class index" if key == "class_index" else f"class {value}"
            for column in columns:
                values = sorted(rows[column].astype(str).unique())
                if len(values) > 1:
                    yield Finding(
                        Kind.MIXED_CLASSES, f"{MANIFEST_NAME} {key} {value}",
                        f"{subject} has several values of {column}: {', '.join(map(repr, values))}; "
                        f"the dataset mixes two class selections (download the current one into a new folder)",
                        "1", str(len(values)),
                    )

DETAIL_COLUMNS = ("kind", "file", "class_name", "ytid", "detail", "expected", "found")


def write_details(path: Path, result: ValidationResult) -> None:
    """One row per finding, sorted by kind then file, so two runs diff cleanly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(DETAIL_COLUMNS)
    for f in sorted(result.findings, key=lambda f: (f.kind.value, f.file)):
        writer.writerow([f.kind.value, f.file, spreadsheet_safe(f.class_name), f.ytid, f.detail, f.expected, f.found])
    atomic_write_text(Path(path), buffer.getvalue())


_SUMMARY_LABELS = {
    Kind.MISSING: "missing files",
    Kind.UNREADABLE: "unreadable audio",
    Kind.WRONG_DURATION: "wrong length (exact samples)",
    Kind.WRONG_SAMPLE_RATE: "wrong sample rate",
    Kind.WRONG_CHANNELS: "wrong channel count",
    Kind.SILENT: "all-silent clips",
    Kind.CHECKSUM_ONLY: "checksum differs, audio matches",
    Kind.CHANGED_SAMPLES: "changed audio samples",
    Kind.EXTRA: "files in no manifest",
    Kind.MANIFEST_MISMATCH: "per-class manifest problems",
    Kind.MIXED_CLASSES: "classes mixed up in the manifest",
}


def summary_text(result: ValidationResult, strict: bool = False) -> str:
    counts = result.counts()
    lines = [f"checked {result.checked} clip(s) listed in the manifest"]
    lines += [f"  {_SUMMARY_LABELS[kind]:<34} {counts[kind.value]}" for kind in Kind]
    if result.is_intact(strict):
        verdict = "dataset is intact"
        if result.checksum_only:
            verdict += (f" ({len(result.checksum_only)} clip(s) encoded differently, probably by "
                        f"another ffmpeg; --strict counts them as damage)")
    else:
        verdict = "dataset is DAMAGED"
    lines.append(verdict)
    return "\n".join(lines)
