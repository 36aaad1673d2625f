"""The test infrastructure itself: Range support, fault behaviours and time-encoded media."""

from __future__ import annotations

import http.client
import subprocess
import urllib.error
import urllib.request

import numpy as np
import pytest
from media import (
    FFMPEG,
    alignment_error,
    clip_seconds,
    decode,
    make_tone_source,
    tone_frequency,
)
from media_server import MediaServer, _parse_range

YTID = "abcdefghijk"


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_range_requests_get_206_with_exact_bytes(media_server, tone_sources):
    media_server.add(YTID, tone_sources.webm)
    data = tone_sources.webm.read_bytes()
    status, headers, body = _get(media_server.url(YTID), {"Range": "bytes=100-199"})
    assert status == 206
    assert body == data[100:200]
    assert headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert headers["Content-Type"] == "audio/webm"
    status, _, body = _get(media_server.url(YTID), {"Range": "bytes=-10"})
    assert (status, body) == (206, data[-10:])
    status, headers, body = _get(media_server.url(YTID))
    assert (status, body) == (200, data)
    assert headers["Accept-Ranges"] == "bytes"
    status, _, _ = _get(media_server.url(YTID), {"Range": f"bytes={len(data)}-"})
    assert status == 416
    stats = media_server.stats(YTID)
    assert stats.requests == 4
    assert stats.bytes_sent == 100 + 10 + len(data)


@pytest.mark.parametrize(
    ("header", "expected"),
    [("bytes=0-", (0, 999)), ("bytes=5-10", (5, 10)), ("bytes=990-5000", (990, 999)),
     ("bytes=-5", (995, 999)), ("bytes=1000-", None), ("bytes=7-3", None), ("items=0-1", None), ("bytes=-", None)],
)
def test_parse_range(header, expected):
    assert _parse_range(header, 1000) == expected


@pytest.mark.parametrize("status", [401, 403, 404, 410, 500])
def test_status_behaviours(media_server, tone_sources, status):
    media_server.add(YTID, tone_sources.webm, behaviour=str(status))
    assert _get(media_server.url(YTID))[0] == status
    assert _get(media_server.url(YTID))[0] == status


def test_429_then_ok_sends_retry_after_then_serves(media_server, tone_sources):
    media_server.add(YTID, tone_sources.webm, behaviour="429_then_ok", retry_after=7, fail_times=2)
    for _ in range(2):
        status, headers, _ = _get(media_server.url(YTID))
        assert (status, headers["Retry-After"]) == (429, "7")
    status, _, body = _get(media_server.url(YTID))
    assert (status, body) == (200, tone_sources.webm.read_bytes())


def test_fail_after_lets_the_first_requests_pass(media_server, tone_sources):
    media_server.add(YTID, tone_sources.webm, behaviour="500_then_ok", fail_after=1)
    assert [_get(media_server.url(YTID))[0] for _ in range(3)] == [200, 500, 200]


def test_unknown_id_is_404_and_unknown_behaviour_is_rejected(media_server, tone_sources):
    assert _get(media_server.url("nobodyhere_"))[0] == 404
    with pytest.raises(ValueError, match="unknown behaviour"):
        media_server.add(YTID, tone_sources.webm, behaviour="explode")


def test_corrupt_and_truncated_bodies(media_server, tone_sources):
    data = tone_sources.webm.read_bytes()
    media_server.add(YTID, tone_sources.webm, behaviour="corrupt")
    status, headers, body = _get(media_server.url(YTID))
    assert status == 200 and len(body) == len(data) and body != data
    assert headers["Content-Type"] == "audio/webm"
    media_server.add(YTID, tone_sources.webm, behaviour="truncated", fraction=0.25)
    assert _get(media_server.url(YTID))[2] == data[: len(data) // 4]


def test_drop_mid_body_closes_early_once(media_server, tone_sources):
    data = tone_sources.webm.read_bytes()
    media_server.add(YTID, tone_sources.webm, behaviour="drop_mid_body", drop_at=1000)
    # A plain GET (what yt-dlp's resolving request looks like) is never cut.
    assert _get(media_server.url(YTID))[2] == data
    with pytest.raises((http.client.IncompleteRead, ConnectionError, urllib.error.URLError)):
        _get(media_server.url(YTID), {"Range": "bytes=0-"})
    assert media_server.stats(YTID).faults == 1
    assert _get(media_server.url(YTID), {"Range": "bytes=0-"})[2] == data


def test_stall_sends_headers_then_nothing(media_server, tone_sources):
    media_server.add(YTID, tone_sources.webm, behaviour="stall", stall_after=10)
    connection = http.client.HTTPConnection("127.0.0.1", media_server.port, timeout=0.5)
    connection.request("GET", f"/media/{YTID}.webm")
    response = connection.getresponse()
    assert response.status == 200
    assert response.read(10) == tone_sources.webm.read_bytes()[:10]
    with pytest.raises(TimeoutError):
        response.read(1)
    connection.close()


def test_reset_then_ok(media_server, tone_sources):
    media_server.add(YTID, tone_sources.webm, behaviour="reset_then_ok")
    with pytest.raises((ConnectionError, urllib.error.URLError, http.client.RemoteDisconnected)):
        _get(media_server.url(YTID))
    assert _get(media_server.url(YTID))[0] == 200


def test_acts_as_a_forward_proxy(media_server, tone_sources):
    media_server.add(YTID, tone_sources.webm)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": media_server.base_url}))
    with opener.open(f"http://media.invalid/media/{YTID}.webm", timeout=5) as response:
        assert response.read() == tone_sources.webm.read_bytes()
    assert [record.via_proxy for record in media_server.stats(YTID).log] == [True]


def test_bandwidth_shaping_paces_the_body(tone_sources):
    # Checked through the server's own bookkeeping, not a wall-clock assertion.
    with MediaServer(latency=0.0, bytes_per_second=200_000) as server:
        server.add(YTID, tone_sources.webm)
        status, _, body = _get(server.url(YTID), {"Range": "bytes=0-49999"})
        assert status == 206 and len(body) == 50_000


def test_sources_encode_time(tone_sources):
    samples = decode(tone_sources.webm)
    assert len(samples) == pytest.approx(tone_sources.seconds * 16000, abs=400)
    assert clip_seconds(tone_sources.webm) == list(range(tone_sources.seconds))
    assert clip_seconds(tone_sources.m4a) == list(range(tone_sources.seconds))
    assert clip_seconds(tone_sources.short_webm) == list(range(tone_sources.short_seconds))
    assert tone_frequency(3) != tone_frequency(4)


def test_long_sources_repeat_the_pattern_every_cycle(tmp_path):
    source = make_tone_source(tmp_path / "long.webm", 130, channels=1)
    clip = tmp_path / "cut.wav"
    subprocess.run([FFMPEG, "-loglevel", "error", "-nostdin", "-i", str(source),
                    "-ss", "97", "-t", "6", "-ac", "1", "-ar", "16000", str(clip)], check=True)
    assert clip_seconds(clip) == [97, 98, 99, 0, 1, 2]
    assert tone_frequency(101) == tone_frequency(1)


def test_clip_checks_detect_a_wrong_segment(tmp_path, tone_sources):
    """An independent ffmpeg cut of [12, 17] reads back as seconds 12..16, aligned."""
    clip = tmp_path / "cut.wav"
    subprocess.run([FFMPEG, "-loglevel", "error", "-nostdin", "-i", str(tone_sources.webm),
                    "-ss", "12", "-t", "5", "-ac", "1", "-ar", "16000", str(clip)], check=True)
    assert clip_seconds(clip) == [12, 13, 14, 15, 16]
    assert abs(alignment_error(clip, tone_sources.webm, 12.0)) < 0.005
    assert alignment_error(clip, tone_sources.webm, 12.1) == pytest.approx(-0.1, abs=0.005)
    assert np.isfinite(alignment_error(clip, tone_sources.webm, 11.9))
