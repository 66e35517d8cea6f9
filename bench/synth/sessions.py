"""HTTP and HTTPS conversations built on ``TcpFlow``: the shapes most behaviours are made of.

Small bodies travel as real bytes in full segments; bodies larger than the profile's ``bulk_min``
come from a repeating stream (``PatternStream``), written as full segments in the lab capture and as
snaplen-cut offload segments in the day-long corpus.
"""

from __future__ import annotations

import numpy as np

from . import web
from .lab import GRO_SEGMENT, MSS, Lab
from .network import Host
from .tcp import PatternStream, TcpFlow

OCTET_PATTERN = 44 * MSS  # period of the repeating byte stream behind large plain-HTTP bodies
# CR, LF and ':' in opaque bodies become other bytes: when a snaplen cuts a body segment, tshark cannot
# reassemble it and reads its first bytes as HTTP header lines, which random bytes would make "illegal".
NO_LINE_BREAKS = bytes.maketrans(b"\r\n:", b"\x0e\x0f;")
CERT_FLIGHT = (2600, 4800)  # bytes of the encrypted certificate flight (uniform)


class Web:
    """Opens TLS and plain HTTP connections and runs request/response exchanges over them."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        rng = lab.rng("web-streams")
        self.tls_stream = PatternStream(web.bulk_tls_pattern(rng, OCTET_PATTERN // web.BULK_RECORD), GRO_SEGMENT)
        opaque = rng.bytes(OCTET_PATTERN).translate(NO_LINE_BREAKS)
        self.octet_stream = PatternStream(opaque, GRO_SEGMENT)

    def connect(
        self, rng: np.random.Generator, client: Host, server: Host, port: int, t_us: int, rtt_us: int
    ) -> TcpFlow:
        flow = TcpFlow(self.lab, rng, client, server, port, t_us, rtt_us)
        flow.open()
        return flow

    def tls_connect(
        self,
        rng: np.random.Generator,
        client: Host,
        server: Host,
        sni: str,
        t_us: int,
        rtt_us: int,
        *,
        port: int = 443,
        cert_bytes: int | None = None,
    ) -> TcpFlow:
        """TCP handshake, ClientHello with ``sni``, the server's flight and the client's Finished."""
        flow = self.connect(rng, client, server, port, t_us, rtt_us)
        hello = web.client_hello(rng, sni)
        flow.send(True, hello, reply_follows=True)
        cert = int(rng.integers(*CERT_FLIGHT)) if cert_bytes is None else cert_bytes
        flow.send(False, web.server_flight(rng, hello, cert), think_us=300)
        flow.send(True, web.client_finished(rng), reply_follows=True)
        return flow

    def tls_exchange(
        self,
        flow: TcpFlow,
        rng: np.random.Generator,
        request_bytes: int,
        response_bytes: int,
        *,
        think_us: int = 0,
        server_us: int = 2000,
        rate_bps: float = 30e6,
    ) -> int:
        """One encrypted request and its response; returns the time of the response's last segment."""
        flow.send(True, web.app_records(rng, request_bytes), think_us=think_us, reply_follows=True)
        if response_bytes <= self.lab.profile.bulk_min:
            return flow.send(False, web.app_records(rng, response_bytes), think_us=server_us, rate_bps=rate_bps)
        records = -(-response_bytes // (web.BULK_RECORD - 22))
        return flow.send_bulk(False, records * web.BULK_RECORD, self.tls_stream, rate_bps=rate_bps, think_us=server_us)

    def tls_upload(
        self, flow: TcpFlow, rng: np.random.Generator, upload_bytes: int, response_bytes: int, *, rate_bps: float
    ) -> int:
        """A large encrypted request body (a PUT of a file) and the server's short answer."""
        records = -(-upload_bytes // (web.BULK_RECORD - 22))
        flow.send(True, web.app_records(rng, 600), reply_follows=True)
        flow.send_bulk(True, records * web.BULK_RECORD, self.tls_stream, rate_bps=rate_bps)
        return flow.send(False, web.app_records(rng, response_bytes), think_us=20_000)

    def http_exchange(
        self,
        flow: TcpFlow,
        request: bytes,
        head: bytes,
        body_bytes: int,
        *,
        body: bytes | None = None,
        think_us: int = 0,
        server_us: int = 2000,
        rate_bps: float = 30e6,
    ) -> int:
        """A plain HTTP request and a response of ``head`` plus ``body`` (or ``body_bytes`` of opaque data)."""
        flow.send(True, request, think_us=think_us, reply_follows=True)
        if body is not None or body_bytes <= self.lab.profile.bulk_min:
            data = head + (body if body is not None else self.octet_stream.prefix(body_bytes))
            return flow.send(False, data, think_us=server_us, rate_bps=rate_bps)
        flow.send(False, head, think_us=server_us, reply_follows=True)
        return flow.send_bulk(False, body_bytes, self.octet_stream, rate_bps=rate_bps)

    def http_upload(self, flow: TcpFlow, head: bytes, body_bytes: int, response: bytes, *, rate_bps: float) -> int:
        """A plain HTTP request with a large body (headers first, then the body), and the server's response."""
        flow.send(True, head, reply_follows=True)
        flow.send_bulk(True, body_bytes, self.octet_stream, rate_bps=rate_bps)
        return flow.send(False, response, think_us=30_000)
