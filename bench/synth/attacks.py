"""Attacks injected into the office capture, each labelled with who, whom, when and how.

Every attack writes through a ``Recorder`` that notes the first and last frame it put in the capture,
so a label's time range is exactly the attack's packets (the victims' answers included).
"""

from __future__ import annotations

import base64
import copy
from dataclasses import replace

import numpy as np

from . import dns, ssh, web
from . import packets as pk
from .behaviour import Once
from .lab import Lab
from .labels import Label
from .network import LINUX_TTL, Host
from .office import Office
from .sessions import Web
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
HYDRA_BANNER = b"SSH-2.0-libssh_0.9.6\r\n"
BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


class Recorder:
    """Passes frames on to the lab's sink and remembers the first and last time inside the capture."""

    def __init__(self, lab: Lab) -> None:
        self.sink = lab.timeline
        self.start_us, self.end_us = lab.span_us
        self.first_us: int | None = None
        self.last_us: int | None = None

    def add(self, ts_us: int, frame: bytes, wire_len: int = 0) -> None:
        if self.start_us <= ts_us < self.end_us:
            self.first_us = ts_us if self.first_us is None else min(self.first_us, ts_us)
            self.last_us = ts_us if self.last_us is None else max(self.last_us, ts_us)
        self.sink.add(ts_us, frame, wire_len)


class Attack(Once):
    """Runs once at ``at_us`` through its own recording lab; ``label`` describes what it did."""

    kind = ""

    def __init__(self, office: Office, rng: np.random.Generator, at_us: int, seconds: float) -> None:
        self.recorder = Recorder(office.lab)
        lab = Lab(office.lab.seed, office.net, self.recorder, office.lab.profile, office.lab.span_us)
        super().__init__(lab, rng, at_us)
        resolver = copy.copy(office.resolver)
        resolver.lab = lab
        self.office = replace(office, lab=lab, web=Web(lab), resolver=resolver)
        self.seconds = seconds
        self.attacker = ""
        self.victim = ""
        self.notes = ""

    def label(self) -> Label | None:
        """The label row, or None when none of the attack's packets fell inside the capture."""
        if self.recorder.first_us is None or self.recorder.last_us is None:
            return None
        return Label(self.attacker, self.victim, self.kind, self.recorder.first_us, self.recorder.last_us, self.notes)


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
            if port in self.open_ports:
                flow.emit(flow.t, True, pk.TCP_SYN, options=NMAP_SYN_OPTIONS, window=NMAP_SYN_WINDOW)
                flow.c_seq += 1
                flow.t += flow.turn(False)
                flow.emit(flow.t, False, pk.TCP_SYN | pk.TCP_ACK, options=bytes.fromhex("020405b4"), window=64240)
                flow.s_seq += 1
                flow.abort(True, after_us=flow.turn(True))  # the scanner's kernel resets the half-open connection
            else:
                flow.emit(flow.t, True, pk.TCP_SYN, options=NMAP_SYN_OPTIONS, window=NMAP_SYN_WINDOW)
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


class SshBruteForce(Attack):
    """hydra against SSH: short sessions, four at a time, each with banners, key exchange and failed password tries."""

    kind = "brute_force"

    def __init__(
        self,
        office: Office,
        rng: np.random.Generator,
        at_us: int,
        seconds: float,
        attacker: Host,
        target: Host,
        sessions: int,
    ) -> None:
        super().__init__(office, rng, at_us, seconds)
        self.src, self.target, self.sessions = attacker, target, sessions
        self.attacker, self.victim = attacker.ip, target.ip
        self.notes = (
            f"hydra -t 4 SSH password guessing: {sessions} sessions to tcp/22 (client banner libssh_0.9.6), all failing"
        )

    def session(self, t_us: int) -> None:
        rng = self.rng
        per_thread = -(-self.sessions // 4)
        step = self.seconds * 1e6 / per_thread
        for i in range(self.sessions):
            t = t_us + int((i // 4) * step + (i % 4) * rng.uniform(1_000, 50_000))
            flow = TcpFlow(self.lab, rng, self.src, self.target, 22, t, 0)
            flow.open()
            flow.send(True, HYDRA_BANNER, reply_follows=True)
            flow.send(False, ssh.SERVER_BANNER, think_us=2000)
            flow.send(True, ssh.kexinit(rng), reply_follows=True)
            flow.send(False, ssh.kexinit(rng), think_us=300)
            flow.send(True, ssh.ecdh_init(rng), reply_follows=True)
            flow.send(False, ssh.ecdh_reply_and_newkeys(rng), think_us=1500)
            flow.send(True, ssh.newkeys(rng) + ssh.encrypted(rng, 28), reply_follows=True)
            flow.send(False, ssh.encrypted(rng, 28), think_us=200)
            for _ in range(int(rng.integers(1, 4))):  # password attempts, each refused after PAM's delay
                flow.send(True, ssh.encrypted(rng, 80), think_us=int(rng.integers(500, 3000)), reply_follows=True)
                flow.send(
                    False, ssh.encrypted(rng, 40), think_us=int(rng.integers(int(step * 0.2), int(step * 0.4) + 1))
                )
            flow.close(True, after_us=int(rng.integers(200, 2000)))


class HttpBruteForce(Attack):
    """A login form attacked with a password list: one connection per POST /login, 401 until the last one."""

    kind = "brute_force"

    def __init__(
        self,
        office: Office,
        rng: np.random.Generator,
        at_us: int,
        seconds: float,
        attacker: Host,
        target: Host,
        attempts: int,
    ) -> None:
        super().__init__(office, rng, at_us, seconds)
        self.src, self.target, self.attempts = attacker, target, attempts
        self.attacker, self.victim = attacker.ip, target.ip
        self.notes = (
            f"HTTP form brute force: {attempts} POST /login (user admin) each on a new connection; "
            "401 except the last (200)"
        )

    def session(self, t_us: int) -> None:
        rng = self.rng
        host = "intranet.office.lan"
        gap = self.seconds * 1e6 / self.attempts
        headers = (("User-Agent", "Mozilla/5.0 (Hydra)"), ("Content-Type", "application/x-www-form-urlencoded"))
        for i in range(self.attempts):
            password = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz0123456789"), int(rng.integers(6, 12))))
            body = f"username=admin&password={password}".encode()
            flow = self.office.web.connect(rng, self.src, self.target, 80, t_us + int(i * gap), 0)
            ok = i == self.attempts - 1
            page = b'{"status":"ok"}' if ok else b'{"error":"invalid credentials"}'
            head = web.response_head(200 if ok else 401, "OK" if ok else "Unauthorized", "application/json", len(page))
            self.office.web.http_exchange(
                flow, web.request("POST", host, "/login", headers, body), head, len(page), body=page
            )
            flow.close(False, after_us=int(rng.integers(100, 1000)))


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


class C2Beacon(Attack):
    """Implant polling its controller: the same HTTP GET every ~5 s with 20% jitter, a new connection each time."""

    kind = "c2_beacon"

    def __init__(
        self,
        office: Office,
        rng: np.random.Generator,
        at_us: int,
        seconds: float,
        infected: Host,
        server: Host,
        period_s: float,
    ) -> None:
        super().__init__(office, rng, at_us, seconds)
        self.infected, self.server, self.period_s = infected, server, period_s
        self.attacker, self.victim = server.ip, infected.ip
        self.notes = (
            f"HTTP C2 beacon: GET /api/v1/status every {period_s:g} s +-20% (same request and response sizes), "
            f"a new connection each time, from the infected host to {server.ip}:80"
        )

    def session(self, t_us: int) -> None:
        rng = self.rng
        session = rng.bytes(8).hex()
        request = web.request(
            "GET",
            self.server.ip,
            f"/api/v1/status?sid={session}",
            (
                ("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"),
                ("Accept", "*/*"),
                ("Cache-Control", "no-cache"),
            ),
        )
        body = b'{"cmd":"none","sleep":5}'
        head = web.response_head(200, "OK", "application/json", len(body))
        t = t_us
        end = t_us + int(self.seconds * 1e6)
        while t < end:
            flow = self.office.web.connect(rng, self.infected, self.server, 80, t, self.office.rtt(rng, self.server))
            self.office.web.http_exchange(flow, request, head, len(body), body=body, server_us=800)
            flow.close(True, after_us=1_000)
            t += int(self.period_s * 1e6 * rng.uniform(0.8, 1.2))


class DnsTunnel(Attack):
    """A TXT-record tunnel: data as long base32 labels under one domain, through the local resolver, which relays."""

    kind = "dns_tunnel"

    def __init__(
        self,
        office: Office,
        rng: np.random.Generator,
        at_us: int,
        seconds: float,
        client: Host,
        domain: str,
        per_s: float,
    ) -> None:
        super().__init__(office, rng, at_us, seconds)
        self.client, self.domain, self.per_s = client, domain, per_s
        resolver, upstream = office.resolver.host, office.resolver.upstream
        self.attacker, self.victim = client.ip, upstream.ip
        self.notes = (
            f"DNS TXT tunnel under {domain}: base32 labels (3 x 56 chars) at ~{per_s:g} queries/s; "
            f"the local resolver {resolver.ip} relays every query to upstream {upstream.ip} and the TXT answers back"
        )

    def session(self, t_us: int) -> None:
        rng = self.rng
        t = t_us
        end = t_us + int(self.seconds * 1e6)
        seq = int(rng.integers(0, 4096))
        letters = np.array(list(BASE32))
        while t < end:
            labels = ["".join(rng.choice(letters, 56)) for _ in range(3)]
            name = ".".join([*labels, f"{seq:04x}", self.domain])
            answer = base64.b64encode(rng.bytes(int(rng.integers(100, 180)))).decode()
            self.office.resolver.lookup(
                t, self.client, name, dns.TYPE_TXT, [(name, dns.TYPE_TXT, 0, dns.txt_rdata(answer))]
            )
            seq = (seq + 1) & 0xFFFF
            t += int(rng.exponential(1e6 / self.per_s))


class HttpExfiltration(Attack):
    """Stolen data leaving by HTTP POST: several multi-megabyte uploads of octet-stream to one external host."""

    kind = "data_exfiltration"

    def __init__(
        self,
        office: Office,
        rng: np.random.Generator,
        at_us: int,
        seconds: float,
        client: Host,
        server: Host,
        total_bytes: int,
    ) -> None:
        super().__init__(office, rng, at_us, seconds)
        self.client, self.server, self.total_bytes = client, server, total_bytes
        self.attacker, self.victim = client.ip, server.ip
        self.notes = (
            f"HTTP POST exfiltration: {total_bytes / 1e6:.0f} MB of application/octet-stream "
            f"in 4 POST /upload to {server.ip}:80"
        )

    def session(self, t_us: int) -> None:
        rng = self.rng
        part = -(-self.total_bytes // 4)
        rate = self.total_bytes * 8 / self.seconds * 1.15
        flow = self.office.web.connect(rng, self.client, self.server, 80, t_us, self.office.rtt(rng, self.server))
        reply = b'{"ok":true}'
        response = web.response_head(200, "OK", "application/json", len(reply)) + reply
        for i in range(4):
            size = min(part, self.total_bytes - i * part)
            head = web.request(
                "POST",
                self.server.ip,
                f"/upload?part={i}",
                (("User-Agent", "curl/7.81.0"), ("Content-Type", "application/octet-stream")),
            )
            head = head.replace(b"Content-Length: 0", f"Content-Length: {size}".encode())
            self.office.web.http_upload(flow, head, size, response, rate_bps=rate)
        flow.close(True, after_us=5_000)


class ArpSpoof(Attack):
    """arpspoof: the attacker's MAC claims the gateway's address to two victims every 2 s; their traffic passes it."""

    kind = "arp_spoof"

    def __init__(
        self, office: Office, rng: np.random.Generator, at_us: int, seconds: float, attacker: Host, victims: list[Host]
    ) -> None:
        super().__init__(office, rng, at_us, seconds)
        self.src, self.victims = attacker, victims
        gateway = office.net.gateway
        self.attacker, self.victim = attacker.ip, ";".join(v.ip for v in victims)
        self.notes = (
            f"ARP spoofing by MAC {pk.mac_text(attacker.mac)}: unsolicited replies claiming gateway {gateway.ip} "
            f"(real MAC {pk.mac_text(gateway.mac)}) to both victims every 2 s; "
            "the victims' Internet traffic is relayed through the attacker"
        )

    def session(self, t_us: int) -> None:
        rng, lab, gateway = self.rng, self.lab, self.office.net.gateway
        for i, host in enumerate([*self.victims, gateway]):  # arpspoof first learns the real MACs
            lab.arp_request(t_us + i * 5_000, self.src, host.ip4)
            lab.arp_reply(t_us + i * 5_000 + int(rng.integers(100, 800)), host.mac, host.ip4, self.src)
        end = t_us + int(self.seconds * 1e6)
        t = t_us + 50_000
        while t < end:
            for victim in self.victims:
                lab.arp_reply(t, self.src.mac, gateway.ip4, victim)
            t += 2_000_000
        for victim in self.victims:  # the victims browse meanwhile; their frames to the gateway reach the attacker
            at = t_us + 500_000
            while at < end:
                name = self.office.catalogue.pick(rng).name
                done, server = self.office.lookup(at, victim, name)
                flow = TcpFlow(lab, rng, victim, server, 443, done, self.office.rtt(rng, server))
                flow.via = self.src.mac
                flow.open()
                hello = web.client_hello(rng, name)
                flow.send(True, hello, reply_follows=True)
                flow.send(False, web.server_flight(rng, hello, 3000), think_us=300)
                flow.send(True, web.client_finished(rng) + web.app_records(rng, 500), reply_follows=True)
                flow.send(False, web.app_records(rng, int(rng.integers(2_000, 40_000))), think_us=3000)
                flow.close(True, after_us=int(rng.integers(100_000, 2_000_000)))
                at = flow.t + int(rng.exponential(4e6))
