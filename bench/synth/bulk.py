"""Large transfers of a working day: OS and game downloads of gigabytes, video streaming, the nightly backup to
the NAS over SSH. In the corpus profile their data travels as snaplen-cut offload segments, so byte counts are
real while packet counts stay manageable.
"""

from __future__ import annotations

import numpy as np

from . import ssh, web
from .behaviour import Activity, Once, Poisson, always
from .benign import ssh_handshake
from .network import Host
from .office import Office

VIDEO_SEGMENT_S = (4.0, 6.0)  # a DASH player fetches a segment this often (uniform)
VIDEO_BITRATE = (2.5e6, 8e6)  # stream bitrate (bits/s), uniform
VIDEO_MINUTES = (8.0, 70.0)  # how long one viewing lasts (uniform)


class ChunkedDownload(Once):
    """A launcher fetching a large package as ranged chunks over several parallel plain-HTTP connections."""

    def __init__(
        self,
        office: Office,
        host: Host,
        rng: np.random.Generator,
        at_us: int,
        name: str,
        path: str,
        total_bytes: int,
        chunk_bytes: int,
        connections: int,
        rate_bps: float,
    ) -> None:
        super().__init__(office.lab, rng, at_us)
        self.office, self.host, self.name, self.path = office, host, name, path
        self.total_bytes, self.chunk_bytes, self.connections, self.rate_bps = (
            total_bytes,
            chunk_bytes,
            connections,
            rate_bps,
        )

    def session(self, t_us: int) -> None:
        rng, office = self.rng, self.office
        t, server = office.lookup(t_us, self.host, self.name)
        flows = [
            office.web.connect(rng, self.host, server, 80, t + i * 3_000, office.rtt(rng, server))
            for i in range(self.connections)
        ]
        per_flow = self.rate_bps / self.connections
        for i, start in enumerate(range(0, self.total_bytes, self.chunk_bytes)):
            size = min(self.chunk_bytes, self.total_bytes - start)
            headers = (
                ("User-Agent", "Microsoft-Delivery-Optimization/10.0"),
                ("Range", f"bytes={start}-{start + size - 1}"),
            )
            head = web.response_head(
                206,
                "Partial Content",
                "application/octet-stream",
                size,
                (("Content-Range", f"bytes {start}-{start + size - 1}/{self.total_bytes}"),),
            )
            office.web.http_exchange(
                flows[i % len(flows)], web.request("GET", self.name, self.path, headers), head, size, rate_bps=per_flow
            )
        for flow in flows:
            flow.close(True, after_us=int(rng.integers(1_000, 2_000_000)))


class TlsDownload(Once):
    """One large HTTPS download (an ISO image, a game depot) on a single connection."""

    def __init__(
        self,
        office: Office,
        host: Host,
        rng: np.random.Generator,
        at_us: int,
        name: str,
        total_bytes: int,
        rate_bps: float,
    ) -> None:
        super().__init__(office.lab, rng, at_us)
        self.office, self.host, self.name, self.total_bytes, self.rate_bps = office, host, name, total_bytes, rate_bps

    def session(self, t_us: int) -> None:
        rng, office = self.rng, self.office
        t, server = office.lookup(t_us, self.host, self.name)
        flow = office.web.tls_connect(rng, self.host, server, self.name, t, office.rtt(rng, server))
        office.web.tls_exchange(flow, rng, 700, self.total_bytes, rate_bps=self.rate_bps)
        flow.close(True, after_us=50_000)


class SshBackup(Once):
    """The nightly backup: rsync over SSH to the NAS, gigabytes from the workstation, little back."""

    def __init__(
        self,
        office: Office,
        host: Host,
        nas: Host,
        rng: np.random.Generator,
        at_us: int,
        total_bytes: int,
        rate_bps: float,
    ) -> None:
        super().__init__(office.lab, rng, at_us)
        self.office, self.host, self.nas, self.total_bytes, self.rate_bps = office, host, nas, total_bytes, rate_bps

    def session(self, t_us: int) -> None:
        rng, office = self.rng, self.office
        flow = ssh_handshake(office, rng, self.host, self.nas, t_us)
        for from_client, plain in ((True, 28), (False, 28), (True, 400), (False, 20), (True, 120), (False, 4_000)):
            flow.send(from_client, ssh.encrypted(rng, plain), think_us=int(rng.integers(300, 20_000)))
        flow.send_bulk(True, self.total_bytes, office.web.octet_stream, rate_bps=self.rate_bps)
        flow.send(False, ssh.encrypted(rng, 300), think_us=200_000)
        flow.close(True, after_us=10_000)


class VideoStreaming(Poisson):
    """Someone on the site watching video: a DASH segment every few seconds on one connection, for tens of minutes."""

    def __init__(
        self,
        office: Office,
        hosts: list[Host],
        rng: np.random.Generator,
        per_s: float,
        first_us: int,
        activity: Activity = always,
    ) -> None:
        super().__init__(office.lab, rng, per_s, first_us, activity)
        self.office = office
        self.hosts = hosts

    def session(self, t_us: int) -> None:
        rng, office = self.rng, self.office
        host = self.hosts[int(rng.integers(len(self.hosts)))]
        name = f"rr{int(rng.integers(1, 6))}---sn-uxax4vopj5qx-cxge{int(rng.integers(1, 9))}.googlevideo.com"
        t, server = office.lookup(t_us, host, name)
        flow = office.web.tls_connect(rng, host, server, name, t, office.rtt(rng, server))
        bitrate = rng.uniform(*VIDEO_BITRATE)
        end = t + int(rng.uniform(*VIDEO_MINUTES) * 60e6)
        while flow.t < end:
            seconds = rng.uniform(*VIDEO_SEGMENT_S)
            office.web.tls_exchange(flow, rng, 900, int(bitrate * seconds / 8), rate_bps=60e6)
            flow.idle_until(flow.t + int(seconds * 1e6))
        flow.close(True, after_us=500_000)
