"""YouTube behind the :class:`~..base.Source` seam: pacing, cookies and proxies stay in here.

Each worker gets its own :class:`FetchSettings`: a private 0600 copy of the user's
cookie file (yt-dlp rewrites the file it is given; the original is never touched) and,
when ``download.proxies`` lists several, its own proxy (round robin). One
:class:`~..pacing.Pacer` spaces every request and pauses them all after a rate limit or a
sign-in wall; when throttling persists the source says so through :attr:`stop_reason`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..base import ClipJob, ClipResult, Source
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
        self.pacer = Pacer(pacing)
        self.fetch = fetch
        self._per_worker: list[FetchSettings] = [settings]

    def preflight(self) -> str:
        if self.fetch is not fetch_clip:
            return "not checked (a stand-in fetch)"
        return require_source(self.settings.url_template, self.proxies).detail

    @contextlib.contextmanager
    def prepare(self, workers: int) -> Iterator[list[FetchSettings]]:
        """One :class:`FetchSettings` per worker: its own private cookie copy and its own proxy."""
        with contextlib.ExitStack() as stack:
            if self.cookies_file is not None:
                remove_stale_cookie_copies()
            per_worker = []
            for index in range(workers):
                update: dict[str, Any] = {}
                if self.cookies_file is not None:
                    update["cookies_file"] = stack.enter_context(private_cookie_copy(self.cookies_file))
                if self.proxies:
                    update["proxy"] = self.proxies[index % len(self.proxies)]
                per_worker.append(dataclasses.replace(self.settings, **update))
            self._per_worker = per_worker
            try:
                yield per_worker
            finally:
                self._per_worker = [self.settings]

    def produce(self, job: ClipJob, worker: int) -> ClipResult | None:
        settings = self._per_worker[worker % len(self._per_worker)]
        if not self.pacer.acquire():
            return None
        result = self.fetch(job, settings)
        if settings.proxy:
            result = dataclasses.replace(result, identity=f"proxy {redact_proxy(settings.proxy)}")
        return result

    def observe(self, result: ClipResult) -> None:
        if result.ok:
            self.pacer.succeeded()
        elif result.outcome in THROTTLING:
            pause = self.pacer.throttled(result.retry_after)
            log.warning("%s from %s; every %s request pauses %.0f s", result.outcome.value, self.name,
                        self.name, pause)

    @property
    def stop_reason(self) -> str | None:
        if self.pacer.exhausted:
            return f"{self.pacer.consecutive_throttles} rate limits / sign-in walls in a row from {self.name}"
        return None

    def cancel(self) -> None:
        self.pacer.cancel()

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "url_template": self.settings.url_template,
                "proxies": [redact_proxy(p) for p in self.proxies], "tooling": tooling_versions()}
