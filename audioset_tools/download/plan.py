"""What to download: a pure function from the selection outputs to per-class plans.

A :class:`ClassPlan` is everything the runner needs about one class: where its clips go
and the candidates to try, in rank order, until ``target`` of them succeed. The
download command builds plans from suitable_classes.csv and candidates.csv; a rebuild
builds them from a manifest (one candidate per row, ``target`` = number of rows), and
both go through the same runner.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..dataset.ids import YTID_PATTERN, is_valid_ytid
from ..dataset.layout import AUDIO_EXTENSIONS, assign_class_folders, check_folder
from ..dataset.manifest import SPLITS
from ..errors import UserError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    """One segment to try for a class.

    ``file`` is the clip's path relative to the dataset root, ``<folder>/<name>``.
    ``rank`` orders the candidates of a class: lower is tried (and kept) first.
    """

    ytid: str
    start_seconds: float
    end_seconds: float
    rank: int
    labels: str
    file: str

    def __post_init__(self) -> None:
        if not is_valid_ytid(self.ytid):
            raise UserError(f"invalid YouTube ID {self.ytid!r}: expected 11 characters of [A-Za-z0-9_-]")
        if not (
            math.isfinite(self.start_seconds)
            and math.isfinite(self.end_seconds)
            and 0 <= self.start_seconds < self.end_seconds
        ):
            raise UserError(
                f"{self.ytid}: invalid segment [{self.start_seconds}, {self.end_seconds}]"
            )

    @property
    def name(self) -> str:
        return self.file.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ClassPlan:
    """One class to fill: ``target`` clips chosen among ``candidates`` in rank order.

    ``folder`` is a single safe folder name under the dataset root; every candidate's
    ``file`` must be ``folder/<plain file name>.<wav|flac>``. The constructor checks this,
    so a plan built from a hostile manifest cannot point outside the dataset.
    """

    class_index: int
    mid: str
    class_name: str
    split: str
    folder: str
    target: int
    candidates: tuple[Candidate, ...]

    def __post_init__(self) -> None:
        check_folder(self.folder)
        if not self.mid:
            raise UserError(f"class {self.class_index} ({self.class_name!r}) has an empty MID")
        if self.split not in SPLITS:
            raise UserError(
                f"class {self.mid} ({self.class_name!r}): split must be one of "
                f"{', '.join(SPLITS)}, got {self.split!r}"
            )
        if self.target < 0:
            raise UserError(f"class {self.mid}: negative target {self.target}")
        seen: set[str] = set()
        for candidate in self.candidates:
            folder, _, name = candidate.file.rpartition("/")
            extension = name.rpartition(".")[2]
            if folder != self.folder or not name or name.startswith(".") or extension not in AUDIO_EXTENSIONS:
                raise UserError(
                    f"class {self.mid}: clip path {candidate.file!r} must be "
                    f"{self.folder}/<name>.{'|'.join(AUDIO_EXTENSIONS)}"
                )
            if candidate.file in seen:
                raise UserError(f"class {self.mid}: clip {candidate.file!r} listed twice")
            seen.add(candidate.file)


def plan_download(
    suitable: pd.DataFrame,
    candidates: pd.DataFrame,
    *,
    start_index: int,
    end_index: int | None,
    samples_per_class: int,
    audio_format: str,
    max_attempts_per_class: int | None = None,
) -> list[ClassPlan]:
    """Plans for the classes ``[start_index, end_index)`` of suitable_classes (rows in file order).

    Candidates are tried in ``rank`` order; with ``max_attempts_per_class`` only the first
    that many are ever tried, so the cap gives the same dataset on every rerun. Class
    folders are assigned over all suitable classes, so they do not depend on the slice.
    Candidate rows with an invalid YouTube ID or segment are dropped with a warning:
    they can never become a path.
    """
    total = len(suitable)
    end = total if end_index is None else min(end_index, total)
    if start_index >= total or start_index >= end:
        raise UserError(
            f"the class slice [{start_index}, {end_index if end_index is not None else 'end'}) "
            f"is empty: suitable_classes.csv lists {total} classes (indices 0..{total - 1}).\n"
            f"  Set download.start_index / end_index (or --start / --end) inside that range."
        )
    folders = assign_class_folders(zip(suitable["mid"], suitable["name"]))
    classes = suitable.iloc[start_index:end].to_dict("records")
    chosen = _candidates_by_class(
        candidates,
        {int(row["index"]): (str(row["mid"]), folders[str(row["mid"])]) for row in classes},
        audio_format,
        max_attempts_per_class,
    )
    return [
        ClassPlan(
            class_index=int(row["index"]),
            mid=str(row["mid"]),
            class_name=str(row["name"]),
            split=str(row["split"]),
            folder=folders[str(row["mid"])],
            target=samples_per_class,
            candidates=tuple(chosen.get(int(row["index"]), ())),
        )
        for row in classes
    ]


def _candidates_by_class(
    candidates: pd.DataFrame,
    classes: dict[int, tuple[str, str]],
    audio_format: str,
    max_attempts_per_class: int | None,
) -> dict[int, list[Candidate]]:
    """Valid candidates of ``classes`` (index -> (mid, folder)) in rank order, vectorised:
    hundreds of thousands of rows must not delay the start of every run."""
    if audio_format not in AUDIO_EXTENSIONS:
        raise ValueError(f"unknown audio format {audio_format!r}")
    frame = candidates[candidates["class_index"].isin(list(classes))]
    class_index = frame["class_index"].astype("int64")
    start = pd.to_numeric(frame["start_seconds"], errors="coerce").astype("float64")
    end = pd.to_numeric(frame["end_seconds"], errors="coerce").astype("float64")
    ytids = frame["ytid"].astype(str)
    valid = (
        (frame["mid"].astype(str) == class_index.map(lambda i: classes[i][0]))
        & ytids.str.fullmatch(YTID_PATTERN).fillna(False).astype(bool)
        & np.isfinite(start) & np.isfinite(end) & (start >= 0) & (start < end)
    )
    for index, count in class_index[~valid].value_counts().sort_index().items():
        log.warning(
            "class %s: ignored %d candidate row(s) with an invalid YouTube ID, segment or MID",
            classes[int(index)][0], count,
        )
    table = pd.DataFrame(
        {
            "class_index": class_index,
            "rank": frame["rank"].astype("int64"),
            "ytid": ytids,
            "start": start,
            "end": end,
            "labels": frame["labels"].fillna("").astype(str),
        }
    )[valid]
    if table.empty:
        return {}
    table = table.sort_values(["class_index", "rank"], kind="stable")
    # Same rounding as layout.clip_file_name (round half to even on the same double).
    start_ms = np.round(table["start"].to_numpy() * 1000).astype("int64")
    folder = table["class_index"].map(lambda i: classes[i][1])
    table["file"] = folder + "/" + table["ytid"] + "_" + pd.Series(start_ms, index=table.index).astype(str) + (
        "." + audio_format
    )
    table = table.drop_duplicates("file", keep="first")
    if max_attempts_per_class is not None:
        table = table[table.groupby("class_index").cumcount() < max_attempts_per_class]
    chosen: dict[int, list[Candidate]] = {}
    for index, rank, ytid, first, last, labels, file in zip(
        table["class_index"].tolist(), table["rank"].tolist(), table["ytid"].tolist(), table["start"].tolist(),
        table["end"].tolist(), table["labels"].tolist(), table["file"].tolist(),
    ):
        chosen.setdefault(index, []).append(Candidate(ytid, first, last, rank, labels, file))
    return chosen


@dataclass(frozen=True)
class ClassIdentity:
    """Who a class is in the current selection, whether or not this run's slice includes it."""

    class_index: int
    mid: str
    class_name: str
    split: str
    folder: str


def selection_identities(suitable: pd.DataFrame) -> list[ClassIdentity]:
    """Every class of suitable_classes.csv with the folder :func:`plan_download` gives it."""
    folders = assign_class_folders(zip(suitable["mid"], suitable["name"]))
    return [
        ClassIdentity(int(row["index"]), str(row["mid"]), str(row["name"]), str(row["split"]),
                      folders[str(row["mid"])])
        for row in suitable.to_dict("records")
    ]
