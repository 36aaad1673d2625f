"""Classification of yt-dlp errors and ffmpeg stderr.

YouTube's walls (bot check, age gate, private, removed) cannot be served by a local
server: they arrive as ``ExtractorError`` text from yt-dlp's YouTube extractor. These
tests raise them through a real ``YoutubeDL`` (an extractor that fails the way the
YouTube one does, with the same message construction), so the ``DownloadError`` wrapping
is yt-dlp's own. HTTP-level outcomes are covered end to end in test_fetch_clip.py.
"""

from __future__ import annotations

import email.utils

import pytest
import yt_dlp
from yt_dlp.extractor.common import InfoExtractor
from yt_dlp.utils import ExtractorError

from audioset_tools.sources.outcomes import Outcome
from audioset_tools.sources.youtube.classify import (
    bytes_read,
    classify_ffmpeg_failure,
    classify_message,
    classify_ytdlp_error,
    clean_message,
    ffmpeg_error_summary,
    input_duration,
    parse_retry_after,
)

LOGIN_HINT = (
    "Use --cookies-from-browser or --cookies for the authentication. See  "
    "https://github.com/yt-dlp/yt-dlp/wiki/FAQ#how-do-i-pass-cookies-to-yt-dlp  for how to manually pass cookies. "
    "Also see  https://github.com/yt-dlp/yt-dlp/wiki/Extractors#exporting-youtube-cookies  "
    "for tips on effectively exporting YouTube cookies"
)


class FailingIE(InfoExtractor):
    """Fails like yt-dlp's YouTube extractor does when playability says no."""

    _VALID_URL = r"failing:(?P<kind>\w+):(?P<id>.+)"
    IE_NAME = "failing"
    reason = ""

    def _real_extract(self, url):
        kind = self._match_valid_url(url).group("kind")
        if kind == "geo":
            self.raise_geo_restricted("The uploader has not made this video available in your country", ["DE"])
        if kind == "login":
            self.raise_login_required("Login details are needed to download this content", method="cookies")
        self.raise_no_formats(self.reason, expected=True)


def _raised(reason: str, kind: str = "reason") -> BaseException:
    FailingIE.reason = reason
    with yt_dlp.YoutubeDL({"quiet": True, "no_warnings": True, "logger": _Silent()}) as downloader:
        downloader.add_info_extractor(FailingIE())
        with pytest.raises(yt_dlp.utils.DownloadError) as caught:
            downloader.extract_info(f"failing:{kind}:abcdefghijk", download=False, ie_key=FailingIE.ie_key())
    return caught.value


class _Silent:
    def debug(self, message):
        pass

    info = warning = error = debug


@pytest.mark.parametrize(
    ("reason", "outcome"),
    [
        # The reasons YouTube sends, as yt-dlp's extractor decorates them (curly apostrophes included).
        (f"Sign in to confirm you\u2019re not a bot. {LOGIN_HINT}", Outcome.SIGN_IN_REQUIRED),
        (f"Sign in to confirm your age. This video may be inappropriate for some users. {LOGIN_HINT}",
         Outcome.SIGN_IN_REQUIRED),
        (f"Private video. Sign in if you've been granted access to this video. {LOGIN_HINT}", Outcome.UNAVAILABLE),
        ("Video unavailable. This video is no longer available because the YouTube account associated "
         "with this video has been terminated.", Outcome.UNAVAILABLE),
        ("Video unavailable. This video has been removed by the uploader", Outcome.UNAVAILABLE),
        ("Video unavailable", Outcome.UNAVAILABLE),
        ("This video is unavailable", Outcome.UNAVAILABLE),
        ("Join this channel to get access to members-only content like this video, and other exclusive perks.",
         Outcome.UNAVAILABLE),
        ("Video unavailable. This content isn\u2019t available, try again later. The current session has been "
         "rate-limited by YouTube for up to an hour.", Outcome.RATE_LIMITED),
        # "bestaudio/best" matches any video with audio: no format at all means our tooling is broken.
        ("Requested format is not available. Use --list-formats for a list of available formats",
         Outcome.TOOLING_ERROR),
        ("Unable to extract yt initial data; please report this issue", Outcome.TRANSIENT),
    ],
)
def test_youtube_reasons_through_a_real_youtubedl(reason, outcome):
    failure = classify_ytdlp_error(_raised(reason))
    assert failure.outcome is outcome
    assert not failure.message.startswith("ERROR:")


def test_geo_restriction_is_unavailable():
    assert classify_ytdlp_error(_raised("", kind="geo")).outcome is Outcome.UNAVAILABLE


def test_login_required_is_sign_in_required():
    assert classify_ytdlp_error(_raised("", kind="login")).outcome is Outcome.SIGN_IN_REQUIRED


def test_unsupported_page_is_a_decode_error(media_server, tmp_path):
    # A server answering with a web page that holds no media: yt-dlp's generic extractor gives up.
    page = tmp_path / "page.html"
    page.write_text("<html><head><title>Nothing</title></head><body>No media here.</body></html>")
    media_server.add("abcdefghijk", page, content_type="text/html")
    with yt_dlp.YoutubeDL({"quiet": True, "logger": _Silent()}) as downloader:
        with pytest.raises(yt_dlp.utils.DownloadError) as caught:
            downloader.extract_info(media_server.url("abcdefghijk"), download=False)
    assert classify_ytdlp_error(caught.value).outcome is Outcome.DECODE_ERROR


def test_status_decides_before_message():
    # An HTTPError cause wins over whatever the text says.
    assert classify_message("HTTP Error 404: Not Found") is Outcome.UNAVAILABLE
    assert classify_message("HTTP Error 403: Forbidden") is Outcome.FORBIDDEN
    assert classify_message("something nobody has seen before") is Outcome.TRANSIENT


FFMPEG_404 = """[http @ 0x1] HTTP error 404 Not Found
[in#0 @ 0x2] Error opening input: Server returned 404 Not Found
Error opening input file https://rr3---sn.googlevideo.com/videoplayback?expire=1&sig=SECRET.
Error opening input files: Server returned 404 Not Found
"""


@pytest.mark.parametrize(
    ("stderr", "outcome"),
    [
        (FFMPEG_404, Outcome.UNAVAILABLE),
        ("[http @ 0x1] HTTP error 410 Gone\nError opening input: Server returned 4XX Client Error, "
         "but not one of 40{0,1,3,4}", Outcome.UNAVAILABLE),
        ("Error opening input: Server returned 403 Forbidden (access denied)", Outcome.FORBIDDEN),
        ("Error opening input: Server returned 401 Unauthorized (authorization failed)", Outcome.SIGN_IN_REQUIRED),
        ("Error opening input: Server returned 429 Too Many Requests", Outcome.RATE_LIMITED),
        ("Error opening input: Server returned 5XX Server Error reply", Outcome.TRANSIENT),
        ("[http @ 0x1] Will reconnect at 0 in 1 second(s), error=Connection timed out.\n"
         "Error opening input: Input/output error", Outcome.TRANSIENT),
        ("[tcp @ 0x1] Failed to resolve hostname example.invalid: Name or service not known", Outcome.TRANSIENT),
        ("Error opening input: Invalid data found when processing input", Outcome.DECODE_ERROR),
        ("Stream map '' matches no streams.\nFailed to set value '0:a:0' for option 'map': Invalid argument",
         Outcome.DECODE_ERROR),
        ("something odd", Outcome.TRANSIENT),
    ],
)
def test_ffmpeg_failures(stderr, outcome):
    failure = classify_ffmpeg_failure(8, stderr)
    assert failure.outcome is outcome
    assert failure.retry_after is None


def test_ffmpeg_summary_drops_urls_and_restatements():
    summary = ffmpeg_error_summary(FFMPEG_404)
    assert "SECRET" not in summary and "googlevideo" not in summary
    assert "Server returned 404 Not Found" in summary
    assert classify_ffmpeg_failure(1, "").message == "ffmpeg exited with status 1"


def test_input_duration_and_bytes_read():
    stderr = (
        "Input #0, matroska,webm, from 'http://x/y.webm':\n  Duration: 00:01:02.50, start: 0.000000\n"
        "Output #0 ...\n  Duration: 00:00:10.00\n"
        "[AVIOContext @ 0x1] Statistics: 320020 bytes written, 4 seeks\n"
        "[AVIOContext @ 0x2] Statistics: 1000 bytes read, 2 seeks\n[AVIOContext @ 0x3] Statistics: 24 bytes read, 0 seeks\n"
    )
    assert input_duration(stderr) == pytest.approx(62.5)
    assert input_duration("  Duration: N/A, start: 0") is None
    assert bytes_read(stderr) == 1024
    assert bytes_read("no statistics") is None


def test_retry_after_forms():
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 7 ") == 7.0
    assert parse_retry_after("-5") == 0.0
    when = email.utils.formatdate(1_000_090, usegmt=True)
    assert parse_retry_after(when, now=1_000_000) == pytest.approx(90.0)
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None


def test_messages_are_one_bounded_line_without_proxy_passwords():
    message = clean_message("Unable to connect to proxy http://alice:s3cret@proxy.example:3128\n  twice " + "x" * 1000)
    assert "s3cret" not in message and "alice" not in message
    assert "http://***@proxy.example:3128" in message
    assert "\n" not in message and len(message) <= 400


def test_extractor_error_cause_chain_is_followed():
    from yt_dlp.networking.exceptions import TransportError

    error = ExtractorError("Unable to download webpage", cause=TransportError("timed out"), expected=True)
    assert classify_ytdlp_error(error).outcome is Outcome.TRANSIENT
