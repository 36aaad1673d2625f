"""The per-clip pipeline: one candidate in, one classified outcome out.

:func:`fetch_clip` is a plain module-level function of picklable arguments
(:class:`ClipJob`, :class:`FetchSettings`), so any executor (threads, processes, a later
run) can call it. It never raises for a clip's own failure: every failure comes back as a
:class:`ClipResult` with its outcome and message.

One attempt = resolve with yt-dlp, then one ffmpeg call reading only the segment (or, with
``fetch_strategy = whole_file``, download the whole stream then trim it) into exactly
``round((end - start) * sample_rate)`` samples per channel, then check that the source
really covered the segment with finite samples, and the rate and channels. The file is
written under a partial name in the target folder and renamed into place only when it
passed every check.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ...dataset.audio_info import (
    AudioInfo,
    AudioReadError,
    probe_audio,
    segment_frames,
    sha256_file,
)
from ...dataset.ids import is_valid_ytid
from ...errors import UserError
from ..abort import aborting, pause
from ..outcomes import Outcome
from .classify import Failure, FetchFailure
from .js_runtime import JsRuntime, resolve_js_runtime

if TYPE_CHECKING:
    from ...config import Config
    from .resolve import Resolved
    from .segment import FfmpegRun

log = logging.getLogger(__name__)

# Outcomes that end a clip at once: more attempts would repeat the answer, or (throttling)
# make it worse; the scheduler decides when to come back.
_FINAL = frozenset(
    {Outcome.UNAVAILABLE, Outcome.SIGN_IN_REQUIRED, Outcome.RATE_LIMITED, Outcome.TOO_SHORT, Outcome.DECODE_ERROR,
     Outcome.TOOLING_ERROR}
)
# Proxies ffmpeg's http protocol can tunnel through (it has no SOCKS support).
_FFMPEG_PROXY_SCHEMES = ("http://",)
# A whole second of grace for sites that round the length down (YouTube's lengthSeconds).
_LENGTH_ROUNDING = 1.0
# Beyond what ffmpeg's own timeouts bound: a trickling server could still take forever.
DEFAULT_PROCESS_TIMEOUT = 600.0


@dataclasses.dataclass(frozen=True)
class ClipJob:
    ytid: str
    start_seconds: float
    end_seconds: float
    # Absolute final path, extension included.
    target: Path

    def __post_init__(self) -> None:
        # The planner validates too; this guards the one place an ID turns into a URL and a file.
        if not is_valid_ytid(self.ytid):
            raise ValueError(f"invalid YouTube ID {self.ytid!r}")
        if not 0 <= self.start_seconds < self.end_seconds:
            raise ValueError(f"{self.ytid}: need 0 <= start < end, got [{self.start_seconds}, {self.end_seconds}]")
        if not Path(self.target).is_absolute():
            raise ValueError(f"{self.ytid}: target must be an absolute path, got {self.target}")

    @property
    def duration(self) -> float:
        return self.end_seconds - self.start_seconds


@dataclasses.dataclass(frozen=True)
class FetchSettings:
    """Everything one clip fetch needs; plain values only, so it pickles."""

    url_template: str
    ffmpeg: str
    audio_format: str = "wav"
    sample_rate: int = 16000
    channels: int = 1
    fetch_strategy: str = "range"
    max_retries: int = 3
    socket_timeout: float = 30.0
    # Wall-clock bound of one resolve (see fetch.resolve).
    resolve_timeout: float = 120.0
    # How much earlier than the segment's end the source may run out (codec delay); that
    # gap is padded. Clips always hold exactly round(duration * sample_rate) samples.
    duration_tolerance: float = 0.05
    # Transient failures wait retry_backoff * 2**n seconds (n = retries so far), capped.
    retry_backoff: float = 2.0
    retry_backoff_max: float = 60.0
    # A PRIVATE copy of the user's cookies (see cookies.private_cookie_copy), never the original.
    cookies_file: Path | None = None
    proxy: str | None = None
    # Local address both tools send from (yt-dlp source_address, ffmpeg local_addr), always
    # together: a media URL is valid only from the address that resolved it. None = the default route.
    source_address: str | None = None
    js_runtime: JsRuntime = JsRuntime("deno")
    process_timeout: float = DEFAULT_PROCESS_TIMEOUT
    # yt-dlp's extractor_args (download.youtube.extractor_args), frozen as nested tuples:
    # ((extractor, ((argument, (value, ...)), ...)), ...).
    extractor_args: tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...] = ()
    # Longest wait for a format's available_at before reading it (download.youtube.max_wait_for_format_seconds).
    max_wait_for_format: float = 120.0

    def __post_init__(self) -> None:
        if "{ytid}" not in self.url_template:
            raise ValueError("url_template must contain {ytid}")
        if self.audio_format not in ("wav", "flac"):
            raise ValueError(f"audio_format must be wav or flac, got {self.audio_format!r}")
        if self.fetch_strategy not in ("range", "whole_file"):
            raise ValueError(f"fetch_strategy must be range or whole_file, got {self.fetch_strategy!r}")
        if self.proxy is not None and not self.proxy.lower().startswith(_FFMPEG_PROXY_SCHEMES):
            raise ValueError(
                "only http:// proxies are supported: ffmpeg, which reads the audio, cannot tunnel through "
                "socks or https proxies, and sending its requests direct would bypass the proxy"
            )

    @classmethod
    def from_config(
        cls, config: Config, ffmpeg: str, cookies_copy: Path | None = None, proxy: str | None = None
    ) -> FetchSettings:
        download = config.download
        runtime = resolve_js_runtime(download.js_runtime)
        try:
            return cls(
                url_template=download.url_template,
                ffmpeg=ffmpeg,
                audio_format=config.audio.format,
                sample_rate=config.audio.sample_rate,
                channels=config.audio.channels,
                fetch_strategy=download.fetch_strategy,
                max_retries=download.max_retries,
                socket_timeout=download.socket_timeout,
                resolve_timeout=download.resolve_timeout,
                duration_tolerance=download.duration_tolerance,
                retry_backoff=download.retry_backoff_seconds,
                retry_backoff_max=download.backoff_max_seconds,
                cookies_file=cookies_copy,
                proxy=proxy,
                js_runtime=runtime,
                extractor_args=freeze_extractor_args(download.youtube.extractor_args),
                max_wait_for_format=download.youtube.max_wait_for_format_seconds,
            )
        except ValueError as exc:
            # The config model checks these too; this catches values passed in directly (proxy).
            raise UserError(f"download settings: {exc}") from None

    def url_for(self, ytid: str) -> str:
        return self.url_template.replace("{ytid}", ytid)

    def extractor_args_mapping(self) -> dict[str, dict[str, list[str]]]:
        """:attr:`extractor_args` in the shape yt-dlp's ``extractor_args`` parameter takes."""
        return {name: {arg: list(values) for arg, values in args} for name, args in self.extractor_args}


def freeze_extractor_args(
    mapping: dict[str, dict[str, list[str]]],
) -> tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...]:
    """An immutable, comparable form of ``download.youtube.extractor_args`` (settings stay hashable)."""
    return tuple(
        (name, tuple((arg, tuple(values)) for arg, values in sorted(args.items())))
        for name, args in sorted(mapping.items())
    )


@dataclasses.dataclass(frozen=True)
class ClipResult:
    outcome: Outcome
    message: str
    attempts: int
    retry_after: float | None = None
    file: Path | None = None
    sha256: str | None = None
    duration: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    bytes_read: int | None = None
    # "outcome: message" of every attempt, in order (the last one is this result's).
    history: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


_PARTIAL_RE = re.compile(r"\A\..+\.[0-9a-f]{8}\.part\.[A-Za-z0-9]+\Z")


def partial_path(target: Path, suffix: str | None = None) -> Path:
    """A fresh temporary name beside ``target``; the suffix lets ffmpeg pick the muxer."""
    extension = suffix if suffix is not None else target.suffix
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}.part{extension}")


def is_partial_file(path: Path) -> bool:
    """True for the temporaries :func:`fetch_clip` writes (only kill -9 leaves them behind)."""
    return _PARTIAL_RE.match(Path(path).name) is not None


def fetch_clip(job: ClipJob, settings: FetchSettings) -> ClipResult:
    """Fetch ``job`` into ``job.target``; see the module docstring. Never raises for a clip's failure.

    Transient failures and wrong durations are retried up to ``settings.max_retries``
    times with exponential backoff; a 403 is retried once with a fresh resolve (signed
    media URLs expire); rate limits and sign-in walls return at once with ``retry_after``
    so the scheduler can pause every worker.
    """
    history: list[str] = []
    retries = 0
    forbidden_retried = False
    while True:
        started = time.monotonic()
        try:
            result = _attempt(job, settings, len(history) + 1)
        except FetchFailure as failure_exc:
            failure = failure_exc.failure
        else:
            history.append(f"{Outcome.OK}: {result.message}")
            return dataclasses.replace(result, attempts=len(history), history=tuple(history))
        history.append(f"{failure.outcome}: {failure.message}")
        log.debug("%s attempt %d: %s (%.1f s)", job.ytid, len(history), history[-1], time.monotonic() - started)
        if failure.outcome is Outcome.FORBIDDEN and not forbidden_retried and not aborting():
            forbidden_retried = True
            continue
        if (
            failure.outcome in _FINAL
            or failure.outcome is Outcome.FORBIDDEN
            or not failure.worth_retrying
            or retries >= settings.max_retries
            or aborting()
        ):
            return ClipResult(
                outcome=failure.outcome,
                message=failure.message,
                attempts=len(history),
                retry_after=failure.retry_after,
                history=tuple(history),
            )
        delay = min(settings.retry_backoff * 2**retries, settings.retry_backoff_max)
        retries += 1
        if delay > 0:
            log.debug("%s: retrying in %.1f s", job.ytid, delay)
            pause(delay)


def ends_before_segment(length: float | None, end_seconds: float, tolerance: float) -> bool:
    """True when a site-reported length proves the segment cannot be read (no ffmpeg needed).

    Sites round lengths down to whole seconds, so only a clear shortfall counts; a
    borderline case is left to ffmpeg, which measures the real duration.
    """
    return length is not None and length + _LENGTH_ROUNDING < end_seconds - tolerance


def _attempt(job: ClipJob, settings: FetchSettings, number: int) -> ClipResult:
    # Imported here so that planning code importing this module does not pay for yt-dlp.
    from .resolve import resolve

    resolved = resolve(settings.url_for(job.ytid), settings)
    if ends_before_segment(resolved.duration, job.end_seconds, settings.duration_tolerance):
        raise FetchFailure(
            Failure(Outcome.TOO_SHORT, f"the video lasts {resolved.duration:g} s; the segment ends at {job.end_seconds:g} s")
        )
    wait_until_available(resolved.available_at, settings.max_wait_for_format)
    target = Path(job.target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = partial_path(target)
    try:
        run = _write_segment(job, settings, resolved, temporary)
        info = _verify(job, settings, temporary, run)
        checksum = sha256_file(temporary)
        _fsync(temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return ClipResult(
        outcome=Outcome.OK,
        message=f"{info.duration:.3f} s at {info.sample_rate} Hz",
        attempts=number,
        file=target,
        sha256=checksum,
        duration=info.duration,
        sample_rate=info.sample_rate,
        channels=info.channels,
        bytes_read=run.bytes_read,
    )


def wait_until_available(available_at: float | None, max_wait: float) -> None:
    """Wait until the site serves the format (reading it earlier gets 403), at most ``max_wait`` s.

    A longer wait is a transient failure: the clip is tried again later rather than
    holding a worker for minutes.
    """
    if available_at is None:
        return
    delay = available_at - time.time()
    if delay <= 0:
        return
    if delay > max_wait:
        raise FetchFailure(
            Failure(
                Outcome.TRANSIENT,
                f"the site serves this format only in {delay:.0f} s, longer than "
                f"download.youtube.max_wait_for_format_seconds ({max_wait:g} s)",
            )
        )
    log.debug("waiting %.1f s until the format is available", delay)
    pause(delay)
    if aborting():
        raise FetchFailure(Failure(Outcome.TRANSIENT, "stopped while waiting for the format: the run was aborted"))


def _fsync(path: Path) -> None:
    # ffmpeg does not sync; without this a power cut after the rename could leave a
    # final name on an empty file.
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_segment(job: ClipJob, settings: FetchSettings, resolved: Resolved, temporary: Path) -> FfmpegRun:
    from .segment import copy_whole_stream, network_input_options, transcode_segment

    network = network_input_options(settings, resolved.http_headers)
    if settings.fetch_strategy == "range":
        return transcode_segment(resolved.url, temporary, job.start_seconds, job.duration, settings, network)
    whole = partial_path(Path(job.target), ".mka")
    try:
        download = copy_whole_stream(resolved.url, whole, settings, network)
        trim = transcode_segment(str(whole), temporary, job.start_seconds, job.duration, settings)
    finally:
        whole.unlink(missing_ok=True)
    return dataclasses.replace(
        trim, source_duration=download.source_duration or trim.source_duration, bytes_read=download.bytes_read
    )


def _verify(job: ClipJob, settings: FetchSettings, path: Path, run: FfmpegRun) -> AudioInfo:
    """Accept the clip ffmpeg wrote only when the source covered the segment with finite audio.

    ffmpeg always pads the clip to the segment's sample count (see
    :func:`.segment.segment_filter`), so its length alone proves nothing: what counts is
    how many samples the source delivered. Up to ``duration_tolerance`` seconds may be
    missing at the end (codec delay: AAC and Opus sources lose some 20 ms there); a
    source that ends earlier is too short (or, when its container claims more, truncated).
    """
    if run.non_finite:
        raise FetchFailure(
            Failure(Outcome.DECODE_ERROR, f"the source decodes to {run.non_finite} NaN or infinite sample(s)")
        )
    try:
        info = probe_audio(path)
    except AudioReadError as exc:
        raise FetchFailure(Failure(Outcome.DECODE_ERROR, f"ffmpeg wrote unreadable audio: {exc}")) from None
    if info.sample_rate != settings.sample_rate or info.channels != settings.channels:
        raise FetchFailure(
            Failure(
                Outcome.DECODE_ERROR,
                f"got {info.sample_rate} Hz x {info.channels} channels, "
                f"expected {settings.sample_rate} Hz x {settings.channels}",
            )
        )
    expected = segment_frames(job.start_seconds, job.end_seconds, settings.sample_rate)
    # No report means no sample ever reached the filters: coverage is never assumed.
    delivered = run.decoded_frames or 0
    allowed_gap = round(settings.duration_tolerance * settings.sample_rate)
    if info.frames == expected and delivered >= expected - allowed_gap:
        return info
    source_duration, tolerance = run.source_duration, settings.duration_tolerance
    if source_duration is not None and source_duration < job.end_seconds - tolerance:
        raise FetchFailure(
            Failure(
                Outcome.TOO_SHORT,
                f"the source lasts {source_duration:g} s; the segment ends at {job.end_seconds:g} s",
            )
        )
    if delivered == 0:
        raise FetchFailure(Failure(Outcome.TOO_SHORT, f"nothing to read after {job.start_seconds:g} s"))
    if info.frames != expected:
        raise FetchFailure(
            Failure(Outcome.TRUNCATED, f"wrote {info.frames} samples, expected exactly {expected}")
        )
    raise FetchFailure(
        Failure(
            Outcome.TRUNCATED,
            f"the source delivered {delivered / settings.sample_rate:.3f} s of the {job.duration:.3f} s segment",
        )
    )
