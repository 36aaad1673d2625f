"""Issue 9, item 3: a proxy password (or a cookie) never appears on a command line (``ps`` shows every user's).

The real CLI downloads through a proxy with a password while a watcher reads the command
line of every process on the machine, as ``ps`` would. The media server stands in for the
proxy and records the Proxy-Authorization header, so the test also proves the password
still reaches the proxy.
"""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path

import pytest
from test_download_helpers import assert_manifests_equal_disk, write_config, write_meta

import download_data

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "s3cretProxyPw42"
COOKIE = "s3cretCookieValue42"


@pytest.fixture(autouse=True)
def _script_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))


def _command_lines() -> list[tuple[int, str]]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "cmdline").read_bytes()
        except OSError:  # the process ended meanwhile
            continue
        found.append((int(entry.name), raw.replace(b"\0", b" ").decode("utf-8", "replace")))
    return found


class _Watcher(threading.Thread):
    """Reads every process's argv until stopped; keeps the ffmpeg ones of this test and any with the password."""

    def __init__(self, marker: str) -> None:
        super().__init__(daemon=True)
        self.marker = marker
        self.stop = threading.Event()
        self.ffmpeg_seen: set[int] = set()
        self.leaks: list[str] = []

    def run(self) -> None:
        own = os.getpid()
        while not self.stop.is_set():
            for pid, line in _command_lines():
                if pid == own:
                    continue
                if PASSWORD in line or COOKIE in line:
                    self.leaks.append(line)
                if "ffmpeg" in line and self.marker in line:
                    self.ffmpeg_seen.add(pid)


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs Linux /proc to read command lines")
def test_proxy_password_and_cookies_are_on_no_command_line(tmp_path, tone_sources):
    from media_server import MediaServer

    # Latency keeps each ffmpeg alive long enough to be seen by the watcher.
    with MediaServer(latency=0.3, proxy_credentials=f"alice:{PASSWORD}") as server:
        ytids = [f"proxy{n:06d}" for n in range(3)]
        for ytid in ytids:
            server.add(ytid, tone_sources.webm)
        write_meta(tmp_path / "meta", [("/m/a", "Speech")], {"/m/a": [(y, 1.0, 3.0) for y in ytids]})
        proxy = f"http://alice:{PASSWORD}@127.0.0.1:{server.port}"
        # The host does not resolve: only requests sent through the proxy can succeed.
        cookies = tmp_path / "cookies.txt"
        cookies.write_text(f"# Netscape HTTP Cookie File\nmedia.invalid\tFALSE\t/\tFALSE\t2000000000\tSID\t{COOKIE}\n")
        config = write_config(tmp_path, "http://media.invalid/media/{ytid}.webm", samples_per_class=3,
                              proxies=[proxy], cookies_file=str(cookies), socket_timeout=20.0)
        watcher = _Watcher(marker=str(tmp_path))
        watcher.start()
        try:
            code = download_data.main(["--config", str(config), "-q"])
        finally:
            watcher.stop.set()
            watcher.join()
        assert code == 0
        assert len(assert_manifests_equal_disk(tmp_path / "out")) == 3
        # The watcher really looked while ffmpeg ran, and saw no password or cookie anywhere.
        assert watcher.ffmpeg_seen
        assert watcher.leaks == []
        # The proxy still got the credentials: it answers 407 without them, and ffmpeg's
        # range reads (like yt-dlp's resolving GETs) were served through it.
        expected = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
        served = [r for ytid in ytids for r in server.stats(ytid).log if r.status != 407]
        assert all(r.via_proxy and r.proxy_authorization == expected for r in served)
        assert any(r.range for r in served) and any(not r.range for r in served)
        # The cookie was in use too (yt-dlp sent it), so its absence from argv means something.
        assert any(COOKIE in r.cookie for r in served)
