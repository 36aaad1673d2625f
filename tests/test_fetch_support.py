"""The pieces around fetch_clip: ffmpeg discovery, cookies, JS runtime, settings, audio facts."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yt_dlp

from audioset_tools.config import Config, load_config
from audioset_tools.dataset.audio_info import (
    AudioReadError,
    is_silent,
    probe_audio,
    sha256_file,
)
from audioset_tools.errors import UserError
from audioset_tools.sources import ffmpeg_bin
from audioset_tools.sources.base import ClipJob
from audioset_tools.sources.outcomes import Outcome
from audioset_tools.sources.output_spec import OutputSpec
from audioset_tools.sources.youtube.clip import ends_before_segment, fetch_clip
from audioset_tools.sources.youtube.cookies import (
    private_cookie_copy,
    remove_stale_cookie_copies,
    validate_cookies_file,
)
from audioset_tools.sources.youtube.js_runtime import (
    JsRuntime,
    resolve_js_runtime,
    runtime_executable,
)
from audioset_tools.sources.youtube.resolve import close_thread_downloader, ytdlp_params
from audioset_tools.sources.youtube.segment import transcode_segment
from audioset_tools.sources.youtube.settings import FetchSettings

SECRET = "SECRETVALUE0123456789"
COOKIES = (
    "# Netscape HTTP Cookie File\n"
    "# This is a generated file! Do not edit.\n\n"
    f"127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\t{SECRET}\n"
    f"#HttpOnly_.example.com\tTRUE\t/\tTRUE\t1893456000\tSID\t{SECRET}\n"
)


# -- ffmpeg ------------------------------------------------------------------------------
def test_default_ffmpeg_is_found_and_reports_version_and_https(monkeypatch):
    monkeypatch.delenv(ffmpeg_bin.ENV_VAR, raising=False)
    path = ffmpeg_bin.find_ffmpeg()
    assert Path(path).is_file()
    assert ffmpeg_bin.ffmpeg_version(path)[0].isalnum()
    assert {"http", "https"} <= ffmpeg_bin.ffmpeg_protocols(path)


def test_ffmpeg_override_and_environment(monkeypatch, tmp_path, ffmpeg_exe):
    assert ffmpeg_bin.find_ffmpeg(Path(ffmpeg_exe)) == ffmpeg_exe
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(UserError, match="download.ffmpeg_path") as caught:
        ffmpeg_bin.find_ffmpeg(fake)
    assert str(fake) in str(caught.value)
    with pytest.raises(UserError, match="download.ffmpeg_path"):
        ffmpeg_bin.find_ffmpeg(tmp_path / "missing")
    monkeypatch.setenv(ffmpeg_bin.ENV_VAR, str(fake))
    with pytest.raises(UserError, match=ffmpeg_bin.ENV_VAR):
        ffmpeg_bin.find_ffmpeg()
    monkeypatch.setenv(ffmpeg_bin.ENV_VAR, ffmpeg_exe)
    assert ffmpeg_bin.find_ffmpeg() == ffmpeg_exe


def test_ffmpeg_runs_in_its_own_session_so_a_terminal_ctrl_c_does_not_reach_it(tmp_path):
    # A stand-in ffmpeg that writes its session and process group into the output file.
    fake = tmp_path / "ffmpeg"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        "output = next(a for a in sys.argv if a.endswith('.wav'))\n"
        "open(output, 'w').write(f'{os.getsid(0)} {os.getpgid(0)}')\n"
    )
    fake.chmod(0o755)
    settings = FetchSettings.from_config(Config(), str(fake))
    output = tmp_path / "out.wav"
    run = transcode_segment(str(tmp_path / "source.webm"), output, 1.0, 2.0, OutputSpec(), settings)
    assert run.source_duration is None
    session, group = map(int, output.read_text().split())
    assert session != os.getsid(0) and group != os.getpgid(0)


def test_no_working_ffmpeg_anywhere_is_a_user_error(monkeypatch, tmp_path):
    monkeypatch.delenv(ffmpeg_bin.ENV_VAR, raising=False)
    monkeypatch.setattr(ffmpeg_bin, "_bundled_ffmpeg", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match="no working ffmpeg"):
        ffmpeg_bin.find_ffmpeg()


# -- cookies -----------------------------------------------------------------------------
def test_valid_cookies_file_counts_cookies(tmp_path):
    path = tmp_path / "cookies.txt"
    path.write_text(COOKIES)
    assert validate_cookies_file(path) == 2


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("# Netscape HTTP Cookie File\n.example.com\tTRUE\t/\tFALSE\t0\tSID\n", r"line 2: expected 7 .*found 6"),
        (f".example.com\tYES\t/\tFALSE\t0\tSID\t{SECRET}\n", r"line 1: field 2"),
        (f".example.com\tTRUE\t/\tFALSE\tsoon\tSID\t{SECRET}\n", r"line 1: field 5"),
        (f".example.com\tTRUE\t/\tmaybe\t0\tSID\t{SECRET}\n", r"line 1: field 4"),
        (f"\tTRUE\t/\tFALSE\t0\tSID\t{SECRET}\n", r"line 1: field 1"),
        (f"SID={SECRET}; path=/\n", r"line 1: expected 7"),
        (f'[{{"name": "SID", "value": "{SECRET}"}}]', "looks like JSON"),
        ("# Netscape HTTP Cookie File\n# nothing else\n", "contains no cookies"),
    ],
)
def test_bad_cookies_files_name_the_line_but_never_the_value(tmp_path, content, expected):
    path = tmp_path / "cookies.txt"
    path.write_text(content)
    with pytest.raises(UserError, match=expected) as caught:
        validate_cookies_file(path)
    assert SECRET not in str(caught.value)
    assert str(path) in str(caught.value)


def test_missing_or_binary_cookies_file(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        validate_cookies_file(tmp_path / "nope.txt")
    binary = tmp_path / "cookies.sqlite"
    binary.write_bytes(b"SQLite format 3\x00\xff\xfe")
    with pytest.raises(UserError, match="not a text file"):
        validate_cookies_file(binary)


def test_private_copy_is_0600_in_a_private_folder_and_removed(tmp_path):
    original = tmp_path / "cookies.txt"
    original.write_text(COOKIES)
    with private_cookie_copy(original) as copy:
        assert copy.read_bytes() == original.read_bytes()
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600
        assert stat.S_IMODE(copy.parent.stat().st_mode) == 0o700
        assert copy.parent != original.parent
        folder = copy.parent
    assert not folder.exists()
    with pytest.raises(RuntimeError):
        with private_cookie_copy(original) as copy:
            folder = copy.parent
            raise RuntimeError("worker crashed")
    assert not folder.exists()


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_cookie_copies_left_by_dead_processes_are_removed_and_nothing_else(tmp_path, monkeypatch):
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    original = tmp_path / "cookies.txt"
    original.write_text(COOKIES)
    # A real kill -9 of a process holding a private copy leaves its folder behind.
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from audioset_tools.sources.youtube.cookies import private_cookie_copy\n"
         "with private_cookie_copy(sys.argv[1]) as copy:\n"
         "    print(copy.parent, flush=True); time.sleep(600)\n", str(original)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(temp)},
    )
    killed = Path(holder.stdout.readline().strip())
    holder.kill()
    holder.wait()
    holder.stdout.close()
    assert killed.parent == temp and f"-{holder.pid}-" in killed.name and (killed / "cookies.txt").is_file()
    dead = _dead_pid()
    stale = temp / f"audioset-tools-cookies-{dead}-abc123"
    stale.mkdir()
    (stale / "cookies.txt").write_text(COOKIES)
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    linked = temp / f"audioset-tools-cookies-{dead}-link"
    linked.symlink_to(outside, target_is_directory=True)
    inner_link = stale / "escape"
    inner_link.symlink_to(outside, target_is_directory=True)
    alive = temp / f"audioset-tools-cookies-{os.getpid()}-xyz"
    alive.mkdir()
    unrelated = temp / f"other-tool-cookies-{dead}-abc"
    unrelated.mkdir()
    not_a_folder = temp / f"audioset-tools-cookies-{dead}-file"
    not_a_folder.write_text("x")

    with private_cookie_copy(original) as copy:
        assert copy.parent.name.startswith(f"audioset-tools-cookies-{os.getpid()}-")
        assert remove_stale_cookie_copies() == 2
        assert copy.is_file()
    assert not killed.exists() and not stale.exists()
    assert alive.is_dir() and unrelated.is_dir() and not_a_folder.is_file() and linked.is_symlink()
    assert (outside / "keep.txt").read_text() == "keep"


def test_fetch_with_cookies_sends_them_and_leaves_the_users_file_untouched(media_server, tone_sources, tmp_path):
    original = tmp_path / "cookies.txt"
    original.write_text(COOKIES)
    before = hashlib.sha256(original.read_bytes()).hexdigest()
    media_server.add("abcdefghijk", tone_sources.webm)
    with private_cookie_copy(original) as copy:
        settings = FetchSettings(
            url_template=media_server.url_template(), ffmpeg=ffmpeg_bin.find_ffmpeg(), cookies_file=copy,
            retry_backoff=0.0,
        )
        job = ClipJob("abcdefghijk", 1, 5, tmp_path / "out" / "abcdefghijk_1000.wav")
        result = fetch_clip(job, settings)
        # Closing yt-dlp makes it write its cookie jar back: into the copy, never the original.
        close_thread_downloader()
    assert result.outcome is Outcome.OK, result.message
    assert f"session={SECRET}" in media_server.stats("abcdefghijk").log[0].cookie
    assert hashlib.sha256(original.read_bytes()).hexdigest() == before
    assert SECRET not in result.message and all(SECRET not in entry for entry in result.history)


def test_a_deleted_cookie_copy_does_not_break_the_next_fetch(media_server, tone_sources, tmp_path):
    original = tmp_path / "cookies.txt"
    original.write_text(COOKIES)
    media_server.add("abcdefghijk", tone_sources.webm)
    common = {"url_template": media_server.url_template(), "ffmpeg": ffmpeg_bin.find_ffmpeg(), "retry_backoff": 0.0}
    with private_cookie_copy(original) as copy:
        job = ClipJob("abcdefghijk", 1, 3, tmp_path / "a" / "abcdefghijk_1000.wav")
        assert fetch_clip(job, FetchSettings(cookies_file=copy, **common)).outcome is Outcome.OK
    # Same thread, new settings: the cached yt-dlp of the finished run is closed first.
    job = ClipJob("abcdefghijk", 1, 3, tmp_path / "b" / "abcdefghijk_1000.wav")
    assert fetch_clip(job, FetchSettings(**common)).outcome is Outcome.OK
    close_thread_downloader()


# -- JavaScript runtime ----------------------------------------------------------------------
def test_default_runtime_is_the_bundled_deno_and_yt_dlp_accepts_it():
    runtime = resolve_js_runtime(None)
    assert runtime.name == "deno" and runtime.path and Path(runtime.path).is_file()
    assert runtime_executable(runtime) == runtime.path
    settings = FetchSettings(url_template="http://x/{ytid}", ffmpeg="ffmpeg", js_runtime=runtime)
    with yt_dlp.YoutubeDL(ytdlp_params(settings)) as downloader:
        info = downloader._js_runtimes["deno"].info
    assert info is not None and info.path == runtime.path


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("node", JsRuntime("node")), ("Deno:/usr/bin/deno", JsRuntime("deno", "/usr/bin/deno")),
     ("bun", JsRuntime("bun")), (" quickjs ", JsRuntime("quickjs"))],
)
def test_runtime_overrides(spec, expected):
    assert resolve_js_runtime(spec) == expected


@pytest.mark.parametrize(("spec", "message"), [("rhino", "unknown runtime 'rhino'"), ("deno:", "path after ':' is empty")])
def test_bad_runtime_overrides(spec, message):
    with pytest.raises(UserError, match=message):
        resolve_js_runtime(spec)


def test_runtime_option_shape():
    assert JsRuntime("node").ytdlp_option() == {"node": {}}
    assert JsRuntime("deno", "/x/deno").ytdlp_option() == {"deno": {"path": "/x/deno"}}
    assert runtime_executable(JsRuntime("deno", "/definitely/not/here")) is None


# -- settings ----------------------------------------------------------------------------
def test_settings_from_config(tmp_path):
    config = Config.model_validate(
        {
            "download": {"url_template": "http://mirror/{ytid}.webm", "fetch_strategy": "whole_file", "max_retries": 5,
                         "socket_timeout": 7, "duration_tolerance": 0.1, "retry_backoff_seconds": 3,
                         "backoff_max_seconds": 90, "js_runtime": "node"},
            "audio": {"format": "flac", "sample_rate": 22050, "channels": 2},
        }
    )
    settings = FetchSettings.from_config(config, "/bin/ffmpeg", cookies_copy=tmp_path / "c.txt", proxy="http://p:1")
    assert settings == FetchSettings(
        url_template="http://mirror/{ytid}.webm", ffmpeg="/bin/ffmpeg", fetch_strategy="whole_file", max_retries=5, socket_timeout=7.0, duration_tolerance=0.1,
        retry_backoff=3.0, retry_backoff_max=90.0, cookies_file=tmp_path / "c.txt", proxy="http://p:1",
        js_runtime=JsRuntime("node"),
    )
    assert settings.url_for("abcdefghijk") == "http://mirror/abcdefghijk.webm"


def test_socks_proxies_are_refused(tmp_path):
    with pytest.raises(ValueError, match="only http:// proxies"):
        FetchSettings(url_template="http://x/{ytid}", ffmpeg="ffmpeg", proxy="socks5://127.0.0.1:1080")
    with pytest.raises(UserError, match="only http:// proxies"):
        FetchSettings.from_config(Config(), "ffmpeg", proxy="socks5://127.0.0.1:1080")
    config = tmp_path / "control.yaml"
    config.write_text("download:\n  proxies: ['socks5://127.0.0.1:1080']\n")
    with pytest.raises(UserError, match="download.proxies"):
        load_config(config)


def test_site_reported_length_short_cuts_only_clear_shortfalls():
    # YouTube reports whole seconds, rounded down: 39 may mean 39.9, enough for [30, 40].
    assert not ends_before_segment(39, 40.0, 0.05)
    assert not ends_before_segment(None, 40.0, 0.05)
    assert ends_before_segment(38, 40.0, 0.05)
    assert ends_before_segment(5, 40.0, 0.05)


def test_settings_reject_bad_values():
    with pytest.raises(ValueError, match="ytid"):
        FetchSettings(url_template="http://x/", ffmpeg="ffmpeg")
    with pytest.raises(ValueError, match="audio_format"):
        OutputSpec(audio_format="mp3")
    with pytest.raises(ValueError, match="fetch_strategy"):
        FetchSettings(url_template="http://x/{ytid}", ffmpeg="ffmpeg", fetch_strategy="magic")


# -- audio_info --------------------------------------------------------------------------
def test_probe_and_checksum(tmp_path):
    path = tmp_path / "tone.wav"
    samples = 0.1 * np.sin(np.linspace(0, 2000, 16000 * 3)).astype("float32")
    soundfile.write(path, np.stack([samples, samples], axis=1), 16000, subtype="PCM_16")
    info = probe_audio(path)
    assert (info.sample_rate, info.channels, info.frames) == (16000, 2, 48000)
    assert info.duration == pytest.approx(3.0)
    assert sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not is_silent(path)


def test_silence_detection(tmp_path):
    zeros, constant, late_sound = tmp_path / "zeros.wav", tmp_path / "dc.flac", tmp_path / "late.wav"
    soundfile.write(zeros, np.zeros(16000 * 2, dtype="float32"), 16000)
    soundfile.write(constant, np.full(16000, 0.25, dtype="float32"), 16000)
    sound = np.zeros(200_000, dtype="float32")
    sound[-1] = 0.5  # past the first read block
    soundfile.write(late_sound, sound, 16000)
    assert is_silent(zeros) and is_silent(constant)
    assert not is_silent(late_sound)


def test_unreadable_audio_raises_audio_read_error(tmp_path):
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(os.urandom(1000))
    with pytest.raises(AudioReadError, match="garbage.wav"):
        probe_audio(garbage)
    with pytest.raises(AudioReadError):
        is_silent(garbage)
    with pytest.raises(AudioReadError):
        probe_audio(tmp_path / "missing.wav")
