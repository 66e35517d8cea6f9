"""The site every scenario runs in: a small office LAN with its servers, clients, resolver and web catalogue.

Address plan (``10.<site>.0.0/16``, one Ethernet segment): servers in ``.0.x`` (gateway .0.1, resolver
.0.53), workstations from ``.1.10``; a routed lab VLAN ``.10.0/24`` sits behind the gateway. External
hosts live in 198.18.0.0/15, the upstream resolver and NTP servers in 198.51.100.0/24.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import dns
from .lab import Lab
from .names import Catalogue
from .network import LINUX_TTL, Host, Network
from .resolver import Resolver
from .sessions import Web

LOCAL_DOMAIN = "office.lan"  # names the site's resolver answers itself
UPSTREAM_DNS = "198.51.100.53"  # the ISP resolver the office resolver forwards to (documentation range)
SERVERS = {  # role -> last two octets inside the site's /16
    "resolver": "0.53",
    "intranet": "0.80",
    "files": "0.81",
    "nas": "0.20",
    "ssh": "0.22",
    "mail": "0.25",
    "monitor": "0.30",
    "dashboard": "0.31",
    "grafana": "0.32",
    "printer": "0.40",
    "switch": "0.2",
    "ups": "0.3",
    "vrrp-a": "0.11",
    "vrrp-b": "0.12",
    "app-1": "0.61",
    "app-2": "0.62",
    "app-3": "0.63",
    "app-4": "0.64",
}
EXTERNAL_RTT_LOG_US = (np.log(25_000), 0.5)  # lognormal round trip to Internet hosts: median 25 ms
LAN_RTT_US = 300


class SiteZone:
    """What DNS answers: local names from the server table, everything else from the catalogue."""

    def __init__(self, servers: dict[str, Host], catalogue: Catalogue) -> None:
        self.servers = servers
        self.catalogue = catalogue

    def __call__(self, name: str, qtype: int) -> tuple[list[dns.Record], int]:
        if name.endswith(LOCAL_DOMAIN):
            role = name.split(".")[0]
            if role not in self.servers:
                return [], dns.RCODE_NXDOMAIN
            if qtype != dns.TYPE_A:
                return [], 0
            return [(name, dns.TYPE_A, 3600, self.servers[role].ip4)], 0
        return self.catalogue.zone(name, qtype)


@dataclass
class Office:
    """Everything behaviours share: the lab, hosts by role, the resolver, the web builders and the catalogue."""

    lab: Lab
    net: Network
    web: Web
    resolver: Resolver
    catalogue: Catalogue
    clients: list[Host]
    servers: dict[str, Host]
    stub_cache: dict[tuple[str, str], int] = field(default_factory=dict)  # (client ip, name) -> expiry (us)

    def rtt(self, rng: np.random.Generator, host: Host) -> int:
        """Round trip from the capture point to ``host`` and back."""
        if host.local:
            return LAN_RTT_US
        return int(rng.lognormal(*EXTERNAL_RTT_LOG_US))

    def lookup(self, t_us: int, client: Host, name: str, *, aaaa: bool = True) -> tuple[int, Host]:
        """A and (like browsers do, at the same moment) AAAA lookups of ``name``; (answer time, the host to contact).

        The client's own stub cache answers repeated lookups within the record's TTL without a packet.
        """
        key = (client.ip, name)
        if self.stub_cache.get(key, 0) > t_us:
            return t_us + 20, self.host_for(name)
        answers, _ = self.resolver.zone(name, dns.TYPE_A)
        self.stub_cache[key] = t_us + min((a[2] for a in answers), default=60) * 1_000_000
        done = self.resolver.lookup(t_us, client, name, dns.TYPE_A)
        if aaaa:
            done = max(done, self.resolver.lookup(t_us + 30, client, name, dns.TYPE_AAAA))
        return done, self.host_for(name)

    def host_for(self, name: str) -> Host:
        if name.endswith(LOCAL_DOMAIN):
            return self.servers[name.split(".")[0]]
        target = self.catalogue.cname.get(name, name)
        return self.net.external(target)


def build_office(lab: Lab, site: int, clients: int, extra_sites: int) -> Office:
    """The network, its servers and ``clients`` workstations, with the resolver wired to the catalogue."""
    net = lab.net
    servers = {role: net.local(role, f"10.{site}.{octets}", LINUX_TTL) for role, octets in SERVERS.items()}
    servers["gateway"] = net.gateway
    workstations = net.clients(clients)
    upstream = net.external("upstream-dns", UPSTREAM_DNS)
    catalogue = Catalogue(lab.rng("catalogue"), extra_sites)
    resolver = Resolver(lab, servers["resolver"], upstream, SiteZone(servers, catalogue), LOCAL_DOMAIN)
    return Office(lab, net, Web(lab), resolver, catalogue, workstations, servers)
