"""The seam between the download scheduler and the places clips come from.

A :class:`Source` turns a :class:`ClipJob` (a segment, the output it must become and the
final path) into a finished file at that path, or into a :class:`ClipResult` that says
why not. The scheduler (:mod:`audioset_tools.download.runner`) knows only this class: it
asks each configured source in turn, records every answer in the ledger per (source,
clip), and lets a source pace, retry and authenticate however it needs to.

Rules every source keeps:

- :meth:`Source.produce` runs on worker threads and never raises for a clip's own
  problem; it returns a classified :class:`ClipResult` (values of
  :class:`~.outcomes.Outcome`).
- The file appears at ``job.target`` only when it is complete and exactly ``job.spec``
  (rate, channels, format, ``job.frames`` samples per channel); temporaries live beside
  it under names :func:`is_partial_file` recognises, so a killed run's leftovers are swept.
- :meth:`Source.observe` and :attr:`Source.stop_reason` run on the coordinating thread:
  that is where a source learns from results (pacing) and says it cannot go on.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import re
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..dataset.ids import is_valid_ytid
from .outcomes import Outcome
from .output_spec import OutputSpec, frames_for


@dataclasses.dataclass(frozen=True)
class ClipJob:
    """One segment to produce: where it is, what it must become, where it goes."""

    ytid: str
    start_seconds: float
    end_seconds: float
    # Absolute final path, extension included.
    target: Path
    spec: OutputSpec = OutputSpec()

    def __post_init__(self) -> None:
        # The planner validates too; this guards the one place an ID turns into a URL and a file.
        if not is_valid_ytid(self.ytid):
            raise ValueError(f"invalid YouTube ID {self.ytid!r}")
        if not 0 <= self.start_seconds < self.end_seconds:
            raise ValueError(f"{self.ytid}: need 0 <= start < end, got [{self.start_seconds}, {self.end_seconds}]")
        if not Path(self.target).is_absolute():
            raise ValueError(f"{self.ytid}: target must be an absolute path, got {self.target}")

    @property
    def duration(self) -> float:
        return self.end_seconds - self.start_seconds

    @property
    def frames(self) -> int:
        """Samples per channel the finished clip holds, exactly."""
        return frames_for(self.duration, self.spec.sample_rate)


@dataclasses.dataclass(frozen=True)
class ClipResult:
    """What one source made of one job. ``file``..``channels`` are set when the outcome is ok."""

    outcome: Outcome
    message: str
    attempts: int
    retry_after: float | None = None
    file: Path | None = None
    sha256: str | None = None
    duration: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    bytes_read: int | None = None
    # "outcome: message" of every attempt, in order (the last one is this result's).
    history: tuple[str, ...] = ()
    # The network identity the requests left from ("proxy http://***@host:port"), if any.
    identity: str | None = None
    # Where inside the source the clip was found (an archive's "file#row"), for provenance.
    origin: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


# The identity of requests sent from this machine's default route.
DEFAULT_IDENTITY = "local"


def run_here(fn: Callable[..., ClipResult], job: ClipJob, *args: Any) -> ClipResult:
    """A :attr:`Slot.run` that runs the work in the calling thread."""
    return fn(job, *args)


@dataclasses.dataclass(frozen=True)
class Slot:
    """One place a clip can be worked on at a time, as the scheduler hands it to a source.

    ``identity`` is the network address requests from this slot leave from ("local" for the
    default route, one of ``download.source_addresses``, a Dask worker's host); each is paced
    on its own. ``bind`` is the local address to send from, if any. ``run(fn, job, *args)``
    runs ``fn(job, *args)`` where this slot's work happens (here, or on a Dask worker whose
    clip comes back to ``job.target``) and returns its :class:`ClipResult`; ``fn`` must be a
    module-level function of picklable arguments that writes ``job.target``.
    """

    index: int
    identity: str = DEFAULT_IDENTITY
    bind: str | None = None
    run: Callable[..., ClipResult] = run_here


class Source(abc.ABC):
    """One configured place clips come from (see the module docstring for the contract)."""

    # The config's ``kind`` (``youtube``, ``archive``).
    kind: ClassVar[str]
    # Whether lists of videos gone from YouTube (imported unavailable.csv) apply to this source.
    trusts_youtube_unavailable_lists: ClassVar[bool] = False
    # Whether :meth:`holds` knows (an index) rather than hopes (a site answers only when asked).
    knows_its_holdings: ClassVar[bool] = False

    def __init__(self, name: str) -> None:
        self.name = name

    def preflight(self) -> str:
        """Check, before a run, that the source can be used at all; raise ``UserError`` if not.

        Returns one line saying what was checked. An unreachable network source raises
        ``SourceUnreachable`` (exit 4), which a run with other sources may go on without.
        """
        return "ready"

    def holds(self, job: ClipJob) -> bool:
        """False only when the source certainly lacks the clip (an archive's index says so)."""
        return True

    def prepare(self, slots: Sequence[Slot]) -> contextlib.AbstractContextManager[Any]:
        """Resources for a run over ``slots`` (private cookie copies, pacers per identity, ...), released on exit."""
        return contextlib.nullcontext()

    @abc.abstractmethod
    def produce(self, job: ClipJob, slot: Slot) -> ClipResult | None:
        """Write ``job`` or say why not, working in ``slot``; None when the run stopped before this job started."""

    def observe(self, result: ClipResult) -> None:
        """Learn from one of this source's results (coordinating thread)."""

    @property
    def stop_reason(self) -> str | None:
        """Why the run cannot go on with this source (e.g. throttled out), or None."""
        return None

    def cancel(self) -> None:
        """The run is stopping: end any wait inside :meth:`produce` at once."""

    def identity(self) -> dict[str, Any]:
        """What this source is, for the run record (name, kind, and what the data came from)."""
        return {"name": self.name, "kind": self.kind}

    def close(self) -> None:
        """Release what the source holds open (files, handles)."""


_PARTIAL_RE = re.compile(r"\A\..+\.[0-9a-f]{8}\.part\.[A-Za-z0-9]+\Z")


def partial_path(target: Path, suffix: str | None = None) -> Path:
    """A fresh temporary name beside ``target``; the suffix lets ffmpeg pick the muxer."""
    extension = suffix if suffix is not None else target.suffix
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}.part{extension}")


def is_partial_file(path: Path) -> bool:
    """True for the temporaries sources write beside a clip (only kill -9 leaves them behind)."""
    return _PARTIAL_RE.match(Path(path).name) is not None
