"""fetch_clip end to end: real yt-dlp and real ffmpeg against the local media server.

Every outcome is produced by a real server behaviour, and every ok clip is decoded to
prove it holds exactly [start, end] of its source.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import pickle
from pathlib import Path

import pytest
from media import alignment_error, clip_seconds

from audioset_tools.dataset.audio_info import probe_audio, sha256_file
from audioset_tools.sources.base import ClipJob, is_partial_file, partial_path
from audioset_tools.sources.ffmpeg_bin import find_ffmpeg
from audioset_tools.sources.outcomes import PERMANENT_FAILURES, THROTTLING, Outcome
from audioset_tools.sources.youtube.clip import fetch_clip
from audioset_tools.sources.output_spec import OutputSpec
from audioset_tools.sources.youtube.settings import FetchSettings

YTID = "abcdefghijk"


@pytest.fixture
def settings(media_server) -> FetchSettings:
    return FetchSettings(
        url_template=media_server.url_template("webm"),
        ffmpeg=find_ffmpeg(),
        max_retries=1,
        socket_timeout=1.0,
        retry_backoff=0.0,
    )


def _job(tmp_path: Path, start: float = 12.0, end: float = 22.0, ytid: str = YTID, ext: str = "wav",
         spec: OutputSpec | None = None) -> ClipJob:
    spec = spec or OutputSpec(audio_format=ext)
    return ClipJob(ytid, start, end, tmp_path / "out" / f"{ytid}_{int(start * 1000)}.{ext}", spec)


def _assert_nothing_written(job: ClipJob) -> None:
    folder = job.target.parent
    leftovers = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    assert leftovers == [], f"expected no files, found {leftovers}"


def _assert_exact_clip(result, job: ClipJob, source: Path, settings: FetchSettings) -> None:
    assert result.outcome is Outcome.OK, result.message
    assert result.file == job.target and job.target.is_file()
    info = probe_audio(job.target)
    assert info.sample_rate == job.spec.sample_rate == result.sample_rate
    assert info.channels == job.spec.channels == result.channels
    assert result.duration == pytest.approx(job.duration, abs=settings.duration_tolerance)
    assert result.sha256 == sha256_file(job.target)
    start, end = job.start_seconds, job.end_seconds
    assert clip_seconds(job.target, start_offset=start % 1) == list(range(int(-(-start // 1)), int(end)))
    assert abs(alignment_error(job.target, source, start)) <= 0.02
    assert [p.name for p in job.target.parent.iterdir()] == [job.target.name]


@pytest.mark.parametrize("kind", ["webm", "m4a"])
def test_ok_clip_is_exactly_the_segment(media_server, tone_sources, settings, tmp_path, kind):
    source = getattr(tone_sources, kind)
    media_server.add(YTID, source)
    settings = dataclasses.replace(settings, url_template=media_server.url_template(kind))
    job = _job(tmp_path, 12, 22)
    result = fetch_clip(job, settings)
    _assert_exact_clip(result, job, source, settings)
    assert result.attempts == 1
    assert 0 < result.bytes_read < source.stat().st_size


def test_fractional_start_and_flac_stereo_output(media_server, tone_sources, settings, tmp_path):
    media_server.add(YTID, tone_sources.webm)
    job = _job(tmp_path, 20.5, 27.5, ext="flac", spec=OutputSpec(22050, 2, "flac"))
    result = fetch_clip(job, settings)
    _assert_exact_clip(result, job, tone_sources.webm, settings)
    assert job.target.read_bytes()[:4] == b"fLaC"


def test_same_input_gives_the_same_bytes(media_server, tone_sources, settings, tmp_path):
    media_server.add(YTID, tone_sources.webm)
    first = fetch_clip(_job(tmp_path / "a"), settings)
    second = fetch_clip(_job(tmp_path / "b"), settings)
    assert first.sha256 == second.sha256


def test_segment_at_the_very_end_of_the_source(media_server, tone_sources, settings, tmp_path):
    media_server.add(YTID, tone_sources.webm)
    job = _job(tmp_path, tone_sources.seconds - 10, tone_sources.seconds)
    _assert_exact_clip(fetch_clip(job, settings), job, tone_sources.webm, settings)


@pytest.mark.parametrize("status", ["404", "410"])
def test_gone_is_unavailable_without_retry(media_server, tone_sources, settings, tmp_path, status):
    media_server.add(YTID, tone_sources.webm, behaviour=status)
    job = _job(tmp_path)
    result = fetch_clip(job, settings)
    assert (result.outcome, result.attempts) == (Outcome.UNAVAILABLE, 1)
    assert status in result.message
    assert result.file is None and result.sha256 is None
    _assert_nothing_written(job)


@pytest.mark.parametrize(("behaviour", "outcome"), [("404_then_ok", Outcome.UNAVAILABLE),
                                                  ("410_then_ok", Outcome.UNAVAILABLE),
                                                  ("401_then_ok", Outcome.SIGN_IN_REQUIRED)])
def test_status_on_the_media_read(media_server, tone_sources, settings, tmp_path, behaviour, outcome):
    # yt-dlp resolves fine (request 1), then ffmpeg's read of the media URL is refused.
    media_server.add(YTID, tone_sources.webm, behaviour=behaviour, fail_after=1, fail_times=5)
    job = _job(tmp_path)
    result = fetch_clip(job, settings)
    assert (result.outcome, result.attempts) == (outcome, 1)
    assert "Server returned" in result.message
    _assert_nothing_written(job)


def test_403_is_forbidden_after_one_fresh_resolve(media_server, tone_sources, settings, tmp_path):
    media_server.add(YTID, tone_sources.webm, behaviour="403")
    job = _job(tmp_path)
    result = fetch_clip(job, dataclasses.replace(settings, max_retries=0))
    assert (result.outcome, result.attempts) == (Outcome.FORBIDDEN, 2)
    assert media_server.stats(YTID).requests == 2
    _assert_nothing_written(job)


def test_403_on_the_media_read_is_retried_with_a_new_resolve(media_server, tone_sources, settings, tmp_path):
    # Request 1 (yt-dlp) passes, request 2 (ffmpeg) gets 403: a signed URL that expired.
    media_server.add(YTID, tone_sources.webm, behaviour="403_then_ok", fail_after=1)
    job = _job(tmp_path)
    result = fetch_clip(job, dataclasses.replace(settings, max_retries=0))
    _assert_exact_clip(result, job, tone_sources.webm, settings)
    assert result.attempts == 2
    assert result.history[0].startswith("forbidden:") and "403" in result.history[0]
    assert media_server.stats(YTID).faults == 1


def test_401_is_sign_in_required_and_returns_at_once(media_server, tone_sources, settings, tmp_path):
    media_server.add(YTID, tone_sources.webm, behaviour="401")
    job = _job(tmp_path)
    result = fetch_clip(job, dataclasses.replace(settings, max_retries=3))
    assert (result.outcome, result.attempts) == (Outcome.SIGN_IN_REQUIRED, 1)
    assert result.outcome in THROTTLING and result.outcome in PERMANENT_FAILURES
    _assert_nothing_written(job)


def test_429_honours_retry_after_then_succeeds(media_server, tone_sources, settings, tmp_path):
    media_server.add(YTID, tone_sources.webm, behaviour="429_then_ok", retry_after=7)
    job = _job(tmp_path)
    first = fetch_clip(job, dataclasses.replace(settings, max_retries=3))
    assert (first.outcome, first.attempts, first.retry_after) == (Outcome.RATE_LIMITED, 1, 7.0)
    _assert_nothing_written(job)
    second = fetch_clip(job, settings)
    _assert_exact_clip(second, job, tone_sources.webm, settings)


def test_429_on_the_media_read_is_rate_limited_without_retry_after(media_server, tone_sources, settings, tmp_path):
    media_server.add(YTID, tone_sources.webm, behaviour="429_then_ok", fail_after=1)
    result = fetch_clip(_job(tmp_path), settings)
    assert (result.outcome, result.retry_after) == (Outcome.RATE_LIMITED, None)
    assert "429" in result.message


def test_500_then_ok_is_retried(media_server, tone_sources, settings, tmp_path):
    media_server.add(YTID, tone_sources.webm, behaviour="500_then_ok", fail_times=2)
    job = _job(tmp_path)
    result = fetch_clip(job, dataclasses.replace(settings, max_retries=2))
    _assert_exact_clip(result, job, tone_sources.webm, settings)
    assert result.attempts == 3
    assert [entry.split(":")[0] for entry in result.history] == ["transient", "transient", "ok"]


def test_persistent_500_is_transient_after_max_retries(media_server, tone_sources, settings, tmp_path):
    media_server.add(YTID, tone_sources.webm, behaviour="500")
    job = _job(tmp_path)
    result = fetch_clip(job, dataclasses.replace(settings, max_retries=2))
    assert (result.outcome, result.attempts) == (Outcome.TRANSIENT, 3)
    assert result.outcome not in PERMANENT_FAILURES
    _assert_nothing_written(job)


def test_500_on_the_media_read_is_retried(media_server, tone_sources, settings, tmp_path):
    media_server.add(YTID, tone_sources.webm, behaviour="500_then_ok", fail_after=1)
    job = _job(tmp_path)
    result = fetch_clip(job, settings)
    _assert_exact_clip(result, job, tone_sources.webm, settings)
    assert result.attempts == 2 and "5XX" in result.history[0]


def test_connection_reset_is_transient_and_retried(media_server, tone_sources, settings, tmp_path):
    media_server.add(YTID, tone_sources.webm, behaviour="reset_then_ok")
    job = _job(tmp_path)
    result = fetch_clip(job, settings)
    _assert_exact_clip(result, job, tone_sources.webm, settings)
    assert result.attempts == 2


def test_unresolvable_host_is_transient_never_unavailable(settings, tmp_path):
    settings = dataclasses.replace(settings, url_template="http://nonexistent.invalid/{ytid}", max_retries=0)
    result = fetch_clip(_job(tmp_path), settings)
    assert (result.outcome, result.attempts) == (Outcome.TRANSIENT, 1)
    assert "resolve" in result.message.lower()


def test_stalled_server_does_not_hang(media_server, tone_sources, settings, tmp_path):
    media_server.add(YTID, tone_sources.webm, behaviour="stall")
    job = _job(tmp_path)
    result = fetch_clip(job, dataclasses.replace(settings, max_retries=0))
    assert (result.outcome, result.attempts) == (Outcome.TRANSIENT, 1)
    _assert_nothing_written(job)


def test_stalled_ffmpeg_is_stopped_by_the_wall_clock_limit(media_server, tone_sources, settings, tmp_path):
    media_server.add(YTID, tone_sources.webm, behaviour="stall")
    slow = dataclasses.replace(settings, socket_timeout=30.0, process_timeout=1.0, max_retries=0)
    job = _job(tmp_path)
    result = fetch_clip(job, slow)
    assert result.outcome is Outcome.TRANSIENT
    assert "did not finish within 1 s" in result.message
    _assert_nothing_written(job)


def test_connection_dropped_mid_body_still_gives_the_whole_clip(media_server, tone_sources, settings, tmp_path):
    size = tone_sources.webm.stat().st_size
    # Cut inside the segment's bytes: without -reconnect ffmpeg would end the clip early.
    media_server.add(YTID, tone_sources.webm, behaviour="drop_mid_body", drop_at=int(size * 0.45))
    job = _job(tmp_path, 15, 25)
    result = fetch_clip(job, dataclasses.replace(settings, max_retries=0))
    _assert_exact_clip(result, job, tone_sources.webm, settings)
    assert media_server.stats(YTID).faults == 1


@pytest.mark.parametrize(("start", "end"), [(10.0, 20.0), (5.0, 15.0)])
def test_source_shorter_than_the_segment_is_too_short(media_server, tone_sources, settings, tmp_path, start, end):
    media_server.add(YTID, tone_sources.short_webm)
    job = _job(tmp_path, start, end)
    result = fetch_clip(job, dataclasses.replace(settings, max_retries=3))
    assert (result.outcome, result.attempts) == (Outcome.TOO_SHORT, 1)
    assert f"{tone_sources.short_seconds}" in result.message
    _assert_nothing_written(job)


def test_corrupt_body_is_a_decode_error(media_server, tone_sources, settings, tmp_path):
    media_server.add(YTID, tone_sources.webm, behaviour="corrupt")
    job = _job(tmp_path)
    result = fetch_clip(job, dataclasses.replace(settings, max_retries=3))
    assert (result.outcome, result.attempts) == (Outcome.DECODE_ERROR, 1)
    assert "Invalid data" in result.message and "127.0.0.1" not in result.message
    _assert_nothing_written(job)


def test_video_without_audio_is_a_decode_error(media_server, tone_sources, settings, tmp_path):
    media_server.add(YTID, tone_sources.video_only, content_type="video/webm")
    job = _job(tmp_path, 1, 3)
    result = fetch_clip(job, settings)
    assert result.outcome is Outcome.DECODE_ERROR
    _assert_nothing_written(job)


def test_short_body_is_truncated_after_retries(media_server, tone_sources, settings, tmp_path):
    media_server.add(YTID, tone_sources.webm, behaviour="truncated", fraction=0.5)
    job = _job(tmp_path, 15, 25)
    result = fetch_clip(job, dataclasses.replace(settings, max_retries=2))
    assert (result.outcome, result.attempts) == (Outcome.TRUNCATED, 3)
    assert "of the 10.000 s segment" in result.message
    _assert_nothing_written(job)


def test_whole_file_strategy_gives_the_same_clip(media_server, tone_sources, settings, tmp_path):
    media_server.add(YTID, tone_sources.webm)
    ranged = fetch_clip(_job(tmp_path / "range"), settings)
    job = _job(tmp_path / "whole")
    whole = fetch_clip(job, dataclasses.replace(settings, fetch_strategy="whole_file"))
    _assert_exact_clip(whole, job, tone_sources.webm, settings)
    # The whole stream crossed the network, not just the segment's byte ranges.
    assert whole.bytes_read >= tone_sources.webm.stat().st_size
    assert ranged.bytes_read < whole.bytes_read
    assert whole.sha256 == ranged.sha256


def test_whole_file_strategy_classifies_failures(media_server, tone_sources, settings, tmp_path):
    media_server.add(YTID, tone_sources.webm, behaviour="corrupt")
    media_server.add("shortsource", tone_sources.short_webm)
    whole = dataclasses.replace(settings, fetch_strategy="whole_file")
    corrupt = _job(tmp_path / "a")
    assert fetch_clip(corrupt, whole).outcome is Outcome.DECODE_ERROR
    short = _job(tmp_path / "b", 10, 20, ytid="shortsource")
    assert fetch_clip(short, whole).outcome is Outcome.TOO_SHORT
    _assert_nothing_written(corrupt)
    _assert_nothing_written(short)


def test_every_request_goes_through_the_proxy(media_server, tone_sources, settings, tmp_path):
    media_server.add(YTID, tone_sources.webm)
    # The host does not exist: only the proxy can answer.
    proxied = dataclasses.replace(
        settings, url_template="http://media.invalid/media/{ytid}.webm", proxy=media_server.base_url
    )
    job = _job(tmp_path)
    _assert_exact_clip(fetch_clip(job, proxied), job, tone_sources.webm, settings)
    log = media_server.stats(YTID).log
    assert len(log) >= 2 and all(record.via_proxy for record in log)


def test_existing_target_is_replaced_whole(media_server, tone_sources, settings, tmp_path):
    media_server.add(YTID, tone_sources.webm)
    job = _job(tmp_path)
    job.target.parent.mkdir(parents=True)
    job.target.write_bytes(b"stale")
    _assert_exact_clip(fetch_clip(job, settings), job, tone_sources.webm, settings)


def test_jobs_and_settings_pickle_and_run_in_another_process(media_server, tone_sources, settings, tmp_path):
    media_server.add(YTID, tone_sources.webm)
    job = _job(tmp_path)
    assert pickle.loads(pickle.dumps(job)) == job
    assert pickle.loads(pickle.dumps(settings)) == settings
    with concurrent.futures.ProcessPoolExecutor(max_workers=1) as pool:
        result = pool.submit(fetch_clip, job, settings).result(timeout=120)
    _assert_exact_clip(result, job, tone_sources.webm, settings)
    assert pickle.loads(pickle.dumps(result)) == result


@pytest.mark.parametrize("ytid", ["../../etc/pw", "short", "abcdefghij/", "abcdefghijkl", "abc defghij", ""])
def test_hostile_ids_are_refused_before_any_path_or_url(tmp_path, ytid):
    with pytest.raises(ValueError, match="invalid YouTube ID"):
        ClipJob(ytid, 0, 10, tmp_path / "x.wav")


def test_job_rejects_bad_segments_and_relative_targets(tmp_path):
    with pytest.raises(ValueError, match="start < end"):
        ClipJob(YTID, 10, 10, tmp_path / "x.wav")
    with pytest.raises(ValueError, match="start < end"):
        ClipJob(YTID, -1, 10, tmp_path / "x.wav")
    with pytest.raises(ValueError, match="absolute"):
        ClipJob(YTID, 0, 10, Path("relative/x.wav"))


def test_partial_names_are_recognisable_and_unique(tmp_path):
    target = tmp_path / "abcdefghijk_30000.wav"
    first, second = partial_path(target), partial_path(target, ".mka")
    assert first.parent == target.parent and first != partial_path(target)
    assert first.suffix == ".wav" and second.suffix == ".mka"
    assert is_partial_file(first) and is_partial_file(second)
    assert not is_partial_file(target)
    assert not is_partial_file(tmp_path / "manifest.csv")
    assert not is_partial_file(tmp_path / ".manifest.csv.x1y2.tmp")


def test_outcome_values_are_the_agreed_strings():
    assert [o.value for o in Outcome] == [
        "ok", "unavailable", "forbidden", "sign_in_required", "rate_limited",
        "transient", "too_short", "decode_error", "truncated", "tooling_error",
    ]
    assert Outcome("too_short") is Outcome.TOO_SHORT and str(Outcome.OK) == "ok"
    assert PERMANENT_FAILURES == {Outcome.UNAVAILABLE, Outcome.FORBIDDEN, Outcome.SIGN_IN_REQUIRED,
                                  Outcome.TOO_SHORT, Outcome.DECODE_ERROR}
    assert THROTTLING == {Outcome.RATE_LIMITED, Outcome.SIGN_IN_REQUIRED}
