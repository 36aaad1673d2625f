"""Run ffmpeg: read a segment of a remote (or local) source and transcode it in one call.

Arguments are built with ffmpeg-python and run without a shell, in a session of their
own: a Ctrl-C typed in the terminal reaches our process only, which lets the clips in
flight finish (the runner's graceful stop) instead of ffmpeg dying mid-clip. Network reads use
``-rw_timeout`` (a stalled server must not hang the job), ``-reconnect 1`` (a dropped
connection must not yield a silently short clip) with a bounded number of reconnects,
and a wall-clock limit on the whole process as the last line of defence.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import ffmpeg

from ..abort import aborting, tracked
from ..outcomes import Outcome
from ..output_spec import OutputSpec, frames_for
from .classify import (
    Failure,
    FetchFailure,
    bytes_read,
    classify_ffmpeg_failure,
    input_duration,
)
from .settings import FetchSettings
from .source_address import bind_failure, ffmpeg_bind_failure

log = logging.getLogger(__name__)

# Reconnects after a drop or a read timeout; more would only multiply rw_timeout.
_RECONNECT_RETRIES = 2
_RECONNECT_DELAY_MAX = 2
_CODECS = {"wav": "pcm_s16le", "flac": "flac"}
# strerror(ENOSPC) as ffmpeg prints it when a write fails.
_DISK_FULL = "no space left on device"


# Seconds decoded before the segment starts: the decoder settles (an AAC frame decoded
# right after a seek comes out incomplete, so ffmpeg's own trim starts up to one frame
# late), and the segment is then cut by timestamp inside this pre-roll.
PRE_ROLL_SECONDS = 0.5
# Seconds read past the segment's end, so that a covering source always yields the
# segment's full sample count before it is trimmed (``-t`` alone comes out a few samples short).
END_MARGIN_SECONDS = 0.1
# Every filter segment_filter uses: a build without one of them cannot make clips.
REQUIRED_FILTERS = frozenset({"atrim", "asetpts", "astats", "aresample", "apad"})
# Instance names of the two astats filters, so their reports can be told apart in stderr.
_FINITE_PROBE = "finite"
_LENGTH_PROBE = "length"
_STAT_LINE = re.compile(r"^\[astats@(\w+) @ [^\]]*\] (Number of (?:NaNs|Infs|samples)): (\d+)", re.MULTILINE)


@dataclasses.dataclass(frozen=True)
class FfmpegRun:
    # Duration of the input as ffmpeg saw it (None when the container does not say).
    source_duration: float | None
    bytes_read: int | None
    # Samples per channel the source really delivered for the segment, at the output rate,
    # before any padding (None when not measured, e.g. a whole-stream copy).
    decoded_frames: int | None = None
    # NaN and infinite samples the decoder produced inside the segment (ffmpeg would write
    # them as full-scale garbage).
    non_finite: int = 0


def network_input_options(settings: FetchSettings, headers: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    options: dict[str, Any] = {
        "rw_timeout": int(settings.socket_timeout * 1_000_000),
        "reconnect": 1,
        "reconnect_max_retries": _RECONNECT_RETRIES,
        "reconnect_delay_max": _RECONNECT_DELAY_MAX,
    }
    if settings.source_address is not None:
        # The address yt-dlp resolved from (resolve.ytdlp_params): the media URL is bound to it.
        options["local_addr"] = settings.source_address
    if headers:
        options["headers"] = "".join(f"{key}: {value}\r\n" for key, value in headers)
    # The proxy is not an option here: its URL may carry a password, and a command line is
    # readable by every local user (ps). _run hands it over in ffmpeg's environment instead.
    return options


def ffmpeg_environment(proxy: str | None) -> dict[str, str] | None:
    """The environment of an ffmpeg child: ours plus the proxy, or None (inherit ours) without one.

    ffmpeg's http protocol reads ``http_proxy`` (user:password included, sent as
    Proxy-Authorization) when no ``-http_proxy`` option is given. ``/proc/<pid>/environ``
    is readable only by the process's owner, unlike its command line. ``no_proxy`` is
    dropped so that every request really goes through the configured proxy.
    """
    if proxy is None:
        return None
    environment = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "no_proxy")}
    environment["http_proxy"] = proxy
    return environment


def transcode_segment(
    source: str,
    output: Path,
    start: float,
    duration: float,
    spec: OutputSpec,
    settings: FetchSettings,
    input_options: dict[str, Any] | None = None,
) -> FfmpegRun:
    """Write ``[start, start + duration)`` of ``source`` to ``output`` in the configured format.

    The output always holds exactly ``round(duration * sample_rate)`` samples per channel
    (see :func:`segment_filter`); :attr:`FfmpegRun.decoded_frames` says how many of them
    the source really delivered, so the caller can refuse a source that ends early
    instead of keeping a padded clip. ``-ss`` comes before ``-i`` (input seek: only the
    needed byte ranges are read). Output is bit-exact, so the same input always gives
    the same bytes (and checksum).
    """
    frames = frames_for(duration, spec.sample_rate)
    pre_roll = min(start, PRE_ROLL_SECONDS)
    seek = start - pre_roll
    options = dict(input_options or {})
    if seek > 0:
        # A start of 0 is read without any seek: a seek to 0 drops the first codec frame.
        options["ss"] = f"{seek:.6f}"
    stream = ffmpeg.input(source, t=f"{pre_roll + duration + END_MARGIN_SECONDS:.6f}", **options)
    stream = stream.output(
        str(output),
        map="0:a:0",
        af=segment_filter(pre_roll, spec.sample_rate, frames),
        acodec=_CODECS[spec.audio_format],
        ar=spec.sample_rate,
        ac=spec.channels,
        format=spec.audio_format,
        map_metadata=-1,
        fflags="+bitexact",
        flags="+bitexact",
    )
    return _run(stream, settings)


def segment_filter(pre_roll: float, sample_rate: int, frames: int) -> str:
    """The filter chain that turns the decoded input into exactly ``frames`` samples.

    In order: cut the pre-roll by timestamp (sample-accurate whatever frame the seek
    landed on) and restart timestamps at 0; count NaN/inf samples while they are still
    floats; resample; count the samples the source delivered; pad with silence and trim
    to exactly ``frames``. Resampling before counting and trimming makes the count
    exact at the output rate; ``-ac`` then only mixes channels, which keeps the count.
    """
    return ",".join(
        (
            f"atrim=start={pre_roll:.6f}",
            "asetpts=PTS-STARTPTS",
            f"astats@{_FINITE_PROBE}=measure_perchannel=none:measure_overall=Number_of_NaNs+Number_of_Infs",
            f"aresample={sample_rate}",
            f"astats@{_LENGTH_PROBE}=measure_perchannel=none:measure_overall=Number_of_samples",
            f"apad=whole_len={frames}",
            f"atrim=end_sample={frames}",
        )
    )


def probe_counts(stderr: str) -> tuple[int | None, int]:
    """``(decoded_frames, non_finite)`` from the astats reports in ffmpeg's stderr."""
    decoded: int | None = None
    non_finite = 0
    for probe, measure, value in _STAT_LINE.findall(stderr):
        if probe == _LENGTH_PROBE and measure == "Number of samples":
            decoded = int(value)
        elif probe == _FINITE_PROBE and measure in ("Number of NaNs", "Number of Infs"):
            non_finite += int(value)
    return decoded, non_finite


def copy_whole_stream(source: str, output: Path, settings: FetchSettings, input_options: dict[str, Any]) -> FfmpegRun:
    """Download the first audio stream of ``source`` unchanged into a Matroska file."""
    stream = ffmpeg.input(source, **input_options).output(
        str(output), map="0:a:0", acodec="copy", format="matroska"
    )
    return _run(stream, settings, timeout_factor=_WHOLE_FILE_TIMEOUT_FACTOR)


# A whole video takes far longer than a 10 s range; its wall-clock limit scales accordingly.
_WHOLE_FILE_TIMEOUT_FACTOR = 10


def _run(stream: Any, settings: FetchSettings, timeout_factor: float = 1) -> FfmpegRun:
    stream = stream.overwrite_output().global_args("-hide_banner", "-nostdin", "-nostats", "-loglevel", "verbose")
    timeout = settings.process_timeout * timeout_factor
    # ffmpeg-python's run_async cannot start a new session, hence Popen on its argument list.
    process = subprocess.Popen(
        stream.compile(cmd=settings.ffmpeg),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env=ffmpeg_environment(settings.proxy),
    )
    try:
        with tracked(process):
            _, stderr_bytes = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise FetchFailure(
            Failure(Outcome.TRANSIENT, f"ffmpeg did not finish within {timeout:g} s and was stopped")
        ) from None
    except BaseException:
        # Ctrl-C or a crash in this thread: do not leave ffmpeg writing a partial file.
        process.kill()
        process.wait()
        raise
    stderr = stderr_bytes.decode("utf-8", errors="replace")
    if process.returncode != 0 and aborting():
        raise FetchFailure(Failure(Outcome.TRANSIENT, "stopped: the run was aborted"))
    if process.returncode != 0 and _DISK_FULL in stderr.lower():
        # Not the clip's fault and not the network's: the run must stop (see runner.run_download).
        raise OSError(errno.ENOSPC, "ffmpeg could not write its output: no space left on device")
    unbound = ffmpeg_bind_failure(stderr) if process.returncode != 0 and settings.source_address is not None else None
    if unbound is not None:
        raise FetchFailure(bind_failure(settings.source_address, unbound))
    if process.returncode != 0:
        log.debug("ffmpeg exited %s; stderr tail:\n%s", process.returncode, stderr[-2000:])
        raise FetchFailure(classify_ffmpeg_failure(process.returncode, stderr))
    decoded, non_finite = probe_counts(stderr)
    return FfmpegRun(
        source_duration=input_duration(stderr), bytes_read=bytes_read(stderr),
        decoded_frames=decoded, non_finite=non_finite,
    )
