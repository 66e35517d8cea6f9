"""Noisy network-level attacks: nmap SYN, connect, XMAS and UDP port scans, a ping sweep, a spoofed SYN flood."""

from __future__ import annotations

import numpy as np

from . import packets as pk
from .attacks import Attack
from .network import LINUX_TTL, Host
from .office import Office
from .tcp import TcpFlow

NMAP_TOP_PORTS = (  # the most common of nmap's top-1000 TCP ports; the rest are drawn at random
    80, 23, 443, 21, 22, 25, 3389, 110, 445, 139, 143, 53, 135, 3306, 8080, 1723, 111, 995, 993, 5900, 1025, 587,
    8888, 199, 1720, 465, 548, 113, 81, 6001, 10000, 514, 5060, 179, 1026, 2000, 8443, 8000, 32768, 554, 26, 1433,
    49152, 2001, 515, 8008, 49154, 1027, 5666, 646, 5000, 5631, 631, 49153, 8081, 2049, 88, 79, 5800, 106, 2121,
    1110, 49155, 6000, 513, 990, 5357, 427, 49156, 543, 544, 5101, 144, 7, 389,
)  # fmt: skip
SCAN_PORTS = 1000  # ports in an nmap default scan
NMAP_SYN_WINDOW = 1024  # nmap -sS probes: window 1024 and an MSS option only
NMAP_SYN_OPTIONS = bytes.fromhex("020405b4")
XMAS_FLAGS = pk.TCP_FIN | pk.TCP_PSH | pk.TCP_URG  # nmap -sX lights the packet up like a Christmas tree


def scan_ports(rng: np.random.Generator, count: int) -> list[int]:
    """``count`` distinct ports, the well-known ones first as nmap's list has them, in nmap's random order."""
    ports = list(NMAP_TOP_PORTS)
    seen = set(ports)
    while len(ports) < count:
        port = int(rng.integers(1, 10_000)) if rng.random() < 0.8 else int(rng.integers(10_000, 65_536))
        if port not in seen:
            seen.add(port)
            ports.append(port)
    order = rng.permutation(count)
    return [ports[int(i)] for i in order]


class SynPortScan(Attack):
    """nmap -sS against one server: 1000 SYNs from one source port; RST-ACK from closed ports, SYN-ACK from open."""

    kind = "port_scan"

    def __init__(
        self,
        office: Office,
        rng: np.random.Generator,
        at_us: int,
        seconds: float,
        attacker: Host,
        target: Host,
        open_ports: tuple[int, ...],
    ) -> None:
        super().__init__(office, rng, at_us, seconds)
        self.src, self.target, self.open_ports = attacker, target, open_ports
        self.attacker, self.victim = attacker.ip, target.ip
        self.notes = (
            f"nmap -sS: 1000 SYNs from one source port; open {'/'.join(map(str, open_ports))} answer SYN-ACK, "
            "the rest RST-ACK"
        )

    def session(self, t_us: int) -> None:
        rng = self.rng
        ports = scan_ports(rng, SCAN_PORTS)
        sport = int(rng.integers(33_000, 61_000))
        gap = self.seconds * 1e6 / len(ports)
        for i, port in enumerate(ports):
            flow = TcpFlow(
                self.lab, rng, self.src, self.target, port, t_us + int(i * gap * rng.uniform(0.5, 1.5)), 0, sport=sport
            )
            syn_probe(flow, port in self.open_ports, reset_ack=True)


class ConnectScan(Attack):
    """nmap -sT: the kernel's full connect() to 1000 ports; open ports finish the handshake and are reset at once."""

    kind = "port_scan"

    def __init__(
        self,
        office: Office,
        rng: np.random.Generator,
        at_us: int,
        seconds: float,
        attacker: Host,
        target: Host,
        open_ports: tuple[int, ...],
    ) -> None:
        super().__init__(office, rng, at_us, seconds)
        self.src, self.target, self.open_ports = attacker, target, open_ports
        self.attacker, self.victim = attacker.ip, target.ip
        self.notes = (
            f"nmap -sT: a connect() to each of 1000 ports from ephemeral source ports; open "
            f"{'/'.join(map(str, open_ports))} complete the handshake (then RST), the rest answer RST-ACK"
        )

    def session(self, t_us: int) -> None:
        rng = self.rng
        ports = scan_ports(rng, SCAN_PORTS)
        gap = self.seconds * 1e6 / len(ports)
        for i, port in enumerate(ports):
            flow = TcpFlow(self.lab, rng, self.src, self.target, port, t_us + int(i * gap * rng.uniform(0.5, 1.5)), 0)
            if port in self.open_ports:
                flow.open()
                flow.abort(True, after_us=int(rng.integers(50, 300)))
            else:
                flow.refuse()


class XmasScan(Attack):
    """nmap -sX against a Windows host: FIN+PSH+URG to 1000 ports, and a RST-ACK back from every one of them."""

    kind = "port_scan"

    def __init__(
        self, office: Office, rng: np.random.Generator, at_us: int, seconds: float, attacker: Host, target: Host
    ) -> None:
        super().__init__(office, rng, at_us, seconds)
        self.src, self.target = attacker, target
        self.attacker, self.victim = attacker.ip, target.ip
        self.notes = "nmap -sX: 1000 FIN+PSH+URG probes from one source port; the target answers RST-ACK to every probe"

    def session(self, t_us: int) -> None:
        rng = self.rng
        ports = scan_ports(rng, SCAN_PORTS)
        sport = int(rng.integers(33_000, 61_000))
        gap = self.seconds * 1e6 / len(ports)
        for i, port in enumerate(ports):
            at = t_us + int(i * gap * rng.uniform(0.5, 1.5))
            flow = TcpFlow(self.lab, rng, self.src, self.target, port, at, 0, sport=sport)
            flow.emit(flow.t, True, XMAS_FLAGS, window=NMAP_SYN_WINDOW)
            flow.c_seq += 1
            flow.abort(False, after_us=flow.turn(False))


class PingSweep(Attack):
    """ICMP echo requests to every address of a routed /24; the live hosts answer."""

    kind = "host_sweep"

    def __init__(
        self,
        office: Office,
        rng: np.random.Generator,
        at_us: int,
        seconds: float,
        attacker: Host,
        subnet: str,
        live: int,
    ) -> None:
        super().__init__(office, rng, at_us, seconds)
        self.src, self.subnet, self.live = attacker, subnet, live
        self.attacker, self.victim = attacker.ip, f"{subnet}.0/24"
        self.notes = (
            f"ping sweep: ICMP echo to {subnet}.1-254 (routed lab VLAN behind the gateway); {live} live hosts reply"
        )

    def session(self, t_us: int) -> None:
        rng = self.rng
        live = set(int(x) for x in rng.choice(np.arange(1, 255), self.live, replace=False))
        ident = int(rng.integers(1, 65_536))
        gap = self.seconds * 1e6 / 254
        payload = bytes(range(16, 72))  # Linux ping's 56 data bytes pattern (after the timestamp area)
        for i, last in enumerate(rng.permutation(np.arange(1, 255))):
            target = self.office.net.external(f"lab-{last}", f"{self.subnet}.{int(last)}")
            target.ttl = LINUX_TTL - 1
            t = t_us + int(i * gap)
            self.lab.icmp(t, self.src, target, pk.ICMP_ECHO, 0, ident << 16 | (i + 1), payload)
            if int(last) in live:
                self.lab.icmp(
                    t + int(rng.integers(300, 2000)),
                    target,
                    self.src,
                    pk.ICMP_ECHO_REPLY,
                    0,
                    ident << 16 | (i + 1),
                    payload,
                )


class UdpScan(Attack):
    """nmap -sU: empty datagrams to 1000 ports; ICMP port unreachable from every closed one."""

    kind = "port_scan"

    def __init__(
        self, office: Office, rng: np.random.Generator, at_us: int, seconds: float, attacker: Host, target: Host
    ) -> None:
        super().__init__(office, rng, at_us, seconds)
        self.src, self.target = attacker, target
        self.attacker, self.victim = attacker.ip, target.ip
        self.notes = (
            "nmap -sU: empty UDP datagrams to 1000 ports from one source port; ICMP port unreachable from closed ports"
        )

    def session(self, t_us: int) -> None:
        rng = self.rng
        sport = int(rng.integers(33_000, 61_000))
        ports = scan_ports(rng, SCAN_PORTS)
        gap = self.seconds * 1e6 / len(ports)
        src_mac, dst_mac = self.office.net.macs(self.src, self.target)
        for i, port in enumerate(ports):
            t = t_us + int(i * gap * rng.uniform(0.5, 1.5))
            probe = pk.udp_frame(
                src_mac,
                dst_mac,
                self.src.ip4,
                self.target.ip4,
                sport,
                port,
                b"",
                ident=self.src.ip_id(),
                ttl=self.src.ttl,
            )
            self.lab.add(t, probe)
            if port not in (53, 123, 137, 161):
                quoted = probe[pk.ETH_HEADER_LEN : pk.ETH_HEADER_LEN + pk.IP_HEADER_LEN + pk.UDP_HEADER_LEN]
                self.lab.icmp(
                    t + int(rng.integers(100, 600)),
                    self.target,
                    self.src,
                    pk.ICMP_UNREACH,
                    pk.ICMP_PORT_UNREACH,
                    0,
                    quoted,
                )


class SynFlood(Attack):
    """hping3 --flood --rand-source: SYNs from spoofed addresses and ports to one port; the victim SYN-ACKs each."""

    kind = "syn_flood"

    def __init__(
        self,
        office: Office,
        rng: np.random.Generator,
        at_us: int,
        seconds: float,
        target: Host,
        port: int,
        rate_pps: float,
    ) -> None:
        super().__init__(office, rng, at_us, seconds)
        self.target, self.port, self.rate_pps = target, port, rate_pps
        self.attacker, self.victim = "*", target.ip
        self.notes = (
            f"SYN flood to tcp/{port} from spoofed sources in 198.18.0.0/15 at ~{rate_pps:.0f} SYN/s; "
            "the victim answers SYN-ACK (syncookies)"
        )

    def session(self, t_us: int) -> None:
        rng = self.rng
        count = int(self.seconds * self.rate_pps)
        gaps = rng.exponential(1e6 / self.rate_pps, count).cumsum().astype(np.int64)
        sources = rng.integers(0, 2**17, count)
        sports = rng.integers(1024, 65_536, count)
        seqs = rng.integers(0, 2**32, count)
        gw = self.office.net.gateway.mac
        target = self.target
        for i in range(count):
            src = bytes((198, 18 + int(sources[i] >> 16), int(sources[i] >> 8) & 0xFF, int(sources[i]) & 0xFF))
            t = t_us + int(gaps[i])
            frame, _ = pk.tcp_frame(
                gw,
                target.mac,
                src,
                target.ip4,
                int(sports[i]),
                self.port,
                int(seqs[i]),
                0,
                pk.TCP_SYN,
                512,
                ident=int(seqs[i]) & 0xFFFF,
                ttl=int(40 + sources[i] % 20),
            )
            self.lab.add(t, frame)
            reply, _ = pk.tcp_frame(
                target.mac,
                gw,
                target.ip4,
                src,
                self.port,
                int(sports[i]),
                int(rng.integers(0, 2**32)),
                int(seqs[i]) + 1,
                pk.TCP_SYN | pk.TCP_ACK,
                64240,
                options=bytes.fromhex("020405b4"),
                ident=0,
                ttl=target.ttl,
            )
            self.lab.add(t + int(rng.integers(20, 200)), reply)


def syn_probe(flow: TcpFlow, is_open: bool, reset_ack: bool = False) -> None:
    """One nmap -sS probe: a SYN from the raw socket; a closed port answers RST-ACK, an open one SYN-ACK, which
    the scanner's kernel (no socket holds the connection) answers with a bare RST (``reset_ack``: a RST-ACK, as
    the loud lab scan has always written it)."""
    flow.emit(flow.t, True, pk.TCP_SYN, options=NMAP_SYN_OPTIONS, window=NMAP_SYN_WINDOW)
    flow.c_seq += 1
    if not is_open:
        flow.abort(False, after_us=flow.turn(False))
        return
    flow.t += flow.turn(False)
    flow.emit(flow.t, False, pk.TCP_SYN | pk.TCP_ACK, options=bytes.fromhex("020405b4"), window=64240)
    flow.s_seq += 1
    if reset_ack:
        flow.abort(True, after_us=flow.turn(True))
        return
    flow.t += flow.turn(True)
    flow.emit(flow.t, True, pk.TCP_RST, window=0)


class SlowSynScan(Attack):
    """nmap -sS with a scan delay (-T2 and slower): nmap's top ``ports`` ports of one server, one SYN every few
    seconds from one source port; RST-ACK from closed ports, SYN-ACK (reset by the scanner) from open ones."""

    kind = "port_scan"

    def __init__(
        self,
        office: Office,
        rng: np.random.Generator,
        at_us: int,
        seconds: float,
        attacker: Host,
        target: Host,
        ports: int,
        open_ports: tuple[int, ...],
        gap_s: tuple[float, float],
    ) -> None:
        super().__init__(office, rng, at_us, seconds)
        missing = set(open_ports) - set(NMAP_TOP_PORTS[:ports])
        if missing:
            raise ValueError(f"open ports {sorted(missing)} are not among the {ports} ports scanned")
        self.src, self.target, self.ports, self.open_ports, self.gap_s = attacker, target, ports, open_ports, gap_s
        self.attacker, self.victim = attacker.ip, target.ip
        self.notes = (
            f"slow nmap -sS: {ports} top ports, one SYN every {gap_s[0]:g}-{gap_s[1]:g} s from one source port; "
            f"open {'/'.join(map(str, open_ports))} answer SYN-ACK (the scanner resets them), the rest RST-ACK"
        )

    def session(self, t_us: int) -> None:
        rng = self.rng
        sport = int(rng.integers(33_000, 61_000))
        t = t_us
        for port in scan_ports(rng, self.ports):
            syn_probe(TcpFlow(self.lab, rng, self.src, self.target, port, t, 0, sport=sport), port in self.open_ports)
            t += int(rng.uniform(*self.gap_s) * 1e6)


class LateralScan(Attack):
    """An inside workstation probing a few service ports on its LAN neighbours (nmap -sS -p on its subnet): the
    (host, port) pairs in random order spread over ``seconds``, one source port, half-open like ``syn_probe``."""

    kind = "port_scan"

    def __init__(
        self,
        office: Office,
        rng: np.random.Generator,
        at_us: int,
        seconds: float,
        scanner: Host,
        targets: list[Host],
        ports: tuple[int, ...],
        open_ports: dict[str, tuple[int, ...]],
    ) -> None:
        super().__init__(office, rng, at_us, seconds)
        self.src, self.targets, self.ports, self.open_ports = scanner, targets, ports, open_ports
        self.attacker, self.victim = scanner.ip, ";".join(t.ip for t in targets)
        found = sum(len(set(open_ports.get(t.ip, ())) & set(ports)) for t in targets)
        self.notes = (
            f"lateral SYN scan by a workstation: tcp/{'/'.join(map(str, ports))} on {len(targets)} LAN hosts in "
            f"~{seconds:.0f} s from one source port; {found} open answer SYN-ACK (the scanner resets them), "
            f"the other {len(targets) * len(ports) - found} RST-ACK"
        )

    def session(self, t_us: int) -> None:
        rng = self.rng
        pairs = [(target, port) for target in self.targets for port in self.ports]
        sport = int(rng.integers(33_000, 61_000))
        gap = self.seconds * 1e6 / len(pairs)
        for i, k in enumerate(rng.permutation(len(pairs))):
            target, port = pairs[int(k)]
            at = t_us + int((i + rng.uniform(0.0, 0.8)) * gap)
            flow = TcpFlow(self.lab, rng, self.src, target, port, at, 0, sport=sport)
            syn_probe(flow, port in self.open_ports.get(target.ip, ()))
