"""The per-address test server (tests/address_server.py), driven by plain HTTP clients bound to loopback addresses."""

from __future__ import annotations

import http.client

import pytest
from address_server import AddressServer

YTID = "abcdefghijk"
OTHER = "bcdefghijkl"


def request(server: AddressServer, address: str, ytid: str, byte_range: str | None = None) -> http.client.HTTPResponse:
    """One GET from ``address``: without Range it is an extraction request, with Range a media read."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10, source_address=(address, 0))
    headers = {"Range": byte_range} if byte_range else {}
    connection.request("GET", f"/media/{ytid}.webm", headers=headers)
    response = connection.getresponse()
    response.body = response.read()
    connection.close()
    return response


@pytest.fixture
def server(tone_sources) -> AddressServer:
    with AddressServer(limit=2, window=3600) as running:
        running.add(YTID, tone_sources.webm)
        running.add(OTHER, tone_sources.webm)
        yield running


def test_a_client_bound_to_another_loopback_address_is_seen_as_that_address(server: AddressServer) -> None:
    assert request(server, "127.0.0.2", YTID).status == 200
    assert request(server, "127.0.0.3", YTID).status == 200
    assert server.addresses() == ["127.0.0.2", "127.0.0.3"]
    assert server.counts("127.0.0.2").extractions == 1
    assert server.counts("127.0.0.3").extractions == 1
    assert server.counts("127.0.0.1").extractions == 0


def test_each_address_has_its_own_extraction_budget(server: AddressServer) -> None:
    assert [request(server, "127.0.0.2", YTID).status for _ in range(2)] == [200, 200]
    throttled = request(server, "127.0.0.2", YTID)
    assert throttled.status == 429
    # The window is an hour: the oldest request leaves it in (almost) 3600 s.
    assert 3500 <= int(throttled.getheader("Retry-After")) <= 3600
    # Another address is untouched by 127.0.0.2's budget.
    assert request(server, "127.0.0.3", YTID).status == 200
    assert server.counts("127.0.0.2").throttled == 1
    assert server.counts("127.0.0.2").extractions == 2
    assert server.counts("127.0.0.3").throttled == 0


def test_media_reads_are_not_extraction_requests(server: AddressServer) -> None:
    assert request(server, "127.0.0.2", YTID).status == 200
    for _ in range(3):
        assert request(server, "127.0.0.2", YTID, "bytes=0-99").status == 206
    counts = server.counts("127.0.0.2")
    assert (counts.extractions, counts.throttled, counts.media_reads, counts.media_refused) == (1, 0, 3, 0)


def test_media_is_served_only_to_the_address_that_resolved_the_clip(server: AddressServer) -> None:
    assert request(server, "127.0.0.2", YTID).status == 200
    assert server.resolved_by(YTID) == "127.0.0.2"
    served = request(server, "127.0.0.2", YTID, "bytes=0-99")
    assert served.status == 206 and len(served.body) == 100
    refused = request(server, "127.0.0.3", YTID, "bytes=0-99")
    assert refused.status == 403
    assert server.counts("127.0.0.3").media_refused == 1
    # Nobody resolved the other clip yet: its media is refused to everyone.
    assert request(server, "127.0.0.2", OTHER, "bytes=0-99").status == 403


def test_a_new_resolve_moves_the_binding(server: AddressServer) -> None:
    request(server, "127.0.0.2", YTID)
    request(server, "127.0.0.3", YTID)
    assert server.resolved_by(YTID) == "127.0.0.3"
    assert request(server, "127.0.0.2", YTID, "bytes=0-99").status == 403
    assert request(server, "127.0.0.3", YTID, "bytes=0-99").status == 206


def test_a_throttled_extraction_does_not_bind(server: AddressServer) -> None:
    request(server, "127.0.0.2", YTID)
    request(server, "127.0.0.3", OTHER)
    request(server, "127.0.0.3", OTHER)
    assert request(server, "127.0.0.3", YTID).status == 429
    assert server.resolved_by(YTID) == "127.0.0.2"


def test_binding_can_be_switched_off(tone_sources) -> None:
    with AddressServer(limit=5, window=60, bind_media=False) as server:
        server.add(YTID, tone_sources.webm)
        assert request(server, "127.0.0.2", YTID).status == 200
        assert request(server, "127.0.0.3", YTID, "bytes=0-9").status == 206
        assert server.counts("127.0.0.3").media_reads == 1
