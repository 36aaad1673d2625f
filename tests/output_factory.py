"""An output folder as a long download leaves it, without downloading: ledger rows plus clip files.

For the dry-run test and benchmark. The clips are tiny placeholder files (the dry run only
asks whether they exist); the ledger is written through :class:`Ledger`, like the runner.
"""

from __future__ import annotations

from pathlib import Path

from audioset_tools.dataset.layout import start_ms
from audioset_tools.download.ledger import LEDGER_NAME, Attempt, ClipRecord, Ledger
from audioset_tools.download.plan import Candidate, ClassPlan

WHEN = "2026-11-25T14:05:00Z"


def _attempt(plan: ClassPlan, candidate: Candidate, outcome: str, file: str | None = None) -> Attempt:
    return Attempt(
        ytid=candidate.ytid, start_ms=start_ms(candidate.start_seconds), end_ms=start_ms(candidate.end_seconds),
        class_index=plan.class_index, mid=plan.mid, folder=plan.folder, rank=candidate.rank, outcome=outcome,
        message="" if outcome == "ok" else "Video unavailable", attempts=1, started_at=WHEN, finished_at=WHEN,
        file=file,
    )


def populate_output(output_dir: Path, plans: list[ClassPlan], clips_per_class: int, failed_per_class: int) -> int:
    """Record and write ``clips_per_class`` finished clips per class, then ``failed_per_class``
    permanently failed candidates; return the number of clips written."""
    output_dir = Path(output_dir)
    written = 0
    with Ledger(output_dir / LEDGER_NAME) as ledger:
        # Thousands of durable commits would take minutes; durability is not under test here.
        ledger._db.execute("PRAGMA synchronous=OFF")
        for plan in plans:
            (output_dir / plan.folder).mkdir(parents=True, exist_ok=True)
            done = plan.candidates[:clips_per_class]
            for candidate in done:
                (output_dir / candidate.file).write_bytes(b"RIFF placeholder")
                record = ClipRecord(
                    file=candidate.file, class_index=plan.class_index, mid=plan.mid, class_name=plan.class_name,
                    split=plan.split, ytid=candidate.ytid, start_seconds=candidate.start_seconds,
                    end_seconds=candidate.end_seconds, rank=candidate.rank, sample_rate=16000, channels=1,
                    duration=candidate.end_seconds - candidate.start_seconds, sha256="0" * 64,
                    labels=candidate.labels,
                )
                ledger.record_attempt(_attempt(plan, candidate, "ok", candidate.file), record)
                written += 1
            for candidate in plan.candidates[clips_per_class: clips_per_class + failed_per_class]:
                ledger.record_attempt(_attempt(plan, candidate, "unavailable"))
    return written
