"""A small benign network in namespaces, real services and real clients on human-like schedules, recorded to a pcap.

Measures false alarms on traffic we know is benign: a server namespace runs nginx (or python's http.server),
sshd, dnsmasq, iperf3 and an NTP-like responder on several addresses; 2-4 client namespaces browse (DNS, page,
assets, searches, the odd 404 and typo NXDOMAIN), log in with ssh and run commands, copy files with scp, run
short iperf3 tests, ping, keep time and check for updates on a timer. Every namespace is joined to a bridge in
a switch namespace; tcpdump records the server's switch port (all client-server traffic). No default route
anywhere; everything is removed when the run ends (or on Ctrl-C / SIGTERM). Needs root.

    sudo .venv/bin/python bench/make_benign_traffic.py --seconds 3600 --out /work/benign/benign-1h.pcap

Writes ``OUT`` and ``OUT.labels.csv`` (one row saying benign, in labels.csv format).
"""

from __future__ import annotations

import argparse
import csv
import functools
import http.server
import math
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SUBNET = "10.214.0"  # exists only inside the namespaces below
SERVER_HOSTS = {  # name -> address; all on the server namespace, like a small office's services
    "www": f"{SUBNET}.10",
    "ns": f"{SUBNET}.10",
    "intranet": f"{SUBNET}.10",
    "files": f"{SUBNET}.11",
    "git": f"{SUBNET}.11",
    "updates": f"{SUBNET}.12",
    "time": f"{SUBNET}.13",
    "perf": f"{SUBNET}.14",
}
DOMAIN = "lab.test"
DNS_IP = SERVER_HOSTS["ns"]
NTP_PORT = 123
NTP_PACKET_BYTES = 48  # an SNTP request or reply
NTP_MIN_POLL_S = 64.0  # ntpd/chrony start polling at 2^6 s ...
NTP_MAX_POLL_S = 1024.0  # ... and back off to 2^10 s once the clock is steady
UPDATE_PERIODS_S = (300.0, 600.0, 900.0)  # how often a client's updater asks whether there is something new
UPDATE_JITTER = 0.1  # updaters spread their checks by up to this share of the period
OFFLOADS_OFF = ("tso", "off", "gso", "off", "gro", "off", "tx", "off")  # veths otherwise pass 64 KB segments
SNAPLEN = 0  # full packets: the analyzer reads HTTP and DNS from payloads
TYPO_SHARE = 0.06  # share of lookups with a typo (NXDOMAIN)
PAGES = ("index", "news", "about", "docs", "pricing", "blog", "contact", "team")
SEARCHES = (
    "network monitoring",
    "o'reilly books",
    "rock & roll",
    "select a plan",
    "how to ssh",
    "q3 report",
    "50% off",
)
COMMANDS = (
    "uptime",
    "df -h /",
    "ls -la /etc | head -20",
    "cat /etc/os-release",
    "free -m",
    "for i in 1 2 3; do date; sleep 1; done",
    "ps aux | head -15",
    "uname -a; whoami",
)
SERVER_TOOLS = (
    "ip",
    "ethtool",
    "tcpdump",
    "dnsmasq",
    "sshd",
    "ssh",
    "scp",
    "ssh-keygen",
    "curl",
    "dig",
    "iperf3",
    "ping",
)


@dataclass
class Lab:
    """The namespaces, addresses and files of one run."""

    tag: str
    clients: int
    workdir: Path
    switch: str = ""
    server: str = ""
    client_ns: list[str] = field(default_factory=list)
    client_ip: list[str] = field(default_factory=list)
    server_port: str = ""
    procs: list[subprocess.Popen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.switch = f"nta-{self.tag}-sw"
        self.server = f"nta-{self.tag}-srv"
        self.client_ns = [f"nta-{self.tag}-c{i}" for i in range(1, self.clients + 1)]
        self.client_ip = [f"{SUBNET}.{20 + i}" for i in range(1, self.clients + 1)]
        self.server_port = f"nb{self.tag}s"

    def run_in(self, ns: str, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a command in a namespace; a hung client is cut off at ``timeout``."""
        try:
            return subprocess.run(
                ["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(cmd, -1, "", "timeout")

    def start_in(self, ns: str, *cmd: str, log: str | None = None) -> subprocess.Popen:
        """Start a long-running service in a namespace; it is stopped at cleanup."""
        out = open(self.workdir / log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (lives as long as the process)
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


def build_network(lab: Lab) -> None:
    """A bridge in the switch namespace, one veth per host; the server holds every service address."""
    _ip("netns", "add", lab.switch)
    _ip("-n", lab.switch, "link", "add", "br0", "type", "bridge")
    _ip("-n", lab.switch, "link", "set", "br0", "up")
    _ip("-n", lab.switch, "link", "set", "lo", "up")
    hosts = [(lab.server, lab.server_port, sorted(set(SERVER_HOSTS.values())))]
    hosts += [
        (ns, f"nb{lab.tag}{i}", [ip])
        for i, (ns, ip) in enumerate(zip(lab.client_ns, lab.client_ip, strict=True), start=1)
    ]
    for ns, port, addresses in hosts:
        _ip("netns", "add", ns)
        _ip("link", "add", port, "type", "veth", "peer", "name", f"{port}h")
        _ip("link", "set", port, "netns", lab.switch)
        _ip("link", "set", f"{port}h", "netns", ns)
        _ip("-n", ns, "link", "set", f"{port}h", "name", "eth0")
        for address in addresses:
            _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", lab.switch, "link", "set", port, "master", "br0")
        _ip("-n", lab.switch, "link", "set", port, "up")
        for where, dev in ((ns, "eth0"), (lab.switch, port)):  # MTU-sized frames on the wire, as a switch port sees
            subprocess.run(
                ["ip", "netns", "exec", where, "ethtool", "-K", dev, *OFFLOADS_OFF], capture_output=True, timeout=30
            )
        resolv = Path("/etc/netns") / ns
        resolv.mkdir(parents=True, exist_ok=True)  # `ip netns exec` mounts this over /etc/resolv.conf
        (resolv / "resolv.conf").write_text(f"nameserver {DNS_IP}\nsearch {DOMAIN}\noptions timeout:2 attempts:1\n")


def write_site(root: Path, rng: random.Random) -> None:
    """Pages with shared and page-specific assets of realistic sizes, an update manifest and a download."""
    assets = root / "static"
    assets.mkdir(parents=True)
    for name, size in (("site.css", 18_000), ("app.js", 95_000), ("logo.png", 12_000), ("font.woff2", 40_000)):
        (assets / name).write_bytes(rng.randbytes(size))
    for page in PAGES:
        images = [f"static/{page}-{i}.jpg" for i in range(rng.randint(1, 5))]
        for image in images:
            (root / image).write_bytes(rng.randbytes(rng.randint(8_000, 250_000)))
        links = "".join(f'<a href="/{p}.html">{p}</a> ' for p in PAGES)
        imgs = "".join(f'<img src="/{i}">' for i in images)
        body = f"<p>{' '.join(rng.choice(PAGES) for _ in range(400))}</p>"
        html = (
            f'<html><head><link rel="stylesheet" href="/static/site.css"><script src="/static/app.js"></script>'
            f"<title>{page}</title></head><body>{links}{imgs}{body}</body></html>"
        )
        (root / f"{page}.html").write_text(html)
    (root / "update").mkdir()
    (root / "update" / "manifest.json").write_text('{"version": "2.4.1", "channel": "stable", "size": 3145728}')
    (root / "update" / "package-2.4.1.tar.gz").write_bytes(rng.randbytes(3 * 2**20))


def page_assets(root: Path, page: str) -> list[str]:
    html = (root / f"{page}.html").read_text()
    return [part.split('"')[1] for part in html.split("src=")[1:]] + ["/static/site.css", "/static/logo.png"]


def start_web(lab: Lab, web: str) -> None:
    """nginx when installed (static site, a login API, keep-alive), else python's http.server with the same."""
    www = lab.workdir / "www"
    if web == "nginx" or (web == "auto" and shutil.which("nginx")):
        conf = lab.workdir / "nginx.conf"
        temp = lab.workdir / "nginx-temp"
        temp.mkdir()
        conf.write_text(
            f"user root; daemon off; worker_processes 1; pid {lab.workdir}/nginx.pid;\n"
            f"error_log {lab.workdir}/nginx-error.log;\n"
            "events { worker_connections 512; }\n"
            "http { include /etc/nginx/mime.types; access_log off; keepalive_timeout 15;\n"
            f"  client_body_temp_path {temp}/body; proxy_temp_path {temp}/proxy; fastcgi_temp_path {temp}/fcgi;\n"
            f"  uwsgi_temp_path {temp}/uwsgi; scgi_temp_path {temp}/scgi;\n"
            f"  server {{ listen 80; root {www}; index index.html;\n"
            "    location = /api/login { default_type application/json; return 200 '{\"ok\": true}'; }\n"
            "    location = /search { default_type text/html; return 200 '<html>results</html>'; } } }\n"
        )
        lab.start_in(lab.server, "nginx", "-c", str(conf), log="nginx.out")
    else:
        lab.start_in(lab.server, sys.executable, __file__, "web-serve", str(www), log="http.out")


def start_ssh(lab: Lab) -> Path:
    """sshd on its own config and host key, accepting the clients' key; returns the client key."""
    key = lab.workdir / "client_key"
    host_key = lab.workdir / "ssh_host_ed25519_key"
    for path, comment in ((key, "client"), (host_key, "host")):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)
    (lab.workdir / "authorized_keys").write_text(Path(f"{key}.pub").read_text())
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    conf = lab.workdir / "sshd_config"
    conf.write_text(
        f"Port 22\nHostKey {host_key}\nPidFile {lab.workdir}/sshd.pid\n"
        f"AuthorizedKeysFile {lab.workdir}/authorized_keys\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nUseDNS no\n"
        "MaxStartups 50\nSubsystem sftp internal-sftp\n"
    )
    lab.start_in(lab.server, shutil.which("sshd") or "/usr/sbin/sshd", "-D", "-e", "-f", str(conf), log="sshd.out")
    return key


def start_dns(lab: Lab) -> None:
    """dnsmasq answering the lab's names; any other lab.test name is NXDOMAIN, nothing goes upstream."""
    hosts = lab.workdir / "hosts"
    lines = [f"{ip} {name}.{DOMAIN} {name}" for name, ip in SERVER_HOSTS.items()]
    lines += [f"{ip} client{i}.{DOMAIN}" for i, ip in enumerate(lab.client_ip, start=1)]
    hosts.write_text("\n".join(lines) + "\n")
    lab.start_in(
        lab.server, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
        f"--addn-hosts={hosts}", f"--local=/{DOMAIN}/", "--domain-needed", "--bogus-priv", "--bind-interfaces",
        f"--listen-address={DNS_IP}", "--user=root", "--group=root", "--pid-file=", "--log-facility=-",
        log="dnsmasq.out",
    )  # fmt: skip


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    """python's file server, plus the login API and the search page the clients use, over HTTP/1.1 keep-alive."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path.startswith("/search"):
            self._reply(b"<html>results</html>", "text/html")
        else:
            super().do_GET()

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._reply(b'{"ok": true}', "application/json")

    def _reply(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass  # quiet: the recording is the log


def web_serve(root: str) -> None:
    """Serve the site on port 80 (run in the server namespace) until terminated."""
    handler = functools.partial(SiteHandler, directory=root)
    http.server.ThreadingHTTPServer(("0.0.0.0", 80), handler).serve_forever()


def ntp_serve(seconds: float) -> None:
    """Answer SNTP requests with a server-mode reply holding the current time (run in the server namespace)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((SERVER_HOSTS["time"], NTP_PORT))  # answer from the address asked, as ntpd does
    sock.settimeout(1.0)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            request, peer = sock.recvfrom(512)
        except TimeoutError:
            continue
        if len(request) < NTP_PACKET_BYTES:
            continue
        now = time.time() + 2_208_988_800  # NTP era starts in 1900
        stamp = struct.pack("!II", int(now), int((now % 1) * 2**32))
        reply = b"\x24\x02\x06\xec" + bytes(8) + b"LOCL" + stamp + request[40:48] + stamp + stamp
        sock.sendto(reply, peer)


def ntp_query(server: str) -> None:
    """One SNTP client request (mode 3), waiting briefly for the answer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2.0)
    now = time.time() + 2_208_988_800
    request = b"\x23" + bytes(39) + struct.pack("!II", int(now), int((now % 1) * 2**32))
    sock.sendto(request, (server, NTP_PORT))
    try:
        sock.recvfrom(512)
    except TimeoutError:
        pass


def start_services(lab: Lab, seconds: float, rng: random.Random, web: str) -> Path:
    """Every server of the lab; returns the ssh client key."""
    write_site(lab.workdir / "www", rng)
    files = lab.workdir / "files"
    files.mkdir()
    for size_mb in (1, 2, 5, 8):
        (files / f"dataset-{size_mb}M.bin").write_bytes(rng.randbytes(size_mb * 2**20))
    (lab.workdir / "uploads").mkdir()
    start_web(lab, web)
    key = start_ssh(lab)
    start_dns(lab)
    lab.start_in(lab.server, "iperf3", "-s", "-p", "5201", log="iperf3.out")
    lab.start_in(lab.server, sys.executable, __file__, "ntp-serve", str(seconds + 60), log="ntp.out")
    wait_for_services(lab)
    return key


def wait_for_services(lab: Lab, timeout_s: float = 20.0) -> None:
    """Block until web, ssh, DNS and iperf3 answer (or fail naming the one that does not)."""
    checks = {
        "web": ["curl", "-s", "-o", "/dev/null", "--max-time", "2", f"http://{SERVER_HOSTS['www']}/index.html"],
        "ssh": ["bash", "-c", f"exec 3<>/dev/tcp/{SERVER_HOSTS['files']}/22"],
        "dns": ["dig", f"@{DNS_IP}", "+short", "+time=1", "+tries=1", f"www.{DOMAIN}"],
        "iperf3": ["bash", "-c", f"exec 3<>/dev/tcp/{SERVER_HOSTS['perf']}/5201"],
    }
    deadline = time.monotonic() + timeout_s
    for name, cmd in checks.items():
        while lab.run_in(lab.server, *cmd, timeout=5).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {name} service did not start (see {lab.workdir})")
            time.sleep(0.3)


class Client:
    """One person's machine: browses, looks names up, logs in, copies files, pings, on a randomised schedule."""

    def __init__(
        self,
        lab: Lab,
        index: int,
        key: Path,
        rng: random.Random,
        deadline: float,
        think_s: float = 25.0,
        verbose: bool = False,
    ) -> None:
        self.lab, self.ns, self.key, self.rng, self.deadline = lab, lab.client_ns[index], key, rng, deadline
        self.think_s = think_s
        self.clock_rng, self.updater_rng = random.Random(rng.random()), random.Random(rng.random())  # own threads
        self.verbose = verbose
        self.www = lab.workdir / "www"
        self.scratch = lab.workdir / f"client{index + 1}"
        self.scratch.mkdir()

    def run(self, cmd: list[str], timeout: float = 60) -> None:
        done = self.lab.run_in(self.ns, *cmd, timeout=min(timeout, max(1.0, self.deadline - time.monotonic())))
        if done.returncode != 0 and self.verbose:
            print(f"{self.ns}: {cmd[0]} exit {done.returncode}: {done.stderr.strip()[:200]}", file=sys.stderr)

    def curl(self, *urls: str) -> list[str]:
        return ["curl", "-s", "--max-time", "20", "-A", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
                *[arg for url in urls for arg in ("-o", "/dev/null", url)]]  # fmt: skip

    def browse(self) -> None:
        """A few page loads: the page, then its assets over two keep-alive connections, like a browser."""
        for _ in range(self.rng.randint(1, 4)):
            page = self.rng.choice(PAGES)
            host = self.rng.choice(("www", "www", "intranet"))
            base = f"http://{host}.{DOMAIN}"
            self.run(self.curl(f"{base}/{page}.html"))
            assets = [f"{base}{a if a.startswith('/') else '/' + a}" for a in page_assets(self.www, page)]
            half = len(assets) // 2
            threads = [
                threading.Thread(target=self.run, args=(self.curl(*part),)) for part in (assets[:half], assets[half:])
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            roll = self.rng.random()
            if roll < 0.15:
                query = self.rng.choice(SEARCHES)
                self.run(["curl", "-s", "-o", "/dev/null", "--max-time", "10", "-G", "--data-urlencode", f"q={query}",
                          f"{base}/search"])  # fmt: skip
            elif roll < 0.22:
                form = "user=alice&password=correct-horse"
                self.run(["curl", "-s", "-o", "/dev/null", "--max-time", "10", "-d", form, f"{base}/api/login"])
            elif roll < 0.27:
                self.run(self.curl(f"{base}/{page}s.html"))  # a mistyped link: 404
            self.pause(2, 25)

    def lookup(self) -> None:
        """dig a few names, now and then with a typo (NXDOMAIN)."""
        for _ in range(self.rng.randint(1, 4)):
            name = self.rng.choice(list(SERVER_HOSTS))
            if self.rng.random() < TYPO_SHARE:
                i = self.rng.randrange(len(name))
                name = name[:i] + self.rng.choice("aeiosnrt") + name[i:]
            qtype = self.rng.choice(("A", "A", "A", "AAAA", "MX"))
            self.run(["dig", "+time=2", "+tries=1", f"{name}.{DOMAIN}", qtype], timeout=10)
            self.pause(0.5, 4)

    def ssh_session(self) -> None:
        """Log in with the right key and run one to five commands, one login each (like a short script)."""
        for command in self.rng.sample(COMMANDS, self.rng.randint(1, 5)):
            self.run([*self.ssh_base(), f"root@{self.rng.choice(('files', 'git'))}.{DOMAIN}", command], timeout=30)
            self.pause(1, 20)

    def ssh_base(self, program: str = "ssh") -> list[str]:
        return [program, "-i", str(self.key), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR"]  # fmt: skip

    def copy(self) -> None:
        """scp a data set down, or (less often) a small report up."""
        target = f"root@files.{DOMAIN}"
        if self.rng.random() < 0.75:
            name = self.rng.choice(("dataset-1M.bin", "dataset-2M.bin", "dataset-5M.bin", "dataset-8M.bin"))
            self.run(
                [*self.ssh_base("scp"), f"{target}:{self.lab.workdir}/files/{name}", str(self.scratch / name)], 120
            )
            (self.scratch / name).unlink(missing_ok=True)
        else:
            report = self.scratch / f"report-{uuid.uuid4().hex[:6]}.bin"
            report.write_bytes(self.rng.randbytes(self.rng.randint(50_000, 2_000_000)))
            self.run([*self.ssh_base("scp"), str(report), f"{target}:{self.lab.workdir}/uploads/"], 120)
            report.unlink()

    def speed_test(self) -> None:
        """A short, rate-limited iperf3 test, download more often than upload."""
        seconds = str(self.rng.randint(2, 4))
        direction = ["-R"] if self.rng.random() < 0.6 else []
        self.run(["iperf3", "-c", f"perf.{DOMAIN}", "-t", seconds, "-b", "10M", *direction], timeout=30)

    def ping(self) -> None:
        self.run(["ping", "-c", str(self.rng.randint(2, 6)), "-i", "1", self.rng.choice(list(SERVER_HOSTS.values()))])

    def fetch_update(self) -> None:
        """Download the update package the manifest announced (rare)."""
        self.run(self.curl(f"http://updates.{DOMAIN}/update/package-2.4.1.tar.gz"), timeout=60)

    def pause(self, low: float, high: float, rng: random.Random | None = None) -> None:
        time.sleep(min((rng or self.rng).uniform(low, high), max(0.0, self.deadline - time.monotonic())))

    def live(self) -> None:
        """Activities with human think times (log-normal around ``think_s``) and the occasional longer break."""
        activities: list[tuple[Callable[[], None], float]] = [
            (self.browse, 0.38), (self.lookup, 0.2), (self.ssh_session, 0.14), (self.copy, 0.06),
            (self.speed_test, 0.04), (self.ping, 0.12), (self.fetch_update, 0.02),
        ]  # fmt: skip
        time.sleep(self.rng.uniform(0, 10))
        while time.monotonic() < self.deadline - 5:
            action = self.rng.choices([a for a, _ in activities], weights=[w for _, w in activities])[0]
            started = time.monotonic()
            action()
            if self.verbose:
                print(f"{self.ns}: {action.__name__} {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
            think = min(self.rng.lognormvariate(math.log(self.think_s), 0.9), 600)
            if self.rng.random() < 0.05:
                think += self.rng.uniform(5, 16) * self.think_s  # a meeting, a coffee (2-7 min for 25 s thinkers)
            self.pause(think, think)

    def keep_time(self) -> None:
        """SNTP polls starting at 64 s and backing off to 1024 s, with a little jitter (like chrony)."""
        poll = NTP_MIN_POLL_S
        time.sleep(self.clock_rng.uniform(0, 5))
        while time.monotonic() < self.deadline - 2:
            self.run([sys.executable, __file__, "ntp-query", SERVER_HOSTS["time"]], timeout=5)
            if self.clock_rng.random() < 0.5:
                poll = min(poll * 2, NTP_MAX_POLL_S)
            self.pause(poll * (1 - UPDATE_JITTER / 2), poll * (1 + UPDATE_JITTER / 2), self.clock_rng)

    def check_updates(self) -> None:
        """The updater asks for the manifest on a fixed period with a little jitter."""
        period = self.updater_rng.choice(UPDATE_PERIODS_S)
        time.sleep(self.updater_rng.uniform(0, 30))
        while time.monotonic() < self.deadline - 2:
            self.run(["curl", "-s", "-o", "/dev/null", "--max-time", "10", "-A", "lab-updater/2.4",
                      f"http://updates.{DOMAIN}/update/manifest.json"])  # fmt: skip
            self.pause(period * (1 - UPDATE_JITTER), period * (1 + UPDATE_JITTER), self.updater_rng)


def start_recording(lab: Lab, out: Path) -> subprocess.Popen:
    """tcpdump on the server's switch port: every frame to and from the server."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", lab.switch, "tcpdump", "-n", "-Z", "root", "-U", "-s", str(SNAPLEN), "-B", "16384",
         "-i", lab.server_port, "-w", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    for line in proc.stderr:  # tcpdump says "listening on" once it captures, or exits with the reason
        if "listening on" in line:
            return proc
    raise RuntimeError(f"tcpdump did not start (exit {proc.wait(timeout=10)})")


def stop_recording(proc: subprocess.Popen) -> str:
    """Stop tcpdump and return its packet counts line (to see drops)."""
    proc.send_signal(signal.SIGINT)
    try:
        rest = proc.communicate(timeout=15)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        rest = proc.communicate()[1]
    return " ".join(line.strip() for line in rest.splitlines() if "packets" in line)


def cleanup(lab: Lab) -> None:
    """Stop every service and remove the namespaces, their resolv.conf and the work folder."""
    for proc in lab.procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in lab.procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    for ns in [*lab.client_ns, lab.server, lab.switch]:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)
    shutil.rmtree(lab.workdir, ignore_errors=True)


def write_labels(out: Path, seconds: float, clients: int, seed: int) -> Path:
    path = out.with_name(out.name + ".labels.csv")
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "attacker", "victim", "kind", "start_ts", "end_ts", "notes"])
        notes = (f"self-made benign lab: {clients} clients, {seconds:.0f} s, seed {seed} "
                 "(web, DNS, ssh/scp, iperf3, ping, SNTP, update checks; bench/make_benign_traffic.py)")  # fmt: skip
        writer.writerow([out.name, "", "", "benign", "", "", notes])
    return path


def make_benign_traffic(
    out: Path,
    seconds: float,
    clients: int = 3,
    seed: int = 1,
    think_s: float = 25.0,
    web: str = "auto",
    verbose: bool = False,
) -> str:
    """Build the lab, record ``seconds`` of its traffic into ``out``, tear it down; returns tcpdump's counts."""
    if os.geteuid() != 0:
        raise SystemExit("make_benign_traffic: needs root (network namespaces, tcpdump)")
    missing = [tool for tool in SERVER_TOOLS if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"make_benign_traffic: missing {', '.join(missing)} (sudo ./setup.sh --dev installs them)")
    if not 2 <= clients <= 4:
        raise SystemExit("make_benign_traffic: --clients must be 2 to 4")
    rng = random.Random(seed)
    lab = Lab(tag=uuid.uuid4().hex[:5], clients=clients, workdir=Path(tempfile.mkdtemp(prefix="nta-benign-")))
    lab.workdir.chmod(0o755)
    out.parent.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup below on kill
    try:
        build_network(lab)
        key = start_services(lab, seconds, rng, web)
        recorder = start_recording(lab, out)
        deadline = time.monotonic() + seconds
        people = [Client(lab, i, key, random.Random(rng.random()), deadline, think_s, verbose) for i in range(clients)]
        threads = [threading.Thread(target=job, daemon=True) for p in people
                   for job in (p.live, p.keep_time, p.check_updates)]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()) + 120)
        time.sleep(1)  # the last replies
        counts = stop_recording(recorder)
    finally:
        cleanup(lab)
    write_labels(out, seconds, clients, seed)
    return counts


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "web-serve":
        web_serve(sys.argv[2])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "ntp-serve":
        ntp_serve(float(sys.argv[2]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "ntp-query":
        ntp_query(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="pcap file to write")
    parser.add_argument("--seconds", type=float, default=600.0, help="how long to record")
    parser.add_argument("--clients", type=int, default=3, help="client namespaces (2-4)")
    parser.add_argument("--seed", type=int, default=1, help="seeds the schedules and the files")
    parser.add_argument(
        "--web", choices=("auto", "nginx", "python"), default="auto", help="web server (auto: nginx if installed)"
    )
    parser.add_argument("--verbose", action="store_true", help="print each activity and failed command on stderr")
    parser.add_argument("--think-s", type=float, default=25.0, help="median pause between a person's activities")
    args = parser.parse_args()
    counts = make_benign_traffic(args.out, args.seconds, args.clients, args.seed, args.think_s, args.web, args.verbose)
    print(f"{args.out}: {args.out.stat().st_size / 2**20:.1f} MB; tcpdump: {counts}")


if __name__ == "__main__":
    main()
