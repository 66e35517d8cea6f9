"""Segments in the middle of a TLS record or an HTTP body are counted, not dissected: the table stays the same."""

from __future__ import annotations

import random
import struct

import pandas as pd
import pytest
from frame_bytes import eth, ipv4, tcp, write_pcap

from traffic_analyzer.capture.fast_pcap import FastPcapSource
from traffic_analyzer.packets.decode_reassembly import TcpReassembly

pytestmark = pytest.mark.unit

ISN = 1_000


def tls_record(content_type: int, size: int) -> bytes:
    return struct.pack("!BHH", content_type, 0x0303, size) + bytes(i % 251 for i in range(size))


def http_response(body: int) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % body + b"x" * body


def capture(path, segments: list[tuple[int, bytes]], dport: int):
    """One direction of a connection: (offset in the stream, bytes) per segment, a second apart."""
    frames = [eth(ipv4(tcp(data, dport=dport, seq=ISN + offset))) for offset, data in segments]
    return write_pcap(path, [(f, len(f)) for f in frames])


def tables(path, monkeypatch) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """The table with segments counted, the table with every segment dissected, and how many were counted."""
    counted = []
    counts_only = TcpReassembly.counts_only

    def counting(self, *args):
        hit = counts_only(self, *args)
        counted.append(hit)
        return hit

    with monkeypatch.context() as m:
        m.setattr(TcpReassembly, "counts_only", counting)
        fast = pd.concat(FastPcapSource(path, progress=False).batches(), ignore_index=True)
        m.setattr(TcpReassembly, "counts_only", lambda self, *args: False)
        slow = pd.concat(FastPcapSource(path, progress=False).batches(), ignore_index=True)
    return fast, slow, sum(counted)


def test_a_window_probe_inside_a_record_keeps_what_dissecting_it_keeps(tmp_path, monkeypatch):
    """A 1-byte probe, then a segment from the same sequence number running past the record's end: the
    probe's bytes are never read, but its place is, as when it is dissected (the longer segment's bytes
    at that offset are not kept, so the next record's header is not seen and its segments show as TLS)."""
    stream = tls_record(23, 3000) + tls_record(23, 4000)
    cuts = [(0, 1448), (1448, 1449), (1448, 3100), (3100, 4548), (4548, 5996), (5996, len(stream))]
    fast, slow, counted = tables(
        capture(tmp_path / "probe.pcap", [(a, stream[a:b]) for a, b in cuts], 443), monkeypatch
    )
    pd.testing.assert_frame_equal(fast, slow)
    assert counted == 1
    assert fast["protocol"].tolist() == ["TLS", "TCP", "TLS", "TLS", "TLS", "TLS"]


def random_segments(rnd: random.Random, stream: bytes) -> list[tuple[int, bytes]]:
    """The stream cut at random, with a few longer segments from the same sequence number and a few holes."""
    segments, offset = [], 0
    while offset < len(stream):
        size = rnd.choice((1, 5, 300, 1448, 1448))
        segments.append((offset, stream[offset : offset + size]))
        if rnd.random() < 0.1:
            segments.append((offset, stream[offset : offset + size + rnd.choice((1, 700))]))
        if rnd.random() < 0.05:
            segments.pop()
        offset += size
    return segments


def test_random_segmentation_gives_the_table_of_dissecting_every_segment(tmp_path, monkeypatch):
    tls = b"".join(tls_record(t, size) for t, size in ((22, 300), (23, 5000), (23, 30), (21, 2), (23, 17000)))
    http = b"".join(http_response(body) for body in (200, 9000, 0, 3000))
    counted = 0
    for seed in range(20):
        stream, dport = (tls, 443) if seed % 2 else (http, 80)
        path = capture(tmp_path / f"random-{seed}.pcap", random_segments(random.Random(seed), stream), dport)
        fast, slow, hits = tables(path, monkeypatch)
        pd.testing.assert_frame_equal(fast, slow)
        counted += hits
    assert counted > 100
