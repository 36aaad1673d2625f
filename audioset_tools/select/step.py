"""The select step end to end: official files in, ``paths.meta_dir`` out.

The one place with side effects for selection: it fetches missing metadata, reads it,
calls the pure :mod:`selection` and :mod:`splits` functions and hands the results to
:mod:`.outputs`. Everything is computed before anything is written, so a bad input
leaves ``paths.meta_dir`` untouched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from .. import __version__
from ..config import Config
from ..errors import UserError
from . import outputs
from .metadata import (
    SUBSETS,
    MalformedRow,
    ensure_files,
    needed_files,
    read_ontology,
    read_quality,
    read_segments,
)
from .metadata.official import (
    KNOWN_SHA256,
    ONTOLOGY,
    QUALITY,
    SEGMENT_FILES,
    logical_name,
)
from .metadata.segments import ytid_strings
from .selection import Selection, quality_curve, select
from .splits import SPLIT_NAMES, assign_splits

log = logging.getLogger(__name__)

PLOT_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(21))
_SHOWN_MALFORMED = 20


@dataclass
class SelectReport:
    meta_dir: Path
    nodes: int
    classes: int
    dropped: dict[str, int]
    candidates: int
    per_class: tuple[int, float, int]
    malformed: int
    exclusive_removed_clips: int
    duplicate_segments: int
    label_policy: str
    segment_seconds: float | None
    split_sizes: dict[str, int]
    wrong_length_segments: int = 0
    plot: Path | None = None
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        low, median, high = self.per_class
        dropped = ", ".join(f"{reason} {count}" for reason, count in self.dropped.items())
        lines = [
            f"Selected {self.classes} classes of {self.nodes} ontology nodes; outputs in {self.meta_dir}",
            f"Dropped classes: {dropped}",
            f"Candidates per class: min {low}, median {median:g}, max {high} (total {self.candidates})",
        ]
        if self.segment_seconds is None:
            lines.append("segment_seconds null: segments of every length are candidates")
        else:
            lines.append(
                f"segment_seconds {self.segment_seconds:g}: removed {self.wrong_length_segments} segments "
                f"of another length"
            )
        if self.label_policy == "exclusive":
            lines.append(
                f"label_policy exclusive: removed {self.exclusive_removed_clips} clips of videos "
                f"carrying two or more selected classes"
            )
        else:
            lines.append("label_policy any: a clip carrying several selected classes is a candidate of each")
        if self.duplicate_segments:
            lines.append(f"Duplicate segments ignored: {self.duplicate_segments}")
        lines.append(
            f"Malformed metadata rows skipped: {self.malformed}"
            + (f" (listed in {outputs.MALFORMED})" if self.malformed else "")
        )
        lines.append("Class splits: " + ", ".join(f"{k} {v}" for k, v in self.split_sizes.items()))
        if self.plot is not None:
            lines.append(f"Quality plot: {self.plot}")
        lines.extend(f"Warning: {warning}" for warning in self.warnings)
        return "\n".join(lines)


@dataclass
class SelectResult:
    """Everything the step writes, computed in memory first."""

    report: SelectReport
    class_rows: list[dict[str, Any]]
    candidates: pa.Table
    malformed: list[MalformedRow]
    record: dict[str, Any]
    curve: dict[str, list[int]] | None
    quality_threshold: float


def run_select(config: Config, *, plot: bool = False) -> SelectReport:
    """Select classes and candidates as ``config`` says and write ``paths.meta_dir``.

    Raises :class:`UserError` for anything the user can fix (missing or corrupt metadata,
    unknown class names, no class left); nothing is written in that case.
    """
    result = compute_selection(config, plot=plot)
    write_selection(result, config.paths.meta_dir)
    return result.report


def compute_selection(config: Config, *, plot: bool = False) -> SelectResult:
    """Fetch missing metadata, read it and compute every output, writing nothing else."""
    rules = config.selection
    metadata_dir = config.paths.metadata_dir
    meta_dir = config.paths.meta_dir
    paths = ensure_files(metadata_dir, needed_files(rules.subsets))
    ontology = read_ontology(paths[ONTOLOGY])
    quality = read_quality(paths[QUALITY])
    subsets = [s for s in SUBSETS if s in rules.subsets]
    segments = read_segments({s: paths[SEGMENT_FILES[s]] for s in subsets}, ontology.ids)
    _report_malformed(segments.malformed, strict=rules.strict)

    selection = select(ontology, quality, segments, rules, config.seed)
    if not selection.classes:
        dropped = ", ".join(f"{k} {v}" for k, v in selection.dropped.items() if v)
        raise UserError(
            f"no class passes the selection rules in {config.source or 'the configuration'} "
            f"(dropped: {dropped}). Lower selection.quality_threshold or selection.min_candidates, "
            f"or list classes in selection.include (added to the rules) or selection.classes (only those)."
        )
    splits = assign_splits(
        [c.mid for c in selection.classes],
        (config.splits.train, config.splits.val, config.splits.test),
        config.splits.seed,
    )
    class_rows = [
        {
            "index": c.index,
            "mid": c.mid,
            "name": c.name,
            "quality": c.quality,
            "num_rated": c.num_rated,
            "num_candidates": c.num_candidates,
            "split": split,
        }
        for c, split in zip(selection.classes, splits)
    ]
    candidates = _candidate_table(selection, segments)
    counts = np.array([c.num_candidates for c in selection.classes])
    report = SelectReport(
        meta_dir=meta_dir,
        nodes=len(ontology.nodes),
        classes=len(selection.classes),
        dropped=selection.dropped,
        candidates=int(counts.sum()),
        per_class=(int(counts.min()), float(np.median(counts)), int(counts.max())),
        malformed=len(segments.malformed),
        exclusive_removed_clips=selection.exclusive_removed_clips,
        duplicate_segments=selection.duplicate_segments,
        label_policy=rules.label_policy,
        segment_seconds=rules.segment_seconds,
        split_sizes={name: splits.count(name) for name in SPLIT_NAMES},
        warnings=selection.warnings,
        wrong_length_segments=selection.wrong_length_segments,
    )
    inputs = {
        logical_name(path): {"file": path.name, "sha256": sha, "official": KNOWN_SHA256.get(logical_name(path)) == sha}
        for path, sha in [
            (paths[ONTOLOGY], ontology.sha256),
            (paths[QUALITY], quality.sha256),
            *((paths[SEGMENT_FILES[f.subset]], f.sha256) for f in segments.files),
        ]
    }
    record = _selection_record(config, report, inputs, {f.subset: f.rows for f in segments.files})

    curve = quality_curve(ontology, quality, rules, PLOT_THRESHOLDS) if plot or rules.plot else None
    return SelectResult(report, class_rows, candidates, segments.malformed, record, curve, rules.quality_threshold)


def write_selection(result: SelectResult, meta_dir: Path) -> None:
    """Write every output into ``meta_dir``, each file atomically."""
    outputs.write_candidates(meta_dir, result.candidates)
    outputs.write_suitable_classes(meta_dir, result.class_rows)
    outputs.write_splits(meta_dir, result.class_rows)
    outputs.write_malformed(meta_dir, result.malformed)
    if result.curve is not None:
        result.report.plot = outputs.write_quality_plot(
            meta_dir, PLOT_THRESHOLDS, result.curve, result.quality_threshold
        )
    outputs.write_selection_json(meta_dir, result.record)
    log.info("wrote %s", ", ".join(sorted(p.name for p in meta_dir.iterdir() if not p.name.startswith("."))))


def _report_malformed(malformed: list, *, strict: bool) -> None:
    if not malformed:
        return
    shown = "\n".join(f"  {row}" for row in malformed[:_SHOWN_MALFORMED])
    more = f"\n  ... and {len(malformed) - _SHOWN_MALFORMED} more" if len(malformed) > _SHOWN_MALFORMED else ""
    if strict:
        raise UserError(
            f"{len(malformed)} malformed metadata row(s) and selection.strict is true:\n{shown}{more}\n"
            f"  Fix or replace the file(s), or set selection.strict: false to skip such rows."
        )
    log.warning("skipping %d malformed metadata row(s):\n%s%s", len(malformed), shown, more)


def _candidate_table(selection: Selection, segments) -> pa.Table:
    rows = selection.candidate_rows
    mids = pa.array([c.mid for c in selection.classes], pa.string())
    return pa.table(
        {
            "class_index": pa.array(selection.candidate_class, pa.int64()),
            "mid": mids.take(pa.array(selection.candidate_class)),
            "rank": pa.array(selection.candidate_rank, pa.int64()),
            "ytid": ytid_strings(selection.candidate_ytids),
            "start_seconds": pa.array(segments.start[rows], pa.float64()),
            "end_seconds": pa.array(segments.end[rows], pa.float64()),
            "subset": pa.array(list(SUBSETS), pa.string()).take(pa.array(segments.subset[rows])),
            "labels": segments.labels_text(rows),
        }
    )


def _selection_record(
    config: Config, report: SelectReport, inputs: dict[str, Any], rows_read: dict[str, int]
) -> dict[str, Any]:
    low, median, high = report.per_class
    return {
        "tool": "audioset-tools",
        "version": __version__,
        "seed": config.seed,
        "selection": config.selection.model_dump(mode="json"),
        "splits": config.splits.model_dump(mode="json"),
        "inputs": inputs,
        "counts": {
            "ontology_nodes": report.nodes,
            "classes": report.classes,
            "dropped": report.dropped,
            "candidates": report.candidates,
            "candidates_per_class": {"min": low, "median": median, "max": high},
            "segments_read": rows_read,
            "malformed_rows": report.malformed,
            "exclusive_removed_clips": report.exclusive_removed_clips,
            "duplicate_segments": report.duplicate_segments,
            "wrong_length_segments": report.wrong_length_segments,
            "split_sizes": report.split_sizes,
        },
        "warnings": report.warnings,
    }
