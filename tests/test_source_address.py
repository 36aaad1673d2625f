"""Sending from a chosen source address: real yt-dlp and real ffmpeg against the per-address server.

The server (tests/address_server.py) serves a clip's media only to the address that
resolved it, as YouTube does, so an ok clip proves yt-dlp and ffmpeg bound the same address.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from address_server import AddressServer

from audioset_tools.sources.base import ClipJob
from audioset_tools.sources.ffmpeg_bin import find_ffmpeg
from audioset_tools.sources.outcomes import Outcome
from audioset_tools.sources.output_spec import OutputSpec
from audioset_tools.sources.youtube import segment
from audioset_tools.sources.youtube.classify import FetchFailure
from audioset_tools.sources.youtube.clip import fetch_clip
from audioset_tools.sources.youtube.resolve import ytdlp_params
from audioset_tools.sources.youtube.segment import (
    network_input_options,
    transcode_segment,
)
from audioset_tools.sources.youtube.settings import FetchSettings

YTIDS = ("abcdefghijk", "bcdefghijkl")
# TEST-NET-1 (RFC 5737): never an address of this machine. Binding it fails locally; nothing is sent.
FOREIGN = "192.0.2.1"


@pytest.fixture
def server(tone_sources) -> AddressServer:
    with AddressServer(limit=100, window=60) as running:
        for ytid in YTIDS:
            running.add(ytid, tone_sources.webm)
        yield running


@pytest.fixture
def settings(server: AddressServer) -> FetchSettings:
    return FetchSettings(
        url_template=server.url_template("webm"), ffmpeg=find_ffmpeg(), max_retries=1, socket_timeout=5.0,
        retry_backoff=0.0,
    )


def _job(tmp_path: Path, ytid: str = YTIDS[0]) -> ClipJob:
    return ClipJob(ytid, 12.0, 22.0, tmp_path / "out" / f"{ytid}_12000.wav")


def test_both_tools_get_the_same_address() -> None:
    settings = FetchSettings(url_template="http://h/{ytid}", ffmpeg="ffmpeg", source_address="127.0.0.2")
    assert ytdlp_params(settings)["source_address"] == "127.0.0.2"
    assert network_input_options(settings, ())["local_addr"] == "127.0.0.2"
    default = dataclasses.replace(settings, source_address=None)
    assert "source_address" not in ytdlp_params(default)
    assert "local_addr" not in network_input_options(default, ())


@pytest.mark.parametrize("strategy", ["range", "whole_file"])
def test_extraction_and_media_reads_leave_from_the_source_address(server, settings, tmp_path, strategy) -> None:
    settings = dataclasses.replace(settings, source_address="127.0.0.2", fetch_strategy=strategy)
    job = _job(tmp_path)
    result = fetch_clip(job, settings)
    assert result.outcome is Outcome.OK, result.message
    assert job.target.is_file()
    counts = server.counts("127.0.0.2")
    assert counts.extractions == 1
    assert counts.media_reads >= 1 and counts.media_refused == 0
    # Nothing left from the default address.
    assert server.addresses() == ["127.0.0.2"]


def test_clips_on_different_addresses_each_stay_on_theirs(server, settings, tmp_path) -> None:
    for ytid, address in zip(YTIDS, ("127.0.0.2", "127.0.0.3")):
        result = fetch_clip(_job(tmp_path, ytid), dataclasses.replace(settings, source_address=address))
        assert result.outcome is Outcome.OK, result.message
        assert server.resolved_by(ytid) == address
    for address in ("127.0.0.2", "127.0.0.3"):
        counts = server.counts(address)
        assert (counts.extractions, counts.media_refused) == (1, 0) and counts.media_reads >= 1


def test_ffmpeg_without_the_resolving_address_is_refused(server, settings, tmp_path, monkeypatch) -> None:
    # The control: if only yt-dlp bound the address, the server would refuse ffmpeg's reads.
    def without_local_addr(settings, headers):
        options = network_input_options(settings, headers)
        options.pop("local_addr")
        return options

    monkeypatch.setattr(segment, "network_input_options", without_local_addr)
    result = fetch_clip(_job(tmp_path), dataclasses.replace(settings, source_address="127.0.0.2"))
    assert result.outcome is Outcome.FORBIDDEN
    assert server.counts("127.0.0.1").media_refused >= 1


@pytest.mark.parametrize("strategy", ["range", "whole_file"])
def test_an_address_not_on_this_machine_is_transient_with_a_clear_message(server, settings, tmp_path, strategy) -> None:
    job = _job(tmp_path)
    result = fetch_clip(job, dataclasses.replace(settings, source_address=FOREIGN, fetch_strategy=strategy))
    assert result.outcome is Outcome.TRANSIENT
    assert FOREIGN in result.message and "not an address of this machine" in result.message
    assert "download.source_addresses" in result.message
    # Retrying at once would only fail again.
    assert result.attempts == 1
    assert server.addresses() == []
    assert not job.target.parent.exists() or list(job.target.parent.iterdir()) == []


def test_ffmpeg_reports_an_unbindable_address_as_transient(server, settings, tmp_path) -> None:
    # yt-dlp fails first in a real fetch; here ffmpeg meets the foreign address on its own.
    settings = dataclasses.replace(settings, source_address=FOREIGN)
    with pytest.raises(FetchFailure) as raised:
        transcode_segment(
            server.url(YTIDS[0]), tmp_path / "clip.wav", 12.0, 10.0, OutputSpec(), settings,
            network_input_options(settings, ()),
        )
    failure = raised.value.failure
    assert failure.outcome is Outcome.TRANSIENT and not failure.worth_retrying
    assert FOREIGN in failure.message and "cannot assign requested address" in failure.message.lower()
    assert server.addresses() == []


def test_through_a_proxy_both_tools_reach_it_from_the_source_address(server, settings, tmp_path) -> None:
    # The host does not exist: only the proxy (the server itself) can answer.
    settings = dataclasses.replace(
        settings, url_template="http://media.invalid/media/{ytid}.webm", proxy=server.base_url,
        source_address="127.0.0.2",
    )
    result = fetch_clip(_job(tmp_path), settings)
    assert result.outcome is Outcome.OK, result.message
    assert server.addresses() == ["127.0.0.2"]
    assert all(record.via_proxy for record in server.stats(YTIDS[0]).log)
    counts = server.counts("127.0.0.2")
    assert counts.extractions == 1 and counts.media_reads >= 1


def test_each_source_address_has_its_own_budget_at_the_server(tone_sources, tmp_path) -> None:
    # One extraction per address per minute: a second clip from 127.0.0.2 is throttled, 127.0.0.3 is not.
    with AddressServer(limit=1, window=60) as server:
        for ytid in YTIDS:
            server.add(ytid, tone_sources.webm)
        settings = FetchSettings(
            url_template=server.url_template("webm"), ffmpeg=find_ffmpeg(), max_retries=1, socket_timeout=5.0,
            retry_backoff=0.0, source_address="127.0.0.2",
        )
        assert fetch_clip(_job(tmp_path / "a", YTIDS[0]), settings).outcome is Outcome.OK
        throttled = fetch_clip(_job(tmp_path / "b", YTIDS[1]), settings)
        assert throttled.outcome is Outcome.RATE_LIMITED
        assert throttled.retry_after is not None and 0 < throttled.retry_after <= 60
        other = fetch_clip(_job(tmp_path / "c", YTIDS[1]), dataclasses.replace(settings, source_address="127.0.0.3"))
        assert other.outcome is Outcome.OK, other.message
        assert (server.counts("127.0.0.2").throttled, server.counts("127.0.0.3").throttled) == (1, 0)
