"""The real runner (yt-dlp + ffmpeg) against a server that rate-limits extraction requests per address."""

from __future__ import annotations

from rate_limit_server import RateLimitedMediaServer
from test_download_helpers import (
    assert_manifests_equal_disk,
    candidate_frame,
    suitable_frame,
    youtube_run,
)

from audioset_tools.config import Config
from audioset_tools.download.plan import plan_download
from audioset_tools.sources.pacing import PacingSettings
from audioset_tools.sources.youtube.settings import FetchSettings


def test_a_sliding_window_limit_costs_retries_only_never_a_clip(tmp_path, tone_sources, ffmpeg_exe):
    classes = [("/m/a", "Speech")]
    rows = {"/m/a": [(f"rateLim{n:04d}", float(n), float(n) + 2.0) for n in range(9)]}
    with RateLimitedMediaServer(limit=4, window=1.0) as server:
        for ytid, _, _ in rows["/m/a"]:
            server.add(ytid, tone_sources.webm)
        settings = FetchSettings.from_config(
            Config.model_validate({"download": {"url_template": server.url_template(), "socket_timeout": 10.0}}),
            ffmpeg_exe,
        )
        plans = plan_download(suitable_frame(classes), candidate_frame(rows, classes), start_index=0,
                              end_index=None, samples_per_class=9, audio_format="wav")
        # Nothing configured: no pause, no budget; the limit is learned from the 429s.
        pacing = PacingSettings(sleep_between_requests=0.0, sleep_jitter=0.0, max_consecutive_rate_limits=20)
        summary = youtube_run(plans, settings, tmp_path / "out", workers=3, pacing=pacing)
        stats = server.address_stats("127.0.0.1")
    assert summary.outcomes["ok"] == 9 and not summary.stopped_by_throttling
    # Every refused extraction was recorded as a rate limit and fetched again, none as a lost clip.
    assert summary.outcomes["rate_limited"] == stats.throttled
    assert len(stats.accepted) == 9
    manifest = assert_manifests_equal_disk(tmp_path / "out")
    assert sorted(manifest["ytid"]) == [ytid for ytid, _, _ in rows["/m/a"]]
