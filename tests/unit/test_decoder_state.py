"""The fast decoder's per-connection state is bounded: a live run sees millions of connections."""

from __future__ import annotations

import pytest
from made_captures import STAND_INS

from traffic_analyzer.capture.fast_pcap import FastPcapSource
from traffic_analyzer.packets import decode_reassembly

pytestmark = pytest.mark.unit


def test_past_the_bound_the_oldest_connections_are_forgotten():
    states = {conn: object() for conn in range(decode_reassembly.MAX_CONNECTIONS_KEPT + 1)}
    decode_reassembly.forget_oldest(states)
    assert len(states) == decode_reassembly.MAX_CONNECTIONS_KEPT + 1 - decode_reassembly.MAX_CONNECTIONS_KEPT // 4
    assert min(states) == decode_reassembly.MAX_CONNECTIONS_KEPT // 4  # the oldest went, the newest stayed
    assert decode_reassembly.MAX_CONNECTIONS_KEPT in states


def test_a_tiny_bound_still_decodes_http(monkeypatch, tmp_path):
    capture = STAND_INS["http-sqli-dvwa.pcapng"](tmp_path / "sqli.pcap").path  # three GETs, three connections
    full = [p for p in FastPcapSource(capture, progress=False).batches()]
    monkeypatch.setattr(decode_reassembly, "MAX_CONNECTIONS_KEPT", 4)  # forget all but the newest few connections
    small = [p for p in FastPcapSource(capture, progress=False).batches()]
    uris = {u for p in full for u in p["http_uri"].dropna()}
    uris_small = {u for p in small for u in p["http_uri"].dropna()}
    assert sum(map(len, small)) == sum(map(len, full))
    assert len(uris_small) >= 0.9 * len(uris) > 0  # requests fit one segment: little is lost


def test_responses_that_end_with_their_connection_are_forgotten_with_its_state(monkeypatch):
    monkeypatch.setattr(decode_reassembly, "MAX_CONNECTIONS_KEPT", 8)
    reassembly = decode_reassembly.TcpReassembly()
    response = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\npart of a body that runs until the FIN"
    for conn in range(40):  # each server answers until it closes, and never closes
        reassembly.segment("http", conn, 1, 1000, False, response, False, True)
    assert len(reassembly.until_fin) <= 2 * 8  # bounded, was 40: one per connection ever seen
    assert 39 in reassembly.until_fin  # the newest are still followed to their FIN
