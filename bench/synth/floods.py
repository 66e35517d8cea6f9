"""Floods as the victim's side sees them: spoofed SYN bursts, unasked-for answers from reflectors, made-up MACs.

These are one-way by nature (the packets' sources are spoofed or invented, so nothing answers them), as
in the public DDoS captures, which hold only what reached the victim. Sources are drawn from
198.18.0.0/15, the benchmarking range the rest of the Internet also lives in here.
"""

from __future__ import annotations

import numpy as np

from . import lan
from . import packets as pk
from .attacks import Attack
from .network import Host
from .office import Office

SNMP_PORT = 161
SNMP_GETBULK_OIDS = 48  # interface counters a GetBulk answer carries: a ~1.3 kB answer to a 60-byte ask
REFLECTED_PORTS = (80, 80, 80, 443)  # where SYN-ACK reflectors answer from (web servers, mostly port 80)


def spoofed_sources(rng: np.random.Generator, count: int) -> list[bytes]:
    """``count`` random addresses in 198.18.0.0/15 (repeats possible, as with any random draw)."""
    drawn = rng.integers(0, 2**17, count)
    return [bytes((198, 18 + int(x >> 16), int(x >> 8) & 0xFF, int(x) & 0xFF)) for x in drawn]


class SpoofedSynBursts(Attack):
    """hping3 --flood --rand-source in bursts: SYNs to one port, each from a new random address; no answer is seen."""

    kind = "syn_flood"

    def __init__(
        self,
        office: Office,
        rng: np.random.Generator,
        at_us: int,
        seconds: float,
        target: Host,
        port: int,
        bursts: int,
        per_burst: int,
    ) -> None:
        super().__init__(office, rng, at_us, seconds)
        self.target, self.port, self.bursts, self.per_burst = target, port, bursts, per_burst
        self.attacker, self.victim = "*", target.ip
        self.notes = (
            f"one-way capture: {bursts} bursts of {per_burst} SYNs to tcp/{port} from random spoofed sources "
            f"over {seconds:g} s; the victim's answers are not in the capture"
        )

    def session(self, t_us: int) -> None:
        rng, gw, target = self.rng, self.office.net.gateway.mac, self.target
        burst_us = 1_000_000 // 2  # each burst lasts half a second
        for b in range(self.bursts):
            start = t_us + int(b * (self.seconds * 1e6 - burst_us) / max(1, self.bursts - 1))
            offsets = np.sort(rng.integers(0, burst_us, self.per_burst))
            sports = rng.integers(1024, 65_536, self.per_burst)
            seqs = rng.integers(0, 2**32, self.per_burst)
            for i, src in enumerate(spoofed_sources(rng, self.per_burst)):
                frame, _ = pk.tcp_frame(
                    gw, target.mac, src, target.ip4, int(sports[i]), self.port, int(seqs[i]), 0, pk.TCP_SYN, 512,
                    ident=int(seqs[i]) & 0xFFFF, ttl=int(40 + seqs[i] % 20),
                )  # fmt: skip
                self.lab.add(start + int(offsets[i]), frame)


class SnmpAmplification(Attack):
    """Answers to spoofed SNMP GetBulk requests: large responses from port 161 of many reflectors, asked by nobody."""

    kind = "ddos_amplification"

    def __init__(
        self, office: Office, rng: np.random.Generator, at_us: int, seconds: float, victim: Host, reflectors: int
    ) -> None:
        super().__init__(office, rng, at_us, seconds)
        self.target, self.reflectors = victim, reflectors
        self.attacker, self.victim = "*", victim.ip
        self.notes = (
            f"one-way capture: one SNMP GetBulk response (udp src port 161, ~1.3 kB) from each of {reflectors} "
            f"reflectors in {seconds * 1000:g} ms; the requests were sent with the victim's address elsewhere"
        )

    def session(self, t_us: int) -> None:
        rng, gw, target = self.rng, self.office.net.gateway.mac, self.target
        binds = [(f"1.3.6.1.2.1.31.1.1.1.6.{i + 1}", lan.BER_COUNTER64) for i in range(SNMP_GETBULK_OIDS)]
        offsets = np.sort(rng.integers(0, int(self.seconds * 1e6), self.reflectors))
        sports = rng.integers(1024, 65_536, self.reflectors)
        for i, src in enumerate(spoofed_sources(rng, self.reflectors)):
            values = [
                (oid, tag, int(v)) for (oid, tag), v in zip(binds, rng.integers(0, 2**62, len(binds)), strict=True)
            ]
            answer = lan.snmp(lan.SNMP_RESPONSE, int(rng.integers(1, 2**31)), "public", values)
            frame = pk.udp_frame(
                gw, target.mac, src, target.ip4, SNMP_PORT, int(sports[i]), answer, ident=int(sports[i]), ttl=52
            )
            self.lab.add(t_us + int(offsets[i]), frame)


class SynAckReflection(Attack):
    """SYN-ACKs from web servers sent spoofed SYNs in the victim's name, some retransmitted, some reset."""

    kind = "ddos_reflection"

    def __init__(
        self, office: Office, rng: np.random.Generator, at_us: int, seconds: float, victim: Host, reflectors: int
    ) -> None:
        super().__init__(office, rng, at_us, seconds)
        self.target, self.reflectors = victim, reflectors
        self.attacker, self.victim = "*", victim.ip
        self.notes = (
            f"one-way capture: SYN-ACKs (mostly from port 80, some 443) from {reflectors} reflectors in "
            f"{seconds:g} s, a tenth of them retransmitted, plus lone RSTs from a few others"
        )

    def session(self, t_us: int) -> None:
        rng, gw, target = self.rng, self.office.net.gateway.mac, self.target
        span = int(self.seconds * 1e6)
        for src in spoofed_sources(rng, self.reflectors):
            sport = REFLECTED_PORTS[int(rng.integers(len(REFLECTED_PORTS)))]
            dport, seq, ack = int(rng.integers(1024, 65_536)), int(rng.integers(0, 2**32)), int(rng.integers(0, 2**32))
            at = t_us + int(rng.integers(0, span))
            if rng.random() < 0.03:  # a host that was sent a spoofed ACK, or whose port is closed, resets instead
                sends = [(at, pk.TCP_RST)]
            else:
                sends = [(at, pk.TCP_SYN | pk.TCP_ACK)]
                if rng.random() < 0.1:  # no ACK came back, so the reflector retransmits
                    sends.append((at + int(rng.integers(span // 4, span // 2)), pk.TCP_SYN | pk.TCP_ACK))
            for when, flags in sends:
                frame, _ = pk.tcp_frame(
                    gw, target.mac, src, target.ip4, sport, dport, seq, ack, flags, 29200,
                    options=bytes.fromhex("020405b4") if flags & pk.TCP_SYN else b"", ident=0, ttl=int(48 + seq % 10),
                )  # fmt: skip
                self.lab.add(min(when, t_us + span), frame)


class MacFlood(Attack):
    """macof: TCP SYN frames with random source and destination MACs, IPv4 addresses and ports, as fast as it can."""

    kind = "mac_flood"

    def __init__(self, office: Office, rng: np.random.Generator, at_us: int, seconds: float, frames: int) -> None:
        super().__init__(office, rng, at_us, seconds)
        self.frames = frames
        self.attacker, self.victim = "*", "*"
        self.notes = (
            f"{frames} TCP SYN frames in {seconds * 1000:g} ms, each with random source and destination MAC "
            "(all 48 bits random, so about half have the group bit set), IPv4 addresses and ports"
        )

    def session(self, t_us: int) -> None:
        rng = self.rng
        offsets = np.sort(rng.integers(0, int(self.seconds * 1e6), self.frames))
        for i in range(self.frames):
            src_mac, dst_mac, src, dst = (rng.bytes(n) for n in (6, 6, 4, 4))
            sport, dport = (int(p) for p in rng.integers(1, 65_536, 2))
            frame, _ = pk.tcp_frame(
                src_mac, dst_mac, src, dst, sport, dport, int(rng.integers(0, 2**32)), 0, pk.TCP_SYN, 512,
                ident=int(rng.integers(0, 65_536)), ttl=64,
            )  # fmt: skip
            self.lab.add(t_us + int(offsets[i]), frame)
