"""The context every behaviour works in: the network, the timeline, seeded randomness and the packet budget."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from . import packets as pk
from .network import Host, Network, stable_hash

MSS = 1460  # TCP payload bytes per full-size segment on Ethernet without TCP options
GRO_SEGMENT = 44 * MSS  # a receive-offloaded super-segment as a host capture records it (64,240 bytes)
SNAP_LEN = 128  # bytes kept of a bulk segment in a snaplen-limited capture: headers plus the start of the data


@dataclass(frozen=True)
class Profile:
    """How data is cut into packets: wire-size segments, or the offload-size (GRO) segments a host capture records,
    with those of large transfers cut at a snaplen.
    """

    bulk_segment: int  # payload bytes per data segment
    snap_len: int | None  # bulk segments are cut to this many bytes; None keeps full packets
    bulk_min: int  # bodies larger than this take the bulk path


FULL_PACKETS = Profile(MSS, None, 8 * MSS)  # the lab capture: every packet complete, as on the wire
SAMPLED_BULK = Profile(GRO_SEGMENT, SNAP_LEN, 2 * MSS)  # the day-long corpus: bodies as truncated super-segments


def named_rng(seed: int, *key: object) -> np.random.Generator:
    """A generator of its own for each named purpose, so adding a behaviour never shifts another's draws."""
    return np.random.default_rng([seed, stable_hash("/".join(map(str, key)))])


class FrameSink(Protocol):
    """Where frames go: the timeline, or a recorder in front of it."""

    def add(self, ts_us: int, frame: bytes, wire_len: int = 0) -> None: ...


class Lab:
    """Seed, network, frame sink and profile, plus one-line senders for datagrams that need no session state."""

    def __init__(
        self, seed: int, network: Network, sink: FrameSink, profile: Profile, span_us: tuple[int, int]
    ) -> None:
        self.seed = seed
        self.net = network
        self.timeline = sink
        self.profile = profile
        self.span_us = span_us  # the capture's [start, end) in microseconds; frames outside it are dropped

    def rng(self, *key: object) -> np.random.Generator:
        return named_rng(self.seed, *key)

    def add(self, t_us: int, frame: bytes, wire_len: int = 0) -> None:
        self.timeline.add(t_us, frame, wire_len)

    def udp(self, t_us: int, src: Host, dst: Host, sport: int, dport: int, payload: bytes) -> None:
        """One UDP datagram between two hosts (unicast)."""
        src_mac, dst_mac = self.net.macs(src, dst)
        frame = pk.udp_frame(src_mac, dst_mac, src.ip4, dst.ip4, sport, dport, payload, ident=src.ip_id(), ttl=src.ttl)
        self.timeline.add(t_us, frame)

    def udp_to(
        self, t_us: int, src: Host, dst_ip: bytes, dst_mac: bytes, sport: int, dport: int, payload: bytes, ttl: int
    ) -> None:
        """One UDP datagram to a broadcast or multicast address."""
        frame = pk.udp_frame(src.mac, dst_mac, src.ip4, dst_ip, sport, dport, payload, ident=src.ip_id(), ttl=ttl)
        self.timeline.add(t_us, frame)

    def icmp(self, t_us: int, src: Host, dst: Host, icmp_type: int, code: int, rest: int, payload: bytes) -> None:
        src_mac, dst_mac = self.net.macs(src, dst)
        frame = pk.icmp_frame(
            src_mac, dst_mac, src.ip4, dst.ip4, icmp_type, code, rest, payload, ident=src.ip_id(), ttl=src.ttl
        )
        self.timeline.add(t_us, frame)

    def arp_request(self, t_us: int, asker: Host, target_ip: bytes) -> None:
        frame = pk.arp_frame(pk.BROADCAST_MAC, asker.mac, pk.ARP_REQUEST, asker.mac, asker.ip4, pk.ZERO_MAC, target_ip)
        self.timeline.add(t_us, frame)

    def arp_reply(self, t_us: int, mac: bytes, claimed_ip: bytes, to: Host) -> None:
        """``mac`` says it owns ``claimed_ip``, unicast to ``to``."""
        self.timeline.add(t_us, pk.arp_frame(to.mac, mac, pk.ARP_REPLY, mac, claimed_ip, to.mac, to.ip4))

    def gratuitous_arp(self, t_us: int, mac: bytes, ip: bytes) -> None:
        """A broadcast ARP request for one's own address (announcement after boot, link-up or fail-over)."""
        self.timeline.add(t_us, pk.arp_frame(pk.BROADCAST_MAC, mac, pk.ARP_REQUEST, mac, ip, pk.ZERO_MAC, ip))
