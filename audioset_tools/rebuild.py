"""Rebuild a dataset from its manifest alone: the same clips, names and audio settings.

The manifest becomes a download plan (one candidate per row, each class's target = its
row count), so the rebuild runs through the download runner with its resume, ledger,
pacing, cookies, workers and progress bars, and never selects or fetches anything else.
Afterwards every row is checked against the manifest (``validate.check_clip``) and
the outcome of each row goes to ``rebuild_report.csv``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from .download.plan import Candidate, ClassPlan
from .errors import UserError
from .layout import check_folder, clip_file_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AudioSettings:
    """The output audio a manifest records; every row must agree."""

    format: str
    sample_rate: int
    channels: int

    def describe(self) -> str:
        layout = {1: "mono", 2: "stereo"}.get(self.channels, f"{self.channels} channels")
        return f"{self.format}, {self.sample_rate} Hz, {layout}"


def manifest_audio_settings(frame: pd.DataFrame, source: str = "manifest") -> AudioSettings:
    """The single (format, sample rate, channels) of a manifest; refuse a mixture.

    A rebuild writes every clip with one set of audio settings, so a manifest whose rows
    disagree cannot be reproduced in one run.
    """
    if frame.empty:
        raise UserError(f"{source}: the manifest lists no clips; there is nothing to rebuild")
    formats = frame["file"].str.rpartition(".")[2].str.lower()
    combos = pd.DataFrame({"format": formats, "sample_rate": frame["sample_rate"], "channels": frame["channels"]})
    distinct = combos.drop_duplicates()
    if len(distinct) > 1:
        counts = combos.value_counts().sort_index()
        listed = "; ".join(f"{fmt} {rate} Hz {ch} ch: {n} row(s)" for (fmt, rate, ch), n in counts.items())
        raise UserError(
            f"{source}: rows record different audio settings ({listed}).\n"
            f"  A rebuild writes one format; split the manifest by these settings and rebuild each part."
        )
    row = distinct.iloc[0]
    return AudioSettings(str(row["format"]), int(row["sample_rate"]), int(row["channels"]))


def plans_from_manifest(frame: pd.DataFrame, source: str = "manifest") -> list[ClassPlan]:
    """One :class:`ClassPlan` per class of a validated manifest, rows kept in manifest order.

    Refuses (naming the manifest line, header = line 1) rows whose file name is not the
    one the downloader gives that ytid and start, classes spread over several folders,
    folders shared by several classes, and classes whose MID, name or split differ
    between rows: such a manifest was edited by hand or by another tool, and rebuilding
    it would not reproduce what it describes.
    """
    settings = manifest_audio_settings(frame, source)
    problems: list[str] = []
    plans: list[ClassPlan] = []
    folder_owner: dict[str, int] = {}
    lines = pd.Series(range(2, len(frame) + 2), index=frame.index)
    for class_index, rows in frame.groupby("class_index", sort=True):
        where = f"{source}: class {class_index}"
        for column in ("mid", "class_name", "split"):
            values = rows[column].unique()
            if len(values) > 1:
                problems.append(f"{where} has several values of {column}: {', '.join(map(repr, values))}")
        folders = rows["file"].str.rpartition("/")[0]
        if folders.nunique() > 1:
            problems.append(f"{where} is spread over several folders: {', '.join(sorted(folders.unique()))}")
            continue
        folder = folders.iloc[0]
        try:
            check_folder(folder)
        except UserError as exc:
            problems.append(f"{where}: {exc.message}")
            continue
        if folder in folder_owner:
            problems.append(f"{where} shares the folder {folder!r} with class {folder_owner[folder]}")
            continue
        folder_owner[folder] = int(class_index)
        problems.extend(_name_problems(rows, lines, settings.format, source))
        first = rows.iloc[0]
        plans.append(
            ClassPlan(
                class_index=int(class_index),
                mid=str(first["mid"]),
                class_name=str(first["class_name"]),
                split=str(first["split"]),
                folder=folder,
                target=len(rows),
                candidates=tuple(_candidates(rows)),
            )
        )
    if problems:
        shown = problems[:20]
        more = [f"... and {len(problems) - len(shown)} more"] if len(problems) > len(shown) else []
        raise UserError("cannot rebuild from this manifest:\n  " + "\n  ".join(shown + more))
    return plans


def _name_problems(rows: pd.DataFrame, lines: pd.Series, audio_format: str, source: str) -> Iterable[str]:
    for index, row in rows.iterrows():
        expected = clip_file_name(row["ytid"], row["start_seconds"], audio_format)
        name = row["file"].rpartition("/")[2]
        if name != expected:
            yield (
                f"{source}:{lines[index]}: file name {name!r} does not match ytid {row['ytid']} "
                f"and start {row['start_seconds']:g} s (expected {expected!r})"
            )


def _candidates(rows: pd.DataFrame) -> Iterable[Candidate]:
    for rank, row in enumerate(rows.itertuples(index=False)):
        yield Candidate(
            ytid=row.ytid,
            start_seconds=float(row.start_seconds),
            end_seconds=float(row.end_seconds),
            rank=rank,
            labels=str(row.labels),
            file=row.file,
        )
