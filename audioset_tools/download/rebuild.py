"""Rebuild a dataset from its manifest alone: the same clips, names and audio settings.

The manifest becomes a download plan (one candidate per row, each class's target = its
row count), so the rebuild runs through the download runner with its resume, ledger,
configured sources, workers and progress bars, and never selects or fetches anything
else. The sources are this config's ``download.sources``, not the manifest's ``source``
column: a dataset built from YouTube can be rebuilt from an archive and the other way
round; ``rebuild_report.csv`` says which source gave each clip.
Afterwards every row is checked against the manifest (``validate.check_clip``) and
the outcome of each row goes to ``rebuild_report.csv``.
"""

from __future__ import annotations

import csv
import enum
import io
import logging
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
from pydantic import ValidationError
from tqdm import tqdm

from ..atomic import atomic_write_text, is_temporary
from ..config import AudioConfig, Config
from ..dataset.audio_info import sha256_file
from ..dataset.layout import check_folder, clip_file_name, inside, start_ms
from ..dataset.lock import dataset_lock
from ..dataset.manifest import MANIFEST_NAME, dataset_path, read_manifest
from ..dataset.validate import (
    AUDIO_SUFFIXES,
    INVALID_KINDS,
    Finding,
    Kind,
    ValidationResult,
    check_clip,
)
from ..errors import UserError
from ..sources.base import Source, is_partial_file
from ..sources.configured import close_sources, open_sources, usable_sources
from ..sources.ffmpeg_bin import find_ffmpeg
from ..sources.output_spec import OutputSpec
from ..sources.youtube.clip import fetch_clip
from ..sources.youtube.source import Fetch
from ..sources.youtube.ytdlp_tooling import TOOLING_FIX
from ..tables import spreadsheet_safe
from .executors import Executor
from .job import configured_executor, import_unavailable_list, output_spec
from .ledger import LEDGER_NAME, PERMANENT_OUTCOMES, Ledger
from .plan import Candidate, ClassPlan
from .runner import RunOptions, RunSummary, run_download
from .unavailable import read_unavailable

log = logging.getLogger(__name__)

REBUILD_REPORT_NAME = "rebuild_report.csv"
EXIT_COMPLETE = 0
# Same code as an interrupted download: run the same command again later to finish.
EXIT_INCOMPLETE = 3
EXIT_GONE = 4


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
    formats = frame["file"].map(lambda file: file.rpartition(".")[2].lower())
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
        folders = rows["file"].map(_folder_of)
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


def _folder_of(file: str) -> str:
    return file.rpartition("/")[0]


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


class Status(str, enum.Enum):
    """What became of one manifest row. The values are written to rebuild_report.csv."""

    KEPT = "kept"  # already on disk and intact before the run
    REBUILT = "rebuilt"  # fetched by this run
    GONE = "gone"  # the video (or segment) is permanently unavailable
    FAILED = "failed"  # a failure that may pass (network, throttling): run again
    NOT_ATTEMPTED = "not_attempted"  # the run stopped before reaching it


@dataclass(frozen=True)
class RowResult:
    file: str
    class_index: int
    class_name: str
    ytid: str
    start_seconds: float
    end_seconds: float
    status: Status
    reason: str
    # For a file on disk: "identical" (same sha256 as the manifest) or the validate finding kinds.
    check: str
    sha256_expected: str
    sha256_actual: str
    # The configured source the file on disk came from, as the ledger recorded it ("" if none).
    source: str = ""


REPORT_COLUMNS = tuple(RowResult.__dataclass_fields__)


@dataclass(frozen=True)
class RebuildResult:
    rows: list[RowResult]
    run: RunSummary

    def counts(self) -> Counter:
        return Counter(row.status for row in self.rows)

    def gone_reasons(self) -> Counter:
        return Counter(row.reason.split(":", 1)[0] for row in self.rows if row.status is Status.GONE)

    @property
    def exit_code(self) -> int:
        counts = self.counts()
        if counts[Status.FAILED] or counts[Status.NOT_ATTEMPTED]:
            return EXIT_INCOMPLETE
        return EXIT_GONE if counts[Status.GONE] else EXIT_COMPLETE

    def format(self) -> str:
        counts = self.counts()
        checks = Counter(row.check for row in self.rows if row.check)
        lines = [f"rebuild summary ({len(self.rows)} clip(s) in the manifest):"]
        lines += [f"  {status.value:<14} {counts[status]}" for status in Status]
        for reason, count in sorted(self.gone_reasons().items()):
            lines.append(f"    gone because {reason}: {count}")
        if checks[Kind.CHECKSUM_ONLY.value]:
            lines.append(
                f"  {checks[Kind.CHECKSUM_ONLY.value]} clip(s) have another sha256 than the manifest but the "
                f"expected length, rate and channels (another ffmpeg build encodes differently)"
            )
        if checks[Kind.CHANGED_SAMPLES.value]:
            lines.append(
                f"  {checks[Kind.CHANGED_SAMPLES.value]} clip(s) decode to other samples than the manifest records "
                f"(samples_sha256); a clip kept as this machine fetched it would come out the same again "
                f"(its ffmpeg decodes or resamples differently)"
            )
        odd = {name: n for name, n in checks.items()
               if name not in ("identical", Kind.CHECKSUM_ONLY.value, Kind.CHANGED_SAMPLES.value)}
        for name, count in sorted(odd.items()):
            lines.append(f"  {count} clip(s) on disk with: {name}")
        if self.run.stopped_by_tooling:
            lines.append(
                f"  stopped: yt-dlp could not extract several videos in a row for reasons of its own "
                f"({self.run.last_tooling_error}); update it: {TOOLING_FIX}"
            )
        verdict = {
            EXIT_COMPLETE: "COMPLETE: every clip of the manifest is on disk",
            EXIT_GONE: "some clips are no longer available; everything else is on disk",
            EXIT_INCOMPLETE: "INCOMPLETE: run the same command again (later, if YouTube was throttling) to resume",
        }[self.exit_code]
        lines.append(verdict)
        return "\n".join(lines)


def rebuild_dataset(
    manifest_path: Path,
    output_dir: Path,
    config: Config | None = None,
    *,
    unavailable: Path | None = None,
    retry_failed: bool | str = False,
    progress: bool = True,
    fetch: Fetch = fetch_clip,
) -> RebuildResult:
    """Fetch exactly the clips of ``manifest_path`` into ``output_dir``; write rebuild_report.csv there.

    The download settings (sources, workers, pacing, cookies, proxies, url_template, ffmpeg)
    come from ``config`` (defaults when None); the audio settings always come from the manifest.
    Everything is validated before anything is fetched. ``unavailable`` is another
    user's unavailable.csv: its videos are skipped (reported as gone) unless ``retry_failed``.
    """
    manifest_path = Path(manifest_path)
    frame = read_manifest(manifest_path)
    return rebuild_frame(
        frame, Path(output_dir), config, source=str(manifest_path), unavailable=unavailable,
        retry_failed=retry_failed, progress=progress, fetch=fetch,
    )


def rebuild_frame(
    frame: pd.DataFrame,
    output_dir: Path,
    config: Config | None = None,
    *,
    source: str = "manifest",
    unavailable: Path | None = None,
    retry_failed: bool | str = False,
    progress: bool = True,
    fetch: Fetch = fetch_clip,
    refetch: Iterable[str] = (),
    checked: dict[str, list[Finding]] | None = None,
) -> RebuildResult:
    """:func:`rebuild_dataset` for a manifest already read.

    ``refetch`` names files to fetch again even though they look intact (validate
    --repair --strict). ``checked`` gives the findings of the files already on disk when
    the caller has just validated them, to save reading every file again.
    """
    config = config if config is not None else Config()
    plans = plans_from_manifest(frame, source)
    settings_audio = manifest_audio_settings(frame, source)
    _refuse_foreign_clips(output_dir, frame, plans)
    config = config.model_copy(update={"audio": _audio_config(settings_audio, source)})
    ffmpeg = find_ffmpeg(config.download.ffmpeg_path)
    # The manifest names exactly the clips wanted: a row listed in this folder's quarantine is fetched too.
    options = replace(RunOptions.from_config(config, retry_failed=retry_failed, progress=progress),
                      skip_quarantined=False, command="rebuild")
    if unavailable is not None:
        read_unavailable(unavailable)  # a bad list fails here, before anything is written

    sources = open_sources(config, ffmpeg, output_dir, fetch=fetch, progress=progress)
    try:
        # A source that does not answer is found here at once (exit 4), not clip by clip.
        usable = usable_sources(sources)
        output_dir.mkdir(parents=True, exist_ok=True)
        with dataset_lock(output_dir, "rebuild"):
            # Checked again under the lock: another command may have written here meanwhile.
            _refuse_foreign_clips(output_dir, frame, plans)
            with configured_executor(config) as executor:
                return _rebuild_locked(
                    frame, output_dir, plans, usable, output_spec(config), options, settings_audio, source=source,
                    unavailable=unavailable, progress=progress, refetch=refetch, checked=checked, executor=executor,
                )
    finally:
        close_sources(sources)


def _rebuild_locked(
    frame: pd.DataFrame,
    output_dir: Path,
    plans: list[ClassPlan],
    sources: list[Source],
    spec: OutputSpec,
    options: RunOptions,
    settings_audio: AudioSettings,
    *,
    source: str,
    unavailable: Path | None,
    progress: bool,
    refetch: Iterable[str],
    checked: dict[str, list[Finding]] | None,
    executor: Executor | None,
) -> RebuildResult:
    rows = frame.to_dict("records")
    before = checked if checked is not None else _check_existing(output_dir, rows, options.workers, progress)
    as_fetched = _as_fetched_here(output_dir, before)
    forced = set(refetch) - as_fetched
    kept = {
        file for file, findings in before.items()
        if (not _needs_fetch(findings) or file in as_fetched) and file not in forced
    }
    for file, findings in before.items():
        if file not in kept:
            # Otherwise the runner would keep it: it trusts a recorded clip whose file is there.
            why = ", ".join(f.kind.value for f in findings) or "asked for"
            log.info("%s: fetching it again (%s)", file, why)
            inside(output_dir, file).unlink(missing_ok=True)
    if unavailable is not None:
        count = import_unavailable_list(output_dir, unavailable)
        log.info("imported %d unavailable video(s) from %s", count, unavailable)
    log.info(
        "rebuilding %d clip(s) of %d class(es) from %s into %s (%s); %d already present",
        len(rows), len(plans), source, output_dir, settings_audio.describe(), len(kept),
    )
    summary = run_download(plans, sources, output_dir, spec, options, executor=executor)
    result = RebuildResult(
        _row_results(output_dir, rows, before, kept, options.workers, progress, summary.unheld), summary
    )
    write_rebuild_report(output_dir / REBUILD_REPORT_NAME, result)
    return result


def _as_fetched_here(output_dir: Path, before: dict[str, list[Finding]]) -> set[str]:
    """Clips whose only problem is other samples than the manifest's, yet are byte for byte what
    this folder's own fetch wrote (the ledger's sha256).

    Nobody changed them: this machine's ffmpeg decodes or resamples the source into other
    samples than the manifest's did, and fetching again would give the same file, so they are
    kept (and reported) instead of fetched on every run.
    """
    suspects = [
        file for file, findings in before.items()
        if findings and all(f.kind is Kind.CHANGED_SAMPLES for f in findings)
    ]
    ledger_path = output_dir / LEDGER_NAME
    if not suspects or not ledger_path.is_file():
        return set()
    with Ledger(ledger_path, read_only=True) as ledger:
        recorded = {file: ledger.clip(file) for file in suspects}
    return {
        file for file, record in recorded.items()
        if record is not None and record.sha256 == sha256_file(dataset_path(output_dir, file))
    }


def _audio_config(settings: AudioSettings, source: str) -> AudioConfig:
    try:
        return AudioConfig(format=settings.format, sample_rate=settings.sample_rate, channels=settings.channels)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        raise UserError(f"{source}: audio settings this tool cannot write ({problems})") from None


def _refuse_foreign_clips(output_dir: Path, frame: pd.DataFrame, plans: list[ClassPlan]) -> None:
    """Refuse to rebuild over a dataset whose class folders hold clips this manifest lacks.

    The runner makes each planned folder hold exactly its plan's clips, so it would delete
    them; that is right for a rerun of the same manifest, never for someone else's data.
    Who owns a clip is read from every record there is: the folder's manifest.csv (which
    may be gone or stale after a crash), the ledger (the runner's own record) and the
    audio files on disk.
    """
    folders = {plan.folder for plan in plans}
    wanted = set(frame["file"])
    foreign: dict[str, str] = {}  # file -> where it was found

    def note(files: Iterable[str], where: str) -> None:
        for file in files:
            if _folder_of(file) in folders and file not in wanted:
                foreign.setdefault(file, where)

    existing = output_dir / MANIFEST_NAME
    if existing.is_file():
        note(read_manifest(existing)["file"], MANIFEST_NAME)
    ledger_path = output_dir / LEDGER_NAME
    if ledger_path.is_file():
        with Ledger(ledger_path, read_only=True) as ledger:
            note((record.file for record in ledger.clips()), LEDGER_NAME)
    note(_audio_files_in(output_dir, folders), "the class folder")
    if foreign:
        example = min(foreign)
        raise UserError(
            f"{output_dir} already holds {len(foreign)} clip(s) in the same class folders that the manifest "
            f"does not list (e.g. {example}, found in {foreign[example]}); rebuilding would delete them.\n"
            f"  Rebuild into an empty folder, pass that folder's own manifest.csv, or move those clips aside."
        )


def _audio_files_in(output_dir: Path, folders: set[str]) -> Iterable[str]:
    """Finished audio files (not partial or temporary ones) of the given class folders."""
    for folder in sorted(folders):
        path = output_dir / folder
        if not path.is_dir():
            continue
        for entry in sorted(path.iterdir()):
            if (
                entry.is_file()
                and entry.suffix.lower() in AUDIO_SUFFIXES
                and not entry.name.startswith(".")
                and not is_partial_file(entry)
                and not is_temporary(entry)
            ):
                yield f"{folder}/{entry.name}"


def _check_existing(
    output_dir: Path, rows: list[dict], workers: int, progress: bool
) -> dict[str, list[Finding]]:
    """Findings of every row whose file is already on disk (empty list = intact)."""
    present = [row for row in rows if dataset_path(output_dir, row["file"]).is_file()]
    return _check_rows(output_dir, present, workers, progress, "check existing")


def _check_rows(
    output_dir: Path, rows: list[dict], workers: int, progress: bool, desc: str
) -> dict[str, list[Finding]]:
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        checks = pool.map(lambda row: check_clip(output_dir, row), rows)
        findings = list(tqdm(checks, total=len(rows), desc=desc, unit="clip", disable=not progress or not rows))
    return {row["file"]: found for row, found in zip(rows, findings)}


def _needs_fetch(findings: list[Finding]) -> bool:
    """A file is worth fetching again when it is damaged; a silent clip matching the manifest is not."""
    return any(
        f.kind in INVALID_KINDS and not (f.kind is Kind.SILENT and f.found == "sha256 matches") for f in findings
    )


def _row_results(
    output_dir: Path,
    rows: list[dict],
    before: dict[str, list[Finding]],
    kept: set[str],
    workers: int,
    progress: bool,
    unheld: set[str],
) -> list[RowResult]:
    fetched = [row for row in rows if row["file"] not in kept and dataset_path(output_dir, row["file"]).is_file()]
    still_kept = {file for file in kept if dataset_path(output_dir, file).is_file()}
    after = {file: before[file] for file in still_kept} | _check_rows(
        output_dir, fetched, workers, progress, "verify"
    )
    results = []
    with Ledger(output_dir / LEDGER_NAME, read_only=True) as ledger:
        outcome_of = {
            (r.class_index, r.ytid, r.start_ms, r.end_ms): (r.outcome, r.message)
            for r in ledger.latest_outcomes().itertuples()
        }
        for row in rows:
            file = row["file"]
            findings = after.get(file)
            actual = ""
            reason = ""
            if findings is not None:
                status = Status.KEPT if file in kept else Status.REBUILT
                check = ",".join(sorted({f.kind.value for f in findings})) or "identical"
                actual = next((f.found for f in findings if f.kind is Kind.CHECKSUM_ONLY), row["sha256"])
                if any(f.kind is not Kind.CHECKSUM_ONLY for f in findings):
                    actual = ""  # not computed for a file with other problems; validate shows the details
            else:
                check = ""
                status, reason = _why_missing(ledger, outcome_of, row, unheld)
            results.append(RowResult(
                file=file, class_index=int(row["class_index"]), class_name=row["class_name"], ytid=row["ytid"],
                start_seconds=float(row["start_seconds"]), end_seconds=float(row["end_seconds"]),
                status=status, reason=reason, check=check, sha256_expected=row["sha256"], sha256_actual=actual,
                source=recorded.source if findings is not None and (recorded := ledger.clip(file)) else "",
            ))
    return results


def _why_missing(ledger: Ledger, outcome_of: dict, row: dict, unheld: set[str]) -> tuple[Status, str]:
    begin, end = start_ms(row["start_seconds"]), start_ms(row["end_seconds"])
    known = ledger.known_failure(row["ytid"], begin, end, source=None)
    latest = outcome_of.get((int(row["class_index"]), row["ytid"], begin, end))
    if latest is not None and latest[0] != "ok":
        outcome, message = latest
        status = Status.GONE if outcome in PERMANENT_OUTCOMES else Status.FAILED
        return status, f"{outcome}: {message}"
    if known is not None:
        return Status.GONE, f"{known.outcome}: {known.message} (last checked {known.last_checked})"
    if row["file"] in unheld:
        return Status.NOT_ATTEMPTED, "no source in download.sources holds it (add one that does, e.g. youtube)"
    return Status.NOT_ATTEMPTED, "the run stopped before this clip"


def write_rebuild_report(path: Path, result: RebuildResult) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    for row in result.rows:
        writer.writerow([
            row.file, row.class_index, spreadsheet_safe(row.class_name), row.ytid, f"{row.start_seconds:.3f}",
            f"{row.end_seconds:.3f}", row.status.value, spreadsheet_safe(" ".join(row.reason.split())), row.check,
            row.sha256_expected, row.sha256_actual, row.source,
        ])
    atomic_write_text(Path(path), buffer.getvalue())


def repair_dataset(
    root: Path,
    validation: ValidationResult,
    config: Config | None = None,
    *,
    strict: bool = False,
    retry_failed: bool | str = False,
    progress: bool = True,
    fetch: Fetch = fetch_clip,
) -> RebuildResult | None:
    """Fetch again what ``validation`` found missing or damaged in ``root`` (None: nothing to do).

    The whole manifest is the plan, not only the damaged rows: the runner keeps each
    planned class folder to exactly its plan, and rewrites the manifests from its ledger,
    so a partial plan would drop the rest. Intact files are kept without a second read.
    """
    refetch = validation.files_to_refetch(strict)
    if not refetch:
        return None
    missing = {finding.file for finding in validation.missing}
    checked: dict[str, list[Finding]] = {file: [] for file in validation.manifest["file"] if file not in missing}
    for finding in validation.invalid + validation.checksum_only:
        checked[finding.file].append(finding)
    log.info("repairing %d clip(s) in %s", len(refetch), root)
    return rebuild_frame(
        validation.manifest, Path(root), config, source=f"{root}", retry_failed=retry_failed,
        progress=progress, fetch=fetch, refetch=refetch, checked=checked,
    )
