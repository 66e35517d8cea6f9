"""Attacks on services and from inside: SSH, HTTP and FTP password guessing, SQL injection, a C2 beacon, a DNS
tunnel, DNS and HTTP exfiltration and ARP spoofing with relaying.
"""

from __future__ import annotations

import base64

import numpy as np

from . import dns, ssh, web
from . import packets as pk
from .attacks import Attack
from .network import Host
from .office import Office
from .tcp import TcpFlow

HYDRA_BANNER = b"SSH-2.0-libssh_0.9.6\r\n"
SLOW_FAIL_DELAY_US = (1_500_000, 2_500_001)  # sshd's delay before refusing a password (pam_unix: ~2 s)
BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


class SshBruteForce(Attack):
    """hydra against SSH: short sessions, four at a time, each with banners, key exchange and failed password tries.

    With ``interval_s`` the guessing is slow instead: one session at a time, the next starting a uniform
    ``interval_s`` after the last one started, and the server closing each after the failed passwords.
    """

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
        *,
        interval_s: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(office, rng, at_us, seconds)
        self.src, self.target, self.sessions, self.interval_s = attacker, target, sessions, interval_s
        self.attacker, self.victim = attacker.ip, target.ip
        if interval_s is None:
            self.notes = (
                f"hydra -t 4 SSH password guessing: {sessions} sessions to tcp/22 (client banner libssh_0.9.6), "
                "all failing"
            )
        else:
            self.notes = (
                f"slow SSH password guessing: {sessions} sessions to tcp/22 one at a time, every "
                f"{interval_s[0]:g}-{interval_s[1]:g} s (client banner libssh_0.9.6), 1-3 failed passwords each, "
                "then the server closes"
            )

    def session(self, t_us: int) -> None:
        rng = self.rng
        if self.interval_s is None:
            per_thread = -(-self.sessions // 4)
            step = self.seconds * 1e6 / per_thread
            for i in range(self.sessions):
                t = t_us + int((i // 4) * step + (i % 4) * rng.uniform(1_000, 50_000))
                self._guess(t, (int(step * 0.2), int(step * 0.4) + 1), server_closes=False)
            return
        t = t_us
        for _ in range(self.sessions):
            self._guess(t, SLOW_FAIL_DELAY_US, server_closes=True)
            t += int(rng.uniform(*self.interval_s) * 1e6)

    def _guess(self, t_us: int, fail_delay_us: tuple[int, int], *, server_closes: bool) -> None:
        """One session: handshake, banners, key exchange, 1-3 refused passwords (each after ``fail_delay_us``)."""
        rng = self.rng
        flow = TcpFlow(self.lab, rng, self.src, self.target, 22, t_us, 0)
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
            flow.send(False, ssh.encrypted(rng, 40), think_us=int(rng.integers(*fail_delay_us)))
        flow.close(not server_closes, after_us=int(rng.integers(200, 2000)))


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


class C2Beacon(Attack):
    """Implant polling its controller: the same HTTP GET every ~5 s with 20% jitter, a new connection each time.

    ``jitter`` is the share of the period each wait varies by (uniform); ``checkins`` makes exactly that
    many polls instead of polling for ``seconds``.
    """

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
        *,
        jitter: float = 0.2,
        checkins: int | None = None,
    ) -> None:
        super().__init__(office, rng, at_us, seconds)
        self.infected, self.server, self.period_s = infected, server, period_s
        self.jitter, self.checkins = jitter, checkins
        self.attacker, self.victim = server.ip, infected.ip
        count = "" if checkins is None else f"{checkins} check-ins, "
        self.notes = (
            f"HTTP C2 beacon: {count}GET /api/v1/status every {period_s:g} s +-{jitter:.0%} (same request and "
            f"response sizes), a new connection each time, from the infected host to {server.ip}:80"
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
        body = f'{{"cmd":"none","sleep":{self.period_s:g}}}'.encode()
        head = web.response_head(200, "OK", "application/json", len(body))
        t = t_us
        end = t_us + int(self.seconds * 1e6)
        done = 0
        while t < end if self.checkins is None else done < self.checkins:
            flow = self.office.web.connect(rng, self.infected, self.server, 80, t, self.office.rtt(rng, self.server))
            self.office.web.http_exchange(flow, request, head, len(body), body=body, server_us=800)
            flow.close(True, after_us=1_000)
            done += 1
            t += int(self.period_s * 1e6 * rng.uniform(1 - self.jitter, 1 + self.jitter))


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


class FtpBruteForce(Attack):
    """A dictionary attack on FTP: one connection per guess, USER and PASS, 530 every time, then QUIT."""

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
            f"FTP dictionary attack on tcp/21: {attempts} connections, one USER/PASS pair each "
            "(users admin/administrator, passwords from a wordlist), all answered 530; no successful login"
        )

    def session(self, t_us: int) -> None:
        rng = self.rng
        gap = self.seconds * 1e6 / self.attempts
        letters = list("abcdefghijklmnopqrstuvwxyz0123456789")
        for i in range(self.attempts):
            flow = TcpFlow(self.lab, rng, self.src, self.target, 21, t_us + int(i * gap), 0)
            flow.open()
            flow.send(False, b"220 (vsFTPd 3.0.3)\r\n", think_us=int(rng.integers(500, 2000)))
            user = ("admin", "administrator")[i % 2]
            flow.send(True, f"USER {user}\r\n".encode(), think_us=200, reply_follows=True)
            flow.send(False, b"331 Please specify the password.\r\n", think_us=300)
            password = "".join(rng.choice(letters, int(rng.integers(5, 11))))
            flow.send(True, f"PASS {password}\r\n".encode(), think_us=200, reply_follows=True)
            flow.send(False, b"530 Login incorrect.\r\n", think_us=int(rng.integers(200_000, 400_000)))
            flow.send(True, b"QUIT\r\n", think_us=100, reply_follows=True)
            flow.send(False, b"221 Goodbye.\r\n", think_us=100)
            flow.close(False, after_us=100)


class SqlInjection(Attack):
    """sqlmap-style probing of a DVWA page: GETs whose id parameter carries a UNION SELECT, each answered 200."""

    kind = "sql_injection"
    PAYLOADS = (
        "%27+or+0%3D0+union+select+null%2C+version%28%29+%23",
        "%27+or+0%3D0+union+select+null%2C+user%28%29+%23",
        "%27+or+0%3D0+union+select+null%2C+database%28%29+%23",
    )

    def __init__(
        self, office: Office, rng: np.random.Generator, at_us: int, seconds: float, attacker: Host, target: Host
    ) -> None:
        super().__init__(office, rng, at_us, seconds)
        self.src, self.target = attacker, target
        self.attacker, self.victim = attacker.ip, target.ip
        self.notes = (
            f"{len(self.PAYLOADS)} GET requests to DVWA /dvwa/vulnerabilities/sqli/ with "
            "' or 0=0 union select null, version()/user()/database() payloads"
        )

    def session(self, t_us: int) -> None:
        rng = self.rng
        gap = self.seconds * 1e6 / len(self.PAYLOADS)
        headers = (("User-Agent", web.USER_AGENTS[0]), ("Cookie", "security=low; PHPSESSID=3k1f9e8d7c6b5a4"))
        for i, payload in enumerate(self.PAYLOADS):
            flow = self.office.web.connect(rng, self.src, self.target, 80, t_us + int(i * gap), 0)
            path = f"/dvwa/vulnerabilities/sqli/?id={payload}&Submit=Submit"
            page = b"<html><body><pre>ID: ' or 0=0 union select null, version() #<br />Surname: 5.7.17</pre></body>"
            head = web.response_head(200, "OK", "text/html;charset=utf-8", len(page))
            self.office.web.http_exchange(flow, web.request("GET", self.target.ip, path, headers), head, 0, body=page)
            flow.close(False, after_us=int(rng.integers(1_000, 5_000)))


class DnsExfiltration(Attack):
    """DNSExfiltrator: a file pushed out in one burst of TXT queries whose names are base64url data, 240 chars long,
    sent straight to the attacker's name server (``-s``), so no resolver relays them."""

    kind = "dns_exfiltration"

    def __init__(
        self,
        office: Office,
        rng: np.random.Generator,
        at_us: int,
        seconds: float,
        client: Host,
        server: Host,
        domain: str,
        chunks: int,
    ) -> None:
        super().__init__(office, rng, at_us, seconds)
        self.client, self.server, self.domain, self.chunks = client, server, domain, chunks
        self.attacker, self.victim = client.ip, server.ip
        self.notes = (
            f"DNSExfiltrator: {chunks + 1} TXT queries with names up to 246 chars of base64url data under {domain} "
            f"(init.<...>.base64.{domain} then numbered chunks) in {seconds:g} s, sent directly to {server.ip}; "
            "attacker = exfiltrating client"
        )

    def session(self, t_us: int) -> None:
        rng = self.rng
        gap = self.seconds * 1e6 / (self.chunks + 1)
        init = base64.urlsafe_b64encode(b"secret-report.docx|" + str(self.chunks).encode()).decode().rstrip("=")
        names = [f"init.{init}.base64.{self.domain}"]
        for i in range(self.chunks):
            data = base64.urlsafe_b64encode(rng.bytes(174)).decode()  # 232 characters in four labels of 58
            names.append(".".join([str(i), *(data[j : j + 58] for j in range(0, 232, 58)), self.domain]))
        sport = self.client.port()
        for i, name in enumerate(names):
            t = t_us + int(i * gap)
            txid = int(rng.integers(0, 65_536))
            self.lab.udp(t, self.client, self.server, sport, 53, dns.query(txid, name, dns.TYPE_TXT))
            answer = [(name, dns.TYPE_TXT, 0, dns.txt_rdata("OK" if i else "0"))]
            reply = dns.response(txid, name, dns.TYPE_TXT, answer)
            self.lab.udp(t + self.office.rtt(rng, self.server), self.server, self.client, 53, sport, reply)


class DnsQueryExfiltration(Attack):
    """Data leaking slowly in the names of A-record lookups: one hex or base32 chunk of 30-60 characters as the
    leftmost label under one domain, every few seconds, through the local resolver, which relays each (the names
    never repeat, so its cache never answers); the domain's name server answers every name with one address."""

    kind = "dns_exfiltration"

    def __init__(
        self,
        office: Office,
        rng: np.random.Generator,
        at_us: int,
        seconds: float,
        client: Host,
        domain: str,
        answer: Host,
        gap_s: tuple[float, float],
        encoding: str,
    ) -> None:
        super().__init__(office, rng, at_us, seconds)
        if encoding not in ("hex", "base32"):
            raise ValueError(f"encoding must be hex or base32, not {encoding!r}")
        self.client, self.domain, self.answer, self.gap_s, self.encoding = client, domain, answer, gap_s, encoding
        resolver, upstream = office.resolver.host, office.resolver.upstream
        self.attacker, self.victim = client.ip, upstream.ip
        self.notes = (
            f"DNS exfiltration in A-record queries under {domain}: {encoding} chunks of 30-60 chars as the leftmost "
            f"label, one query every {gap_s[0]:g}-{gap_s[1]:g} s for ~{seconds:.0f} s; the local resolver "
            f"{resolver.ip} relays each to upstream {upstream.ip}, every answer A {answer.ip}"
        )

    def chunk(self, seq: int) -> str:
        """The next label: a 2-byte sequence number and file data, encoded to 30-60 characters."""
        rng = self.rng
        if self.encoding == "hex":
            data = seq.to_bytes(2, "big") + rng.bytes(int(rng.integers(13, 29)))  # 15-30 bytes: 30-60 chars
            return data.hex()
        data = seq.to_bytes(2, "big") + rng.bytes(int(rng.integers(17, 36)))  # 19-37 bytes: 31-60 chars
        return base64.b32encode(data).decode().rstrip("=").lower()

    def session(self, t_us: int) -> None:
        rng = self.rng
        t = t_us
        end = t_us + int(self.seconds * 1e6)
        seq = 0
        while t < end:
            name = f"{self.chunk(seq)}.{self.domain}"
            self.office.resolver.lookup(t, self.client, name, dns.TYPE_A, [(name, dns.TYPE_A, 60, self.answer.ip4)])
            seq += 1
            t += int(rng.uniform(*self.gap_s) * 1e6)


class IcmpTunnel(Attack):
    """ptunnel-style ICMP tunnel: echo requests carrying data to one external host, each answered by an echo reply
    carrying other data; one id, rising sequence numbers, payloads of 64-1000 bytes that change packet to packet."""

    kind = "icmp_tunnel"

    def __init__(
        self,
        office: Office,
        rng: np.random.Generator,
        at_us: int,
        seconds: float,
        client: Host,
        peer: Host,
        per_s: float,
    ) -> None:
        super().__init__(office, rng, at_us, seconds)
        self.client, self.peer, self.per_s = client, peer, per_s
        self.attacker, self.victim = client.ip, peer.ip
        self.notes = (
            f"ICMP tunnel: ~{per_s:.1f} echo request/reply pairs a second ({2 * per_s:.0f} packets/s) for "
            f"~{seconds:.0f} s between the workstation and {peer.ip}, payloads of 64-1000 bytes "
            "(tunnelled data, not ping's 56 or 32), the replies' unlike the requests'"
        )

    def session(self, t_us: int) -> None:
        rng = self.rng
        ident = int(rng.integers(1, 65_536))
        t = t_us
        end = t_us + int(self.seconds * 1e6)
        seq = 0
        while t < end:
            seq = (seq + 1) & 0xFFFF
            rest = ident << 16 | seq
            sent, answered = (rng.bytes(int(n)) for n in rng.integers(64, 1001, 2))
            self.lab.icmp(t, self.client, self.peer, pk.ICMP_ECHO, 0, rest, sent)
            back = t + self.office.rtt(rng, self.peer)
            self.lab.icmp(back, self.peer, self.client, pk.ICMP_ECHO_REPLY, 0, rest, answered)
            t += int(rng.uniform(0.5, 1.5) * 1e6 / self.per_s)
