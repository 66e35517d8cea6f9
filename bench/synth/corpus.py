"""The benign corpus: a whole office day (or several), every ordinary behaviour that trips detectors, no attack.

Sessions follow the working day (``behaviour.OFFICE_DAY``); large transfers are written as snaplen-cut
offload segments (``lab.SAMPLED_BULK``) so a 24-hour, 50-host day stays at a few million packets while
flow counts, timing and byte counts stay realistic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import background as bg
from . import benign as bn
from . import bulk
from . import periodic as pd
from .behaviour import HOUR_US, Behaviour, office_day
from .lab import SAMPLED_BULK, Lab
from .labels import Label
from .network import LINUX_TTL, Host
from .office import Office, build_office
from .packets import ip4
from .scenario import Plan, Summary, run

CORPUS_START_S = 1_717_372_800  # Monday 2024-06-03 00:00:00 UTC: the office's clock starts at midnight
SITE = 30  # the LAN is 10.30.0.0/16
WARMUP_S = 120
WINDOW_US = 30_000_000  # a day has many windows; fewer, longer ones cost less
PER_HOST = {  # sessions per second per workstation at full activity
    "browse": 1 / 90,
    "apps": 1 / 60,
    "background_dns": 1 / 10,
    "mdns": 1 / 300,
    "ssdp": 1 / 600,
    "names": 1 / 900,
    "garp": 1 / 21_600,
    "dhcp": 1 / 21_600,
}
VIDEO_PER_DAY = 8  # viewings on the whole site
WEBMAIL_SHARE = 0.3  # workstations keeping webmail open all day
VRRP_VIP = "0.10"  # the keepalived pair's virtual address (last two octets)
VRRP_ID = 51  # its virtual router id
CLOUD_SYNCS = 12  # workstations syncing a folder to the cloud once a day


@dataclass(frozen=True)
class CorpusConfig:
    """A benign capture of ``hours`` for ``hosts`` workstations from ``start_hour`` o'clock, drawn from ``seed``.

    A later ``start_hour`` gives a short capture the working day's behaviours (apt at dawn, dashboards
    from 8 o'clock) without the night before them.
    """

    seed: int
    hours: float = 24.0
    hosts: int = 50
    start_hour: float = 0.0

    def validate(self) -> None:
        if not 0.01 <= self.hours <= 24 * 14:
            raise ValueError("hours must be between 0.01 and 336")
        if not 4 <= self.hosts <= 230:
            raise ValueError("hosts must be between 4 and 230")
        if not 0 <= self.start_hour < 24:
            raise ValueError("start_hour must be between 0 and 24")


def write_benign_corpus(config: CorpusConfig, out: Path) -> Summary:
    config.validate()
    start = CORPUS_START_S * 1_000_000 + int(config.start_hour * HOUR_US)
    end = start + int(config.hours * HOUR_US)

    def compose(lab: Lab) -> tuple[list[Behaviour], Callable[[], list[Label]]]:
        office = build_office(lab, SITE, config.hosts, extra_sites=400)
        behaviours = _workstations(office, lab, start) + _Site(office, lab, start, end).all()
        note = (
            f"synthetic benign office: {config.hosts} workstations over {config.hours:g} h (seed {config.seed}); "
            "browsing, apps, DNS, pollers, scrapes, refreshing dashboards, downloads, backups, video, LAN chatter; "
            "bulk data as snaplen-cut offload segments"
        )
        return behaviours, lambda: [Label("", "", "benign", start, end, note)]

    plan = Plan(config.seed, start, end, WARMUP_S * 1_000_000, SAMPLED_BULK, SITE, WINDOW_US)
    return run(plan, out, compose)


def _busy(floor: float) -> Callable[[int], float]:
    """The office day, never quieter than ``floor`` (apps and the OS keep talking when nobody is there)."""
    return lambda t: max(floor, office_day(t))


def _workstations(office: Office, lab: Lab, start_us: int) -> list[Behaviour]:
    first = start_us - WARMUP_S * 1_000_000
    out: list[Behaviour] = []
    gateway = office.net.gateway
    apps, chatter = _busy(0.1), _busy(0.2)
    for i, host in enumerate(office.clients):
        windows = host.ttl > LINUX_TTL
        ip = host.ip
        out += [
            bn.Browsing(office, host, lab.rng("browse", ip), PER_HOST["browse"], first, office_day),
            bn.AppChatter(office, host, lab.rng("apps", ip), PER_HOST["apps"], first, apps),
            bn.BackgroundDns(office, host, lab.rng("dns", ip), PER_HOST["background_dns"], first, chatter),
            bn.Ntp(office, host, lab.rng("ntp", ip), 3600.0 if windows else float(2 ** (6 + i % 5)), first),
            bg.ArpRefresh(office, host, gateway, lab.rng("arp", ip), 300.0, first),
            bg.ArpRefresh(office, gateway, host, lab.rng("arp-gw", ip), 600.0, first),
            bg.GratuitousArp(office, host, lab.rng("garp", ip), PER_HOST["garp"], first, office_day),
            bg.Dhcp(office, host, lab.rng("dhcp", ip), PER_HOST["dhcp"], first),
        ]
        if windows:
            out += [
                bg.Ssdp(office, host, lab.rng("ssdp", ip), PER_HOST["ssdp"], first, chatter),
                bg.NameBroadcasts(office, host, lab.rng("names", ip), PER_HOST["names"], first, chatter),
            ]
        else:
            out.append(bg.Mdns(office, host, lab.rng("mdns", ip), PER_HOST["mdns"], first, chatter))
    return out


def _day_times(start_us: int, end_us: int, hour: float, spread_h: float, rng: np.random.Generator) -> list[int]:
    """The time ``hour`` (+- ``spread_h``) o'clock on every day the capture covers."""
    day_us = 24 * HOUR_US
    first_day = start_us - start_us % day_us
    out = []
    for day in range(first_day, end_us, day_us):
        at = day + int((hour + rng.uniform(-spread_h, spread_h)) * HOUR_US)
        if start_us <= at < end_us:
            out.append(at)
    return out


class _Site:
    """Site-wide behaviours of the corpus, grouped by kind; ``all`` returns them in a fixed order."""

    def __init__(self, office: Office, lab: Lab, start_us: int, end_us: int) -> None:
        self.office, self.lab, self.start_us, self.end_us = office, lab, start_us, end_us
        self.rng = lab.rng("corpus-site")
        self.first = start_us - WARMUP_S * 1_000_000
        self.clients = office.clients
        self.linux = [h for h in self.clients if h.ttl <= LINUX_TTL] or self.clients
        self.windows = [h for h in self.clients if h.ttl > LINUX_TTL] or self.clients

    def all(self) -> list[Behaviour]:
        return self.tabs() + self.pollers() + self.monitoring() + self.infrastructure() + self.transfers()

    def pick(self, k: int) -> Host:
        """The workstation that plays the k-th fixed role (poller, dashboard viewer, ...)."""
        return self.clients[k % len(self.clients)]

    def at(self, hour: float, spread_h: float) -> list[int]:
        return _day_times(self.start_us, self.end_us, hour, spread_h, self.rng)

    def workdays(self, hour: float, spread_h: float) -> list[tuple[int, int]]:
        """(open, close) of a working session starting near ``hour`` and lasting 8-9.5 h, each day."""
        return [(at, at + int(self.rng.uniform(8.0, 9.5) * HOUR_US)) for at in self.at(hour, spread_h)]

    def tabs(self) -> list[Behaviour]:
        """Pages that refresh themselves while people work: webmail, Grafana, a Dash app every 2 s, a status page."""
        office, lab, out = self.office, self.lab, []
        for k, host in enumerate(self.clients[: max(1, int(len(self.clients) * WEBMAIL_SHARE))]):
            for open_us, close_us in self.workdays(8.6, 0.5):
                rng = lab.rng("webmail", k, open_us)
                out.append(
                    pd.RefreshingTab(office, host, "outlook.office365.com", 443, rng, 30.0, 0.05, open_us, close_us)
                )
        for open_us, close_us in self.workdays(8.2, 0.3):
            span = (open_us, close_us)
            out += [
                pd.DashboardPoll(
                    office, self.pick(3), "grafana.office.lan", 3000, lab.rng("grafana", open_us), 10.0, 0.02, *span,
                    path="/api/ds/query",
                ),
                pd.DashboardPoll(
                    office, self.pick(4), "dashboard.office.lan", 8050, lab.rng("dash", open_us), 2.0, 0.02, *span,
                    path="/_dash-update-component",
                ),
                pd.RefreshingTab(
                    office, self.pick(6), "status.example-saas.com", 443, lab.rng("status", open_us), 5.0, 0.1, *span
                ),
            ]  # fmt: skip
        return out

    def pollers(self) -> list[Behaviour]:
        """One-client clockwork: an update agent, HTTPS telemetry, statsd heartbeats, a client of a server pool."""
        office, lab, first = self.office, self.lab, self.first
        monitor = office.servers["monitor"]
        pool = [office.servers[f"app-{i}"] for i in range(1, 5)]
        return [
            bn.UpdatePoller(office, self.pick(7), lab.rng("poller"), 60.0, first, "updates.endpoint-agent.com"),
            pd.HttpsTelemetry(office, self.pick(8), "telemetry.vendor-apm.com", lab.rng("telemetry"), 120.0, first),
            pd.UdpHeartbeat(office, self.pick(9), monitor, lab.rng("statsd", 9), 10.0, first),
            pd.UdpHeartbeat(office, self.pick(10), monitor, lab.rng("statsd", 10), 10.0, first),
            pd.PoolClient(office, self.pick(11), pool, lab.rng("pool"), 1 / 3, first, office_day),
        ]

    def monitoring(self) -> list[Behaviour]:
        """Prometheus scraping servers every 30 s and workstations every 60 s; SNMP polls of network devices."""
        office, lab, first, forever = self.office, self.lab, self.first, self.end_us + HOUR_US
        servers = office.servers
        monitor = servers["monitor"]
        out: list[Behaviour] = []
        for role in ("resolver", "intranet", "files", "nas", "ssh", "mail", "dashboard", "grafana"):
            rng = lab.rng("prom", role)
            out.append(
                pd.PrometheusScrape(office, monitor, f"{role}.office.lan", 9100, rng, 30.0, 0.001, first, forever)
            )
        for host in self.clients:
            port = 9182 if host.ttl > LINUX_TTL else 9100  # windows_exporter / node_exporter
            rng = lab.rng("prom", host.ip)
            out.append(
                pd.PrometheusScrape(office, monitor, host.ip, port, rng, 60.0, 0.001, first, forever, server=host)
            )
        for role in ("switch", "ups", "printer", "gateway"):
            out.append(pd.SnmpPoll(office, monitor, servers[role], lab.rng("snmp", role), 60.0, first))
        return out

    def infrastructure(self) -> list[Behaviour]:
        """The keepalived pair failing over once, the mail server's reverse lookups, admins' long SSH sessions."""
        office, lab = self.office, self.lab
        failover = self.start_us + int(self.rng.uniform(0.55, 0.65) * (self.end_us - self.start_us))
        out: list[Behaviour] = [
            bg.Vrrp(office, lab.rng("vrrp"), ip4(f"10.{SITE}.{VRRP_VIP}"), VRRP_ID, failover, self.first),
            pd.ReverseLookups(office, office.servers["mail"], lab.rng("ptr"), 1 / 3, self.first, _busy(0.3)),
        ]
        bastion = office.net.external("bastion.example-hosting.net")
        for k, (hour, span_h) in enumerate(((9.2, 3.8), (10.0, 7.5), (14.0, 4.0))):
            target = office.servers["ssh"] if k < 2 else bastion
            for at in self.at(hour, 0.3):
                session = bn.SshSession(
                    office, self.pick(12 + k), target, lab.rng("ssh", k, at), at, span_h * 3600, 45.0
                )
                out.append(session)
        return out

    def transfers(self) -> list[Behaviour]:
        """apt at dawn, nightly backups to the NAS, an OS update, a game and an ISO of gigabytes, cloud sync, video."""
        office, lab, rng = self.office, self.lab, self.rng
        out: list[Behaviour] = []
        for k, host in enumerate(self.linux):
            for at in self.at(6.4, 0.5):
                out.append(
                    bn.AptFetch(office, host, lab.rng("apt", k, at), at, int(rng.lognormal(np.log(40e6), 0.8)), 80e6)
                )
        for k, host in enumerate(self.clients[:3]):
            for at in self.at(1.5 + 0.4 * k, 0.3):
                size = int(rng.uniform(0.5e9, 3e9))
                out.append(
                    bulk.SshBackup(office, host, office.servers["nas"], lab.rng("backup", k, at), at, size, 400e6)
                )
        for at in self.at(12.5, 1.0):
            out.append(
                bulk.ChunkedDownload(
                    office, self.windows[0], lab.rng("winupdate", at), at, "dl.delivery.mp.microsoft.com",
                    "/filestreamingservice/files/5e1b4a0c/22631.3447.esd", int(4.5e9), 50 * 2**20, 2, 150e6,
                )
            )  # fmt: skip
        for at in self.at(18.5, 0.5):
            out.append(
                bulk.ChunkedDownload(
                    office, self.windows[-1], lab.rng("game", at), at, "cache7-fra1.steamcontent.com",
                    "/depot/1245620/chunk/8f2a", int(8e9), 8 * 2**20, 4, 250e6,
                )
            )  # fmt: skip
        for at in self.at(11.0, 1.5):
            out.append(
                bulk.TlsDownload(
                    office, self.linux[0], lab.rng("iso", at), at, "releases.ubuntu.com", int(4.7e9), 200e6
                )
            )
        for k in range(CLOUD_SYNCS):
            for at in self.at(rng.uniform(9, 17), 0.2):
                size = int(rng.lognormal(np.log(60e6), 1.0))
                name = "my.microsoftpersonalcontent.com"
                out.append(bn.CloudBackup(office, self.pick(20 + k), lab.rng("sync", k, at), at, size, 40e6, name))
        video_rate = VIDEO_PER_DAY / (sum(office_day(h * HOUR_US) for h in range(24)) * 3600)
        out.append(bulk.VideoStreaming(office, self.clients, lab.rng("video"), video_rate, self.first, office_day))
        return out
