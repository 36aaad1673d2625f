"""Offline, fast and honest: missing metadata named at once, an unreachable source caught up front."""

from __future__ import annotations

import http.server
import socket
import threading
from pathlib import Path

import pytest
from test_download_helpers import write_config, write_meta

from audioset_tools.cli import main
from audioset_tools.errors import UserError
from audioset_tools.select.metadata import ensure_files, official
from audioset_tools.sources.base import ClipJob
from audioset_tools.sources.ffmpeg_bin import find_ffmpeg
from audioset_tools.sources.youtube import reachability
from audioset_tools.sources.youtube.clip import fetch_clip
from audioset_tools.sources.youtube.settings import FetchSettings

FIXTURES = Path(__file__).parent / "fixtures" / "metadata"
ALL_FILES = official.needed_files(["balanced", "unbalanced", "eval"])


def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_every_missing_file_is_named_in_one_message_with_url_and_destination(tmp_path, monkeypatch) -> None:
    port = closed_port()
    for name in ALL_FILES:
        host = "nonexistent.invalid" if name == official.ONTOLOGY else f"127.0.0.1:{port}"
        monkeypatch.setitem(official.OFFICIAL_URLS, name, f"http://{host}/{name}")
    target = tmp_path / "metadata"
    with pytest.raises(UserError) as info:
        ensure_files(target, ALL_FILES)
    message = info.value.message
    assert message.startswith(f"5 metadata files are missing from {target}")
    for name in ALL_FILES:
        assert official.OFFICIAL_URLS[name] in message
        assert f"-> {target / name}" in message
    assert "nonexistent.invalid: " in message and "127.0.0.1: " in message
    assert not target.exists()


def test_files_already_there_are_not_named_and_a_dead_host_is_asked_once(tmp_path, monkeypatch) -> None:
    target = tmp_path / "metadata"
    target.mkdir()
    (target / official.ONTOLOGY).write_bytes((FIXTURES / official.ONTOLOGY).read_bytes())
    attempts: list[str] = []
    real_fetch = official.fetch_file

    def counting_fetch(name: str, folder: Path) -> Path:
        attempts.append(name)
        return real_fetch(name, folder)

    monkeypatch.setattr(official, "fetch_file", counting_fetch)
    port = closed_port()
    for name in ALL_FILES:
        monkeypatch.setitem(official.OFFICIAL_URLS, name, f"http://127.0.0.1:{port}/{name}")
    with pytest.raises(UserError) as info:
        ensure_files(target, ALL_FILES)
    assert info.value.message.startswith("4 metadata files are missing")
    assert official.ONTOLOGY not in info.value.message
    assert attempts == [official.QUALITY]  # the others share its host, which refused


def test_a_host_that_answers_404_is_asked_for_each_file(tmp_path, monkeypatch) -> None:
    _CountingHandler.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CountingHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for name in ALL_FILES:
            monkeypatch.setitem(official.OFFICIAL_URLS, name, f"http://127.0.0.1:{server.server_address[1]}/{name}")
        with pytest.raises(UserError) as info:
            ensure_files(tmp_path / "metadata", ALL_FILES)
    finally:
        server.shutdown()
        server.server_close()
    assert sorted(_CountingHandler.hits) == sorted(f"/{name}" for name in ALL_FILES)
    assert "HTTP 404" in info.value.message


def test_select_offline_names_all_five_files_once(tmp_path, monkeypatch, capsys) -> None:
    for name in ALL_FILES:
        monkeypatch.setitem(official.OFFICIAL_URLS, name, f"http://nonexistent.invalid/{name}")
    (tmp_path / "control.yaml").write_text("seed: 0\n")
    assert main(["select", "--config", str(tmp_path / "control.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1
    for name in ALL_FILES:
        assert f"nonexistent.invalid/{name}" in err
    assert "audioset-tools demo" in err


# -- download: the source is checked once before anything starts ------------------------------


def _download_world(tmp_path: Path, url_template: str, **download) -> Path:
    rows = {"/m/a": [(f"offline{n:04d}", 0.0, 2.0) for n in range(5)]}
    write_meta(tmp_path / "meta", [("/m/a", "Speech")], rows)
    return write_config(tmp_path, url_template, **download)


@pytest.mark.parametrize("where", ["dns", "closed_port"])
def test_download_stops_at_once_with_exit_4_and_one_line_when_the_source_does_not_answer(
    tmp_path, capsys, where
) -> None:
    if where == "dns":
        template, expected = "http://nonexistent.invalid/{ytid}.webm", "cannot resolve nonexistent.invalid (DNS"
    else:
        port = closed_port()
        template, expected = f"http://127.0.0.1:{port}/{{ytid}}.webm", f"connection refused by 127.0.0.1:{port}"
    config = _download_world(tmp_path, template, max_retries=3, retry_backoff_seconds=30.0)
    assert main(["download", "--config", str(config), "-q"]) == 4
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: the download source does not answer: ")
    assert expected in captured.err
    assert "Traceback" not in captured.err
    assert not (tmp_path / "out").exists()  # nothing tried, nothing recorded


def test_a_reachable_source_passes_the_check_whatever_it_answers_for_the_root(media_server) -> None:
    result = reachability.check_source(media_server.url_template())
    assert result.ok and result.url == media_server.base_url + "/"
    assert "answered HTTP 404" in result.detail  # the test server serves only /media/...


def test_through_a_proxy_the_proxy_resolves_the_host(media_server) -> None:
    result = reachability.check_source("http://nonexistent.invalid/media/{ytid}.webm", [media_server.base_url])
    assert result.ok and "through proxy" in result.detail
    port = closed_port()
    dead = reachability.check_source("http://nonexistent.invalid/{ytid}", [f"http://user:secret@127.0.0.1:{port}"])
    assert not dead.ok
    assert f"proxy http://127.0.0.1:{port}: connection refused" in dead.detail
    assert "secret" not in dead.detail


def test_a_resolver_that_never_answers_is_not_waited_for(monkeypatch) -> None:
    release = threading.Event()

    def hanging_lookup(*args, **kwargs):
        release.wait(30)
        raise OSError("released")

    monkeypatch.setattr(socket, "getaddrinfo", hanging_lookup)
    try:
        result = reachability.check_source("https://www.youtube.com/watch?v={ytid}", dns_timeout=0.2)
    finally:
        release.set()
    assert not result.ok and result.detail == "cannot resolve www.youtube.com (DNS: no answer within 0.2 s)"


def test_sources_that_are_not_http_are_not_checked() -> None:
    assert reachability.check_source("file:///data/{ytid}.webm").ok


# -- per clip: a DNS failure is one short line and is not retried with backoff -----------------

def _settings(template: str) -> FetchSettings:
    return FetchSettings(url_template=template, ffmpeg=find_ffmpeg(), max_retries=3, socket_timeout=2.0,
                         retry_backoff=0.0)


def test_a_dns_failure_is_one_short_line_and_not_retried(tmp_path) -> None:
    job = ClipJob("abcdefghijk", 0.0, 2.0, tmp_path / "out" / "a.wav")
    result = fetch_clip(job, _settings("http://nonexistent.invalid/{ytid}.webm"))
    assert result.outcome.value == "transient"
    assert result.attempts == 1 and len(result.history) == 1
    assert result.message.startswith("cannot resolve nonexistent.invalid (DNS: ")
    assert len(result.message) < 100


def test_a_refused_connection_is_one_short_line_and_retried(tmp_path) -> None:
    port = closed_port()
    job = ClipJob("abcdefghijk", 0.0, 2.0, tmp_path / "out" / "a.wav")
    result = fetch_clip(job, _settings(f"http://127.0.0.1:{port}/{{ytid}}.webm"))
    assert result.outcome.value == "transient"
    assert result.attempts == 4  # 1 + max_retries: a refused connection may be a server restarting
    assert result.message == f"connection refused by 127.0.0.1:{port}"


def test_rebuild_checks_the_source_first_too(tmp_path, media_server, tone_sources, capsys) -> None:
    config = _download_world(tmp_path, media_server.url_template(), samples_per_class=2)
    for n in range(5):
        media_server.add(f"offline{n:04d}", tone_sources.webm)
    assert main(["download", "--config", str(config), "-q"]) == 0
    capsys.readouterr()
    offline = write_config(tmp_path, "http://nonexistent.invalid/{ytid}.webm")
    code = main(["rebuild", "--config", str(offline), "-q",
                 "--manifest", str(tmp_path / "out" / "manifest.csv"), "--output", str(tmp_path / "again")])
    assert code == 4
    assert "cannot resolve nonexistent.invalid (DNS" in capsys.readouterr().err
    assert not (tmp_path / "again").exists()


# -- doctor: one request to the configured source, or clearly skipped ---------------------------

def _doctor(tmp_path: Path, capsys, template: str, *extra: str) -> tuple[int, str]:
    config = tmp_path / "control.yaml"
    config.write_text(f"download:\n  url_template: {template!r}\npaths:\n  output_dir: out\n")
    code = main(["doctor", "--config", str(config), *extra])
    return code, capsys.readouterr().out


def test_doctor_reports_an_unreachable_source_as_a_failure(tmp_path, capsys) -> None:
    code, out = _doctor(tmp_path, capsys, "http://nonexistent.invalid/{ytid}")
    assert code == 1
    assert "[FAIL] network: http://nonexistent.invalid/ does not answer: cannot resolve nonexistent.invalid" in out


def test_doctor_reports_a_reachable_source_with_one_request(tmp_path, capsys, media_server) -> None:
    code, out = _doctor(tmp_path, capsys, media_server.url_template())
    assert f"[  ok] network: {media_server.base_url}/: 127.0.0.1:{media_server.port} answered HTTP 404" in out
    assert code == 0


def test_doctor_offline_says_the_network_was_skipped(tmp_path, capsys, media_server) -> None:
    code, out = _doctor(tmp_path, capsys, "http://nonexistent.invalid/{ytid}", "--offline")
    assert "[skip] network: not checked (--offline)" in out
    assert "[FAIL] network" not in out


def test_a_proxy_from_the_environment_is_used_like_yt_dlp_and_ffmpeg_would(monkeypatch, media_server) -> None:
    monkeypatch.setenv("http_proxy", media_server.base_url)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    result = reachability.check_source("http://nonexistent.invalid/media/{ytid}.webm")
    assert result.ok and "through proxy" in result.detail


def test_a_server_that_never_answers_is_not_waited_for_beyond_the_bound() -> None:
    # Accepts connections (the kernel completes the handshake) but never says anything.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        template = f"http://127.0.0.1:{silent.getsockname()[1]}/{{ytid}}"
        result = reachability.check_source(template, request_timeout=0.5)
    assert not result.ok
    assert "127.0.0.1" in result.detail
    assert "timed out" in result.detail or "within 0.5 s" in result.detail


def test_ffmpeg_failing_to_resolve_the_media_host_is_one_short_line_and_final() -> None:
    import subprocess

    from audioset_tools.sources.youtube.classify import classify_ffmpeg_failure

    # Media URLs often live on another host than the page (googlevideo.com for YouTube).
    completed = subprocess.run(
        [find_ffmpeg(), "-hide_banner", "-nostdin", "-i", "http://nonexistent.invalid/a.webm", "-f", "null", "-"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    failure = classify_ffmpeg_failure(completed.returncode, completed.stderr)
    assert failure.outcome.value == "transient" and not failure.worth_retrying
    assert failure.message.startswith("cannot resolve nonexistent.invalid (DNS: ")


def test_dns_failing_mid_run_stops_the_run_without_any_backoff(tmp_path) -> None:
    """The source answered before the start; then name resolution fails for every clip."""
    from test_download_helpers import youtube_run

    from audioset_tools.download.ledger import LEDGER_NAME, Ledger
    from audioset_tools.download.plan import Candidate, ClassPlan
    from audioset_tools.sources.pacing import PacingSettings

    candidates = tuple(
        Candidate(f"dnsfail{n:04d}", 0.0, 2.0, n, "/m/a", f"Speech/dnsfail{n:04d}_0.wav") for n in range(8)
    )
    plan = ClassPlan(0, "/m/a", "Speech", "train", "Speech", 4, candidates)
    settings = FetchSettings(url_template="http://nonexistent.invalid/{ytid}.webm", ffmpeg=find_ffmpeg(),
                             max_retries=3, retry_backoff=60.0)
    summary = youtube_run([plan], settings, tmp_path / "out", max_consecutive_transient=3,
                          pacing=PacingSettings(sleep_between_requests=0.0, sleep_jitter=0.0))
    assert summary.stopped_by_network and summary.exit_code == 4
    with Ledger(tmp_path / "out" / LEDGER_NAME, read_only=True) as ledger:
        latest = ledger.latest_outcomes()
    assert list(latest["outcome"]) == ["transient"] * 3
    assert all(message.startswith("cannot resolve nonexistent.invalid (DNS") for message in latest["message"])
    import sqlite3

    with sqlite3.connect(tmp_path / "out" / LEDGER_NAME) as db:
        assert db.execute("SELECT DISTINCT attempts FROM attempts").fetchall() == [(1,)]  # no retries
