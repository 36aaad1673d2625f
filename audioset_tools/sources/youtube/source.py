"""YouTube behind the :class:`~..base.Source` seam: pacing, cookies, proxies and addresses stay in here.

Each slot gets its own :class:`FetchSettings`: a private 0600 copy of the user's cookie
file (yt-dlp rewrites the file it is given; the original is never touched), its own proxy
when ``download.proxies`` lists several (round robin), and the local address the slot
sends from (yt-dlp and ffmpeg bound to it together). Requests are paced per **identity**,
the address YouTube sees: a proxy when there are proxies, else the slot's identity (one of
``download.source_addresses``, a Dask worker's host, or the default route). Each identity
has its own :class:`~..pacing.Pacer` (budget, backoff, learned rate): a rate limit or a
sign-in wall pauses that identity only, and :attr:`stop_reason` speaks only when every
identity is throttled out.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..base import DEFAULT_IDENTITY, ClipJob, ClipResult, Slot, Source
from ..outcomes import THROTTLING
from ..pacing import Pacer, PacingSettings
from .clip import fetch_clip
from .cookies import (
    private_cookie_copy,
    remove_stale_cookie_copies,
    validate_cookies_file,
)
from .reachability import require_source
from .settings import FetchSettings
from .ytdlp_tooling import tooling_versions

log = logging.getLogger(__name__)

Fetch = Callable[[ClipJob, FetchSettings], ClipResult]


def redact_proxy(proxy: str) -> str:
    """A proxy URL without its user:password part, for messages."""
    parts = urlsplit(proxy)
    if parts.username is None and parts.password is None:
        return proxy
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class YoutubeSource(Source):
    kind = "youtube"
    trusts_youtube_unavailable_lists = True

    def __init__(
        self,
        settings: FetchSettings,
        *,
        name: str = "youtube",
        cookies_file: Path | None = None,
        proxies: Sequence[str] = (),
        pacing: PacingSettings = PacingSettings(),
        fetch: Fetch = fetch_clip,
    ) -> None:
        super().__init__(name)
        if cookies_file is not None:
            validate_cookies_file(cookies_file)
        self.settings = settings
        self.cookies_file = cookies_file
        self.proxies = tuple(proxies)
        self.pacing = pacing
        self.fetch = fetch
        # Per slot index: its settings and its identity; per identity: its pacer.
        self._per_slot: dict[int, tuple[FetchSettings, str]] = {}
        self.pacers: dict[str, Pacer] = {}

    @property
    def pacer(self) -> Pacer:
        """The one pacer of a run with a single identity (or the first identity's)."""
        if not self.pacers:
            self.pacers[DEFAULT_IDENTITY] = Pacer(self.pacing, identity=DEFAULT_IDENTITY)
        return next(iter(self.pacers.values()))

    def preflight(self) -> str:
        if self.fetch is not fetch_clip:
            return "not checked (a stand-in fetch)"
        return require_source(self.settings.url_template, self.proxies).detail

    @contextlib.contextmanager
    def prepare(self, slots: Sequence[Slot]) -> Iterator[list[FetchSettings]]:
        """Per slot: its own private cookie copy, proxy and bound address, and its identity's pacer."""
        with contextlib.ExitStack() as stack:
            if self.cookies_file is not None:
                remove_stale_cookie_copies()
            per_slot: dict[int, tuple[FetchSettings, str]] = {}
            for slot in slots:
                update: dict[str, Any] = {"source_address": slot.bind}
                if self.cookies_file is not None:
                    update["cookies_file"] = stack.enter_context(private_cookie_copy(self.cookies_file))
                identity = slot.identity
                if self.proxies:
                    update["proxy"] = self.proxies[slot.index % len(self.proxies)]
                    identity = f"proxy {redact_proxy(update['proxy'])}"
                per_slot[slot.index] = (dataclasses.replace(self.settings, **update), identity)
            self._per_slot = per_slot
            self.pacers = {identity: Pacer(self.pacing, identity=identity)
                           for identity in sorted({identity for _, identity in per_slot.values()})}
            try:
                yield [settings for settings, _ in per_slot.values()]
            finally:
                self._per_slot = {}

    def produce(self, job: ClipJob, slot: Slot) -> ClipResult | None:
        settings, identity = self._per_slot.get(slot.index, (self.settings, DEFAULT_IDENTITY))
        pacer = self.pacers.get(identity) or self.pacer
        if not pacer.acquire():
            return None
        result = slot.run(self.fetch, job, settings)
        if result is None:
            return None
        return dataclasses.replace(result, identity=identity)

    def observe(self, result: ClipResult) -> None:
        pacer = self.pacers.get(result.identity or "") or self.pacer
        if result.ok:
            pacer.succeeded()
        elif result.outcome in THROTTLING:
            pause = pacer.throttled(result.retry_after)
            log.warning("%s from %s via %s; that address pauses %.0f s", result.outcome.value, self.name,
                        result.identity, pause)

    @property
    def stop_reason(self) -> str | None:
        pacers = list(self.pacers.values()) or [self.pacer]
        if all(pacer.exhausted for pacer in pacers):
            worst = max(pacer.consecutive_throttles for pacer in pacers)
            where = "every address" if len(pacers) > 1 else self.name
            return f"{worst} rate limits / sign-in walls in a row from {where}"
        return None

    def cancel(self) -> None:
        for pacer in list(self.pacers.values()) or [self.pacer]:
            pacer.cancel()

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "url_template": self.settings.url_template,
                "proxies": [redact_proxy(p) for p in self.proxies], "tooling": tooling_versions()}
