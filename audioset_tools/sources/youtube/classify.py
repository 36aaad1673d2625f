"""Turn yt-dlp exceptions and ffmpeg's stderr into outcomes.

Exception types and HTTP statuses decide first; message patterns only where yt-dlp has
nothing better (YouTube's playability reasons arrive as plain ``ExtractorError`` text).
The patterns are the texts yt-dlp's YouTube extractor and ffmpeg really emit.
Anything unrecognised is transient: retrying costs a request, while calling it permanent
would lose a clip for good.
"""

from __future__ import annotations

import dataclasses
import email.utils
import re
import time

from yt_dlp.networking.exceptions import HTTPError, TransportError
from yt_dlp.utils import (
    DownloadError,
    ExtractorError,
    GeoRestrictedError,
    UnsupportedError,
)

from ..outcomes import Outcome
from .network_errors import describe_network_error

_MAX_MESSAGE = 400


@dataclasses.dataclass(frozen=True)
class Failure:
    outcome: Outcome
    message: str
    # Seconds the server asked us to wait (Retry-After), when it said.
    retry_after: float | None = None
    # False when an immediate retry of the same clip would only repeat the failure (DNS).
    worth_retrying: bool = True


class FetchFailure(Exception):
    """Raised inside the pipeline to end one attempt with a classified failure."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def outcome_for_status(status: int) -> Outcome:
    if status in (404, 410):
        return Outcome.UNAVAILABLE
    if status == 403:
        return Outcome.FORBIDDEN
    if status == 401:
        return Outcome.SIGN_IN_REQUIRED
    if status == 429:
        return Outcome.RATE_LIMITED
    # 5xx, 408 and the odd 4xx (e.g. a 400 from an expired signature) deserve another try.
    return Outcome.TRANSIENT


# What yt-dlp (2026.10.26) says when our tooling, not the video, is the problem: its YouTube
# extractor's warnings about JS challenges, the JS runtime, SABR-only formats and the
# challenge solver scripts (yt-dlp-ejs), and the format errors they end in. A format error
# is not a verdict on a video either: "bestaudio/best" matches any video that has audio.
TOOLING_PATTERNS = (
    "n challenge solving failed", "signature solving failed", "no supported javascript runtime",
    "supported javascript runtime", "they are missing a url", "sabr", "challenge solver",
    "remote component", "js challenge", "yt-dlp-ejs", "requested format is not available",
    "no video formats found", "only images are available",
)

# YouTube playability reasons as yt-dlp relays them (lower-cased, straight apostrophes).
# Order matters: "Private video. Sign in if you've been granted access" is about privacy,
# and "Video unavailable. This content isn't available, try again later" is a rate limit.
# Tooling comes after the walls YouTube itself puts up (a bot check is not a tooling fault).
_MESSAGE_RULES: tuple[tuple[Outcome, tuple[str, ...]], ...] = (
    (Outcome.RATE_LIMITED, ("try again later", "rate-limited", "http error 429", "too many requests")),
    (Outcome.UNAVAILABLE, ("private video", "video is private")),
    (
        Outcome.SIGN_IN_REQUIRED,
        (
            "sign in to confirm", "confirm your age", "age-restricted", "inappropriate for some users",
            "login details are needed", "only available for registered users",
            "--cookies for the authentication", "captcha", "http error 401",
        ),
    ),
    (Outcome.TOOLING_ERROR, TOOLING_PATTERNS),
    (Outcome.DECODE_ERROR, ("unsupported url", "no audio")),
    (
        Outcome.UNAVAILABLE,
        (
            "video unavailable", "video is unavailable", "video is not available", "not available in your country",
            "has been removed", "been terminated", "no longer available", "does not exist", "members-only",
            "join this channel", "http error 404", "http error 410",
        ),
    ),
    (Outcome.FORBIDDEN, ("http error 403",)),
)


def classify_ytdlp_error(exc: BaseException, warnings: tuple[str, ...] = ()) -> Failure:
    """Classify what ``YoutubeDL.extract_info`` raised.

    ``warnings`` are what yt-dlp warned during the same extraction: a failed JS challenge
    is only a warning, and the error it leads to ("Requested format is not available", or
    nothing recognisable) does not say why. Such a warning turns an error that is not
    YouTube's own verdict on the video into a tooling error.
    """
    failure = _classify_ytdlp_error(exc)
    if any(isinstance(cause, (HTTPError, TransportError)) for cause in exception_chain(exc)):
        # A server's answer (or the network's silence) says more than any earlier warning.
        return failure
    tooling = tooling_warning(warnings)
    if tooling is not None and failure.outcome in (Outcome.DECODE_ERROR, Outcome.TRANSIENT, Outcome.TOOLING_ERROR):
        # The warning first: it is the cause, and a long message is cut at its end.
        return Failure(Outcome.TOOLING_ERROR, clean_message(f"yt-dlp warned: {tooling} Then: {failure.message}"))
    return failure


def tooling_warning(warnings: tuple[str, ...] | list[str]) -> str | None:
    """The first of yt-dlp's warnings that says our tooling is broken, or None."""
    for warning in warnings:
        text = warning.lower().replace("\u2019", "'")
        if any(pattern in text for pattern in TOOLING_PATTERNS):
            return clean_message(_ytdlp_message(warning).removeprefix("WARNING: "))
    return None


def _classify_ytdlp_error(exc: BaseException) -> Failure:
    message = clean_message(_ytdlp_message(exc))
    for cause in exception_chain(exc):
        if isinstance(cause, HTTPError):
            retry_after = None
            if cause.status == 429:
                retry_after = parse_retry_after(cause.response.headers.get("Retry-After"))
            return Failure(outcome_for_status(cause.status), message, retry_after)
        if isinstance(cause, TransportError):
            # Includes DNS failures: offline is not evidence that a video is gone.
            network = describe_network_error(exc)
            if network is None:
                return Failure(Outcome.TRANSIENT, message)
            return Failure(Outcome.TRANSIENT, network.message, worth_retrying=not network.dns)
        if isinstance(cause, GeoRestrictedError):
            return Failure(Outcome.UNAVAILABLE, message)
        if isinstance(cause, UnsupportedError):
            return Failure(Outcome.DECODE_ERROR, f"no media found at the URL: {message}")
    return Failure(classify_message(message), message)


def classify_message(message: str) -> Outcome:
    text = message.lower().replace("\u2019", "'")
    for outcome, patterns in _MESSAGE_RULES:
        if any(pattern in text for pattern in patterns):
            return outcome
    return Outcome.TRANSIENT


def exception_chain(exc: BaseException) -> list[BaseException]:
    """The exception and what caused it: DownloadError.exc_info, ExtractorError.cause, __cause__."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        if isinstance(current, DownloadError) and current.exc_info and current.exc_info[1] is not None:
            current = current.exc_info[1]
        elif isinstance(current, ExtractorError) and isinstance(current.cause, BaseException):
            current = current.cause
        else:
            current = current.__cause__
    return chain


def _ytdlp_message(exc: BaseException) -> str:
    text = str(exc)
    return text[len("ERROR: "):] if text.startswith("ERROR: ") else text


_HTTP_ERROR = re.compile(r"HTTP error (\d{3})")
_SERVER_RETURNED = re.compile(r"Server returned (\d{3}|4XX|5XX)")
_FFMPEG_DECODE = (
    "invalid data found when processing input", "does not contain any stream", "matches no streams",
    "could not find codec parameters", "error while decoding",
)
_FFMPEG_TRANSIENT_HINTS = (
    "timed out", "connection refused", "connection reset", "input/output error", "failed to resolve",
    "network is unreachable", "broken pipe", "end of file",
)
_UNRESOLVED_HOST = re.compile(r"Failed to resolve hostname (?P<host>[^\s:]+): (?P<why>[^\n]*)")
_DURATION = re.compile(r"^\s*Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)", re.MULTILINE)
_BYTES_READ = re.compile(r"Statistics: (\d+) bytes read")
_RESTATEMENTS = ("Error opening input file", "Error opening output file", "Error parsing options", "Statistics:")
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_ERROR_LINE = re.compile(r"error|server returned|timed out|invalid|does not contain|matches no", re.IGNORECASE)


def classify_ffmpeg_failure(returncode: int, stderr: str) -> Failure:
    """Classify an ffmpeg run that exited non-zero.

    ffmpeg exits 8 for every HTTP error, so the status comes from its stderr
    (``Server returned 404 Not Found``, ``... 5XX Server Error reply``). It exposes no
    response headers, so a 429 here carries no Retry-After: the scheduler's backoff applies.
    """
    message = clean_message(ffmpeg_error_summary(stderr) or f"ffmpeg exited with status {returncode}")
    # ffmpeg's http layer logs the exact status ("HTTP error 410 Gone") while its summary
    # lumps the rarer ones together ("4XX Client Error, but not one of 40{0,1,3,4}").
    statuses = _HTTP_ERROR.findall(stderr) or _SERVER_RETURNED.findall(stderr)
    if statuses:
        status = statuses[-1]
        if status in ("4XX", "5XX"):
            return Failure(Outcome.TRANSIENT, message)
        return Failure(outcome_for_status(int(status)), message)
    lowered = stderr.lower()
    unresolved = _UNRESOLVED_HOST.search(stderr)
    if unresolved is not None:
        dns = f"cannot resolve {unresolved['host']} (DNS: {unresolved['why'].strip()})"
        return Failure(Outcome.TRANSIENT, clean_message(dns), worth_retrying=False)
    # A network error can surface as "invalid data" too, so network hints win.
    if any(hint in lowered for hint in _FFMPEG_TRANSIENT_HINTS):
        return Failure(Outcome.TRANSIENT, message)
    if any(pattern in lowered for pattern in _FFMPEG_DECODE):
        return Failure(Outcome.DECODE_ERROR, message)
    return Failure(Outcome.TRANSIENT, message)


def ffmpeg_error_summary(stderr: str) -> str:
    """The last two distinct error lines of ffmpeg's stderr, without URLs or file names.

    Lines that only restate which file failed are left out: a signed media URL is long,
    useless to the reader, and may identify the session.
    """
    lines: list[str] = []
    for line in stderr.splitlines():
        line = re.sub(r"^(\[[^\]]+\]\s*)+", "", line.strip())
        if not line or not _ERROR_LINE.search(line) or line.startswith(_RESTATEMENTS):
            continue
        line = _URL.sub("<url>", line)
        if line not in lines:
            lines.append(line)
    return "; ".join(lines[-2:])


def input_duration(stderr: str) -> float | None:
    """The first input's duration from ffmpeg's stderr (``Duration: N/A`` gives None)."""
    match = _DURATION.search(stderr)
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def bytes_read(stderr: str) -> int | None:
    """Bytes ffmpeg's inputs read (its verbose ``Statistics`` lines), or None if not reported."""
    counts = [int(value) for value in _BYTES_READ.findall(stderr)]
    return sum(counts) if counts else None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)


def clean_message(message: str) -> str:
    """One line, bounded, with any ``user:password@`` of a proxy URL masked."""
    text = " ".join(message.split())
    text = _USERINFO.sub(r"\1***@", text)
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."
