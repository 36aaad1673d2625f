"""What a download run did: per-outcome counts, per-class fill, and the exit code."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from ..errors import (
    EXIT_INTERRUPTED,
    EXIT_NETWORK,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_THROTTLED,
    EXIT_TOOLING,
)
from ..sources.outcomes import Outcome
from ..sources.youtube.ytdlp_tooling import TOOLING_FIX


@dataclass
class ClassSummary:
    class_index: int
    mid: str
    class_name: str
    folder: str
    target: int
    ok: int = 0
    finished: bool = False

    @property
    def short(self) -> bool:
        return self.finished and self.ok < self.target


@dataclass
class RunSummary:
    """What a run did. ``outcomes`` counts this run's fetches; skips come from the ledger."""

    outcomes: Counter = field(default_factory=Counter)
    already_done: int = 0
    known_failed: int = 0
    # Files of the candidates no configured source could be asked for (archives only, none holding them).
    unheld: set[str] = field(default_factory=set)
    adopted: int = 0
    discarded: int = 0
    quarantined: int = 0
    classes: list[ClassSummary] = field(default_factory=list)
    stopped_by_throttling: bool = False
    stopped_by_network: bool = False
    stopped_by_tooling: bool = False
    last_tooling_error: str = ""
    interrupted: bool = False
    # The interruption was a SIGTERM (exit 143) rather than a Ctrl-C (exit 130).
    terminated: bool = False
    # Network identities (proxies) that failed several times in a row: identity -> longest streak.
    failing_identities: dict[str, int] = field(default_factory=dict)
    # This run's answers per source: source name -> outcome -> count.
    by_source: defaultdict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    # ... and per network identity (proxy, source address, Dask worker host; a local source's name).
    by_identity: defaultdict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_TERMINATED if self.terminated else EXIT_INTERRUPTED
        if self.stopped_by_throttling:
            return EXIT_THROTTLED
        if self.stopped_by_tooling:
            return EXIT_TOOLING
        return EXIT_NETWORK if self.stopped_by_network else EXIT_OK

    def format(self) -> str:
        lines = ["download summary:"]
        for outcome in Outcome:
            if self.outcomes[outcome.value]:
                lines.append(f"  {outcome.value:<17} {self.outcomes[outcome.value]}")
        lines.append(f"  {'already done':<17} {self.already_done}")
        lines.append(f"  {'known failed':<17} {self.known_failed} (skipped; --retry-failed tries them again)")
        if self.unheld:
            lines.append(f"  {'not in sources':<17} {len(self.unheld)} (no configured source holds them;"
                         f" the next candidates took their place)")
        if len(self.by_source) > 1 or any(name != "youtube" for name in self.by_source):
            for name, counts in sorted(self.by_source.items()):
                shown = ", ".join(f"{outcome} {count}" for outcome, count in sorted(counts.items()))
                lines.append(f"  from {name}: {shown}")
        if self.quarantined:
            lines.append(f"  {'quarantined':<17} {self.quarantined} (set aside by clean; never fetched again,"
                         f" not even with --retry-failed)")
        if self.adopted:
            lines.append(f"  {'adopted':<17} {self.adopted} (complete files an interrupted run left unrecorded)")
        if self.discarded:
            lines.append(f"  {'discarded':<17} {self.discarded} (beyond samples_per_class or stale)")
        complete = sum(1 for c in self.classes if c.finished and not c.short)
        short = [c for c in self.classes if c.short]
        unfinished = [c for c in self.classes if not c.finished]
        lines.append(f"  classes: {complete} complete, {len(short)} short of candidates, {len(unfinished)} unfinished")
        for c in short:
            lines.append(f"    {c.folder}: {c.ok}/{c.target} (candidates ran out)")
        addresses = {name: counts for name, counts in self.by_identity.items() if name not in self.by_source}
        if len(addresses) > 1:
            for name, counts in sorted(addresses.items()):
                throttled = counts["rate_limited"] + counts["sign_in_required"]
                note = f", throttled {throttled} time(s)" if throttled else ""
                lines.append(f"  via {name}: {counts['ok']} ok{note}")
        for identity, count in sorted(self.failing_identities.items()):
            lines.append(f"  {identity} failed {count} times in a row; check it or remove it from download.proxies"
                         " / download.source_addresses")
        if self.stopped_by_throttling:
            lines.append(
                "  STOPPED: YouTube kept refusing requests (rate limit / sign-in wall). Finished clips are kept.\n"
                "  Wait a while, then run the same command again to resume; consider download.cookies_file,\n"
                "  a longer download.sleep_between_requests, download.max_requests_per_hour or fewer workers."
            )
        if self.stopped_by_network:
            lines.append(
                "  STOPPED: the network seems down (timeouts, resets or DNS failures on every clip in a row).\n"
                "  Finished clips are kept and nothing was marked unavailable. Check the connection and any\n"
                "  download.proxies, then run the same command again to resume."
            )
        if self.stopped_by_tooling:
            lines.append(
                "  STOPPED: yt-dlp could not extract several videos in a row for reasons that are not the\n"
                "  videos' (JS challenge not solved, no JavaScript runtime, SABR-only or no usable formats).\n"
                f"  Last error: {self.last_tooling_error}\n"
                f"  Update the tooling:  {TOOLING_FIX}\n"
                "  (or set download.js_runtime / download.youtube.extractor_args; run 'audioset-tools doctor').\n"
                "  Finished clips are kept and nothing was marked failed: run the same command again to resume."
            )
        if self.interrupted:
            stop = "TERMINATED (SIGTERM)" if self.terminated else "INTERRUPTED"
            lines.append(f"  {stop}: finished clips are kept; run the same command again to resume.")
        return "\n".join(lines)
