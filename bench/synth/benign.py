"""What office workstations do all day: browse, let apps call their APIs, resolve names, keep time, work over SSH,
fetch packages, back up to the cloud, and the one machine whose agent polls for updates like clockwork.
"""

from __future__ import annotations

import numpy as np

from . import dns, lan, ssh, web
from .behaviour import Activity, Once, Periodic, Poisson, always
from .names import COMMON_ASSETS
from .network import LINUX_TTL, Host
from .office import Office
from .tcp import TcpFlow

OBJECT_LOG_BYTES = (7.6, 1.2)  # lognormal size of a page asset: median ~2 kB, long tail
HTML_LOG_BYTES = (9.8, 0.7)  # lognormal size of a page's HTML: median ~18 kB
MAX_OBJECT = 3_000_000  # no single page asset larger than this
ASSET_TYPES = (  # (extension, Content-Type) of page assets; the bodies are opaque, so no type tshark would parse
    ("js", "application/javascript"),
    ("css", "text/css"),
    ("webp", "image/webp"),
    ("woff2", "font/woff2"),
)
KEEPALIVE_S = (2.0, 65.0)  # idle time before a browser connection is closed (uniform)
APP_HOSTS = (  # API and push endpoints desktop apps and the OS call on their own
    "teams.microsoft.com",
    "outlook.office365.com",
    "edgeapi.slack.com",
    "v10.events.data.microsoft.com",
    "self.events.data.microsoft.com",
    "browser.events.data.msn.com",
    "edge.microsoft.com",
    "clients4.google.com",
    "update.googleapis.com",
    "push.services.mozilla.com",
    "firefox.settings.services.mozilla.com",
    "api.github.com",
    "graph.microsoft.com",
    "login.live.com",
    "notify.bugsnag.com",
    "o4504.ingest.sentry.io",
)
BACKGROUND_NAMES = (  # lookups workstations make without always connecting afterwards
    "wpad.office.lan",
    "printer.office.lan",
    "files.office.lan",
    "www.msftconnecttest.com",
    "ctldl.windowsupdate.com",
    "settings-win.data.microsoft.com",
    "ocsp.digicert.com",
    "crl.microsoft.com",
    "connectivity-check.ubuntu.com",
    "detectportal.firefox.com",
    "ipv4only.arpa",
    "time.windows.com",
    "dns.msftncsi.com",
)
APT_UA = "Debian APT-HTTP/1.3 (2.4.12)"
DEB_TYPE = "application/octet-stream"  # what most mirrors label a .deb with
APT_PACKAGES = (
    ("libssl3", "3.0.2-0ubuntu1.15"),
    ("openssl", "3.0.2-0ubuntu1.15"),
    ("curl", "7.81.0-1ubuntu1.16"),
    ("tzdata", "2024a-0ubuntu0.22.04"),
    ("python3.10", "3.10.12-1~22.04.3"),
)
NTP_PORT = 123
NTP_REF_ID = bytes((192, 0, 2, 1))  # reference id of the stratum-2 server: its upstream's address
SSH_PORT = 22
SSH_CHUNK = 16_000  # largest plaintext per encrypted SSH packet in command output
SSH_LOGIN = ((True, 28), (False, 28), (True, 60), (False, 20), (True, 52), (False, 28), (True, 400), (False, 20))
BACKUP_PART = 8 * 2**20  # multipart upload part size


class Browsing(Poisson):
    """Page visits: the site's HTML, then assets from its own and common CDN hosts over parallel connections.

    ``plain_http`` fetches every site over HTTP, as captures of web browsing from before HTTPS everywhere show it.
    """

    def __init__(
        self,
        office: Office,
        host: Host,
        rng: np.random.Generator,
        per_s: float,
        first_us: int,
        activity: Activity = always,
        *,
        plain_http: bool = False,
    ) -> None:
        super().__init__(office.lab, rng, per_s, first_us, activity)
        self.office = office
        self.host = host
        self.plain_http = plain_http

    def session(self, t_us: int) -> None:
        rng, office = self.rng, self.office
        site = office.catalogue.pick(rng)
        https = site.https and not self.plain_http
        t, server = office.lookup(t_us, self.host, site.name)
        t_html = self._connection(t, server, site.name, https, [int(rng.lognormal(*HTML_LOG_BYTES))], page=True)
        pool = list(site.assets) + list(rng.choice(COMMON_ASSETS, int(rng.integers(1, 4)), replace=False))
        for i, name in enumerate(pool[: int(rng.integers(1, len(pool) + 1))]):
            start = t_html + int(rng.integers(2_000, 40_000)) * (i + 1)
            t_dns, asset_host = office.lookup(start, self.host, name)
            sizes = [int(min(MAX_OBJECT, rng.lognormal(*OBJECT_LOG_BYTES))) for _ in range(int(rng.integers(1, 5)))]
            self._connection(t_dns, asset_host, name, https, sizes, page=False)

    def _connection(self, t_us: int, server: Host, name: str, https: bool, sizes: list[int], *, page: bool) -> int:
        """One keep-alive connection fetching ``sizes`` (the page first if ``page``); returns when the first ended."""
        rng, office = self.rng, self.office
        rtt = office.rtt(rng, server)
        first_done = t_us
        if https:
            flow = office.web.tls_connect(rng, self.host, server, name, t_us, rtt)
            for i, size in enumerate(sizes):
                done = office.web.tls_exchange(
                    flow, rng, int(rng.integers(300, 900)), size, think_us=int(rng.integers(0, 3000))
                )
                first_done = done if i == 0 else first_done
        else:
            flow = office.web.connect(rng, self.host, server, 80, t_us, rtt)
            ua = web.USER_AGENTS[int(rng.integers(len(web.USER_AGENTS)))]
            for i, size in enumerate(sizes):
                ext, kind = ("", "text/html") if page and i == 0 else ASSET_TYPES[int(rng.integers(len(ASSET_TYPES)))]
                path = f"/static/{int(rng.integers(1, 10**6)):x}.{ext}" if ext else "/"
                req = web.request(
                    "GET", name, path, (("User-Agent", ua), ("Accept", "*/*"), ("Connection", "keep-alive"))
                )
                done = office.web.http_exchange(flow, req, web.response_head(200, "OK", kind, size), size)
                first_done = done if i == 0 else first_done
        idle = int(rng.uniform(*KEEPALIVE_S) * 1e6)
        if rng.random() < 0.2:
            flow.abort(True, after_us=idle)
        else:
            flow.close(bool(rng.random() < 0.5), after_us=idle)
        return first_done


class AppChatter(Poisson):
    """Desktop apps and the OS calling their APIs: a lookup, a short TLS exchange or two, then close."""

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
        rng, office = self.rng, self.office
        name = APP_HOSTS[int(rng.integers(len(APP_HOSTS)))]
        t, server = office.lookup(t_us, self.host, name, aaaa=bool(rng.random() < 0.5))
        flow = office.web.tls_connect(rng, self.host, server, name, t, office.rtt(rng, server))
        for _ in range(int(rng.integers(1, 4))):
            office.web.tls_exchange(
                flow,
                rng,
                int(rng.integers(200, 2500)),
                int(rng.integers(100, 4000)),
                think_us=int(rng.integers(0, 200_000)),
            )
        flow.close(bool(rng.random() < 0.6), after_us=int(rng.uniform(0.05, 20) * 1e6))


class BackgroundDns(Poisson):
    """Lookups with no connection in the capture: proxy auto-discovery, connectivity probes, OCSP/CRL names, and
    the names of links a browser prefetches.
    """

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
        rng = self.rng
        if rng.random() < 0.5:
            name = BACKGROUND_NAMES[int(rng.integers(len(BACKGROUND_NAMES)))]
            self.office.resolver.lookup(t_us, self.host, name, dns.TYPE_AAAA if rng.random() < 0.3 else dns.TYPE_A)
        else:
            site = self.office.catalogue.sites[int(rng.integers(len(self.office.catalogue.sites)))]
            names = [site.name, *site.assets]
            self.office.lookup(t_us, self.host, names[int(rng.integers(len(names)))])


class Ntp(Periodic):
    """A workstation's time sync: resolve the pool name, one NTPv4 request and reply."""

    def __init__(self, office: Office, host: Host, rng: np.random.Generator, period_s: float, first_us: int) -> None:
        super().__init__(office.lab, rng, int(period_s * 1e6), 0.02, first_us)
        self.office = office
        self.host = host
        self.server_name = "time.windows.com" if host.ttl > LINUX_TTL else "ntp.ubuntu.com"

    def session(self, t_us: int) -> None:
        t, server = self.office.lookup(t_us, self.host, self.server_name, aaaa=False)
        port = NTP_PORT if self.host.ttl <= LINUX_TTL else self.host.port()  # chrony binds 123, Windows a free port
        request = lan.ntp_request(t)
        self.lab.udp(t, self.host, server, port, NTP_PORT, request)
        rtt = self.office.rtt(self.rng, server)
        reply = lan.ntp_reply(request[40:48], t + rtt // 2, t + rtt // 2 + 40, NTP_REF_ID)
        self.lab.udp(t + rtt, server, self.host, NTP_PORT, port, reply)


class SshSession(Once):
    """An interactive SSH session: key exchange, login, then typing with echoes and bursts of command output."""

    def __init__(
        self,
        office: Office,
        client: Host,
        server: Host,
        rng: np.random.Generator,
        at_us: int,
        seconds: float,
        pause_s: float = 8.0,
    ) -> None:
        super().__init__(office.lab, rng, at_us)
        self.office = office
        self.client = client
        self.server = server
        self.seconds = seconds
        self.pause_s = pause_s  # mean time between commands

    def session(self, t_us: int) -> None:
        rng = self.rng
        flow = ssh_handshake(self.office, rng, self.client, self.server, t_us)
        for from_client, plain in SSH_LOGIN:
            flow.send(from_client, ssh.encrypted(rng, plain), think_us=int(rng.integers(200, 5000)))
        end = t_us + int(self.seconds * 1e6)
        while flow.t < end:
            for _ in range(int(rng.integers(3, 25))):  # a command typed key by key, each key echoed
                flow.send(True, ssh.encrypted(rng, 5), think_us=int(rng.integers(60_000, 300_000)), reply_follows=True)
                flow.send(False, ssh.encrypted(rng, 5), think_us=200)
            flow.send(True, ssh.encrypted(rng, 5), think_us=int(rng.integers(100_000, 600_000)), reply_follows=True)
            output = int(rng.lognormal(6.5, 1.5))
            chunks = [ssh.encrypted(rng, min(SSH_CHUNK, output - i)) for i in range(0, output, SSH_CHUNK)]
            flow.send(False, b"".join(chunks), think_us=5000)
            flow.idle_until(flow.t + int(rng.exponential(self.pause_s * 1e6)))  # reading the output, thinking
        flow.send(True, ssh.encrypted(rng, 12), reply_follows=True)
        flow.close(False, after_us=3000)


def ssh_handshake(office: Office, rng: np.random.Generator, client: Host, server: Host, t_us: int) -> TcpFlow:
    """TCP and SSH handshakes up to both NEWKEYS; what follows is encrypted."""
    flow = office.web.connect(rng, client, server, SSH_PORT, t_us, office.rtt(rng, server))
    flow.send(True, ssh.CLIENT_BANNERS[int(rng.integers(len(ssh.CLIENT_BANNERS)))], reply_follows=True)
    flow.send(False, ssh.SERVER_BANNER, think_us=2000)
    flow.send(True, ssh.kexinit(rng), reply_follows=True)
    flow.send(False, ssh.kexinit(rng), think_us=300)
    flow.send(True, ssh.ecdh_init(rng), reply_follows=True)
    flow.send(False, ssh.ecdh_reply_and_newkeys(rng), think_us=1500)
    flow.send(True, ssh.newkeys(rng), reply_follows=True)
    return flow


class UpdatePoller(Periodic):
    """One machine's update agent: the same small HTTPS check every period +-10%, a new connection each time."""

    def __init__(
        self, office: Office, host: Host, rng: np.random.Generator, period_s: float, first_us: int, name: str
    ) -> None:
        super().__init__(office.lab, rng, int(period_s * 1e6), 0.1, first_us)
        self.office = office
        self.host = host
        self.name = name

    def session(self, t_us: int) -> None:
        rng, office = self.rng, self.office
        t, server = office.lookup(t_us, self.host, self.name, aaaa=False)
        flow = office.web.tls_connect(rng, self.host, server, self.name, t, office.rtt(rng, server), cert_bytes=3100)
        office.web.tls_exchange(flow, rng, 410, 230)
        flow.close(True, after_us=50_000)


class AptFetch(Once):
    """apt over plain HTTP: the release file, then .deb packages on one kept-alive connection, the last one large."""

    def __init__(
        self, office: Office, host: Host, rng: np.random.Generator, at_us: int, big_bytes: int, rate_bps: float
    ) -> None:
        super().__init__(office.lab, rng, at_us)
        self.office = office
        self.host = host
        self.big_bytes = big_bytes
        self.rate_bps = rate_bps

    def session(self, t_us: int) -> None:
        rng, office = self.rng, self.office
        mirror = "archive.ubuntu.com"
        t, server = office.lookup(t_us, self.host, mirror)
        flow = office.web.connect(rng, self.host, server, 80, t, office.rtt(rng, server))
        files = [("/ubuntu/dists/jammy-updates/InRelease", "text/plain", int(rng.integers(110_000, 130_000)))]
        files += [
            (f"/ubuntu/pool/main/{p[0]}/{p}/{p}_{v}_amd64.deb", DEB_TYPE, int(rng.integers(40_000, 900_000)))
            for p, v in APT_PACKAGES[: int(rng.integers(1, len(APT_PACKAGES)))]
        ]
        files.append(
            (
                "/ubuntu/pool/main/l/linux-firmware/linux-firmware_20220329.git681281e4-0ubuntu3.31_all.deb",
                DEB_TYPE,
                self.big_bytes,
            )
        )
        for path, kind, size in files:
            req = web.request("GET", mirror, path, (("User-Agent", APT_UA), ("Accept", "*/*")))
            office.web.http_exchange(flow, req, web.response_head(200, "OK", kind, size), size, rate_bps=self.rate_bps)
        flow.close(True, after_us=20_000)


class CloudBackup(Once):
    """A backup agent's upload: multipart PUTs of a large archive to cloud object storage over one TLS connection."""

    def __init__(
        self,
        office: Office,
        host: Host,
        rng: np.random.Generator,
        at_us: int,
        total_bytes: int,
        rate_bps: float,
        name: str,
    ) -> None:
        super().__init__(office.lab, rng, at_us)
        self.office = office
        self.host = host
        self.total_bytes = total_bytes
        self.rate_bps = rate_bps
        self.name = name

    def session(self, t_us: int) -> None:
        rng, office = self.rng, self.office
        t, server = office.lookup(t_us, self.host, self.name)
        flow = office.web.tls_connect(rng, self.host, server, self.name, t, office.rtt(rng, server))
        for start in range(0, self.total_bytes, BACKUP_PART):
            office.web.tls_upload(flow, rng, min(BACKUP_PART, self.total_bytes - start), 420, rate_bps=self.rate_bps)
        flow.close(True, after_us=100_000)
