"""Resolve a video page to a direct audio URL with yt-dlp's Python API (never its CLI).

A resolve is bounded, whatever the server does:

- in bytes: every response yt-dlp reads is cut off after :data:`MAX_RESPONSE_BYTES`
  (a page that never ends, or a compressed one that expands without limit, costs at most that);
- in time: each resolve runs in a resolver thread that the calling worker waits on for at
  most ``settings.resolve_timeout`` seconds. A server trickling its headers one byte per
  second never trips a socket timeout; the worker then abandons that thread (a daemon,
  which stops at its next read past the deadline) and reports the clip as transient;
- in kind: any exception from resolving one clip becomes a :class:`FetchFailure` (a
  recorded outcome); only programming errors (:data:`PROGRAMMING_ERRORS`) escape.

An aborting run (a second Ctrl-C, see :mod:`.abort`) stops waiting at once.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import queue
import threading
import time
from typing import TYPE_CHECKING, Any

import yt_dlp
from yt_dlp.networking.exceptions import RequestError, TransportError

from ..abort import aborting
from ..outcomes import Outcome
from .classify import (
    Failure,
    FetchFailure,
    classify_ytdlp_error,
    clean_message,
    exception_chain,
    tooling_warning,
)
from .source_address import bind_failure, ytdlp_bind_failure

if TYPE_CHECKING:
    from .settings import FetchSettings

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Resolved:
    url: str
    # Headers yt-dlp would send for this format (User-Agent, Referer, ...); ffmpeg sends them too.
    http_headers: tuple[tuple[str, str], ...]
    # Seconds, when the site says (YouTube does, in whole seconds; direct links do not).
    duration: float | None
    ext: str | None
    # Unix time from which the site serves the media URL (yt-dlp's available_at), if it says.
    available_at: float | None = None


class _Logger:
    """yt-dlp's output goes to our log at debug level: outcomes are reported by the caller.

    It keeps the warnings of the current resolve: a failed JS challenge is only a warning,
    and it explains the error that follows (see :func:`.classify.classify_ytdlp_error`).
    """

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def debug(self, message: str) -> None:
        log.debug("yt-dlp: %s", message)

    def info(self, message: str) -> None:
        log.debug("yt-dlp: %s", message)

    def warning(self, message: str) -> None:
        log.debug("yt-dlp warning: %s", message)
        if len(self.warnings) < 50:
            self.warnings.append(message)

    def error(self, message: str) -> None:
        log.debug("yt-dlp error: %s", message)


def ytdlp_params(settings: FetchSettings) -> dict[str, Any]:
    params: dict[str, Any] = {
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": _Logger(),
        "socket_timeout": settings.socket_timeout,
        "format": "bestaudio/best",
        "noplaylist": True,
        "ffmpeg_location": settings.ffmpeg,
        "js_runtimes": settings.js_runtime.ytdlp_option(),
    }
    if settings.cookies_file is not None:
        params["cookiefile"] = str(settings.cookies_file)
    if settings.proxy is not None:
        params["proxy"] = settings.proxy
    if settings.source_address is not None:
        # ffmpeg binds the same address (segment.network_input_options).
        params["source_address"] = settings.source_address
    if settings.extractor_args:
        params["extractor_args"] = settings.extractor_args_mapping()
    return params


# One YoutubeDL per thread and settings: building one costs ~0.1 s, several times the work
# of resolving a direct link. Instances are not shared between threads.
_local = threading.local()


def _downloader(settings: FetchSettings) -> _BoundedYoutubeDL:
    cached = getattr(_local, "entry", None)
    if cached is not None and cached[0] == settings:
        return cached[1]
    if cached is not None:
        _close(cached[1])
    downloader = _BoundedYoutubeDL(ytdlp_params(settings))
    _local.entry = (settings, downloader)
    return downloader


def close_thread_downloader() -> None:
    """Close this thread's cached YoutubeDL (lets it write its cookie copy, frees sockets)."""
    cached = getattr(_local, "entry", None)
    if cached is not None:
        _local.entry = None
        _close(cached[1])


def _close(downloader: yt_dlp.YoutubeDL) -> None:
    try:
        downloader.close()
    except OSError as exc:
        # Closing writes the cookie jar back to its private copy, which the caller may
        # already have deleted at the end of its run: nothing of the user's is lost.
        log.debug("yt-dlp could not write its cookie copy back: %s", exc)


# A YouTube watch page is ~1.5 MB and its player script ~3 MB; nothing yt-dlp reads to
# resolve one clip comes near this.
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
# Bugs in our code (or yt-dlp's) must surface, not be recorded as a clip's fate.
PROGRAMMING_ERRORS = (TypeError, AttributeError, NameError, AssertionError, ImportError, SyntaxError)
# How often a waiting worker looks whether the run is aborting.
_ABANDON_POLL_SECONDS = 0.2
# How often an idle resolver looks whether its worker still exists.
_OWNER_POLL_SECONDS = 1.0


class ResolveLimitExceeded(Exception):
    """A response grew past MAX_RESPONSE_BYTES, or a read came after the resolve's deadline."""

    def __init__(self, message: str, too_large: bool) -> None:
        super().__init__(message)
        self.too_large = too_large


class _Budget:
    """Bytes and time one resolve may spend; shared by every response it reads."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise ResolveLimitExceeded("the resolve ran past its deadline", too_large=False)


class _BoundedReader:
    """Wraps a response body: reads at most MAX_RESPONSE_BYTES (+1 to notice more) and none after the deadline."""

    def __init__(self, raw: Any, budget: _Budget) -> None:
        self._raw = raw
        self._budget = budget
        self._count = 0

    def read(self, amt: int | None = None, **kwargs: Any) -> bytes:
        if amt is not None and amt >= 0:
            return self._take(self._raw.read(min(amt, self._room()), **kwargs))
        parts = []
        while True:
            part = self._take(self._raw.read(min(1 << 20, self._room()), **kwargs))
            if not part:
                return b"".join(parts)
            parts.append(part)

    def _room(self) -> int:
        self._budget.check_time()
        return max(1, MAX_RESPONSE_BYTES + 1 - self._count)

    def _take(self, data: bytes) -> bytes:
        self._count += len(data)
        if self._count > MAX_RESPONSE_BYTES:
            self._raw.close()
            raise ResolveLimitExceeded(
                f"the server sent more than {MAX_RESPONSE_BYTES // (1024 * 1024)} MiB while resolving", too_large=True
            )
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


class _BoundedYoutubeDL(yt_dlp.YoutubeDL):
    """yt-dlp whose every HTTP response body is read through a :class:`_BoundedReader`."""

    budget = _Budget(float("inf"))

    def urlopen(self, req: Any) -> Any:
        self.budget.check_time()
        response = super().urlopen(req)
        response.fp = _BoundedReader(response.fp, self.budget)
        return response


class _Resolver:
    """A daemon thread that resolves for one worker; abandoned (and replaced) when a resolve overruns."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        # The worker this resolver serves: when it is gone (its pool shut down), so is the resolver.
        self._owner = threading.current_thread()
        self.thread = threading.Thread(target=self._serve, name="resolve", daemon=True)
        self.thread.start()

    def submit(self, url: str, settings: FetchSettings) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._jobs.put((future, url, settings))
        return future

    def stop(self) -> None:
        """Let the thread end after its current job (and close its YoutubeDL)."""
        self._jobs.put(None)

    def _serve(self) -> None:
        try:
            while True:
                try:
                    job = self._jobs.get(timeout=_OWNER_POLL_SECONDS)
                except queue.Empty:
                    if self._owner.is_alive():
                        continue
                    return
                if job is None:
                    return
                future, url, settings = job
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(_resolve_here(url, settings))
                except BaseException as exc:  # handed to the waiting worker, which decides
                    future.set_exception(exc)
        finally:
            close_thread_downloader()


_worker_local = threading.local()


def resolve(url: str, settings: FetchSettings) -> Resolved:
    """Extract the best audio-only format of ``url``; raise :class:`FetchFailure` on failure.

    Bounded in time (``settings.resolve_timeout``) and bytes; see the module docstring.
    """
    resolver = getattr(_worker_local, "resolver", None)
    if resolver is None or not resolver.thread.is_alive():
        resolver = _worker_local.resolver = _Resolver()
    future = resolver.submit(url, settings)
    deadline = time.monotonic() + settings.resolve_timeout
    while True:
        try:
            return future.result(timeout=min(_ABANDON_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        except concurrent.futures.TimeoutError:
            if aborting() or time.monotonic() >= deadline:
                break
    # Stuck (e.g. a server trickling its headers): leave the thread behind, use a fresh one next time.
    _worker_local.resolver = None
    resolver.stop()
    reason = "the run is stopping" if aborting() else f"no answer within {settings.resolve_timeout:g} s"
    raise FetchFailure(Failure(Outcome.TRANSIENT, f"resolving gave up: {reason}"))


def _resolve_here(url: str, settings: FetchSettings) -> Resolved:
    downloader = _downloader(settings)
    downloader.budget = _Budget(time.monotonic() + settings.resolve_timeout)
    logger = downloader.params.get("logger")
    warnings = logger.warnings if isinstance(logger, _Logger) else []
    # Only this resolve's warnings (yt-dlp hands a logger every warning, "only once" ones included).
    warnings.clear()
    try:
        info = downloader.extract_info(url, download=False)
    except PROGRAMMING_ERRORS:
        raise
    except Exception as exc:
        unbound = ytdlp_bind_failure(exc) if settings.source_address is not None else None
        if unbound is not None:
            raise FetchFailure(bind_failure(settings.source_address, unbound)) from exc
        raise FetchFailure(_classify_resolve_error(exc, tuple(warnings))) from exc
    if info is None or not info.get("url"):
        tooling = tooling_warning(warnings)
        if tooling is not None:
            raise FetchFailure(Failure(Outcome.TOOLING_ERROR, clean_message(f"no usable format; yt-dlp warned: {tooling}")))
        raise FetchFailure(Failure(Outcome.DECODE_ERROR, "yt-dlp found no downloadable audio format"))
    headers = tuple(
        (str(key), str(value))
        for key, value in (info.get("http_headers") or {}).items()
        # A header that smuggles a line break would inject more headers into ffmpeg's request.
        if not any(ch in f"{key}{value}" for ch in "\r\n")
    )
    duration = info.get("duration")
    return Resolved(
        url=str(info["url"]),
        http_headers=headers,
        duration=float(duration) if isinstance(duration, (int, float)) and duration > 0 else None,
        ext=info.get("ext"),
        available_at=_available_at(info),
    )


def _available_at(info: dict[str, Any]) -> float | None:
    """The latest ``available_at`` of the chosen format(s), as yt-dlp's own downloader reads it."""
    times = [
        float(f["available_at"]) for f in (info.get("requested_formats") or [info])
        if isinstance(f, dict) and isinstance(f.get("available_at"), (int, float)) and f["available_at"] > 0
    ]
    return max(times) if times else None


def _classify_resolve_error(exc: Exception, warnings: tuple[str, ...] = ()) -> Failure:
    """A per-clip failure for anything resolving raised (yt-dlp's errors, and whatever else a server provoked)."""
    limit = next((c for c in exception_chain(exc) if isinstance(c, ResolveLimitExceeded)), None)
    if limit is not None:
        # Too large is about the content (no media within reach): final. Too slow may be the network.
        return Failure(Outcome.DECODE_ERROR if limit.too_large else Outcome.TRANSIENT, str(limit))
    if isinstance(exc, yt_dlp.utils.DownloadError):
        return classify_ytdlp_error(exc, warnings)
    if isinstance(exc, RequestError) and not isinstance(exc, TransportError):
        # Not a network fault: e.g. a redirect to file:// or another scheme yt-dlp refuses to follow.
        return Failure(Outcome.DECODE_ERROR, clean_message(f"the server pointed somewhere we do not follow: {exc}"))
    if isinstance(exc, (yt_dlp.utils.YoutubeDLError, OSError)):
        return classify_ytdlp_error(exc, warnings)
    return Failure(Outcome.TRANSIENT, clean_message(f"resolving failed ({type(exc).__name__}: {exc})"))
