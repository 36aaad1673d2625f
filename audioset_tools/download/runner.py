"""Run a download plan: schedule candidates over workers and sources, record everything, keep manifests true.

:func:`run_download` takes any list of :class:`ClassPlan` (from the selection or from a
manifest) and fills each class with its first ``target`` successful candidates in rank
order. The result does not depend on ``workers``: a class never has more candidates in
flight than it still needs, and candidates are submitted in rank order, so the clips it
ends with are exactly those a single worker would have kept.

Clips come from the configured :class:`~audioset_tools.sources.base.Source` list, asked
in order for each candidate: a source whose index lacks the clip is passed over, one
that failed it permanently before is skipped (until ``retry_failed`` names it), and the
first that produces it wins. Every answer is recorded per (source, clip). The scheduler
knows nothing else about a source: pacing, credentials and retries are the source's.

Side effects, all inside ``output_dir``: clip files, the ledger, the manifests, a lock
file. Leftover partial files of a killed run are swept at start, and again at the end
(an ffmpeg orphaned by a kill -9 may go on writing after the first sweep); a complete clip that a
killed run wrote but never recorded is verified and adopted. Segments that ``clean`` set
aside (``_quarantine/quarantine.csv``) are never fetched again for their class, not even
with ``retry_failed``: they were judged bad on their content, and the next candidate
in rank order takes their place.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import signal
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..atomic import is_temporary
from ..config import Config, DownloadConfig
from ..dataset.audio_info import (
    AudioReadError,
    probe_audio,
    samples_sha256,
    segment_frames,
    sha256_file,
)
from ..dataset.layout import inside, start_ms
from ..dataset.lock import LOCK_NAME, dataset_lock  # noqa: F401  (LOCK_NAME: re-exported)
from ..dataset.manifest import write_dataset_manifests
from ..dataset.quarantine import quarantined_segments
from ..errors import Terminated, UserError, disk_full_error, is_disk_full
from ..sources.abort import abort_fetches, aborting, allow_fetches
from ..sources.base import (
    DEFAULT_IDENTITY,
    ClipJob,
    ClipResult,
    Slot,
    Source,
    is_partial_file,
)
from ..sources.outcomes import PERMANENT_FAILURES, Outcome
from ..sources.output_spec import OutputSpec
from .executors import Executor
from .ledger import (
    DISCARDED,
    LEDGER_NAME,
    QUARANTINED,
    VANISHED,
    Attempt,
    ClipRecord,
    Ledger,
    clips_frame,
    ledger_damaged_message,
    utc_now,
)
from .plan import Candidate, ClassIdentity, ClassPlan
from .reconcile import reconcile_with_plans
from .run_record import write_run_record
from .slots import plan_slots
from .summary import ClassSummary, RunSummary

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.5
# A network identity (a proxy) failing this many times in a row is reported (never silently dropped).
IDENTITY_FAILURE_REPORT = 3


@dataclass(frozen=True)
class RunOptions:
    """How to run, apart from what each source needs (the sources hold that)."""

    workers: int = 1
    # True: try every source's known failures again; a source's name: that source's only.
    retry_failed: bool | str = False
    progress: bool = True
    # This many transient failures in a row from one source (no answer from any server) means its network is down.
    max_consecutive_transient: int = DownloadConfig().max_consecutive_transient
    # This many tooling errors in a row (yt-dlp out of date or incomplete) stop the run.
    max_consecutive_tooling_errors: int = DownloadConfig().max_consecutive_tooling_errors
    # False for a rebuild: a manifest names exactly the clips wanted, quarantined or not.
    skip_quarantined: bool = True
    # What the ledger's runs table and _reports/run.json call this run.
    command: str = "download"
    # Local addresses to spread requests over (threads executor): one identity each.
    source_addresses: tuple[str, ...] = ()
    # Dask workers see the output folder at the same path: they write clips into place themselves.
    shared_output: bool = False

    @classmethod
    def from_config(cls, config: Config, *, retry_failed: bool | str = False, progress: bool = True) -> RunOptions:
        d = config.download
        return cls(
            workers=d.workers,
            retry_failed=retry_failed,
            progress=progress,
            max_consecutive_transient=d.max_consecutive_transient,
            max_consecutive_tooling_errors=d.max_consecutive_tooling_errors,
            source_addresses=tuple(d.source_addresses),
            shared_output=d.dask.shared_output_dir,
        )

    def retries(self, source: Source) -> bool:
        """Whether ``source``'s recorded permanent failures are tried again in this run."""
        return self.retry_failed is True or self.retry_failed == source.name


def _locked(output_dir: Path) -> contextlib.AbstractContextManager[None]:
    """One writer per output folder at a time (see :mod:`audioset_tools.dataset.lock`)."""
    return dataset_lock(output_dir, "download")


def sweep_partial_files(output_dir: Path) -> int:
    """Delete partial clips and temporaries a killed run left in ``output_dir`` and its class folders."""
    removed = 0
    folders = [output_dir] + [p for p in output_dir.iterdir() if p.is_dir() and not p.is_symlink()]
    for folder in folders:
        for path in folder.iterdir():
            if path.is_file() and (is_partial_file(path) or is_temporary(path)):
                path.unlink(missing_ok=True)
                removed += 1
    if removed:
        log.info("removed %d partial file(s) left by an interrupted run", removed)
    return removed


def write_manifests(output_dir: Path, ledger: Ledger, quarantined: frozenset = frozenset()) -> int:
    """Rewrite every manifest from the ledger's finished clips whose files exist; return the row count.

    ``quarantined`` holds the (mid, ytid, start_ms) keys of :func:`quarantined_segments`,
    so a clip that cleaning moved away is recorded as such rather than as vanished.
    """
    records = []
    for record in ledger.clips():
        if _usable_file(inside(output_dir, record.file)):
            records.append(record)
        elif _quarantine_key(record.mid, record.ytid, record.start_seconds) in quarantined:
            ledger.forget_clip(_event(record, QUARANTINED, _QUARANTINED_MESSAGE))
        else:
            ledger.forget_clip(_event(record, VANISHED, "file missing when writing the manifests"))
    write_dataset_manifests(output_dir, clips_frame(records))
    return len(records)


_QUARANTINED_MESSAGE = "moved to the quarantine by clean; not fetched again for this class"


def _quarantine_key(mid: str, ytid: str, start_seconds: float) -> tuple[str, str, int]:
    return mid, ytid, start_ms(start_seconds)


def _usable_file(path: Path) -> bool:
    try:
        return path.is_file() and path.stat().st_size > 0
    except OSError:
        return False


def _samples_digest(path: Path) -> str:
    """The clip's :func:`samples_sha256` for the manifest; empty if it cannot be decoded (validate says why)."""
    try:
        return samples_sha256(path)
    except AudioReadError:
        return ""


def _event(record: ClipRecord, outcome: str, message: str) -> Attempt:
    now = utc_now()
    folder = record.file.rpartition("/")[0]
    return Attempt(
        ytid=record.ytid, start_ms=start_ms(record.start_seconds), end_ms=start_ms(record.end_seconds),
        class_index=record.class_index, mid=record.mid, folder=folder, rank=record.rank, outcome=outcome,
        message=message, attempts=0, started_at=now, finished_at=now, file=record.file,
    )


class _ClassState:
    """Scheduling state of one class: which candidates are ok, in flight or still to try."""

    def __init__(self, plan: ClassPlan) -> None:
        self.plan = plan
        self.next_position = 0
        self.retry_positions: list[int] = []
        self.ok: dict[int, ClipRecord] = {}
        self.in_flight: set[int] = set()
        self.failed = 0
        self.skipped = 0
        self.finished = False

    def needs_more(self) -> bool:
        return len(self.ok) + len(self.in_flight) < self.plan.target and self.has_untried()

    def has_untried(self) -> bool:
        return bool(self.retry_positions) or self.next_position < len(self.plan.candidates)

    def take(self) -> int:
        if self.retry_positions:
            self.retry_positions.sort()
            return self.retry_positions.pop(0)
        position = self.next_position
        self.next_position += 1
        return position

    def done(self) -> bool:
        return not self.in_flight and (len(self.ok) >= self.plan.target or not self.has_untried())


@dataclass(frozen=True)
class _Answer:
    """One source's answer for one clip, as a worker saw it."""

    source: Source
    started: str
    result: ClipResult


@dataclass(frozen=True)
class _Work:
    """What a worker did with one clip: each source's answer, in order, and whether the chain ended.

    ``finished`` is False when the run stopped before every source in the chain had its turn
    (the clip is then tried again on the next run, from the sources that did not answer).
    """

    answers: tuple[_Answer, ...]
    finished: bool


class _Run:
    def __init__(
        self,
        plans: list[ClassPlan],
        sources: Sequence[Source],
        spec: OutputSpec,
        output_dir: Path,
        options: RunOptions,
        ledger: Ledger,
        slots: Sequence[Slot],
    ) -> None:
        self.output_dir = output_dir
        self.slots = list(slots)
        # Every request leaves from the default route (no source addresses, no Dask hosts).
        self._one_route = all(slot.identity == DEFAULT_IDENTITY for slot in self.slots)
        self.sources = list(sources)
        self.spec = spec
        self.options = options
        self.ledger = ledger
        self.quarantined = quarantined_segments(output_dir) if options.skip_quarantined else frozenset()
        self.states = [_ClassState(plan) for plan in plans]
        self.summary = RunSummary(
            classes=[ClassSummary(p.class_index, p.mid, p.class_name, p.folder, p.target) for p in plans]
        )
        self._worker_ids = itertools.count()
        self._local = threading.local()
        self._identity_failures: Counter = Counter()
        self._reported_identities: set[str] = set()
        self._stopping = False
        self._interrupted = False
        self._terminated = False
        # Per source: a network outage or broken tooling shows up as a run of these from one source.
        self._transient_streak: Counter = Counter()
        self._tooling_streak: Counter = Counter()
        disabled = not options.progress
        total = sum(p.target for p in plans)
        self.overall = tqdm(total=total, desc="clips", unit="clip", disable=disabled, position=0, dynamic_ncols=True)
        first = plans[0] if plans else None
        self.per_class = tqdm(total=first.target if first else 0, desc=first.folder[:30] if first else "",
                              unit="clip", disable=disabled, position=1, leave=False, dynamic_ncols=True)
        self._bar_class: int | None = first.class_index if first else None
        self.counts = Counter()

    # -- worker side ---------------------------------------------------------------------

    def _init_worker(self) -> None:
        self._local.slot = self.slots[next(self._worker_ids) % len(self.slots)]

    def _work(self, job: ClipJob, chain: tuple[Source, ...]) -> _Work:
        """Ask the sources of ``chain`` in order until one produces the clip (worker thread)."""
        answers = []
        for source in chain:
            started = utc_now()
            result = source.produce(job, self._local.slot)
            if result is None:  # the run is stopping: this source never started
                return _Work(tuple(answers), finished=False)
            answers.append(_Answer(source, started, result))
            if result.ok or result.outcome is Outcome.RATE_LIMITED:
                break
            if aborting() or self._stopping:
                return _Work(tuple(answers), finished=source is chain[-1])
        return _Work(tuple(answers), finished=True)

    # -- main thread ---------------------------------------------------------------------

    def _on_stop_signal(self, signum: int, frame: object) -> None:
        # Only set a flag: the main thread may hold a lock right now. A second signal aborts.
        if self._interrupted:
            raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt
        self._interrupted = True
        self._terminated = signum == signal.SIGTERM

    @contextlib.contextmanager
    def graceful_ctrl_c(self) -> Iterator[None]:
        """First Ctrl-C or SIGTERM: finish the clips in flight, write the manifests, stop.

        (Signals reach the main thread only.)
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {number: signal.signal(number, self._on_stop_signal) for number in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def run(self) -> RunSummary:
        futures: dict[Future, tuple[_ClassState, int]] = {}
        with ThreadPoolExecutor(
            max_workers=len(self.slots), initializer=self._init_worker, thread_name_prefix="fetch"
        ) as pool:
            try:
                while True:
                    self._fill(pool, futures)
                    self._finish_classes()
                    if not futures:
                        break
                    # A timeout, so a Ctrl-C is noticed even while every worker sits in a long pause.
                    done, _ = wait(futures, timeout=_POLL_SECONDS, return_when=FIRST_COMPLETED)
                    for future in sorted(done, key=lambda f: futures[f][1]):
                        state, position = futures.pop(future)
                        self._handle(state, position, future.result())
                    if not self._stopping:
                        self._check_stop()
            except BaseException:
                # Interrupted (Ctrl-C) or a bug: let in-flight fetches end, keep what they finished.
                self._stopping = True
                self._cancel_sources()
                # Aborting (a second Ctrl-C / SIGTERM) or a bug: stuck resolves and ffmpeg runs end now.
                abort_fetches()
                for future in futures:
                    future.cancel()
                for future, (state, position) in futures.items():
                    if not future.cancelled() and future.exception() is None:
                        self._handle(state, position, future.result())
                raise
            finally:
                self.overall.close()
                self.per_class.close()
                for state, summary in zip(self.states, self.summary.classes):
                    summary.ok = min(len(state.ok), state.plan.target)
        return self.summary

    def _check_stop(self) -> None:
        """Stop (after the clips in flight) on a signal, a throttled-out source, or a streak of failures."""
        worst_transient = _worst_source(self._transient_streak)
        worst_tooling = _worst_source(self._tooling_streak)
        throttled = next((s.stop_reason for s in self.sources if s.stop_reason), None)
        if self._interrupted:
            self.summary.interrupted = True
            self.summary.terminated = self._terminated
            self._stop("terminated by SIGTERM (send it again to abort at once)" if self._terminated
                       else "interrupted (Ctrl-C again to abort at once)")
        elif throttled is not None:
            self.summary.stopped_by_throttling = True
            self._stop(throttled)
        elif worst_transient[1] >= self.options.max_consecutive_transient:
            self.summary.stopped_by_network = True
            self._stop(f"{worst_transient[1]} network failures in a row from {worst_transient[0]}")
        elif worst_tooling[1] >= self.options.max_consecutive_tooling_errors:
            self.summary.stopped_by_tooling = True
            self._stop(f"{worst_tooling[1]} yt-dlp tooling errors in a row from {worst_tooling[0]}")

    def _stop(self, reason: str) -> None:
        log.error("%s: stopping after the downloads in flight", reason)
        self._stopping = True
        self._cancel_sources()

    def _cancel_sources(self) -> None:
        for source in self.sources:
            source.cancel()

    def _fill(self, pool: ThreadPoolExecutor, futures: dict[Future, tuple[_ClassState, int]]) -> None:
        while not self._stopping and len(futures) < len(self.slots):
            state = next((s for s in self.states if not s.finished and s.needs_more()), None)
            if state is None:
                return
            position = state.take()
            candidate = state.plan.candidates[position]
            if self._resolve_from_disk(state, position, candidate):
                continue
            job = ClipJob(
                ytid=candidate.ytid,
                start_seconds=candidate.start_seconds,
                end_seconds=candidate.end_seconds,
                target=inside(self.output_dir, candidate.file),
                spec=self.spec,
            )
            chain = self._chain(state, job, candidate.file)
            if not chain:
                continue
            state.in_flight.add(position)
            futures[pool.submit(self._work, job, chain)] = (state, position)

    def _chain(self, state: _ClassState, job: ClipJob, file: str) -> tuple[Source, ...]:
        """The sources to ask for ``job``, in order; () when none can (the candidate is then settled).

        A source is passed over when it certainly lacks the clip (an archive's index), or when
        it failed the clip permanently before (unless this run retries that source's failures).
        """
        chain: list[Source] = []
        known_failed = False
        for source in self.sources:
            if not source.holds(job):
                continue
            if not self.options.retries(source) and self.ledger.known_failure(
                job.ytid, start_ms(job.start_seconds), start_ms(job.end_seconds), source.name,
                imported=source.trusts_youtube_unavailable_lists,
            ) is not None:
                known_failed = True
                continue
            chain.append(source)
        if not chain:
            state.skipped += 1
            if known_failed:
                self.summary.known_failed += 1
            else:
                self.summary.unheld.add(file)
            self._bump("skipped")
        return tuple(chain)

    def _resolve_from_disk(self, state: _ClassState, position: int, candidate: Candidate) -> bool:
        """Settle a candidate from the ledger and disk without fetching, when possible."""
        path = inside(self.output_dir, candidate.file)
        record = self.ledger.clip(candidate.file)
        if _quarantine_key(state.plan.mid, candidate.ytid, candidate.start_seconds) in self.quarantined:
            if record is not None:
                self.ledger.forget_clip(_event(record, QUARANTINED, _QUARANTINED_MESSAGE))
            state.skipped += 1
            self.summary.quarantined += 1
            self._bump("skipped")
            return True
        if record is not None:
            if not _usable_file(path):
                self.ledger.forget_clip(_event(record, VANISHED, "recorded clip missing on resume; fetching again"))
            elif (record.sample_rate, record.channels) != (self.spec.sample_rate, self.spec.channels):
                path.unlink(missing_ok=True)
                self.ledger.forget_clip(_event(record, DISCARDED, "audio settings changed; fetching again"))
                self.summary.discarded += 1
            else:
                self._count_ok(state, position, record)
                self.summary.already_done += 1
                return True
        if path.exists():
            return self._adopt(state, position, candidate, path)
        return False

    def _adopt(self, state: _ClassState, position: int, candidate: Candidate, path: Path) -> bool:
        """Keep a complete clip written by a run killed before recording it, if it checks out.

        Only with one source: with several, the file does not say which one made it (an earlier
        source's failure may have gone unrecorded too), so it is produced again, which gives the
        same dataset as a run that was never killed.
        """
        expected = segment_frames(candidate.start_seconds, candidate.end_seconds, self.spec.sample_rate)
        try:
            info = probe_audio(path) if len(self.sources) == 1 else None
        except AudioReadError:
            info = None
        if (
            info is None
            or info.frames != expected
            or info.sample_rate != self.spec.sample_rate
            or info.channels != self.spec.channels
        ):
            path.unlink(missing_ok=True)
            return False
        plan = state.plan
        now = utc_now()
        record = ClipRecord(
            file=candidate.file, class_index=plan.class_index, mid=plan.mid, class_name=plan.class_name,
            split=plan.split, ytid=candidate.ytid, start_seconds=candidate.start_seconds,
            end_seconds=candidate.end_seconds, rank=candidate.rank, sample_rate=info.sample_rate,
            channels=info.channels, duration=info.duration, sha256=sha256_file(path), labels=candidate.labels,
            samples_sha256=_samples_digest(path), source=self.sources[0].name,
        )
        self.ledger.record_attempt(
            Attempt(
                ytid=candidate.ytid, start_ms=start_ms(candidate.start_seconds),
                end_ms=start_ms(candidate.end_seconds), class_index=plan.class_index, mid=plan.mid,
                folder=plan.folder, rank=candidate.rank, outcome=Outcome.OK.value,
                message="adopted a complete file left unrecorded by an interrupted run", attempts=0,
                started_at=now, finished_at=now, file=candidate.file, sha256=record.sha256,
                duration=record.duration, sample_rate=record.sample_rate, channels=record.channels,
                source=record.source,
            ),
            record,
            from_youtube=self.sources[0].trusts_youtube_unavailable_lists,
        )
        self.summary.adopted += 1
        self._count_ok(state, position, record)
        return True

    def _handle(self, state: _ClassState, position: int, work: _Work) -> None:
        state.in_flight.discard(position)
        candidate = state.plan.candidates[position]
        for answer in work.answers:
            self._record(state, position, candidate, answer)
        last = work.answers[-1].result if work.answers else None
        if last is not None and last.ok:
            return
        if last is None or not work.finished or last.outcome is Outcome.RATE_LIMITED:
            # Not the clip's fault (the run is stopping, or a source asked to slow down): try it again.
            state.retry_positions.append(position)
            return
        state.failed += 1
        self._bump("failed")

    def _record(self, state: _ClassState, position: int, candidate: Candidate, answer: _Answer) -> None:
        """Log one source's answer, learn from it, and count the clip when it is the one that worked."""
        source, result = answer.source, answer.result
        outcome = Outcome(result.outcome)
        plan = state.plan
        self.summary.outcomes[outcome.value] += 1
        record = None
        if outcome is Outcome.OK:
            record = ClipRecord(
                file=candidate.file, class_index=plan.class_index, mid=plan.mid, class_name=plan.class_name,
                split=plan.split, ytid=candidate.ytid, start_seconds=candidate.start_seconds,
                end_seconds=candidate.end_seconds, rank=candidate.rank, sample_rate=result.sample_rate,
                channels=result.channels, duration=result.duration, sha256=result.sha256, labels=candidate.labels,
                samples_sha256=_samples_digest(inside(self.output_dir, candidate.file)), source=source.name,
            )
        self.ledger.record_attempt(
            Attempt(
                ytid=candidate.ytid, start_ms=start_ms(candidate.start_seconds),
                end_ms=start_ms(candidate.end_seconds), class_index=plan.class_index, mid=plan.mid,
                folder=plan.folder, rank=candidate.rank, outcome=outcome.value, message=result.message,
                attempts=result.attempts, started_at=answer.started, finished_at=utc_now(),
                file=candidate.file if record else None, sha256=result.sha256 if record else None,
                duration=result.duration if record else None, sample_rate=result.sample_rate if record else None,
                channels=result.channels if record else None, bytes_read=result.bytes_read,
                history="\n".join(result.history), source=source.name,
            ),
            record,
            from_youtube=source.trusts_youtube_unavailable_lists,
        )
        source.observe(result)
        self.summary.by_source[source.name][outcome.value] += 1
        self._track_identity(result.identity, outcome)
        # Any answer from a server, even "gone", shows the network works.
        # Per (source, identity): one address losing its network must not stop the others.
        streak_key = (source.name, result.identity)
        self.summary.by_identity[result.identity or source.name][outcome.value] += 1
        self._transient_streak[streak_key] = (
            self._transient_streak[streak_key] + 1 if outcome is Outcome.TRANSIENT else 0
        )
        # Any other answer (even "gone") shows that extraction itself works.
        self._tooling_streak[streak_key] = (
            self._tooling_streak[streak_key] + 1 if outcome is Outcome.TOOLING_ERROR else 0
        )
        if outcome is Outcome.TOOLING_ERROR:
            self.summary.last_tooling_error = result.message
        if record is not None:
            self._count_ok(state, position, record)
            log.debug("%s: ok from %s", candidate.file, source.name)
            return
        level = logging.DEBUG if outcome in PERMANENT_FAILURES else logging.INFO
        log.log(level, "%s %s: %s from %s (%s)", candidate.ytid, plan.folder, outcome.value, source.name,
                result.message)

    def _track_identity(self, identity: str | None, outcome: Outcome) -> None:
        """Report a network identity (a proxy, an address, a worker) that keeps failing; it stays in use."""
        if identity is None or (identity == DEFAULT_IDENTITY and self._one_route):
            return  # one route only: the network streak already says it
        if outcome in (Outcome.OK, Outcome.UNAVAILABLE, Outcome.TOO_SHORT):
            self._identity_failures[identity] = 0
            return
        if outcome in (Outcome.TRANSIENT, Outcome.FORBIDDEN, Outcome.RATE_LIMITED, Outcome.SIGN_IN_REQUIRED):
            self._identity_failures[identity] += 1
            count = self._identity_failures[identity]
            if count >= IDENTITY_FAILURE_REPORT:
                failing = self.summary.failing_identities
                failing[identity] = max(count, failing.get(identity, 0))
                if identity not in self._reported_identities:
                    self._reported_identities.add(identity)
                    log.warning("%s failed %d times in a row (%s); it stays in use", identity, count, outcome.value)

    def _count_ok(self, state: _ClassState, position: int, record: ClipRecord) -> None:
        state.ok[position] = record
        self._bump("ok")

    def _bump(self, key: str) -> None:
        self.counts[key] += 1
        via = {}
        if not self._one_route:
            # Several addresses: how many clips each has given so far.
            via["via"] = " ".join(f"{name}:{counts['ok']}" for name, counts in sorted(self.summary.by_identity.items()))
        self.overall.set_postfix(ok=self.counts["ok"], failed=self.counts["failed"],
                                 skipped=self.counts["skipped"], refresh=False, **via)
        if key == "ok":
            self.overall.update(1)
        else:
            self.overall.refresh()
        self._show_class()

    def _show_class(self) -> None:
        current = next((s for s in self.states if not s.finished), None)
        if current is None:
            return
        if self._bar_class != current.plan.class_index:
            self._bar_class = current.plan.class_index
            self.per_class.reset(total=current.plan.target)
            self.per_class.set_description(current.plan.folder[:30])
        self.per_class.n = min(len(current.ok), current.plan.target)
        self.per_class.set_postfix(ok=len(current.ok), failed=current.failed, skipped=current.skipped,
                                   refresh=False)
        self.per_class.refresh()

    def _finish_classes(self) -> None:
        changed = False
        for index, state in enumerate(self.states):
            if state.finished or not state.done():
                continue
            state.finished = True
            changed = True
            self._discard_extras(state)
            summary = self.summary.classes[index]
            summary.ok = min(len(state.ok), state.plan.target)
            summary.finished = True
            if summary.short:
                log.warning("class %s: only %d of %d clips (its candidates ran out)", state.plan.folder,
                            summary.ok, state.plan.target)
        if changed:
            write_manifests(self.output_dir, self.ledger, self.quarantined)
            self._show_class()

    def _discard_extras(self, state: _ClassState) -> None:
        """Keep the class's first ``target`` clips in rank order; delete any other clip of its folder.

        Extras come from an earlier run with a larger samples_per_class or another
        candidate list: the dataset must be what this plan says, whatever ran before.
        """
        kept_positions = sorted(state.ok)[: state.plan.target]
        kept = {state.plan.candidates[p].file for p in kept_positions}
        for position in sorted(state.ok):
            if position not in kept_positions:
                del state.ok[position]
        prefix = f"{state.plan.folder}/"
        for record in self.ledger.clips():
            if record.file.startswith(prefix) and record.file not in kept:
                inside(self.output_dir, record.file).unlink(missing_ok=True)
                self.ledger.forget_clip(_event(record, DISCARDED, "not among the class's first clips in rank order"))
                self.summary.discarded += 1
        for candidate in state.plan.candidates:
            if candidate.file not in kept:
                path = inside(self.output_dir, candidate.file)
                if path.exists():
                    path.unlink()
                    self.summary.discarded += 1


def _worst_source(streaks: Counter) -> tuple[str, int]:
    """The source whose every identity has failed the most times in a row: (name, the smallest streak)."""
    by_source: dict[str, list[int]] = {}
    for (name, _identity), count in streaks.items():
        by_source.setdefault(name, []).append(count)
    return max(((name, min(counts)) for name, counts in by_source.items()), key=lambda item: item[1],
               default=("", 0))


def _check_plans(plans: list[ClassPlan]) -> None:
    """Two classes sharing a folder would delete each other's clips as extras."""
    owners: dict[str, int] = {}
    for plan in plans:
        other = owners.setdefault(plan.folder, plan.class_index)
        if other != plan.class_index:
            raise UserError(
                f"classes {other} and {plan.class_index} would share the folder {plan.folder!r}; "
                f"every class needs its own folder"
            )


def _check_sources(sources: Sequence[Source], options: RunOptions) -> None:
    names = [source.name for source in sources]
    if not names:
        raise UserError("no source configured: download.sources needs at least one entry")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UserError(f"download.sources: the name {repeated[0]!r} is used twice; give each source its own name")
    if isinstance(options.retry_failed, str) and options.retry_failed not in names:
        raise UserError(
            f"--retry-failed {options.retry_failed}: no source of that name; the configured sources are "
            f"{', '.join(names)}"
        )


def run_download(
    plans: list[ClassPlan],
    sources: Sequence[Source],
    output_dir: Path,
    spec: OutputSpec,
    options: RunOptions,
    *,
    selection: Sequence[ClassIdentity] = (),
    executor: Executor | None = None,
) -> RunSummary:
    """Fill every class of ``plans`` in ``output_dir``; resumable, crash-safe, worker-count independent.

    ``sources`` are asked in order for each clip (see the module docstring); each must
    produce files in ``spec``. ``selection`` names every class of the current selection
    (``plans`` may be one slice of it): finished clips of any of them take its current
    class index, name and split. Manifests are rewritten from the ledger after each class
    and at exit, including after an interruption. ``executor`` is where the clips' work runs
    (None: ``options.workers`` threads here); this process alone writes ``output_dir``.
    """
    _check_sources(sources, options)
    _check_plans(plans)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        with _locked(output_dir):
            sweep_partial_files(output_dir)
            try:
                with Ledger(output_dir / LEDGER_NAME) as ledger, contextlib.ExitStack() as prepared:
                    slots = plan_slots(executor, options.workers, options.source_addresses, options.shared_output)
                    for source in sources:
                        prepared.enter_context(source.prepare(slots))
                    reconcile_with_plans(ledger, plans, output_dir, selection)
                    run = _Run(plans, sources, spec, output_dir, options, ledger, slots)
                    identities = [source.identity() for source in sources]
                    # Each source names the versions of the tools it fetches with (yt-dlp, ...).
                    tooling = {k: v for identity in identities for k, v in identity.get("tooling", {}).items()}
                    ledger.begin_run(options.command, tooling, identities)
                    allow_fetches()
                    finished = False
                    with run.graceful_ctrl_c():
                        try:
                            summary = run.run()
                            finished = True
                            return summary
                        finally:
                            write_manifests(output_dir, ledger, run.quarantined)
                            ledger.finish_run(run.summary.exit_code if finished else None,
                                              dict(run.summary.outcomes))
                            write_run_record(output_dir, ledger)
            finally:
                # Our fetches have all ended here; whatever partial file remains belongs to nobody.
                sweep_partial_files(output_dir)
    except (OSError, sqlite3.Error) as exc:
        # A full disk fails a clip write, a ledger row or a manifest, whichever comes first:
        # all the same stop. The ledger commits row by row, so what it holds stays intact.
        if is_disk_full(exc):
            raise disk_full_error(output_dir) from None
        if isinstance(exc, sqlite3.DatabaseError):
            # Opening checks only the first pages; a damaged page elsewhere shows up when read.
            raise UserError(ledger_damaged_message(output_dir / LEDGER_NAME, exc)) from None
        raise
