"""The clockwork of a benign network, which beacon and scan detectors mistake for attacks: pages that refresh
themselves, monitoring scrapes, telemetry on a fixed period, a client spreading calls over a server pool, and a
mail server's reverse lookups keeping the resolver busy.
"""

from __future__ import annotations

import numpy as np

from . import dns, lan, web
from .behaviour import Activity, Periodic, Poisson, always
from .network import Host
from .office import Office
from .tcp import TcpFlow

RECONNECT_POLLS = (50, 400)  # a kept-alive connection is replaced after this many requests (uniform)
SNMP_PORT = 161
STATSD_PORT = 8125
SNMP_OIDS = (  # sysUpTime, then in/out octets, errors and status of interface 1
    ("1.3.6.1.2.1.1.3.0", lan.BER_TIMETICKS),
    ("1.3.6.1.2.1.31.1.1.1.6.1", lan.BER_COUNTER64),
    ("1.3.6.1.2.1.31.1.1.1.10.1", lan.BER_COUNTER64),
    ("1.3.6.1.2.1.2.2.1.14.1", lan.BER_COUNTER32),
    ("1.3.6.1.2.1.2.2.1.8.1", lan.BER_INT),
)


class KeptAlive(Periodic):
    """A client polling one server every period over a kept-alive connection, between ``open_us`` and ``close_us``.

    The connection is opened (after a lookup of ``name``) at the first poll and replaced every few hundred polls.
    """

    def __init__(
        self,
        office: Office,
        client: Host,
        name: str,
        port: int,
        rng: np.random.Generator,
        period_s: float,
        jitter: float,
        open_us: int,
        close_us: int,
        path: str = "/",
        server: Host | None = None,
    ) -> None:
        super().__init__(office.lab, rng, int(period_s * 1e6), jitter, open_us)
        self.office = office
        self.client = client
        self.name = name
        self.port = port
        self.close_us = close_us
        self.path = path
        self.server = server  # a fixed address to poll; None looks ``name`` up
        self.flow: TcpFlow | None = None
        self.polls_left = 0

    def session(self, t_us: int) -> None:
        rng, office = self.rng, self.office
        if t_us >= self.close_us:
            if self.flow is not None:
                self.flow.close(True, after_us=int(rng.integers(1_000, 500_000)))
                self.flow = None
            return
        if self.flow is None or self.polls_left <= 0:
            if self.flow is not None:
                self.flow.close(bool(rng.random() < 0.5), after_us=1_000)
            if self.server is None:
                t, server = office.lookup(t_us, self.client, self.name, aaaa=False)
            else:
                t, server = t_us, self.server
            self.flow = self.connect(t, server)
            self.polls_left = int(rng.integers(*RECONNECT_POLLS))
        self.flow.idle_until(t_us)
        self.poll(self.flow)
        self.polls_left -= 1

    def connect(self, t_us: int, server: Host) -> TcpFlow:
        return self.office.web.connect(
            self.rng, self.client, server, self.port, t_us, self.office.rtt(self.rng, server)
        )

    def poll(self, flow: TcpFlow) -> None:
        """One request and its answer on ``flow``; subclasses say what they ask."""


class RefreshingTab(KeptAlive):
    """A browser tab refreshing over HTTPS (webmail, a status page): a same-sized request, a varying answer."""

    def connect(self, t_us: int, server: Host) -> TcpFlow:
        rtt = self.office.rtt(self.rng, server)
        return self.office.web.tls_connect(self.rng, self.client, server, self.name, t_us, rtt, port=self.port)

    def poll(self, flow: TcpFlow) -> None:
        self.office.web.tls_exchange(flow, self.rng, 620, int(self.rng.integers(300, 9_000)))


class DashboardPoll(KeptAlive):
    """A plain-HTTP dashboard polled by its page (Dash's update callback, Grafana's panel queries): POST, JSON back."""

    def poll(self, flow: TcpFlow) -> None:
        rng = self.rng
        body = b'{"output":"graph.figure","inputs":[{"id":"interval","property":"n_intervals","value":%d}]}' % int(
            rng.integers(1, 10**6)
        )
        headers = (("User-Agent", web.USER_AGENTS[0]), ("Content-Type", "application/json"), ("Accept", "*/*"))
        answer = b'{"response":{"graph":{"figure":{"data":[' + b"0," * int(rng.integers(200, 2_000)) + b"0]}}}}"
        head = web.response_head(200, "OK", "application/json", len(answer))
        self.office.web.http_exchange(
            flow, web.request("POST", self.name, self.path, headers, body), head, len(answer), body=answer
        )


class PrometheusScrape(KeptAlive):
    """Prometheus scraping one exporter: GET /metrics on a connection it keeps open, text exposition format back."""

    def poll(self, flow: TcpFlow) -> None:
        size = int(self.rng.integers(40_000, 90_000))
        request = web.request(
            "GET",
            f"{self.name}:{self.port}",
            "/metrics",
            (("User-Agent", "Prometheus/2.51.0"), ("Accept", "text/plain")),
        )
        head = web.response_head(200, "OK", "text/plain; version=0.0.4; charset=utf-8", size)
        self.office.web.http_exchange(flow, request, head, size, server_us=int(self.rng.integers(2_000, 30_000)))


class SnmpPoll(Periodic):
    """The monitoring host's SNMP GET of a device's uptime and interface counters, and the device's response."""

    def __init__(
        self, office: Office, monitor: Host, device: Host, rng: np.random.Generator, period_s: float, first_us: int
    ) -> None:
        super().__init__(office.lab, rng, int(period_s * 1e6), 0.01, first_us)
        self.monitor = monitor
        self.device = device
        self.port = monitor.port()
        self.counters = [int(x) for x in rng.integers(10**6, 10**12, len(SNMP_OIDS))]

    def session(self, t_us: int) -> None:
        request_id = int(self.rng.integers(1, 2**31))
        request = lan.snmp(lan.SNMP_GET, request_id, "public", [(oid, tag, None) for oid, tag in SNMP_OIDS])
        self.lab.udp(t_us, self.monitor, self.device, self.port, SNMP_PORT, request)
        self.counters = [c + int(self.rng.integers(0, 10**7)) for c in self.counters]
        values = [
            (oid, tag, 1 if tag == lan.BER_INT else c % 2**32)
            for (oid, tag), c in zip(SNMP_OIDS, self.counters, strict=True)
        ]
        response = lan.snmp(lan.SNMP_RESPONSE, request_id, "public", values)
        self.lab.udp(
            t_us + int(self.rng.integers(500, 5_000)), self.device, self.monitor, SNMP_PORT, self.port, response
        )


class HttpsTelemetry(Periodic):
    """An agent reporting home: the same-sized HTTPS POST every period +-10% on a new connection, one client only."""

    def __init__(
        self, office: Office, host: Host, name: str, rng: np.random.Generator, period_s: float, first_us: int
    ) -> None:
        super().__init__(office.lab, rng, int(period_s * 1e6), 0.1, first_us)
        self.office = office
        self.host = host
        self.name = name

    def session(self, t_us: int) -> None:
        rng, office = self.rng, self.office
        t, server = office.lookup(t_us, self.host, self.name, aaaa=False)
        flow = office.web.tls_connect(rng, self.host, server, self.name, t, office.rtt(rng, server), cert_bytes=2900)
        office.web.tls_exchange(flow, rng, 1_180, 95)
        flow.close(True, after_us=30_000)


class UdpHeartbeat(Periodic):
    """A metrics agent's fixed-size statsd datagram to the collector every period, never answered."""

    def __init__(
        self, office: Office, host: Host, collector: Host, rng: np.random.Generator, period_s: float, first_us: int
    ) -> None:
        super().__init__(office.lab, rng, int(period_s * 1e6), 0.02, first_us)
        self.host = host
        self.collector = collector
        self.port = host.port()
        self.payload = f"agent.{host.name}.heartbeat:1|c\nagent.{host.name}.cpu:{12.5:.1f}|g".encode()

    def session(self, t_us: int) -> None:
        self.lab.udp(t_us, self.host, self.collector, self.port, STATSD_PORT, self.payload)


class PoolClient(Poisson):
    """One client calling an internal API spread over a pool of servers, round robin, a new connection per call."""

    def __init__(
        self,
        office: Office,
        host: Host,
        pool: list[Host],
        rng: np.random.Generator,
        per_s: float,
        first_us: int,
        activity: Activity = always,
    ) -> None:
        super().__init__(office.lab, rng, per_s, first_us, activity)
        self.office = office
        self.host = host
        self.pool = pool
        self.turn = 0

    def session(self, t_us: int) -> None:
        server = self.pool[self.turn % len(self.pool)]
        self.turn += 1
        flow = self.office.web.connect(self.rng, self.host, server, 8080, t_us, self.office.rtt(self.rng, server))
        body = b'{"items":[' + b'{"id":1},' * int(self.rng.integers(1, 200)) + b'{"id":0}]}'
        request = web.request("GET", "api.office.lan:8080", "/v1/orders?limit=50", (("User-Agent", "okhttp/4.12.0"),))
        head = web.response_head(200, "OK", "application/json", len(body))
        self.office.web.http_exchange(flow, request, head, len(body), body=body)
        flow.close(False, after_us=int(self.rng.integers(1_000, 60_000)))


class ReverseLookups(Poisson):
    """A mail server resolving the PTR name of every connecting address: a resolver never short of distinct names."""

    def __init__(
        self,
        office: Office,
        host: Host,
        rng: np.random.Generator,
        per_s: float,
        first_us: int,
        activity: Activity = always,
    ) -> None:
        super().__init__(office.lab, rng, per_s, first_us, activity)
        self.office = office
        self.host = host

    def session(self, t_us: int) -> None:
        b, c = (int(x) for x in self.rng.integers(1, 255, 2))
        name = f"{c}.{b}.{18 + int(self.rng.integers(0, 2))}.198.in-addr.arpa"
        self.office.resolver.lookup(t_us, self.host, name, dns.TYPE_PTR)
