"""A media server that rate-limits extraction requests per client address, as YouTube does.

:class:`RateLimitedMediaServer` is :class:`media_server.MediaServer` (same media, Range
support, behaviours and counters) plus a sliding-window limit: each client address may
make ``limit`` *extraction requests* in any ``window`` seconds; beyond that it answers
``429 Too Many Requests`` with a ``Retry-After`` of the seconds until the oldest request in
the window expires (whole seconds rounded up, as HTTP's delta-seconds are, unless
``retry_after_decimals`` asks for more precision; ``None`` = no Retry-After at all).

An extraction request is yt-dlp's resolving GET of a direct media URL: a GET without a
``Range`` header (FIELD_NOTES: one ``extract_info`` makes exactly one). ffmpeg's reads
always carry ``Range`` and are neither counted nor throttled. Only accepted requests
count towards the window (a refused one costs the client nothing but the wait).

:class:`SlidingWindowLimit` is the limiter itself, usable without HTTP (pure, clock passed in).
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

from media_server import MediaServer, _Handler, _Server


@dataclass
class SlidingWindowLimit:
    """At most ``limit`` accepted requests per ``window`` seconds (the window is ``(now - window, now]``)."""

    limit: int
    window: float
    accepted: deque[float] = field(default_factory=deque)

    def check(self, now: float) -> float | None:
        """Accept a request at ``now`` (None) or return the seconds until one would be accepted."""
        while self.accepted and self.accepted[0] <= now - self.window:
            self.accepted.popleft()
        if len(self.accepted) >= self.limit:
            return self.accepted[0] + self.window - now
        self.accepted.append(now)
        return None


@dataclass
class AddressStats:
    accepted: list[float] = field(default_factory=list)
    throttled: int = 0


class RateLimitedMediaServer(MediaServer):
    """See the module docstring."""

    def __init__(self, limit: int, window: float, *, send_retry_after: bool = True,
                 retry_after_decimals: int = 0, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.limit = limit
        self.window = window
        self.send_retry_after = send_retry_after
        self.retry_after_decimals = retry_after_decimals
        self._limits: dict[str, SlidingWindowLimit] = {}
        self._addresses: dict[str, AddressStats] = defaultdict(AddressStats)
        self._limit_lock = threading.Lock()

    def start(self) -> RateLimitedMediaServer:
        handler = type("Handler", (_RateLimitedHandler,), {"media_server": self})
        self._httpd = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="rate-limited-server", daemon=True
        )
        self._thread.start()
        return self

    def address_stats(self, address: str = "127.0.0.1") -> AddressStats:
        with self._limit_lock:
            stats = self._addresses[address]
            return AddressStats(list(stats.accepted), stats.throttled)

    def _admit(self, address: str) -> float | None:
        """None when an extraction request from ``address`` is accepted, else its Retry-After."""
        now = time.monotonic()
        with self._limit_lock:
            limiter = self._limits.setdefault(address, SlidingWindowLimit(self.limit, self.window))
            wait = limiter.check(now)
            stats = self._addresses[address]
            if wait is None:
                stats.accepted.append(now)
                return None
            stats.throttled += 1
        scale = 10 ** self.retry_after_decimals
        return math.ceil(wait * scale) / scale


class _RateLimitedHandler(_Handler):
    media_server: RateLimitedMediaServer

    def _respond(self, server, entry, ytid, record, head) -> None:
        if self.command == "GET" and self.headers.get("Range") is None:
            wait = server._admit(self.client_address[0])
            if wait is not None:
                record.status = 429
                self._send_status(429, wait if server.send_retry_after else None, head)
                return
        super()._respond(server, entry, ytid, record, head)
