"""download.source_addresses through download_data.py: one pacer per address, media fetched from the resolving address.

tests/address_server.py budgets extraction requests per client address and refuses a media
read from any address other than the one that resolved the clip; 127.0.0.2 and 127.0.0.3
reach it on loopback as two identities.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import yaml
from address_server import AddressServer
from test_sources_e2e import PER_CLASS, _dataset_digest, _download, _world, video  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
ADDRESSES = ["127.0.0.2", "127.0.0.3"]


@pytest.fixture(autouse=True)
def _script_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))


def _config(folder: Path, server, **download) -> Path:
    settings = {
        "samples_per_class": PER_CLASS - 1, "url_template": server.url_template("wav"), "sleep_between_requests": 0.0,
        "sleep_jitter": 0.0, "backoff_base_seconds": 0.05, "backoff_max_seconds": 0.2, "max_retries": 1,
        "socket_timeout": 3.0, **download,
    }
    path = folder / "control.yaml"
    path.write_text(yaml.safe_dump({"paths": {"meta_dir": "meta", "output_dir": "out"}, "download": settings}))
    return path


def test_each_address_resolves_and_reads_its_own_clips_within_its_budget(tmp_path, video, capsys):  # noqa: F811
    # 4 extraction requests per 2 s per address; the budget asks for a little less.
    with AddressServer(limit=4, window=2.0) as server:
        _world(tmp_path, server, video)
        config = _config(tmp_path, server, workers=4, source_addresses=ADDRESSES, max_requests_per_hour=6480)
        assert _download(config) == 0
        shown = capsys.readouterr().out
        assert server.addresses() == ADDRESSES
        for address in ADDRESSES:
            counts = server.counts(address)
            assert counts.extractions >= 3, f"{address} was hardly used"
            assert counts.media_refused == 0, "yt-dlp and ffmpeg must send from the same address"
            assert counts.throttled <= 1
            assert f"via {address}: " in shown


def test_the_dataset_does_not_depend_on_the_addresses(tmp_path, video):  # noqa: F811
    digests = []
    with AddressServer(limit=1000, window=1.0) as server:
        for name, addresses in (("one", []), ("two", ADDRESSES)):
            folder = tmp_path / name
            folder.mkdir()
            _world(folder, server, video)
            assert _download(_config(folder, server, workers=2, source_addresses=addresses)) == 0
            digests.append(_dataset_digest(folder / "out"))
    assert digests[0] == digests[1]


def test_an_address_not_on_this_machine_fails_its_clips_as_transient_and_the_other_goes_on(tmp_path, video,  # noqa: F811
                                                                                            capsys):
    with AddressServer(limit=1000, window=1.0) as server:
        _world(tmp_path, server, video)
        config = _config(tmp_path, server, workers=2, source_addresses=["127.0.0.2", "192.0.2.1"])
        assert _download(config) == 0
        shown = capsys.readouterr().out
    assert server.addresses() == ["127.0.0.2"]
    with sqlite3.connect(tmp_path / "out" / "ledger.sqlite3") as db:
        messages = [m for (m,) in db.execute("SELECT message FROM attempts WHERE outcome = 'transient'")]
        # Nothing is learnt about a video that address could not ask for: a rerun tries it again.
        blamed = db.execute("SELECT COUNT(*) FROM failures WHERE message LIKE '%192.0.2.1%'").fetchone()[0]
    assert messages and all("192.0.2.1" in message for message in messages)
    assert blamed == 0
    assert "via 127.0.0.2: " in shown and "via 192.0.2.1: 0 ok" in shown


def test_doctor_checks_each_source_address(tmp_path, capsys):
    from audioset_tools.cli import main

    config = tmp_path / "control.yaml"
    config.write_text(yaml.safe_dump({"download": {"source_addresses": ["127.0.0.2", "192.0.2.1"]}}))
    assert main(["doctor", "--config", str(config), "--offline"]) == 1
    shown = capsys.readouterr().out
    assert "source address 127.0.0.2: an address of this machine" in shown
    assert "source address 192.0.2.1: not an address of this machine" in shown
