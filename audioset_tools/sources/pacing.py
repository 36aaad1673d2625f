"""Request pacing for one identity: one network address that requests leave from.

YouTube's limits are per address, not per thread, so the pause between requests, the
budget, what was learned about the server's limit and the backoff after a rate limit are
one shared state per address: each request takes a slot from its identity's
:class:`Pacer` before it starts. Today a run has one identity; a run spread over several
addresses holds one pacer per address, and a throttle then pauses that address only.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ..config import DownloadConfig

# Defaults come from the config model, so a library caller and control.yaml never disagree.
_DEFAULTS = DownloadConfig()
# Enough request times to estimate any limit a server states per hour at our rates.
_HISTORY = 100_000
# Retry-After comes in whole seconds (HTTP delta-seconds), so a wait of "1" may mean 0.1 s.
_RETRY_AFTER_RESOLUTION = 1.0
# The least a throttle just over the pace slows it down, even with no safety margin configured.
_MIN_STEP = 0.02

Wait = Callable[[threading.Condition, float], object]


def _wait_on(condition: threading.Condition, timeout: float) -> None:
    condition.wait(timeout=timeout)


@dataclass(frozen=True)
class PacingSettings:
    """See control.yaml's download section for each field's meaning."""

    sleep_between_requests: float = _DEFAULTS.sleep_between_requests
    sleep_jitter: float = _DEFAULTS.sleep_jitter
    max_requests_per_hour: int | None = _DEFAULTS.max_requests_per_hour
    max_consecutive_rate_limits: int = _DEFAULTS.max_consecutive_rate_limits
    backoff_base_seconds: float = _DEFAULTS.backoff_base_seconds
    backoff_max_seconds: float = _DEFAULTS.backoff_max_seconds
    rate_safety_margin: float = _DEFAULTS.rate_safety_margin
    learned_rate_fraction: float = _DEFAULTS.learned_rate_fraction

    @classmethod
    def from_config(cls, download: DownloadConfig) -> PacingSettings:
        """The pacing part of a validated download section (every field has the same name there)."""
        return cls(**{f.name: getattr(download, f.name) for f in dataclasses.fields(cls)})

    @property
    def budget_interval(self) -> float:
        """Seconds between requests that the hourly budget, less its safety margin, allows (0 = no budget)."""
        if self.max_requests_per_hour is None:
            return 0.0
        return 3600.0 / (self.max_requests_per_hour * (1.0 - self.rate_safety_margin))


@dataclass
class _Episode:
    """One rate-limit episode: the first throttled answer and those of requests already in flight."""

    started: float
    # Requests granted in the stretch that ended with this episode, and the first one's time.
    granted: int
    first_grant: float | None
    retry_after: float | None
    # The pace in force when the throttle came (requests per second; None = unpaced).
    pace: float | None
    throttles: int = 1


class Pacer:
    """Hands out request slots for one identity; learns its limit; pauses it after a throttle; says when to give up.

    Spacing: consecutive slots are at least the largest of
      * ``sleep_between_requests`` + U(0, ``sleep_jitter``);
      * with a budget of ``max_requests_per_hour`` = N: 3600 / (N * (1 - ``rate_safety_margin``)),
        so no window of an hour (or of any length) ever holds more than N requests, and a
        request sent a little late never crowds the next;
      * once a throttle taught the limit: 1 / (learned rate * ``learned_rate_fraction``).
    Slots are spread evenly, never in bursts, even after an idle time.

    Learning: a throttled answer ends a *stretch* of requests (the run's start or the end
    of the last pause up to now). Its requests, less the throttled ones, were accepted;
    with Retry-After the server's window reaches from the stretch's first request to the
    end of the pause it asks for, so limit / window is the allowed rate. Without
    Retry-After the window is only known to be longer than the stretch: twice the stretch
    is assumed. The learned rate never rises, and each further episode lowers it to at most
    the pace that was just throttled. When a paced stretch is throttled with a Retry-After
    of at most two slots (or one second, Retry-After's resolution), the pace was only just
    too fast (a request left late): it loses one more ``rate_safety_margin`` instead.

    Pauses: a throttle pauses the identity for the server's Retry-After when it sends one
    (the wait it asks for, no more), else for ``backoff_base_seconds`` doubling with each
    consecutive episode up to ``backoff_max_seconds``. Throttled answers that arrive during
    that pause come from requests sent before it, so they add to :attr:`throttle_count` and
    refine the estimate but do not lengthen the streak. :meth:`succeeded` ends the streak;
    after ``max_consecutive_rate_limits`` consecutive episodes (a real wall)
    :attr:`exhausted` becomes true and :meth:`acquire` refuses.

    ``clock`` and ``wait`` are injectable so that tests run in virtual time.
    """

    def __init__(
        self,
        settings: PacingSettings,
        *,
        identity: str = "default",
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        wait: Wait = _wait_on,
    ) -> None:
        self.settings = settings
        self.identity = identity
        self._clock = clock
        self._rng = rng or random.Random()
        self._wait = wait
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._next_slot = clock()
        self._pause_until = 0.0
        self._consecutive = 0
        self._cancelled = False
        self._grants: deque[float] = deque(maxlen=_HISTORY)
        self._stretch_from: float | None = None
        self._pace: float | None = None  # requests per second of the last slot's spacing
        self._episode: _Episode | None = None
        self._learned_rate: float | None = None
        self._learned_window: float | None = None
        self.throttle_count = 0

    # -- state ---------------------------------------------------------------------------

    @property
    def exhausted(self) -> bool:
        with self._lock:
            return self._consecutive >= self.settings.max_consecutive_rate_limits

    @property
    def consecutive_throttles(self) -> int:
        with self._lock:
            return self._consecutive

    @property
    def learned_rate_per_hour(self) -> float | None:
        """The allowed rate this identity learned from throttled answers (None before the first)."""
        with self._lock:
            return None if self._learned_rate is None else self._learned_rate * 3600.0

    @property
    def learned_window_seconds(self) -> float | None:
        """The server's window estimated from the last episode with a Retry-After (None if never)."""
        with self._lock:
            return self._learned_window

    def paced_interval(self) -> float:
        """Seconds between slots now, without jitter (0 = unpaced)."""
        with self._lock:
            return self._interval(jitter=0.0)

    def recent_requests(self) -> tuple[float, ...]:
        """Clock times of the slots handed out (the most recent ones), oldest first."""
        with self._lock:
            return tuple(self._grants)

    def paused_for(self) -> float:
        """Seconds left in the current pause (0 when not paused)."""
        with self._lock:
            return max(0.0, self._pause_until - self._clock())

    # -- slots ---------------------------------------------------------------------------

    def cancel(self) -> None:
        """Make every waiting and future :meth:`acquire` return False (used when stopping)."""
        with self._wake:
            self._cancelled = True
            self._wake.notify_all()

    def try_acquire(self) -> float | None:
        """Take a slot now and return 0.0, or return the seconds to wait; None when stopping."""
        with self._lock:
            return self._try_acquire_locked()

    def acquire(self) -> bool:
        """Block until this request may start; False when the run is stopping instead."""
        with self._wake:
            while True:
                wait = self._try_acquire_locked()
                if wait is None:
                    return False
                if wait == 0.0:
                    return True
                # A throttle or cancel elsewhere notifies, so waking early re-reads the state.
                self._wait(self._wake, wait)

    def _try_acquire_locked(self) -> float | None:
        if self._cancelled or self._consecutive >= self.settings.max_consecutive_rate_limits:
            return None
        now = self._clock()
        ready = max(self._next_slot, self._pause_until)
        if now < ready:
            return ready - now
        gap = self._interval(jitter=self._rng.uniform(0.0, self.settings.sleep_jitter))
        self._next_slot = now + gap
        self._pace = 1.0 / gap if gap > 0 else None
        self._grants.append(now)
        if self._stretch_from is None:
            self._stretch_from = now
        return 0.0

    def _interval(self, jitter: float) -> float:
        gap = max(self.settings.sleep_between_requests + jitter, self.settings.budget_interval)
        if self._learned_rate is not None:
            gap = max(gap, 1.0 / (self._learned_rate * self.settings.learned_rate_fraction))
        return gap

    # -- answers -------------------------------------------------------------------------

    def throttled(self, retry_after: float | None) -> float:
        """Record a rate limit / sign-in wall; pause this identity; return the pause in seconds."""
        with self._wake:
            now = self._clock()
            self.throttle_count += 1
            episode = self._episode
            if episode is not None and now < self._pause_until:
                # Sent before the pause began: same episode, one request fewer was accepted.
                episode.throttles += 1
                if retry_after is not None:
                    self._pause_until = max(self._pause_until, now + retry_after)
            else:
                self._consecutive += 1
                episode = self._start_episode(now, retry_after)
                if retry_after is not None:
                    pause = retry_after
                else:
                    pause = min(
                        self.settings.backoff_base_seconds * 2 ** (self._consecutive - 1),
                        self.settings.backoff_max_seconds,
                    )
                self._pause_until = max(self._pause_until, now + pause)
            self._learn(episode)
            # The next stretch starts when the pause ends; the slots resume evenly paced.
            self._stretch_from = None
            self._next_slot = max(self._next_slot, self._pause_until)
            self._wake.notify_all()
            return self._pause_until - now

    def succeeded(self) -> None:
        with self._lock:
            self._consecutive = 0

    def _start_episode(self, now: float, retry_after: float | None) -> _Episode:
        stretch = [t for t in self._grants if self._stretch_from is not None and t >= self._stretch_from]
        self._episode = _Episode(
            started=now,
            granted=len(stretch),
            first_grant=stretch[0] if stretch else None,
            retry_after=retry_after,
            pace=self._pace if self._stretch_from is not None else None,
        )
        return self._episode

    def _learn(self, episode: _Episode) -> None:
        fraction = self.settings.learned_rate_fraction
        if episode.pace is not None and episode.retry_after is not None and (
            episode.retry_after <= max(2.0 / episode.pace, _RETRY_AFTER_RESOLUTION)
        ):
            # A paced stretch whose window frees a slot within two slots (Retry-After's
            # whole seconds allowing): the pace is only just too fast, e.g. because requests
            # leave a little late. One more safety margin off the pace, not a new estimate.
            rate = episode.pace * (1.0 - max(self.settings.rate_safety_margin, _MIN_STEP)) / fraction
        else:
            rate = self._estimate(episode)
            if rate is None:
                return
        if self._learned_rate is None or rate < self._learned_rate:
            self._learned_rate = rate

    def _estimate(self, episode: _Episode) -> float | None:
        """The allowed rate (requests per second) that the stretch ending in ``episode`` implies."""
        if episode.first_grant is None:
            return None
        accepted = max(1, episode.granted - episode.throttles)
        if episode.retry_after is not None:
            window = episode.started + episode.retry_after - episode.first_grant
        else:
            window = 2.0 * (episode.started - episode.first_grant)
        if window <= 0:
            return None
        if episode.retry_after is not None:
            self._learned_window = window
        rate = accepted / window
        # The pace just throttled is too fast, whatever the estimate says.
        return rate if episode.pace is None else min(rate, episode.pace)
