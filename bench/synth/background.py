"""LAN housekeeping that never stops: ARP, gratuitous ARP, mDNS, SSDP, LLMNR and NetBIOS name queries, DHCP,
and a keepalived VRRP pair that fails over once.
"""

from __future__ import annotations

import numpy as np

from . import dns, lan
from .behaviour import Activity, Periodic, Poisson, always
from .network import LINUX_TTL, Host
from .office import Office
from .packets import BROADCAST_MAC, PROTO_VRRP, ip4, ip_frame, multicast_mac, udp_frame

MDNS_GROUP = ip4("224.0.0.251")  # multicast DNS
SSDP_GROUP = ip4("239.255.255.250")  # UPnP discovery
LLMNR_GROUP = ip4("224.0.0.252")  # link-local multicast name resolution
VRRP_GROUP = ip4("224.0.0.18")  # VRRP advertisements
LIMITED_BROADCAST = ip4("255.255.255.255")
MDNS_PORT, SSDP_PORT, LLMNR_PORT, NBNS_PORT = 5353, 1900, 5355, 137
DHCP_SERVER_PORT, DHCP_CLIENT_PORT = 67, 68
VRRP_MAC_PREFIX = bytes.fromhex("00005e0001")  # virtual router MAC: 00:00:5e:00:01:<VRID>
MULTICAST_TTL = 255  # mDNS, LLMNR (hop-limited to the link) and VRRP all send with TTL 255
SSDP_TTL = 4  # Windows' SSDP TTL
FAILOVER_SILENCE_US = 3_600_000  # VRRP master-down interval: 3 advert intervals plus the backup's skew
MDNS_SERVICES = ("_googlecast._tcp.local", "_airplay._tcp.local", "_raop._tcp.local", "_companion-link._tcp.local",
                 "_spotify-connect._tcp.local", "_ipp._tcp.local", "_homekit._tcp.local")  # fmt: skip
SHORT_NAMES = ("fileserver", "printer", "nas", "wpad", "isatap", "scanner", "desktop-7h2k9q")  # NetBIOS/LLMNR lookups


class HostChatter(Poisson):
    """Base of the per-host Poisson behaviours below (it only stores the office and host)."""

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


class ArpRefresh(Periodic):
    """A host re-resolving a neighbour whose ARP entry went stale: broadcast request, unicast reply."""

    def __init__(
        self, office: Office, asker: Host, target: Host, rng: np.random.Generator, period_s: float, first_us: int
    ) -> None:
        super().__init__(office.lab, rng, int(period_s * 1e6), 0.5, first_us)
        self.asker = asker
        self.target = target

    def session(self, t_us: int) -> None:
        self.lab.arp_request(t_us, self.asker, self.target.ip4)
        self.lab.arp_reply(t_us + int(self.rng.integers(80, 900)), self.target.mac, self.target.ip4, self.asker)


class GratuitousArp(HostChatter):
    """A host announcing its own address after link-up or wake-up (two copies, a second apart)."""

    def session(self, t_us: int) -> None:
        self.lab.gratuitous_arp(t_us, self.host.mac, self.host.ip4)
        self.lab.gratuitous_arp(t_us + 1_000_000 + int(self.rng.integers(0, 50_000)), self.host.mac, self.host.ip4)


class Mdns(HostChatter):
    """Service discovery: queries for a few service types, answered now and then by a device announcing itself."""

    def session(self, t_us: int) -> None:
        rng = self.rng
        picks = rng.choice(len(MDNS_SERVICES), int(rng.integers(1, 4)), replace=False)
        query = dns.mdns_query([(MDNS_SERVICES[int(i)], dns.TYPE_PTR) for i in picks])
        self.lab.udp_to(
            t_us, self.host, MDNS_GROUP, multicast_mac(MDNS_GROUP), MDNS_PORT, MDNS_PORT, query, MULTICAST_TTL
        )
        printer = self.office.servers["printer"]
        if rng.random() < 0.5:
            name = "Office-Printer._ipp._tcp.local"
            answers: list[dns.Record] = [
                ("_ipp._tcp.local", dns.TYPE_PTR, 4500, name),
                (name, dns.TYPE_SRV, 120, dns.srv_rdata(0, 0, 631, "office-printer.local")),
                (name, dns.TYPE_TXT, 4500, dns.txt_rdata("rp=ipp/print")),
                ("office-printer.local", dns.TYPE_A, 120, printer.ip4),
            ]
            at = t_us + int(rng.integers(20_000, 120_000))
            packet = dns.mdns_announce(answers)
            self.lab.udp_to(
                at, printer, MDNS_GROUP, multicast_mac(MDNS_GROUP), MDNS_PORT, MDNS_PORT, packet, MULTICAST_TTL
            )


class Ssdp(HostChatter):
    """UPnP discovery: Windows and browsers send M-SEARCH three times; a cast device answers with NOTIFYs."""

    def session(self, t_us: int) -> None:
        rng, host = self.rng, self.host
        port = host.port()
        target = lan.SSDP_SEARCH_TARGETS[int(rng.integers(len(lan.SSDP_SEARCH_TARGETS)))]
        for i in range(3):
            at = t_us + i * int(rng.integers(900_000, 1_100_000))
            self.lab.udp_to(
                at, host, SSDP_GROUP, multicast_mac(SSDP_GROUP), port, SSDP_PORT, lan.ssdp_search(target), SSDP_TTL
            )
        if rng.random() < 0.3:
            device = self.office.servers["printer"]
            for nt in ("upnp:rootdevice", "urn:dial-multiscreen-org:service:dial:1"):
                payload = lan.ssdp_notify(device.ip, "a4f1c2d0-93e5-4b1e-8c27-6d1f0e6a7b35", nt)
                self.lab.udp_to(
                    t_us + 400_000,
                    device,
                    SSDP_GROUP,
                    multicast_mac(SSDP_GROUP),
                    SSDP_PORT,
                    SSDP_PORT,
                    payload,
                    SSDP_TTL,
                )


class NameBroadcasts(HostChatter):
    """A Windows host looking up a short name: LLMNR to its multicast group and a NetBIOS broadcast, twice."""

    def session(self, t_us: int) -> None:
        rng, host = self.rng, self.host
        name = SHORT_NAMES[int(rng.integers(len(SHORT_NAMES)))]
        txid = int(rng.integers(0, 65536))
        port = host.port()
        bcast = ip4(self.office.net.prefix + ".255.255")
        for i in range(2):
            at = t_us + i * 410_000
            query = lan.llmnr_query(txid, name, dns.TYPE_A)
            self.lab.udp_to(at, host, LLMNR_GROUP, multicast_mac(LLMNR_GROUP), port, LLMNR_PORT, query, MULTICAST_TTL)
            self.lab.udp_to(at + 900, host, bcast, BROADCAST_MAC, NBNS_PORT, NBNS_PORT, lan.nbns_query(txid, name), 128)


class Dhcp(HostChatter):
    """Leases: a renewal (unicast request and ack), or after a reboot the full broadcast discover/offer/request/ack."""

    def session(self, t_us: int) -> None:
        rng, host = self.rng, self.host
        router = self.office.net.gateway
        dns_ip = self.office.servers["resolver"].ip4
        xid = int(rng.integers(0, 2**32))
        name = host.name
        lab = self.lab
        if rng.random() < 0.6:
            req = lan.dhcp(lan.BOOTP_REQUEST, lan.DHCP_REQUEST, xid, host.mac, ciaddr=host.ip4, hostname=name)
            lab.udp(t_us, host, router, DHCP_CLIENT_PORT, DHCP_SERVER_PORT, req)
            ack = lan.dhcp(
                lan.BOOTP_REPLY,
                lan.DHCP_ACK,
                xid,
                host.mac,
                ciaddr=host.ip4,
                yiaddr=host.ip4,
                server=router.ip4,
                router=router.ip4,
                dns_server=dns_ip,
            )
            lab.udp(t_us + int(rng.integers(500, 3000)), router, host, DHCP_SERVER_PORT, DHCP_CLIENT_PORT, ack)
            return
        zero = bytes(4)
        steps = (
            (True, lan.dhcp(lan.BOOTP_REQUEST, lan.DHCP_DISCOVER, xid, host.mac, hostname=name)),
            (
                False,
                lan.dhcp(
                    lan.BOOTP_REPLY,
                    lan.DHCP_OFFER,
                    xid,
                    host.mac,
                    yiaddr=host.ip4,
                    server=router.ip4,
                    router=router.ip4,
                    dns_server=dns_ip,
                ),
            ),
            (True, lan.dhcp(lan.BOOTP_REQUEST, lan.DHCP_REQUEST, xid, host.mac, requested=host.ip4, hostname=name)),
            (
                False,
                lan.dhcp(
                    lan.BOOTP_REPLY,
                    lan.DHCP_ACK,
                    xid,
                    host.mac,
                    yiaddr=host.ip4,
                    server=router.ip4,
                    router=router.ip4,
                    dns_server=dns_ip,
                ),
            ),
        )
        at = t_us
        for from_client, payload in steps:
            if from_client:
                frame = _udp_broadcast(host.mac, zero, DHCP_CLIENT_PORT, DHCP_SERVER_PORT, payload, host.ttl)
            else:
                frame = _udp_broadcast(router.mac, router.ip4, DHCP_SERVER_PORT, DHCP_CLIENT_PORT, payload, LINUX_TTL)
            lab.add(at, frame)
            at += int(rng.integers(1_000, 40_000))
        lab.gratuitous_arp(at + 200_000, host.mac, host.ip4)


def _udp_broadcast(src_mac: bytes, src_ip: bytes, sport: int, dport: int, payload: bytes, ttl: int) -> bytes:
    return udp_frame(src_mac, BROADCAST_MAC, src_ip, LIMITED_BROADCAST, sport, dport, payload, ttl=ttl)


class Vrrp(Periodic):
    """keepalived: the master advertises the virtual address every second; once, the backup takes over."""

    def __init__(
        self, office: Office, rng: np.random.Generator, vip: bytes, vrid: int, failover_us: int, first_us: int
    ) -> None:
        super().__init__(office.lab, rng, 1_000_000, 0.001, first_us)
        self.master = office.servers["vrrp-a"]
        self.backup = office.servers["vrrp-b"]
        self.vip = vip
        self.vrid = vrid
        self.failover_us = failover_us
        self.mac = VRRP_MAC_PREFIX + bytes((vrid,))

    def session(self, t_us: int) -> None:
        if self.failover_us - FAILOVER_SILENCE_US <= t_us < self.failover_us:
            return  # the master is down; the backup waits out three missed adverts and its skew
        master, priority = (self.master, 150) if t_us < self.failover_us else (self.backup, 100)
        if t_us >= self.failover_us and t_us - self.failover_us < self.period_us:
            for i in range(5):  # keepalived's gratuitous ARPs for the address it just took over
                self.lab.gratuitous_arp(t_us + 200 + i * 1000, self.mac, self.vip)
        body = lan.vrrp_advert(self.vrid, priority, self.vip)
        self.lab.add(
            t_us,
            ip_frame(self.mac, multicast_mac(VRRP_GROUP), master.ip4, VRRP_GROUP, PROTO_VRRP, body, ttl=MULTICAST_TTL),
        )
