"""The per-clip pipeline: one candidate in, one classified outcome out.

:func:`fetch_clip` is a plain module-level function of picklable arguments
(:class:`~..base.ClipJob`, :class:`~.settings.FetchSettings`), so any executor (threads,
processes, a later run) can call it. It never raises for a clip's own failure: every
failure comes back as a :class:`~..base.ClipResult` with its outcome and message.

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
from ..abort import aborting, pause
from ..base import ClipJob, ClipResult, partial_path
from ..outcomes import Outcome
from .classify import Failure, FetchFailure
from .settings import FetchSettings

if TYPE_CHECKING:
    from .resolve import Resolved
    from .segment import FfmpegRun

log = logging.getLogger(__name__)

# Outcomes that end a clip at once: more attempts would repeat the answer, or (throttling)
# make it worse; the scheduler decides when to come back.
_FINAL = frozenset(
    {Outcome.UNAVAILABLE, Outcome.SIGN_IN_REQUIRED, Outcome.RATE_LIMITED, Outcome.TOO_SHORT, Outcome.DECODE_ERROR,
     Outcome.TOOLING_ERROR}
)
# A whole second of grace for sites that round the length down (YouTube's lengthSeconds).
_LENGTH_ROUNDING = 1.0


def fetch_clip(job: ClipJob, settings: FetchSettings) -> ClipResult:
    """Fetch ``job`` into ``job.target``; see the module docstring. Never raises for a clip's failure.

    Transient failures and wrong durations are retried up to ``settings.max_retries``
    times with exponential backoff; a 403 is retried once with a fresh resolve (signed
    media URLs expire); rate limits and sign-in walls return at once with ``retry_after``
    so the scheduler can pause every worker.
    """
    if not os.path.isfile(settings.ffmpeg):
        # On a Dask worker of another machine the coordinator's ffmpeg path means nothing: use this machine's.
        from ..ffmpeg_bin import find_ffmpeg

        settings = dataclasses.replace(settings, ffmpeg=find_ffmpeg())
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
        return transcode_segment(resolved.url, temporary, job.start_seconds, job.duration, job.spec, settings, network)
    whole = partial_path(Path(job.target), ".mka")
    try:
        download = copy_whole_stream(resolved.url, whole, settings, network)
        trim = transcode_segment(str(whole), temporary, job.start_seconds, job.duration, job.spec, settings)
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
    spec = job.spec
    if info.sample_rate != spec.sample_rate or info.channels != spec.channels:
        raise FetchFailure(
            Failure(
                Outcome.DECODE_ERROR,
                f"got {info.sample_rate} Hz x {info.channels} channels, "
                f"expected {spec.sample_rate} Hz x {spec.channels}",
            )
        )
    expected = segment_frames(job.start_seconds, job.end_seconds, spec.sample_rate)
    # No report means no sample ever reached the filters: coverage is never assumed.
    delivered = run.decoded_frames or 0
    allowed_gap = round(settings.duration_tolerance * spec.sample_rate)
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
            f"the source delivered {delivered / spec.sample_rate:.3f} s of the {job.duration:.3f} s segment",
        )
    )
