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

import pandas as pd

from ..errors import UserError
from ..ids import is_valid_ytid
from ..layout import AUDIO_EXTENSIONS, assign_class_folders, check_folder, clip_file_name
from ..manifest import SPLITS

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
    by_class = {index: rows for index, rows in candidates.groupby("class_index", sort=False)}
    plans: list[ClassPlan] = []
    for row in suitable.iloc[start_index:end].to_dict("records"):
        mid = str(row["mid"])
        chosen = _class_candidates(by_class.get(row["index"]), mid, folders[mid], audio_format)
        if max_attempts_per_class is not None:
            chosen = chosen[:max_attempts_per_class]
        plans.append(
            ClassPlan(
                class_index=int(row["index"]),
                mid=mid,
                class_name=str(row["name"]),
                split=str(row["split"]),
                folder=folders[mid],
                target=samples_per_class,
                candidates=tuple(chosen),
            )
        )
    return plans


def _class_candidates(
    rows: pd.DataFrame | None, mid: str, folder: str, audio_format: str
) -> list[Candidate]:
    if rows is None:
        return []
    chosen: list[Candidate] = []
    seen: set[str] = set()
    dropped = 0
    for row in rows.sort_values("rank", kind="stable").to_dict("records"):
        if row["mid"] != mid:
            dropped += 1
            continue
        try:
            start, end = float(row["start_seconds"]), float(row["end_seconds"])
            name = clip_file_name(row["ytid"], start, audio_format)
            candidate = Candidate(
                ytid=row["ytid"],
                start_seconds=start,
                end_seconds=end,
                rank=int(row["rank"]),
                labels="" if pd.isna(row["labels"]) else str(row["labels"]),
                file=f"{folder}/{name}",
            )
        except (ValueError, TypeError, UserError):
            dropped += 1
            continue
        if candidate.file in seen:
            continue
        seen.add(candidate.file)
        chosen.append(candidate)
    if dropped:
        log.warning("class %s: ignored %d candidate row(s) with an invalid YouTube ID, segment or MID", mid, dropped)
    return chosen
