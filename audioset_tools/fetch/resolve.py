"""Resolve a video page to a direct audio URL with yt-dlp's Python API (never its CLI)."""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import TYPE_CHECKING, Any

import yt_dlp

from .classify import Failure, FetchFailure, classify_ytdlp_error
from .outcomes import Outcome

if TYPE_CHECKING:
    from .clip import FetchSettings

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Resolved:
    url: str
    # Headers yt-dlp would send for this format (User-Agent, Referer, ...); ffmpeg sends them too.
    http_headers: tuple[tuple[str, str], ...]
    # Seconds, when the site says (YouTube does, in whole seconds; direct links do not).
    duration: float | None
    ext: str | None


class _Logger:
    """yt-dlp's output goes to our log at debug level: outcomes are reported by the caller."""

    def debug(self, message: str) -> None:
        log.debug("yt-dlp: %s", message)

    def info(self, message: str) -> None:
        log.debug("yt-dlp: %s", message)

    def warning(self, message: str) -> None:
        log.debug("yt-dlp warning: %s", message)

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
    return params


# One YoutubeDL per thread and settings: building one costs ~0.1 s, several times the work
# of resolving a direct link. Instances are not shared between threads.
_local = threading.local()


def _downloader(settings: FetchSettings) -> yt_dlp.YoutubeDL:
    cached = getattr(_local, "entry", None)
    if cached is not None and cached[0] == settings:
        return cached[1]
    if cached is not None:
        _close(cached[1])
    downloader = yt_dlp.YoutubeDL(ytdlp_params(settings))
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


def resolve(url: str, settings: FetchSettings) -> Resolved:
    """Extract the best audio-only format of ``url``; raise :class:`FetchFailure` on failure."""
    downloader = _downloader(settings)
    try:
        info = downloader.extract_info(url, download=False)
    except yt_dlp.utils.DownloadError as exc:
        raise FetchFailure(classify_ytdlp_error(exc)) from exc
    if info is None or not info.get("url"):
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
    )
