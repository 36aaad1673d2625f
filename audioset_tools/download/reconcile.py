"""Bring the finished clips a ledger holds in line with the current plan before a run resumes.

The selection can change between two runs into one folder (a class inserted at index 0,
class 0 replaced, splits redrawn). A finished clip keeps its file, but its class index,
name, split and rank must be the current plan's, or the manifests would give one index
to two classes and put one class in two splits. Clips that cannot be relabelled (their
index now belongs to another class, or their class moved to another folder) stop the run
before anything is written, with a message saying what changed.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import UserError
from .ledger import ClipRecord, Ledger
from .plan import ClassIdentity, ClassPlan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Relabel:
    file: str
    class_index: int
    class_name: str
    split: str
    rank: int


def plan_relabels(
    clips: list[ClipRecord], plans: list[ClassPlan], selection: Sequence[ClassIdentity] = ()
) -> tuple[list[Relabel], list[str]]:
    """The relabels the current selection asks for, and the conflicts that forbid resuming (pure).

    ``selection`` lists every class of the current selection (a run may cover one slice of
    it, while the folder holds clips of other slices); the ``plans`` are always part of it.
    """
    classes: list[ClassPlan | ClassIdentity] = [*selection, *plans]
    by_mid = {entry.mid: entry for entry in classes}
    by_index = {entry.class_index: entry for entry in classes}
    ranks = {candidate.file: candidate.rank for plan in plans for candidate in plan.candidates}
    relabels: list[Relabel] = []
    taken: dict[tuple[int, str, str, str], int] = defaultdict(int)  # (old index, mid, name, folder) -> clips
    moved: dict[tuple[str, str, str], int] = defaultdict(int)  # (mid, old folder, new folder) -> clips
    for record in clips:
        folder = record.file.rpartition("/")[0]
        plan = by_mid.get(record.mid)  # the class as the current selection has it
        if plan is None:
            other = by_index.get(record.class_index)
            if other is not None:
                taken[(record.class_index, record.mid, record.class_name, folder)] += 1
            continue
        if folder != plan.folder:
            moved[(plan.mid, folder, plan.folder)] += 1
            continue
        rank = ranks.get(record.file, record.rank)
        wanted = (plan.class_index, plan.class_name, plan.split, rank)
        if (record.class_index, record.class_name, record.split, record.rank) != wanted:
            relabels.append(Relabel(record.file, *wanted))
    conflicts = [
        f"class index {index} was {name!r} ({mid}, {count} finished clip(s) in {folder}/) and is now "
        f"{by_index[index].class_name!r} ({by_index[index].mid}) in the current selection"
        for (index, mid, name, folder), count in sorted(taken.items())
    ]
    conflicts += [
        f"class {mid} has {count} finished clip(s) in {old}/ but the current selection puts it in {new}/"
        for (mid, old, new), count in sorted(moved.items())
    ]
    return relabels, conflicts


def reconcile_with_plans(
    ledger: Ledger, plans: list[ClassPlan], output_dir: object, selection: Sequence[ClassIdentity] = ()
) -> int:
    """Relabel the ledger's finished clips to the current selection; refuse on a conflict. Returns the relabels."""
    relabels, conflicts = plan_relabels(ledger.clips(), plans, selection)
    if conflicts:
        shown = conflicts[:10] + ([f"... and {len(conflicts) - 10} more"] if len(conflicts) > 10 else [])
        raise UserError(
            f"the class selection changed since the clips in {output_dir} were downloaded:\n  "
            + "\n  ".join(shown)
            + "\n  Nothing was changed. Download the new selection into a new paths.output_dir (or move this "
            "folder aside), or restore the selection these clips were downloaded with (paths.meta_dir)."
        )
    for relabel in relabels:
        ledger.relabel_clip(relabel.file, relabel.class_index, relabel.class_name, relabel.split, relabel.rank)
    if relabels:
        log.warning(
            "the class selection changed: %d finished clip(s) now take the class index, name, split and rank "
            "of the current selection", len(relabels),
        )
    return len(relabels)
