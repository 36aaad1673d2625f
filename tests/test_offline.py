"""Offline, fast and honest: missing metadata named at once, an unreachable source caught up front."""

from __future__ import annotations

import http.server
import socket
import threading
from pathlib import Path

import pytest

from audioset_tools.cli import main
from audioset_tools.errors import UserError
from audioset_tools.metadata import ensure_files, official

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
