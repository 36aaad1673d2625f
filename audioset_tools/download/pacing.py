"""Request pacing shared by all download workers.

YouTube's limits are per address, not per thread, so the pause between requests, the
hourly cap and the backoff after a rate limit are one shared state: each request takes
a slot from :class:`Pacer` before it starts.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..config import DownloadConfig

# Defaults come from the config model, so a library caller and control.yaml never disagree.
_DEFAULTS = DownloadConfig()


@dataclass(frozen=True)
class PacingSettings:
    """See control.yaml's download section for each field's meaning."""

    sleep_between_requests: float = _DEFAULTS.sleep_between_requests
    sleep_jitter: float = _DEFAULTS.sleep_jitter
    max_requests_per_hour: int | None = _DEFAULTS.max_requests_per_hour
    max_consecutive_rate_limits: int = _DEFAULTS.max_consecutive_rate_limits
    backoff_base_seconds: float = _DEFAULTS.backoff_base_seconds
    backoff_max_seconds: float = _DEFAULTS.backoff_max_seconds


class Pacer:
    """Hands out request slots; pauses everyone after a rate limit; says when to give up.

    * Consecutive slots are at least ``sleep_between_requests`` + U(0, ``sleep_jitter``)
      apart, across all threads.
    * With ``max_requests_per_hour`` = N, a token bucket of one token refilled every
      3600 / N seconds spreads requests evenly (a burst would itself look like a bot).
    * :meth:`throttled` pauses every thread for ``backoff_base_seconds`` doubling with each
      consecutive throttle up to ``backoff_max_seconds``, or the server's Retry-After when
      longer; :meth:`succeeded` resets the count. After ``max_consecutive_rate_limits``
      consecutive throttles :attr:`exhausted` becomes true and :meth:`acquire` refuses.
    """

    def __init__(
        self,
        settings: PacingSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._next_slot = clock()
        self._next_token = clock()
        self._pause_until = 0.0
        self._consecutive = 0
        self._cancelled = False
        self.throttle_count = 0

    @property
    def exhausted(self) -> bool:
        with self._lock:
            return self._consecutive >= self.settings.max_consecutive_rate_limits

    @property
    def consecutive_throttles(self) -> int:
        with self._lock:
            return self._consecutive

    def paused_for(self) -> float:
        """Seconds left in the current pause (0 when not paused)."""
        with self._lock:
            return max(0.0, self._pause_until - self._clock())

    def cancel(self) -> None:
        """Make every waiting and future :meth:`acquire` return False (used when stopping)."""
        with self._wake:
            self._cancelled = True
            self._wake.notify_all()

    def try_acquire(self) -> float | None:
        """Take a slot now and return 0.0, or return the seconds to wait; None when stopping."""
        with self._lock:
            return self._try_acquire_locked()

    def _try_acquire_locked(self) -> float | None:
        if self._cancelled or self._consecutive >= self.settings.max_consecutive_rate_limits:
            return None
        now = self._clock()
        ready = max(self._next_slot, self._pause_until, self._next_token)
        if now < ready:
            return ready - now
        gap = self.settings.sleep_between_requests + self._rng.uniform(0.0, self.settings.sleep_jitter)
        self._next_slot = now + gap
        if self.settings.max_requests_per_hour is not None:
            self._next_token = max(now, self._next_token) + 3600.0 / self.settings.max_requests_per_hour
        return 0.0

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
                self._wake.wait(timeout=wait)

    def throttled(self, retry_after: float | None) -> float:
        """Record a rate limit / sign-in wall; pause everyone; return the pause in seconds."""
        with self._wake:
            self._consecutive += 1
            self.throttle_count += 1
            backoff = min(
                self.settings.backoff_base_seconds * 2 ** (self._consecutive - 1),
                self.settings.backoff_max_seconds,
            )
            pause = max(backoff, retry_after or 0.0)
            self._pause_until = max(self._pause_until, self._clock() + pause)
            self._wake.notify_all()
            return pause

    def succeeded(self) -> None:
        with self._lock:
            self._consecutive = 0
