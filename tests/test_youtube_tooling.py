"""YouTube tooling failures (JS challenges, no JS runtime, SABR-only formats) are not verdicts on videos.

YouTube cannot be reached here, so a stand-in extractor plays YouTube's part inside the real
``YoutubeDL`` the downloader builds: it warns exactly as yt-dlp 2026.10.26's YouTube
extractor does when our tooling is broken, and offers only storyboard images, so the
"Requested format is not available" error comes from yt-dlp's own format selection. When
the tooling is "fixed" it hands the media server's URL to yt-dlp's generic extractor, and
ffmpeg reads the real clip.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yt_dlp
from test_download_helpers import assert_manifests_equal_disk, write_config, write_meta
from yt_dlp.extractor.common import InfoExtractor

import download_data
from audioset_tools.config import load_config
from audioset_tools.download.ledger import LEDGER_NAME, Ledger
from audioset_tools.errors import UserError
from audioset_tools.sources.outcomes import PERMANENT_FAILURES, Outcome
from audioset_tools.sources.youtube import clip as clip_module
from audioset_tools.sources.youtube import resolve as resolve_module
from audioset_tools.sources.youtube.classify import (
    classify_message,
    classify_ytdlp_error,
    tooling_warning,
)

REPO = Path(__file__).resolve().parents[1]
EJS_WIKI = "https://github.com/yt-dlp/yt-dlp/wiki/EJS"
HELP = (
    "Ensure you have a supported JavaScript runtime and challenge solver script distribution installed. "
    f"Review any warnings presented before this message. For more details, refer to  {EJS_WIKI}"
)
# The texts of yt-dlp 2026.10.26 (yt_dlp/extractor/youtube/_video.py, jsc/_director.py, YoutubeDL.py).
N_CHALLENGE = f"[youtube] abcdefghijk: n challenge solving failed: Some formats may be missing. {HELP}"
SIGNATURE = f"[youtube] abcdefghijk: Signature solving failed: Some formats may be missing. {HELP}"
NO_RUNTIME = (
    "[youtube] No supported JavaScript runtime could be found. Only deno is enabled by default; to use another "
    "runtime add  --js-runtimes RUNTIME[:PATH]  to your command/config. YouTube extraction without a JS runtime "
    f"has been deprecated, and some formats may be missing. See  {EJS_WIKI}  for details on installing one"
)
SABR = (
    "[youtube] abcdefghijk: Some tv client https formats have been skipped as they are missing a URL. YouTube may "
    "have enabled the SABR-only streaming experiment for the current session. "
    "See  https://github.com/yt-dlp/yt-dlp/issues/12482  for more details"
)
REMOTE_COMPONENT = (
    "Remote component challenge solver script (deno) was skipped. It may be required to solve JS challenges. "
    f"You can enable the download with  --remote-components ejs:github  (recommended). For more information "
    f"and alternatives, refer to  {EJS_WIKI}"
)
OLD_SCRIPT = (
    "Challenge solver lib script version 0.3.0 is not supported (source: python package, variant: "
    "ScriptVariant.MINIFIED, supported version: 0.8.0)"
)
FORMAT_ERROR = "Requested format is not available. Use --list-formats for a list of available formats"


@pytest.mark.parametrize("text", [N_CHALLENGE, SIGNATURE, NO_RUNTIME, SABR, REMOTE_COMPONENT, OLD_SCRIPT])
def test_tooling_warnings_are_recognised(text):
    assert tooling_warning([f"WARNING: {text}"]) is not None


@pytest.mark.parametrize(
    "text",
    [
        FORMAT_ERROR,
        "No video formats found!",
        "Only images are available for download. use --list-formats to see them",
        N_CHALLENGE,
    ],
)
def test_tooling_messages_are_tooling_errors(text):
    assert classify_message(text) is Outcome.TOOLING_ERROR


def test_tooling_errors_are_not_permanent():
    assert Outcome.TOOLING_ERROR not in PERMANENT_FAILURES


@pytest.mark.parametrize(
    "text",
    [
        "Sign in to confirm you\u2019re not a bot. Use --cookies-from-browser or --cookies for the authentication.",
        "Video unavailable. This video has been removed by the uploader",
        "Private video. Sign in if you've been granted access to this video",
        "Video unavailable. This content isn\u2019t available, try again later.",
    ],
)
def test_youtubes_own_verdicts_are_kept(text):
    assert classify_message(text) is not Outcome.TOOLING_ERROR


class StandInYoutubeIE(InfoExtractor):
    """Answers the way yt-dlp's YouTube extractor does, broken or working, for the local server's pages."""

    _VALID_URL = r"https?://127\.0\.0\.1:\d+/watch/(?P<id>[A-Za-z0-9_-]{11})"
    IE_NAME = "standin_youtube"
    # "n_challenge", "no_runtime", "sabr", "removed" or "fixed".
    mode = "n_challenge"
    media_base = ""
    # What download.youtube.extractor_args delivered, per extraction.
    seen_player_clients: list = []
    available_in = 1.0
    announced_available_at = 0.0

    def _real_extract(self, url):
        video_id = self._match_id(url)
        mode = type(self).mode
        type(self).seen_player_clients.append(self._configuration_arg("player_client", ie_key="youtube"))
        if mode == "fixed":
            return self.url_result(f"{type(self).media_base}/media/{video_id}.webm", video_id=video_id)
        if mode == "available_at":
            # A format YouTube serves only from a given time (after a pre-roll ad).
            type(self).announced_available_at = time.time() + type(self).available_in
            return {
                "id": video_id, "title": video_id, "duration": 30,
                "formats": [{
                    "format_id": "251", "url": f"{type(self).media_base}/media/{video_id}.webm", "ext": "webm",
                    "acodec": "opus", "vcodec": "none", "available_at": int(type(self).announced_available_at) + 1,
                }],
            }
        if mode == "removed":
            self.raise_no_formats("Video unavailable. This video has been removed by the uploader", expected=True)
        warning = {"n_challenge": N_CHALLENGE, "no_runtime": NO_RUNTIME, "sabr": SABR}[mode]
        self.report_warning(warning.split(": ", 1)[1] if mode != "no_runtime" else warning, only_once=True)
        # What is left when every audio format was dropped: storyboard images.
        return {
            "id": video_id,
            "title": video_id,
            "formats": [{
                "format_id": "sb0", "url": f"{type(self).media_base}/sb/{video_id}.jpg", "ext": "mhtml",
                "protocol": "mhtml", "acodec": "none", "vcodec": "none", "format_note": "storyboard",
            }],
        }


class _Silent:
    def __init__(self):
        self.warnings = []

    def debug(self, message):
        pass

    info = error = debug

    def warning(self, message):
        self.warnings.append(message)


def _raised_through_ytdlp(mode: str) -> tuple[BaseException, list[str]]:
    StandInYoutubeIE.mode = mode
    StandInYoutubeIE.media_base = "http://127.0.0.1:1"
    logger = _Silent()
    with yt_dlp.YoutubeDL({"quiet": True, "logger": logger, "format": "bestaudio/best"}) as downloader:
        downloader.add_info_extractor(StandInYoutubeIE())
        with pytest.raises(yt_dlp.utils.DownloadError) as caught:
            downloader.extract_info("http://127.0.0.1:1/watch/abcdefghijk", download=False,
                                    ie_key=StandInYoutubeIE.ie_key())
    return caught.value, logger.warnings


@pytest.mark.parametrize("mode", ["n_challenge", "no_runtime", "sabr"])
def test_a_real_youtubedl_ends_broken_tooling_in_a_tooling_error(mode):
    error, warnings = _raised_through_ytdlp(mode)
    assert "Requested format is not available" in str(error)
    failure = classify_ytdlp_error(error, tuple(warnings))
    assert failure.outcome is Outcome.TOOLING_ERROR
    assert "yt-dlp warned" in failure.message


def test_a_network_failure_stays_a_network_failure_after_tooling_warnings():
    from yt_dlp.networking.exceptions import TransportError

    try:
        raise yt_dlp.utils.DownloadError("ERROR: Unable to download webpage: timed out",
                                         (TransportError, TransportError("timed out"), None))
    except yt_dlp.utils.DownloadError as exc:
        error = exc
    assert classify_ytdlp_error(error, (N_CHALLENGE,)).outcome is Outcome.TRANSIENT


def test_a_removed_video_stays_unavailable_even_after_tooling_warnings():
    error, _ = _raised_through_ytdlp("removed")
    assert classify_ytdlp_error(error, (N_CHALLENGE,)).outcome is Outcome.UNAVAILABLE


# -- end to end through download_data.py ------------------------------------------------------


@pytest.fixture
def standin_youtube(monkeypatch, media_server):
    """Every YoutubeDL the downloader builds tries the stand-in extractor first."""

    class WithStandIn(resolve_module._BoundedYoutubeDL):
        def __init__(self, params=None, *args, **kwargs):
            super().__init__(params, *args, **kwargs)
            standin = StandInYoutubeIE()
            standin.set_downloader(self)
            self._ies = {StandInYoutubeIE.ie_key(): standin, **self._ies}
            self._ies_instances[StandInYoutubeIE.ie_key()] = standin

    monkeypatch.setattr(resolve_module, "_BoundedYoutubeDL", WithStandIn)
    monkeypatch.syspath_prepend(str(REPO))
    StandInYoutubeIE.media_base = media_server.base_url
    StandInYoutubeIE.mode = "n_challenge"
    StandInYoutubeIE.seen_player_clients = []
    yield StandInYoutubeIE
    StandInYoutubeIE.mode = "n_challenge"


def _world(tmp_path, media_server, tone_sources, clips=5):
    rows = {"/m/a": []}
    for n in range(clips):
        ytid = f"toolclip{n:03d}"
        media_server.add(ytid, tone_sources.webm)
        rows["/m/a"].append((ytid, float(n), float(n) + 2.0))
    write_meta(tmp_path / "meta", [("/m/a", "Speech")], rows)
    return [ytid for ytid, _, _ in rows["/m/a"]]


@pytest.mark.parametrize("mode", ["n_challenge", "sabr"])
def test_broken_tooling_stops_the_run_and_leaves_every_clip_retryable(
    mode, tmp_path, media_server, tone_sources, standin_youtube, capsys
):
    ytids = _world(tmp_path, media_server, tone_sources)
    template = f"{media_server.base_url}/watch/{{ytid}}"
    config = write_config(tmp_path, template, samples_per_class=2, max_consecutive_tooling_errors=3)
    standin_youtube.mode = mode
    assert download_data.main(["--config", str(config), "-q"]) == 6
    out = capsys.readouterr().out
    assert "STOPPED" in out and 'pip install -U "yt-dlp[default]" yt-dlp-ejs deno' in out
    assert "tooling_error" in out
    with Ledger(tmp_path / "out" / LEDGER_NAME, read_only=True) as ledger:
        # Stopped after exactly three in a row, none of them remembered as a failure.
        assert [ledger.known_failure(y, n * 1000, n * 1000 + 2000) for n, y in enumerate(ytids)] == [None] * 5
        latest = ledger.latest_outcomes()
    # Each clip's message carries the warning of its own resolve (one YoutubeDL served all three).
    assert list(latest["outcome"]) == ["tooling_error"] * 3
    assert all(message.startswith("yt-dlp warned: [standin_youtube]") for message in latest["message"])
    assert sorted(latest["ytid"]) == ytids[:3]
    assert media_server.stats(ytids[0]).requests == 0

    # Tooling fixed: the same command resumes and takes the first clips in rank order.
    standin_youtube.mode = "fixed"
    assert download_data.main(["--config", str(config), "-q"]) == 0
    manifest = assert_manifests_equal_disk(tmp_path / "out")
    assert list(manifest["ytid"]) == ytids[:2]


def test_the_streak_length_is_a_config_key(tmp_path, media_server, tone_sources, standin_youtube, capsys):
    _world(tmp_path, media_server, tone_sources, clips=4)
    template = f"{media_server.base_url}/watch/{{ytid}}"
    config = write_config(tmp_path, template, samples_per_class=2, max_consecutive_tooling_errors=10)
    # Fewer candidates than the limit: the class runs out instead (short, exit 0), nothing marked failed.
    assert download_data.main(["--config", str(config), "-q"]) == 0
    assert "tooling_error     4" in capsys.readouterr().out


def test_extractor_args_reach_yt_dlp(tmp_path, media_server, tone_sources, standin_youtube):
    ytids = _world(tmp_path, media_server, tone_sources, clips=2)
    template = f"{media_server.base_url}/watch/{{ytid}}"
    args = {"extractor_args": {"YouTube": {"player_client": ["default", "mweb"]}, "youtubepot-x": {"k": 1}}}
    config = write_config(tmp_path, template, samples_per_class=2, youtube=args)
    standin_youtube.mode = "fixed"
    assert download_data.main(["--config", str(config), "-q"]) == 0
    assert standin_youtube.seen_player_clients == [["default", "mweb"]] * len(ytids)
    assert len(assert_manifests_equal_disk(tmp_path / "out")) == 2


def test_no_extractor_args_leaves_yt_dlp_its_defaults(tmp_path, media_server, tone_sources, standin_youtube):
    _world(tmp_path, media_server, tone_sources, clips=1)
    config = write_config(tmp_path, f"{media_server.base_url}/watch/{{ytid}}", samples_per_class=1)
    standin_youtube.mode = "fixed"
    assert download_data.main(["--config", str(config), "-q"]) == 0
    assert standin_youtube.seen_player_clients == [[]]


# -- download.youtube.extractor_args validation ------------------------------------------------


def test_extractor_args_are_normalised(tmp_path):
    config = tmp_path / "control.yaml"
    config.write_text(
        "download:\n  youtube:\n    extractor_args:\n"
        "      YouTube: {player_client: [default, mweb], skip: dash}\n"
        "      youtube-ejs: {dev: true}\n"
    )
    args = load_config(config).download.youtube.extractor_args
    assert args == {"youtube": {"player_client": ["default", "mweb"], "skip": ["dash"]}, "youtube-ejs": {"dev": ["true"]}}


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("[youtube]", "mapping of extractor"),
        ("{youtube: [player_client]}", "mapping of argument"),
        ("{'you tube': {a: [b]}}", "not an extractor name"),
        ("{youtube: {'a b': [c]}}", "not an argument name"),
        ("{youtube: {player_client: [{x: 1}]}}", "plain text"),
    ],
)
def test_bad_extractor_args_are_one_clear_message(tmp_path, value, hint):
    config = tmp_path / "control.yaml"
    config.write_text(f"download:\n  youtube:\n    extractor_args: {value}\n")
    with pytest.raises(UserError) as caught:
        load_config(config)
    assert "extractor_args" in str(caught.value) and hint in str(caught.value)


# -- available_at -------------------------------------------------------------------------------


def _media_reads(monkeypatch) -> list[float]:
    """When ffmpeg started reading each clip's media URL (the real read runs unchanged)."""
    reads: list[float] = []
    real = clip_module._write_segment

    def timed(job, settings, resolved, temporary):
        reads.append((time.time(), resolved.available_at))
        return real(job, settings, resolved, temporary)

    monkeypatch.setattr(clip_module, "_write_segment", timed)
    return reads


def test_the_media_url_is_read_only_once_the_format_is_available(
    tmp_path, media_server, tone_sources, standin_youtube, monkeypatch
):
    _world(tmp_path, media_server, tone_sources, clips=1)
    reads = _media_reads(monkeypatch)
    standin_youtube.mode, standin_youtube.available_in = "available_at", 1.0
    config = write_config(tmp_path, f"{media_server.base_url}/watch/{{ytid}}", samples_per_class=1)
    assert download_data.main(["--config", str(config), "-q"]) == 0
    assert len(reads) == 1
    read_at, available_at = reads[0]
    assert available_at is not None and read_at >= available_at
    assert len(assert_manifests_equal_disk(tmp_path / "out")) == 1


def test_a_format_available_too_late_is_a_transient_failure_and_is_not_read(
    tmp_path, media_server, tone_sources, standin_youtube, monkeypatch, capsys
):
    ytids = _world(tmp_path, media_server, tone_sources, clips=1)
    reads = _media_reads(monkeypatch)
    standin_youtube.mode, standin_youtube.available_in = "available_at", 3600.0
    config = write_config(tmp_path, f"{media_server.base_url}/watch/{{ytid}}", samples_per_class=1,
                          youtube={"max_wait_for_format_seconds": 5})
    assert download_data.main(["--config", str(config), "-q"]) == 0
    assert reads == [] and media_server.stats(ytids[0]).requests == 0
    assert "transient" in capsys.readouterr().out
    with Ledger(tmp_path / "out" / LEDGER_NAME, read_only=True) as ledger:
        assert ledger.known_failure(ytids[0], 0, 2000) is None
        assert "max_wait_for_format_seconds" in ledger.latest_outcomes()["message"].iloc[0]


def test_a_rebuild_with_broken_tooling_is_incomplete_never_gone(
    tmp_path, media_server, tone_sources, standin_youtube, capsys
):
    import csv
    import json

    from audioset_tools.cli import main
    from audioset_tools.download.rebuild import EXIT_INCOMPLETE, REBUILD_REPORT_NAME
    from audioset_tools.download.run_record import run_record_path

    _world(tmp_path, media_server, tone_sources, clips=4)
    config = write_config(tmp_path, f"{media_server.base_url}/watch/{{ytid}}", samples_per_class=4)
    standin_youtube.mode = "fixed"
    assert download_data.main(["--config", str(config), "-q"]) == 0
    capsys.readouterr()
    standin_youtube.mode = "n_challenge"
    rebuilt = tmp_path / "rebuilt"
    code = main(["rebuild", "--manifest", str(tmp_path / "out" / "manifest.csv"), "--output", str(rebuilt),
                 "--config", str(config), "-q"])
    assert code == EXIT_INCOMPLETE
    out = capsys.readouterr().out
    assert 'pip install -U "yt-dlp[default]" yt-dlp-ejs deno' in out and "n challenge solving failed" in out
    with (rebuilt / REBUILD_REPORT_NAME).open() as handle:
        statuses = {row["status"] for row in csv.DictReader(handle)}
    assert "gone" not in statuses and statuses <= {"failed", "not_attempted"}
    runs = json.loads(run_record_path(rebuilt).read_text())["runs"]
    assert [(r["command"], r["outcomes"]) for r in runs] == [("rebuild", {"tooling_error": 3})]
