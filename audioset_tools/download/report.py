"""What a dataset holds, as PNG figures and a short Markdown summary.

Reads the global manifest (required) and the download ledger (optional: without it
there is nothing to say about outcomes and availability, and the report says so).
Figures are drawn on :class:`matplotlib.figure.Figure` objects rendered by the Agg
backend, so no display is needed and no global pyplot state is touched.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ..atomic import atomic_write_bytes, atomic_write_text
from ..dataset.manifest import MANIFEST_NAME, SPLITS, dataset_path, read_manifest
from ..errors import UserError
from .ledger import LEDGER_NAME, PERMANENT_OUTCOMES, Ledger

log = logging.getLogger(__name__)

REPORT_DIR_NAME = "report"
SUMMARY_NAME = "summary.md"
CLIPS_FIGURE = "clips_per_class.png"
OUTCOMES_FIGURE = "outcomes.png"
AVAILABILITY_FIGURE = "availability.png"
SPLIT_COLOURS = {"train": "#4C72B0", "val": "#DD8452", "test": "#55A868"}
# Only these say anything about a video's availability; transient errors and rate
# limits say something about the network, so they are left out of the rate.
DEFINITE_OUTCOMES = frozenset({"ok"}) | PERMANENT_OUTCOMES


@dataclass(frozen=True)
class DatasetReport:
    """The numbers behind the figures; ``outcomes``/``availability`` are None without a ledger."""

    root: Path
    clips: pd.DataFrame = field(repr=False)
    total_clips: int
    total_seconds: float
    disk_bytes: int
    missing_files: int
    outcomes: pd.Series | None = field(default=None, repr=False)
    availability: pd.DataFrame | None = field(default=None, repr=False)


def segment_outcomes(ledger_path: Path) -> pd.DataFrame:
    """The latest fetch outcome of every (class, segment) the download tried (:meth:`Ledger.latest_outcomes`)."""
    with Ledger(ledger_path, read_only=True) as ledger:
        return ledger.latest_outcomes()


def availability_by_class(outcomes: pd.DataFrame, classes: pd.DataFrame) -> pd.DataFrame:
    """Per class: segments with a definite outcome, how many were ok, and the ratio."""
    definite = outcomes[outcomes["outcome"].isin(DEFINITE_OUTCOMES)]
    grouped = definite.groupby("class_index")["outcome"]
    table = pd.DataFrame({"tried": grouped.size(), "ok": grouped.apply(lambda s: int((s == "ok").sum()))})
    table = table.join(classes.set_index("class_index")[["class_name", "split"]], how="left")
    table["class_name"] = table["class_name"].fillna(table.index.to_series().map(lambda i: f"class {i}"))
    table["rate"] = table["ok"] / table["tried"]
    return table.sort_values(["rate", "class_name"]).reset_index()


def build_report(root: Path) -> DatasetReport:
    root = Path(root)
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        raise UserError(
            f"no manifest at {manifest_path}\n"
            f"  report describes a dataset written by download_data.py (or rebuild_from_manifest.py); "
            f"pass its output folder."
        )
    clips = read_manifest(manifest_path)
    sizes = [_size(dataset_path(root, relative)) for relative in clips["file"]]
    present = [size for size in sizes if size is not None]
    outcomes = availability = None
    ledger_path = root / LEDGER_NAME
    if ledger_path.is_file():
        segments = segment_outcomes(ledger_path)
        outcomes = segments["outcome"].value_counts().sort_index()
        classes = clips.drop_duplicates("class_index")[["class_index", "class_name", "split"]]
        availability = availability_by_class(segments, classes)
    else:
        log.info("no %s in %s: the report leaves out outcomes and availability", LEDGER_NAME, root)
    return DatasetReport(
        root=root,
        clips=clips,
        total_clips=len(clips),
        total_seconds=float(clips["duration"].sum()),
        disk_bytes=sum(present),
        missing_files=len(sizes) - len(present),
        outcomes=outcomes,
        availability=availability,
    )


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def write_report(root: Path, out_dir: Path | None = None) -> list[Path]:
    """Write the figures and summary.md into ``out_dir`` (default ``root/report``); return their paths."""
    report = build_report(root)
    out_dir = Path(out_dir) if out_dir is not None else Path(root) / REPORT_DIR_NAME
    written = [_save(clips_figure(report.clips), out_dir / CLIPS_FIGURE)]
    if report.outcomes is not None and len(report.outcomes):
        written.append(_save(outcomes_figure(report.outcomes), out_dir / OUTCOMES_FIGURE))
    if report.availability is not None and len(report.availability):
        written.append(_save(availability_figure(report.availability), out_dir / AVAILABILITY_FIGURE))
    figures = [path.name for path in written]
    summary = out_dir / SUMMARY_NAME
    atomic_write_text(summary, summary_markdown(report, figures))
    return [*written, summary]


def _save(figure: Figure, path: Path) -> Path:
    buffer = io.BytesIO()
    # No Software tag, so the same dataset gives byte-identical figures.
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _class_height(count: int) -> float:
    return max(3.0, 0.22 * count + 1.5)


def clips_figure(clips: pd.DataFrame) -> Figure:
    """One horizontal bar per class, coloured by its split, in class order."""
    per_class = (
        clips.groupby(["class_index", "class_name", "split"], sort=True).size().reset_index(name="clips")
    )
    figure = Figure(figsize=(9, _class_height(len(per_class))), layout="constrained")
    axes = figure.add_subplot()
    positions = range(len(per_class))
    axes.barh(positions, per_class["clips"], color=[SPLIT_COLOURS[s] for s in per_class["split"]])
    axes.set_yticks(list(positions), per_class["class_name"], fontsize=7)
    axes.invert_yaxis()
    axes.set_xlabel("clips")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    totals = clips["split"].value_counts()
    handles = [
        Patch(color=SPLIT_COLOURS[split], label=f"{split} ({totals.get(split, 0)} clips)") for split in SPLITS
    ]
    axes.legend(handles=handles, loc="lower right", fontsize=8)
    axes.set_title(f"Clips per class ({len(clips)} clips, {len(per_class)} classes)")
    return figure


def outcomes_figure(outcomes: pd.Series) -> Figure:
    figure = Figure(figsize=(7, 3.5), layout="constrained")
    axes = figure.add_subplot()
    colours = ["#55A868" if name == "ok" else "#C44E52" if name in PERMANENT_OUTCOMES else "#8C8C8C"
               for name in outcomes.index]
    bars = axes.bar(outcomes.index, outcomes.values, color=colours)
    axes.bar_label(bars, fontsize=8)
    axes.set_ylabel("segments (latest outcome)")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title("Download outcomes by reason")
    axes.tick_params(axis="x", labelrotation=30, labelsize=8)
    return figure


def availability_figure(availability: pd.DataFrame) -> Figure:
    figure = Figure(figsize=(9, _class_height(len(availability))), layout="constrained")
    axes = figure.add_subplot()
    positions = range(len(availability))
    colours = [SPLIT_COLOURS.get(split, "#8C8C8C") for split in availability["split"].fillna("")]
    axes.barh(positions, availability["rate"] * 100, color=colours)
    axes.set_yticks(list(positions), availability["class_name"], fontsize=7)
    axes.invert_yaxis()
    axes.set_xlim(0, 100)
    axes.set_xlabel("available segments (%), among those with a definite outcome")
    present = [split for split in SPLITS if split in set(availability["split"])]
    axes.legend(handles=[Patch(color=SPLIT_COLOURS[split], label=split) for split in present],
                loc="lower right", fontsize=8)
    overall = availability["ok"].sum() / availability["tried"].sum()
    axes.set_title(f"Availability per class (overall {overall:.0%})")
    return figure


def _duration_text(seconds: float) -> str:
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _bytes_text(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{size} B"
        value /= 1024
    raise AssertionError("unreachable")


def summary_markdown(report: DatasetReport, figures: list[str]) -> str:
    clips = report.clips
    lines = [
        f"# Dataset report: {report.root.name}",
        "",
        f"- Clips: {report.total_clips} in {clips['class_index'].nunique()} classes",
        f"- Total duration: {_duration_text(report.total_seconds)} (h:mm:ss)",
        f"- Disk size of the clips: {_bytes_text(report.disk_bytes)}",
    ]
    if report.missing_files:
        lines.append(
            f"- **{report.missing_files} clip(s) listed in the manifest are not on disk**; "
            f"run `audioset-tools validate` for details"
        )
    lines += ["", "| split | classes | clips | duration |", "|---|---:|---:|---:|"]
    for split in SPLITS:
        rows = clips[clips["split"] == split]
        lines.append(
            f"| {split} | {rows['class_index'].nunique()} | {len(rows)} | {_duration_text(rows['duration'].sum())} |"
        )
    lines.append("")
    if report.outcomes is None:
        lines.append(f"No download ledger ({LEDGER_NAME}) in this folder, so outcomes and availability are unknown.")
    else:
        lines += ["## Download outcomes (latest per segment)", "", "| outcome | segments |", "|---|---:|"]
        lines += [f"| {name} | {count} |" for name, count in report.outcomes.items()]
        availability = report.availability
        if availability is not None and len(availability):
            overall = availability["ok"].sum() / availability["tried"].sum()
            lines += ["", f"Availability: {overall:.1%} of segments with a definite outcome were fetched."]
            worst = availability.head(5)
            lines += ["", "Least available classes:", ""]
            lines += [f"- {row.class_name}: {row.ok}/{row.tried} ({row.rate:.0%})" for row in worst.itertuples()]
    lines += ["", "## Figures", ""]
    lines += [f"![{name}]({name})" for name in figures]
    return "\n".join(lines) + "\n"
