"""``--dry-run``: what a download would fetch, read from the plan, the ledger and the disk only."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..dataset.layout import start_ms
from ..dataset.quarantine import quarantined_segments
from .ledger import DEFAULT_SOURCE, LEDGER_NAME, Ledger, is_known_failure
from .plan import Candidate, ClassPlan


@dataclass
class ClassPreview:
    plan: ClassPlan
    done: int = 0
    known_failed: int = 0
    quarantined: int = 0
    to_fetch: list[Candidate] = field(default_factory=list)
    reserve: int = 0

    @property
    def needed(self) -> int:
        return max(0, self.plan.target - self.done)


@dataclass(frozen=True)
class SourceName:
    """A configured source as the preview sees it: no archive is opened, so no index is consulted."""

    name: str = DEFAULT_SOURCE
    # Whether imported unavailable.csv lists apply (YouTube sources).
    youtube: bool = True


def preview_download(
    plans: list[ClassPlan],
    output_dir: Path,
    *,
    retry_failed: bool | str,
    sources: Sequence[SourceName] = (SourceName(),),
) -> list[ClassPreview]:
    """For each class: clips already done, candidates skipped (known failures, quarantined), the next to fetch.

    A candidate is a known failure when every source (among ``sources``, apart from those
    ``retry_failed`` names) failed it permanently before. Archives are not opened, so a
    clip an archive lacks still counts as one it could give.

    ``to_fetch`` lists as many candidates as the class still needs, in the order they
    would be tried; ``reserve`` counts the others that would be tried if some fail.
    Nothing is written, not even the ledger's side files (see :class:`Ledger`); a missing
    ledger means a fresh start. The ledger is read in three queries and each class folder
    listed once: hundreds of thousands of candidates must not cost a query or a path
    resolution each.
    """
    output_dir = Path(output_dir)
    ledger_path = output_dir / LEDGER_NAME
    recorded: set[str] = set()
    failures: dict[str, list[tuple[str, int, int, str]]] = {}
    imported: set[str] = set()
    if ledger_path.exists():
        with Ledger(ledger_path, read_only=True) as ledger:
            recorded = ledger.clip_files()
            failures, imported = ledger.known_failures()
    quarantined = quarantined_segments(output_dir)
    on_disk = _files_on_disk(output_dir, {plan.folder for plan in plans}) if recorded else set()
    # A source whose failures are retried can always be asked again: nothing is known-failed then.
    judged = [] if retry_failed is True or any(s.name == retry_failed for s in sources) else list(sources)
    previews = []
    for plan in plans:
        preview = ClassPreview(plan)
        fetchable: list[Candidate] = []
        for candidate in plan.candidates:
            if quarantined and (plan.mid, candidate.ytid, start_ms(candidate.start_seconds)) in quarantined:
                preview.quarantined += 1
                continue
            if candidate.file in recorded and candidate.file in on_disk and preview.done < plan.target:
                preview.done += 1
                continue
            if (
                judged
                and (candidate.ytid in failures or candidate.ytid in imported)
                and all(
                    is_known_failure(
                        failures, imported, candidate.ytid, start_ms(candidate.start_seconds),
                        start_ms(candidate.end_seconds), source.name, use_imported=source.youtube,
                    )
                    for source in judged
                )
            ):
                preview.known_failed += 1
                continue
            fetchable.append(candidate)
        preview.to_fetch = fetchable[: preview.needed]
        preview.reserve = len(fetchable) - len(preview.to_fetch)
        previews.append(preview)
    return previews


def _files_on_disk(output_dir: Path, folders: set[str]) -> set[str]:
    """``folder/name`` of the regular files in each class folder (symlinks are not clips)."""
    found: set[str] = set()
    for folder in folders:
        try:
            with os.scandir(output_dir / folder) as entries:
                found.update(f"{folder}/{e.name}" for e in entries if e.is_file(follow_symlinks=False))
        except (FileNotFoundError, NotADirectoryError):
            continue
    return found


def format_preview(previews: list[ClassPreview]) -> str:
    lines = []
    for p in previews:
        plan = p.plan
        lines.append(
            f"[{plan.class_index}] {plan.class_name} -> {plan.folder}/  done {p.done}/{plan.target}, "
            f"would fetch {len(p.to_fetch)}, {p.reserve} more in reserve, {p.known_failed} known failed, "
            f"{p.quarantined} quarantined"
        )
        for c in p.to_fetch:
            lines.append(f"    {c.ytid} {c.start_seconds:.3f}-{c.end_seconds:.3f} -> {c.file}")
    total = sum(len(p.to_fetch) for p in previews)
    lines.append(f"dry run: {len(previews)} classes, {total} clips to fetch at least; nothing was downloaded")
    return "\n".join(lines)
