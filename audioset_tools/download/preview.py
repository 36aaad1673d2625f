"""``--dry-run``: what a download would fetch, read from the plan, the ledger and the disk only."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..layout import inside, start_ms
from ..quarantine import quarantined_segments
from .ledger import LEDGER_NAME, Ledger
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


def preview_download(plans: list[ClassPlan], output_dir: Path, *, retry_failed: bool) -> list[ClassPreview]:
    """For each class: clips already done, candidates skipped (known failures, quarantined), the next to fetch.

    ``to_fetch`` lists as many candidates as the class still needs, in the order they
    would be tried; ``reserve`` counts the others that would be tried if some fail.
    Nothing is written: the ledger is opened read-only, and a missing one means a fresh start.
    """
    ledger_path = Path(output_dir) / LEDGER_NAME
    ledger = Ledger(ledger_path, read_only=True) if ledger_path.exists() else None
    quarantined = quarantined_segments(output_dir)
    previews = []
    try:
        for plan in plans:
            preview = ClassPreview(plan)
            fetchable: list[Candidate] = []
            for candidate in plan.candidates:
                if (plan.mid, candidate.ytid, start_ms(candidate.start_seconds)) in quarantined:
                    preview.quarantined += 1
                    continue
                if ledger is not None:
                    record = ledger.clip(candidate.file)
                    path = inside(Path(output_dir), candidate.file)
                    if record is not None and path.is_file() and preview.done < plan.target:
                        preview.done += 1
                        continue
                    known = ledger.known_failure(
                        candidate.ytid, start_ms(candidate.start_seconds), start_ms(candidate.end_seconds)
                    )
                    if known is not None and not retry_failed:
                        preview.known_failed += 1
                        continue
                fetchable.append(candidate)
            preview.to_fetch = fetchable[: preview.needed]
            preview.reserve = len(fetchable) - len(preview.to_fetch)
            previews.append(preview)
    finally:
        if ledger is not None:
            ledger.close()
    return previews


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
