"""End to end through real yt-dlp and real ffmpeg against the local media server."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import soundfile
from media import alignment_error, clip_seconds
from test_download_helpers import (
    assert_manifests_equal_disk,
    candidate_frame,
    suitable_frame,
    youtube_run,
)

from audioset_tools.config import Config
from audioset_tools.download.ledger import LEDGER_NAME
from audioset_tools.download.plan import plan_download
from audioset_tools.sources.output_spec import OutputSpec
from audioset_tools.sources.pacing import PacingSettings
from audioset_tools.sources.youtube.settings import FetchSettings

FAST = PacingSettings(sleep_between_requests=0.0, sleep_jitter=0.0, backoff_base_seconds=0.05,
                      backoff_max_seconds=0.2, max_consecutive_rate_limits=4)


def _settings(template: str, ffmpeg: str, **download) -> FetchSettings:
    values = {"url_template": template, "max_retries": 1, "socket_timeout": 3.0, "retry_backoff_seconds": 0.05}
    values.update(download)
    return FetchSettings.from_config(Config.model_validate({"download": values}), ffmpeg)


def _run(classes, rows, out, settings, target, workers=1, spec=OutputSpec(), **options):
    plans = plan_download(suitable_frame(classes), candidate_frame(rows, classes), start_index=0, end_index=None,
                          samples_per_class=target, audio_format=spec.audio_format)
    return youtube_run(plans, settings, out, spec=spec, workers=workers, pacing=FAST, **options)


def _latest_outcomes(out: Path) -> dict[str, str]:
    with sqlite3.connect(out / LEDGER_NAME) as db:
        return dict(db.execute("SELECT ytid, outcome FROM attempts ORDER BY id").fetchall())


def test_every_outcome_and_exact_segments(tmp_path, media_server, tone_sources, ffmpeg_exe):
    s = tone_sources
    served = {
        "okWebm00001": (s.webm, "ok", {}),
        "okM4a000001": (s.m4a, "ok", {}),
        "gone4040001": (s.webm, "404", {}),
        "gone4100001": (s.webm, "410", {}),
        "forbid40301": (s.webm, "403", {}),
        "throttle429": (s.webm, "429_then_ok", {"retry_after": 0.1}),
        "flaky500001": (s.webm, "500_then_ok", {}),
        "dropped0001": (s.webm, "drop_mid_body", {}),
        "corrupt0001": (s.webm, "corrupt", {}),
        "shortSrc001": (s.short_webm, "ok", {}),
    }
    for yt, (source, behaviour, extra) in served.items():
        media_server.add(yt, source, behaviour, **extra)
    classes = [("/m/a", "Speech"), ("/m/b", "Music")]
    rows = {
        "/m/a": [("okWebm00001", 12.5, 15.5), ("gone4040001", 0, 3), ("forbid40301", 0, 3),
                 ("throttle429", 20, 23), ("corrupt0001", 0, 3)],
        "/m/b": [("okM4a000001", 7, 10), ("gone4100001", 0, 3), ("flaky500001", 30, 33),
                 ("dropped0001", 1, 4), ("shortSrc001", 20, 23)],
    }
    out = tmp_path / "out"
    summary = _run(classes, rows, out, _settings(media_server.url_template(), ffmpeg_exe), target=10)
    assert summary.exit_code == 0
    outcomes = _latest_outcomes(out)
    assert outcomes == {
        "okWebm00001": "ok", "gone4040001": "unavailable", "forbid40301": "forbidden", "throttle429": "ok",
        "corrupt0001": "decode_error", "okM4a000001": "ok", "gone4100001": "unavailable", "flaky500001": "ok",
        "dropped0001": "ok", "shortSrc001": "too_short",
    }
    assert summary.outcomes["rate_limited"] == 1  # the 429 paused everyone, then the clip was fetched again
    manifest = assert_manifests_equal_disk(out)
    assert list(manifest["ytid"]) == ["okWebm00001", "throttle429", "okM4a000001", "flaky500001", "dropped0001"]
    sources = {"okM4a000001": s.m4a}
    for row in manifest.itertuples():
        path = out / row.file
        info = soundfile.info(path)
        assert (info.samplerate, info.channels) == (16000, 1)
        assert abs(info.frames / 16000 - 3.0) <= 0.05
        source = sources.get(row.ytid, s.webm)
        assert abs(alignment_error(path, source, row.start_seconds)) <= 0.03
        assert clip_seconds(path, start_offset=row.start_seconds % 1)[0] == int(row.start_seconds) + (
            1 if row.start_seconds % 1 else 0)
    text = summary.format()
    for word in ("unavailable", "forbidden", "decode_error", "too_short", "rate_limited", "ok"):
        assert word in text


def test_resume_skips_done_and_dead_and_retry_failed(tmp_path, media_server, tone_sources, ffmpeg_exe):
    media_server.add("okWebm00001", tone_sources.webm)
    media_server.add("okWebm00002", tone_sources.webm)
    media_server.add("gone4040001", tone_sources.webm, "404")
    classes = [("/m/a", "Speech")]
    rows = {"/m/a": [("gone4040001", 0, 2), ("okWebm00001", 0, 2), ("okWebm00002", 5, 7)]}
    out = tmp_path / "out"
    settings = _settings(media_server.url_template(), ffmpeg_exe)
    _run(classes, rows, out, settings, target=2)
    first = (out / "manifest.csv").read_bytes()
    media_server.reset_stats()
    summary = _run(classes, rows, out, settings, target=2)
    assert media_server.total_requests() == 0
    assert (summary.already_done, summary.known_failed) == (2, 1)
    assert (out / "manifest.csv").read_bytes() == first
    # The video came back: only --retry-failed asks again, and then it outranks the others.
    media_server.add("gone4040001", tone_sources.webm)
    summary = _run(classes, rows, out, settings, target=2, retry_failed=True)
    assert media_server.stats("gone4040001").requests > 0
    assert list(assert_manifests_equal_disk(out)["ytid"]) == ["gone4040001", "okWebm00001"]
    assert summary.discarded == 1


def test_workers_1_and_4_give_identical_manifests(tmp_path, media_server, tone_sources, ffmpeg_exe):
    classes = [("/m/a", "Speech"), ("/m/b", "Dog, bark")]
    rows = {"/m/a": [], "/m/b": []}
    for n in range(12):
        yt = f"clip{n:07d}"
        dead = n in (0, 3, 4, 9)
        media_server.add(yt, tone_sources.webm if n % 2 else tone_sources.m4a, "404" if dead else "ok")
        rows["/m/a" if n < 6 else "/m/b"].append((yt, float(n), float(n) + 2.0))
    settings = _settings(media_server.url_template(), ffmpeg_exe)
    _run(classes, rows, tmp_path / "one", settings, target=3, workers=1)
    _run(classes, rows, tmp_path / "four", settings, target=3, workers=4)
    one = assert_manifests_equal_disk(tmp_path / "one")
    assert (tmp_path / "one" / "manifest.csv").read_bytes() == (tmp_path / "four" / "manifest.csv").read_bytes()
    assert list(one["ytid"]) == ["clip0000001", "clip0000002", "clip0000005", "clip0000006", "clip0000007",
                                 "clip0000008"]
    for folder in ("Speech", "Dog_bark"):
        assert (tmp_path / "one" / folder / "manifest.csv").read_bytes() == (
            tmp_path / "four" / folder / "manifest.csv").read_bytes()


def test_cookie_file_is_never_modified_or_leaked(tmp_path, media_server, tone_sources, ffmpeg_exe, caplog,
                                                 monkeypatch):
    # A temp folder of our own, so other processes' cookie copies cannot blur the leftover check.
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    # The private copy folder of a run killed with -9: this run removes it.
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    (private_tmp / f"audioset-tools-cookies-{finished.pid}-leftover").mkdir()
    secret = "TopSecretCookieValue42"
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(
        "# Netscape HTTP Cookie File\n"
        f"127.0.0.1\tFALSE\t/\tFALSE\t2000000000\tSID\t{secret}\n"
    )
    cookies.chmod(0o600)
    before = (cookies.read_bytes(), cookies.stat().st_mtime_ns)
    for n in range(4):
        media_server.add(f"cookie{n:05d}", tone_sources.webm)
    rows = {"/m/a": [(f"cookie{n:05d}", float(n), n + 2.0) for n in range(4)]}
    out = tmp_path / "out"
    caplog.set_level(logging.DEBUG)
    summary = _run([("/m/a", "Speech")], rows, out, _settings(media_server.url_template(), ffmpeg_exe),
                   target=4, workers=2, cookies_file=cookies)
    assert summary.exit_code == 0 and len(assert_manifests_equal_disk(out)) == 4
    assert (cookies.read_bytes(), cookies.stat().st_mtime_ns) == before
    assert list(private_tmp.iterdir()) == []
    # The private copies were really used: the server saw the cookie.
    assert any(secret in r.cookie for n in range(4) for r in media_server.stats(f"cookie{n:05d}").log)
    assert secret not in caplog.text and secret not in summary.format()
    for path in out.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_proxies_are_used_and_a_dead_one_is_reported(tmp_path, media_server, tone_sources, ffmpeg_exe):
    for n in range(3):
        media_server.add(f"proxied{n:04d}", tone_sources.webm)
    rows = {"/m/a": [(f"proxied{n:04d}", float(n), n + 2.0) for n in range(3)]}
    # An unresolvable host: only a request that goes through the proxy can succeed.
    settings = _settings("http://media.invalid/media/{ytid}.webm", ffmpeg_exe)
    summary = _run([("/m/a", "Speech")], rows, tmp_path / "via", settings, target=3,
                   proxies=(media_server.base_url,))
    assert summary.exit_code == 0 and len(assert_manifests_equal_disk(tmp_path / "via")) == 3
    assert all(r.via_proxy for n in range(3) for r in media_server.stats(f"proxied{n:04d}").log)

    dead = "http://user:hunter2@127.0.0.1:9"
    summary = _run([("/m/a", "Speech")], rows, tmp_path / "dead", settings.__class__(
        **{**settings.__dict__, "max_retries": 0}), target=3, proxies=(dead,))
    assert summary.failing_identities == {"proxy http://***@127.0.0.1:9": 3}
    assert "hunter2" not in summary.format() and "***@127.0.0.1:9" in summary.format()


def test_every_try_inside_a_fetch_is_in_the_ledger(tmp_path, media_server, tone_sources, ffmpeg_exe):
    media_server.add("flaky500001", tone_sources.webm, "500_then_ok")
    out = tmp_path / "out"
    _run([("/m/a", "Speech")], {"/m/a": [("flaky500001", 0, 2)]}, out,
         _settings(media_server.url_template(), ffmpeg_exe), target=1)
    with sqlite3.connect(out / LEDGER_NAME) as db:
        attempts, history, outcome = db.execute("SELECT attempts, history, outcome FROM attempts").fetchone()
    assert outcome == "ok" and attempts == 2
    assert history.splitlines()[0].startswith("transient") and history.splitlines()[-1].startswith("ok")
