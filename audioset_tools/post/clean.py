"""Quarantine clips unfit for training (``audioset-tools clean``).

A clip is bad when it cannot be decoded, holds NaN or inf (or, in a 16-bit file, the
trace ffmpeg leaves of them), is silent (standard deviation at or below a threshold,
0 = constant) or has the wrong length: not exactly ``round(seconds * sample_rate)``
samples per channel. Bad clips are
moved to ``<output_dir>/_quarantine/<class folder>/`` and listed, with the reason, in
``_quarantine/quarantine.csv`` (format owned by :mod:`audioset_tools.dataset.quarantine`); then the manifests are
rewritten without them. Nothing is deleted.

Order of the steps, for crash safety: the list is written first, then files move, then
the manifests. A rerun after a crash finishes the job: a manifest row whose file has
gone to quarantine is dropped; a listed clip that never moved is checked again.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from ..atomic import atomic_write_text
from ..dataset.layout import QUARANTINE_DIR
from ..dataset.lock import dataset_lock
from ..dataset.manifest import dataset_path, manifest_csv_text, write_dataset_manifests
from ..dataset.quarantine import (
    quarantine_list_path,
    quarantined_segments,
    read_quarantine_list,
    unmoved_entries,
)
from ..download.ledger import LEDGER_NAME, Ledger
from .audio import ClipReadError, read_clip
from .derived import load_dataset_manifest
from .parallel import batches, default_workers, run_batches

log = logging.getLogger(__name__)

# ffmpeg writes NaN and infinite source samples into 16-bit audio as negative full scale,
# and its resampler smears even one of them over ~35 output samples (at 48 -> 16 kHz).
# Real clipping hits both full-scale ends; this trace sits at the negative end only.
NAN_TRACE_RUN = 16
_NEGATIVE_FULL_SCALE = -1.0
_POSITIVE_FULL_SCALE = 32767 / 32768


@dataclass(frozen=True)
class CleanSettings:
    # None: a clip should last its segment, end_seconds - start_seconds.
    expected_seconds: float | None = None
    silence_std: float = 0.0


@dataclass
class CleanSummary:
    checked: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    recovered: int = 0
    dry_run: bool = False

    @property
    def total_quarantined(self) -> int:
        return sum(self.quarantined.values())


def inspect_clip(path: Path, expected_seconds: float, settings: CleanSettings) -> tuple[str, str] | None:
    """``(reason, detail)`` when the clip is bad, None when it is fine."""
    try:
        samples, sample_rate = read_clip(path, dtype="float64")
    except ClipReadError as exc:
        return "unreadable", str(exc)
    finite = np.isfinite(samples)
    if not finite.all():
        return "non_finite", f"{int((~finite).sum())} NaN or inf sample(s)"
    trace = nan_trace_run(samples)
    if trace >= NAN_TRACE_RUN:
        return "non_finite", (
            f"{trace} consecutive samples stuck at negative full scale and none at positive full scale "
            f"(what ffmpeg writes for NaN or inf source samples)"
        )
    std = float(samples.std())
    if std <= settings.silence_std:
        return "silent", f"standard deviation {std:.3g} <= {settings.silence_std:g}"
    frames, expected_frames = samples.shape[-1], round(expected_seconds * sample_rate)
    if frames != expected_frames:
        return "wrong_length", f"{frames} samples instead of exactly {expected_frames} ({expected_seconds:g} s)"
    return None


def nan_trace_run(samples: np.ndarray) -> int:
    """Longest run of negative full-scale samples in a channel that never reaches positive full scale."""
    longest = 0
    for channel in np.atleast_2d(samples):
        if channel.max() >= _POSITIVE_FULL_SCALE:
            continue
        stuck = np.concatenate(([False], channel == _NEGATIVE_FULL_SCALE, [False]))
        edges = np.flatnonzero(stuck[1:] != stuck[:-1])
        if len(edges):
            longest = max(longest, int((edges[1::2] - edges[::2]).max()))
    return longest


def _inspect_batch(
    batch: list[tuple[str, float]], settings: CleanSettings
) -> list[tuple[str, str] | None]:
    return [inspect_clip(Path(path), expected, settings) for path, expected in batch]


def _quarantine_target(output_dir: Path, relative: str, taken: set[str]) -> str:
    """A free name under _quarantine for ``relative`` (a clip quarantined twice keeps both)."""
    pure = PurePosixPath(QUARANTINE_DIR) / relative
    candidate, number = str(pure), 1
    while candidate in taken or dataset_path(output_dir, candidate).exists():
        candidate = str(pure.with_name(f"{pure.stem}.{number}{pure.suffix}"))
        number += 1
    taken.add(candidate)
    return candidate


def clean_dataset(
    output_dir: Path,
    settings: CleanSettings,
    workers: int | None = None,
    batch_clips: int = 32,
    dry_run: bool = False,
) -> CleanSummary:
    """Check every clip of the dataset's manifest and quarantine the bad ones.

    Holds the dataset's lock (the downloader's) unless ``dry_run``, so it never works from
    a view that a running download or rebuild is changing.
    """
    output_dir = Path(output_dir)
    if dry_run or not output_dir.is_dir():  # (no folder: _clean explains what is missing)
        return _clean(output_dir, settings, workers, batch_clips, dry_run)
    with dataset_lock(output_dir, "clean"):
        return _clean(output_dir, settings, workers, batch_clips, dry_run)


def _clean(
    output_dir: Path, settings: CleanSettings, workers: int | None, batch_clips: int, dry_run: bool
) -> CleanSummary:
    manifest = load_dataset_manifest(output_dir)
    listed = read_quarantine_list(output_dir)
    summary = CleanSummary(dry_run=dry_run)

    # An entry whose clip is still in place and not in quarantine was written by a run
    # interrupted before the move: forget it, the clip is checked again below. Entries
    # whose quarantined copy the user deleted stay listed.
    unmoved = unmoved_entries(output_dir, listed)
    listed = listed[~unmoved].reset_index(drop=True)
    present = manifest["file"].map(lambda f: dataset_path(output_dir, f).is_file())
    finished = ~present & manifest["file"].isin(set(listed["file"]))
    summary.recovered = int(finished.sum())
    summary.missing = list(manifest.loc[~present & ~finished, "file"])
    for relative in summary.missing[:10]:
        log.warning("%s: in the manifest but missing on disk (see audioset-tools validate)", relative)

    checkable = manifest[present].reset_index(drop=True)
    expected = (
        np.full(len(checkable), settings.expected_seconds)
        if settings.expected_seconds is not None
        else (checkable["end_seconds"] - checkable["start_seconds"]).to_numpy()
    )
    pairs = [
        (str(dataset_path(output_dir, relative)), float(seconds))
        for relative, seconds in zip(checkable["file"], expected)
    ]
    work = batches(pairs, batch_clips)
    verdicts: list[tuple[str, str] | None] = [None] * len(pairs)
    for number, results in run_batches(_inspect_batch, work, settings, default_workers(workers), "checking"):
        verdicts[number * batch_clips : number * batch_clips + len(results)] = results
    summary.checked = len(pairs)

    bad_positions = [i for i, verdict in enumerate(verdicts) if verdict is not None]
    for i in bad_positions:
        reason = verdicts[i][0]
        summary.quarantined[reason] = summary.quarantined.get(reason, 0) + 1
    if dry_run:
        for i in bad_positions:
            log.info("would quarantine %s: %s (%s)", checkable.at[i, "file"], *verdicts[i])
        return summary
    if not bad_positions and not summary.recovered and not unmoved.any():
        return summary

    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    taken = set(listed["quarantine_file"])
    entries = checkable.iloc[bad_positions].copy()
    entries["reason"] = [verdicts[i][0] for i in bad_positions]
    entries["detail"] = [verdicts[i][1] for i in bad_positions]
    entries["quarantine_file"] = [_quarantine_target(output_dir, f, taken) for f in entries["file"]]
    entries["quarantined_at"] = now
    updated = pd.concat([listed, entries], ignore_index=True) if len(listed) else entries
    atomic_write_text(quarantine_list_path(output_dir), manifest_csv_text(updated))
    for relative, target in zip(entries["file"], entries["quarantine_file"]):
        destination = dataset_path(output_dir, target)
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(dataset_path(output_dir, relative), destination)
        log.info("quarantined %s", relative)
    gone = set(entries["file"]) | set(manifest.loc[finished, "file"])
    _write_manifests(output_dir, manifest[~manifest["file"].isin(gone)].reset_index(drop=True))
    return summary


def _write_manifests(output_dir: Path, remaining: pd.DataFrame) -> None:
    """Rewrite the manifests without the quarantined clips.

    A dataset with a download ledger has one manifest writer, the download runner's
    :func:`write_manifests`: it records each quarantined clip in the ledger (outcome
    ``quarantined``) and writes the manifests from the ledger's clips. Only a dataset
    without a ledger (e.g. copied without it) gets its manifests from ``remaining``.
    """
    ledger_path = output_dir / LEDGER_NAME
    if not ledger_path.is_file():
        write_dataset_manifests(output_dir, remaining)
        return
    from ..download.runner import (
        write_manifests,  # the download stack only when there is a ledger
    )

    with Ledger(ledger_path) as ledger:
        write_manifests(output_dir, ledger, quarantined_segments(output_dir))
