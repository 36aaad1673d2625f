"""A media server that paces each client address and binds media URLs to the address that resolved them.

:class:`AddressServer` is :class:`rate_limit_server.RateLimitedMediaServer` (same media,
Range support, behaviours, and the per-address sliding-window budget on *extraction
requests*: ``limit`` per ``window`` seconds, ``429`` with ``Retry-After`` beyond it) plus
what YouTube does with the media URL a resolve hands out: it is valid only from the
address that resolved it. A media read (any request that is not an extraction request:
ffmpeg's Range GETs) for a clip is refused with ``403 Forbidden`` unless it comes from the
address whose last accepted extraction request resolved that clip, or when no
extraction request resolved it yet.

It listens on 127.0.0.1. A client that binds another loopback address (127.0.0.2,
127.0.0.3, ...: the whole 127.0.0.0/8 is local on Linux) reaches it and is seen as that
address, so one machine can play several identities.

Counters per client address (:meth:`AddressServer.counts`): accepted extraction requests
(their times), throttled ones, media reads served and media reads refused;
:meth:`AddressServer.addresses` lists every address seen.

Usage::

    with AddressServer(limit=10, window=5.0) as server:
        server.add("abcdefghijk", source_path)
        template = server.url_template("webm")
        ...
        server.counts("127.0.0.2").media_reads
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field

from media_server import _Handler, _Server
from rate_limit_server import RateLimitedMediaServer


@dataclass
class AddressCounts:
    # Monotonic times of the accepted extraction requests.
    accepted: list[float] = field(default_factory=list)
    throttled: int = 0
    media_reads: int = 0
    media_refused: int = 0

    @property
    def extractions(self) -> int:
        return len(self.accepted)


class AddressServer(RateLimitedMediaServer):
    """See the module docstring. ``bind_media=False`` serves media to any address."""

    def __init__(self, limit: int, window: float, *, bind_media: bool = True, **kwargs: object) -> None:
        super().__init__(limit, window, **kwargs)
        self.bind_media = bind_media
        # ytid -> the address whose accepted extraction request resolved it last.
        self._resolved_by: dict[str, str] = {}
        self._media: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self._binding_lock = threading.Lock()

    def start(self) -> AddressServer:
        handler = type("Handler", (_AddressHandler,), {"media_server": self})
        self._httpd = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="address-server", daemon=True
        )
        self._thread.start()
        return self

    def counts(self, address: str) -> AddressCounts:
        # Read without touching the defaultdicts: asking about an address must not make it "seen".
        with self._limit_lock:
            limits = self._addresses.get(address)
            accepted, throttled = (list(limits.accepted), limits.throttled) if limits else ([], 0)
        with self._binding_lock:
            reads, refused = self._media.get(address, (0, 0))
        return AddressCounts(accepted, throttled, reads, refused)

    def addresses(self) -> list[str]:
        """Every client address that made a request, sorted."""
        with self._limit_lock:
            seen = set(self._addresses)
        with self._binding_lock:
            seen |= set(self._media)
        return sorted(seen)

    def resolved_by(self, ytid: str) -> str | None:
        with self._binding_lock:
            return self._resolved_by.get(ytid)

    # -- used by the handler ------------------------------------------------------------
    def _bind(self, ytid: str, address: str) -> None:
        with self._binding_lock:
            self._resolved_by[ytid] = address

    def _admit_media(self, ytid: str, address: str) -> bool:
        with self._binding_lock:
            allowed = not self.bind_media or self._resolved_by.get(ytid) == address
            self._media[address][0 if allowed else 1] += 1
            return allowed


class _AddressHandler(_Handler):
    media_server: AddressServer

    def _respond(self, server, entry, ytid, record, head) -> None:
        address = self.client_address[0]
        # Same definition as the rate-limited server: yt-dlp's resolving GET has no Range.
        if self.command == "GET" and self.headers.get("Range") is None:
            wait = server._admit(address)
            if wait is not None:
                record.status = 429
                self._send_status(429, wait if server.send_retry_after else None, head)
                return
            server._bind(ytid, address)
        elif not server._admit_media(ytid, address):
            record.status = 403
            self._send_status(403, None, head)
            return
        _Handler._respond(self, server, entry, ytid, record, head)
