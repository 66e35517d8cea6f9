"""The site's caching DNS resolver: answers from its cache, or forwards the query upstream and relays the answer.

Every client lookup is its own flow (fresh source port, random id); a cache miss adds the resolver's
forwarded query to the upstream server and its answer, as dnsmasq or unbound on a small office
router would. Names under the site's own domain are answered locally.
"""

from __future__ import annotations

from collections.abc import Callable

from . import dns
from .lab import Lab
from .network import Host

DNS_PORT = 53
NEGATIVE_TTL_S = 300  # how long an NXDOMAIN or empty answer stays cached
RESOLVER_PORTS = (1024, 65535)  # the resolver picks a random source port per forwarded query
Zone = Callable[[str, int], tuple[list[dns.Record], int]]  # (name, qtype) -> (answers, rcode)


class Resolver:
    """Caching forwarder on the LAN; ``zone`` says what the rest of the world answers."""

    def __init__(self, lab: Lab, host: Host, upstream: Host, zone: Zone, local_suffix: str) -> None:
        self.lab = lab
        self.host = host
        self.upstream = upstream
        self.zone = zone
        self.local_suffix = local_suffix
        self.rng = lab.rng("resolver")
        self.queries = 0
        self.forwarded = 0
        self._cache: dict[tuple[str, int], tuple[int, int]] = {}  # (name, qtype) -> (cached at, expires) in us

    def lookup(
        self,
        t_us: int,
        client: Host,
        name: str,
        qtype: int = dns.TYPE_A,
        answers: list[dns.Record] | None = None,
        rcode: int = 0,
    ) -> int:
        """Emit one client lookup; returns the time the client has its answer."""
        rng = self.rng
        if answers is None:
            answers, rcode = self.zone(name, qtype)
        txid = int(rng.integers(0, 65536))
        sport = client.port()
        self.lab.udp(t_us, client, self.host, sport, DNS_PORT, dns.query(txid, name, qtype))
        self.queries += 1
        key = (name.lower(), qtype)
        cached = self._cache.get(key)
        at = t_us + int(rng.integers(60, 250))
        if not (cached and cached[0] <= t_us < cached[1]) and not name.endswith(self.local_suffix):
            at = self._forward(at, name, qtype, answers, rcode)
            ttl_s = min((a[2] for a in answers), default=NEGATIVE_TTL_S) if rcode == 0 else NEGATIVE_TTL_S
            self._cache[key] = (t_us, t_us + ttl_s * 1_000_000)
        reply = dns.response(txid, name, qtype, answers, rcode)
        self.lab.udp(at, self.host, client, DNS_PORT, sport, reply)
        return at

    def _forward(self, t_us: int, name: str, qtype: int, answers: list[dns.Record], rcode: int) -> int:
        rng = self.rng
        txid = int(rng.integers(0, 65536))
        port = int(rng.integers(*RESOLVER_PORTS))
        self.lab.udp(t_us, self.host, self.upstream, port, DNS_PORT, dns.query(txid, name, qtype))
        back = t_us + int(rng.lognormal(9.8, 0.5))  # upstream round trip, median ~18 ms
        self.lab.udp(back, self.upstream, self.host, DNS_PORT, port, dns.response(txid, name, qtype, answers, rcode))
        self.forwarded += 1
        return back + int(rng.integers(40, 160))
