"""How many planned clips each configured source can supply, before anything is fetched.

For ``audioset-tools sources coverage`` and ``doctor``. An archive answers from its index;
YouTube cannot be asked without fetching, so it is counted as the source of whatever the
sources before it lack.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ..dataset.layout import inside
from ..sources.base import ClipJob, Source
from .plan import ClassPlan


@dataclass
class SourceCoverage:
    name: str
    kind: str
    # Planned candidates the source holds (None: it cannot tell before being asked).
    holds: int | None
    # Candidates it would be asked first for (no source before it holds them).
    first: int = 0


@dataclass
class Coverage:
    classes: int
    candidates: int
    sources: list[SourceCoverage] = field(default_factory=list)
    # Classes whose indexed sources (archives) alone hold at least samples_per_class candidates.
    filled_without_asking: int = 0
    # Candidates no source can be asked for (only archives configured, none holds them).
    nowhere: int = 0

    def format(self) -> str:
        lines = [f"planned: {self.classes} class(es), {self.candidates:,} candidate(s)"]
        width = max([len(s.name) for s in self.sources] + [6])
        for source in self.sources:
            held = "cannot tell before asking" if source.holds is None else _share(source.holds, self.candidates)
            lines.append(f"  {source.name:<{width}}  {source.kind:<7}  holds {held}; "
                         f"asked first for {_share(source.first, self.candidates)}")
        if any(s.holds is not None for s in self.sources):
            lines.append(f"classes the archives alone can fill: {self.filled_without_asking} of {self.classes}")
        if self.nowhere:
            lines.append(f"candidates no source holds: {self.nowhere:,} (the next candidates take their place)")
        return "\n".join(lines)


def _share(count: int, total: int) -> str:
    return f"{count:,} ({100.0 * count / total:.1f} %)" if total else f"{count:,}"


def plan_coverage(plans: Sequence[ClassPlan], sources: Sequence[Source], output_dir: Path,
                  progress: bool = False) -> Coverage:
    """Count, per source, the planned candidates it holds and those it would be asked first for."""
    coverage = Coverage(classes=len(plans), candidates=sum(len(p.candidates) for p in plans))
    by_name = {s.name: SourceCoverage(s.name, s.kind, 0 if s.knows_its_holdings else None) for s in sources}
    coverage.sources = list(by_name.values())
    output_dir = Path(output_dir).resolve()
    for plan in tqdm(plans, desc="coverage", unit="class", disable=not progress):
        indexed = 0
        for candidate in plan.candidates:
            job = ClipJob(candidate.ytid, candidate.start_seconds, candidate.end_seconds,
                          inside(output_dir, candidate.file))
            first = None
            for source in sources:
                held = source.holds(job)
                if source.knows_its_holdings and held:
                    by_name[source.name].holds += 1
                if held and first is None:
                    first = source
            if first is None:
                coverage.nowhere += 1
                continue
            by_name[first.name].first += 1
            indexed += first.knows_its_holdings
        coverage.filled_without_asking += indexed >= plan.target
    return coverage
