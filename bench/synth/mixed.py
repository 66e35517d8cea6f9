"""The labelled lab capture: a busy small office on a weekday morning with ten attacks injected at labelled times.

Benign load scales with the number of workstations; each attack comes from its own address (a spare
laptop on the LAN, an infected workstation, or an external controller), and its label covers its packets.
The quiet variant (``MixedConfig.quiet``) injects six low-and-slow attacks instead, laid out one after
another at seeded times over a longer capture (``QUIET_S``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import attacks as atk
from . import background as bg
from . import benign as bn
from . import intrusions as ins
from . import probes as pr
from .behaviour import Behaviour
from .lab import FULL_PACKETS, Lab
from .labels import Label
from .network import LINUX_TTL, Host
from .office import Office, build_office
from .scenario import Plan, Summary, run

MIXED_START_S = 1_717_408_800  # Monday 2024-06-03 10:00:00 UTC: mid-morning at the office
SITE = 20  # the LAN is 10.20.0.0/16
WARMUP_S = 30  # sessions start this long before the capture so that some are already under way
NOMINAL_S = 184.0  # the attack plan below is laid out for a capture this long; shorter ones shrink it
QUIET_S = 900.0  # the quiet plan's six slow attacks fit one after another in this long; shorter ones shrink them
PER_HOST = {  # sessions per second per workstation at full activity
    "browse": 1 / 11,
    "apps": 1 / 3.5,
    "background_dns": 1 / 2,
    "mdns": 1 / 90,
    "ssdp": 1 / 240,
    "names": 1 / 300,
    "garp": 1 / 900,
}
ATTACKER_NET = "5"  # third octet of the spare machines attacks come from (10.20.5.x)
LAB_VLAN = "10.20.10"  # the routed lab VLAN the ping sweep walks
SHORT_ATTACKS = ("port_scan", "ping_sweep", "udp_scan", "ssh_brute", "http_brute", "syn_flood")
SHORT_SECONDS = {
    "port_scan": 4.0,
    "ping_sweep": 3.0,
    "udp_scan": 12.0,
    "ssh_brute": 25.0,
    "http_brute": 20.0,
    "syn_flood": 6.0,
}


@dataclass(frozen=True)
class MixedConfig:
    """A lab capture: ``seconds`` long, ``hosts`` workstations, everything drawn from ``seed``."""

    seed: int
    seconds: float = NOMINAL_S
    hosts: int = 40
    benign: bool = False  # the same office with no attack: a baseline to train on, from another seed
    quiet: bool = False  # six quiet attacks (see _quiet_attacks) instead of the ten loud ones

    def validate(self) -> None:
        if self.seconds < 10:
            raise ValueError("seconds must be at least 10")
        if not 4 <= self.hosts <= 230:
            raise ValueError("hosts must be between 4 and 230")
        if self.benign and self.quiet:
            raise ValueError("benign and quiet exclude each other")


def write_mixed_capture(config: MixedConfig, out: Path) -> Summary:
    config.validate()
    start = MIXED_START_S * 1_000_000
    end = start + int(config.seconds * 1e6)
    compose = _composer(config, start)
    return run(Plan(config.seed, start, end, WARMUP_S * 1_000_000, FULL_PACKETS, SITE), out, compose)


def _composer(config: MixedConfig, start_us: int) -> Callable[[Lab], tuple[list[Behaviour], Callable[[], list[Label]]]]:
    def compose(lab: Lab) -> tuple[list[Behaviour], Callable[[], list[Label]]]:
        office = build_office(lab, SITE, config.hosts, extra_sites=40)
        behaviours = _office_day(office, lab, start_us, config)
        if config.benign:
            attacks: list[atk.Attack] = []
        elif config.quiet:
            attacks = _quiet_attacks(office, lab, start_us, config)
        else:
            attacks = _attacks(office, lab, start_us, config)

        def labels() -> list[Label]:
            if config.benign:
                end_us = start_us + int(config.seconds * 1e6)
                note = f"synthetic lab office, no attack: {config.hosts} workstations (seed {config.seed})"
                return [Label("", "", "benign", start_us, end_us, note)]
            rows = [a.label() for a in attacks]
            return sorted((r for r in rows if r is not None), key=lambda r: (r.start_us, r.kind))

        return behaviours + list(attacks), labels

    return compose


def _office_day(office: Office, lab: Lab, start_us: int, config: MixedConfig) -> list[Behaviour]:
    """Benign behaviours of every workstation and server, plus the site's few heavy or odd flows."""
    first = start_us - WARMUP_S * 1_000_000
    out: list[Behaviour] = []
    gateway = office.net.gateway
    for i, host in enumerate(office.clients):
        windows = host.ttl > LINUX_TTL
        out += [
            bn.Browsing(office, host, lab.rng("browse", host.ip), PER_HOST["browse"], first),
            bn.AppChatter(office, host, lab.rng("apps", host.ip), PER_HOST["apps"], first),
            bn.BackgroundDns(office, host, lab.rng("dns", host.ip), PER_HOST["background_dns"], first),
            bn.Ntp(office, host, lab.rng("ntp", host.ip), 3600.0 if windows else float(2 ** (6 + i % 5)), first),
            bg.ArpRefresh(office, host, gateway, lab.rng("arp", host.ip), 120.0, first),
            bg.ArpRefresh(office, gateway, host, lab.rng("arp-gw", host.ip), 300.0, first),
            bg.GratuitousArp(office, host, lab.rng("garp", host.ip), PER_HOST["garp"], first),
        ]
        if windows:
            out += [
                bg.Ssdp(office, host, lab.rng("ssdp", host.ip), PER_HOST["ssdp"], first),
                bg.NameBroadcasts(office, host, lab.rng("names", host.ip), PER_HOST["names"], first),
            ]
        else:
            out.append(bg.Mdns(office, host, lab.rng("mdns", host.ip), PER_HOST["mdns"], first))
    for role in ("resolver", "intranet", "nas", "ssh", "files", "printer"):
        server = office.servers[role]
        out.append(bg.ArpRefresh(office, server, gateway, lab.rng("arp", role), 240.0, first))
    rng = lab.rng("site")
    clients = office.clients
    seconds = config.seconds
    bastion = office.net.external("bastion.example-hosting.net")
    for i in range(3):
        target = office.servers["ssh"] if i < 2 else bastion
        at = start_us + int(rng.uniform(0.0, 0.3) * seconds * 1e6)
        out.append(bn.SshSession(office, clients[(3 * i + 1) % len(clients)], target, lab.rng("ssh", i), at, seconds))
    scale = seconds / NOMINAL_S
    apt_at = start_us + int(rng.uniform(0.04, 0.08) * seconds * 1e6)
    out.append(bn.AptFetch(office, clients[2 % len(clients)], lab.rng("apt"), apt_at, int(10e6 * scale), 1.5e6))
    backup_at = start_us + int(rng.uniform(0.33, 0.36) * seconds * 1e6)
    backup_host = clients[5 % len(clients)]
    out.append(
        bn.CloudBackup(
            office, backup_host, lab.rng("backup"), backup_at, int(12e6 * scale), 1.6e6, "s3.eu-central-1.amazonaws.com"
        )
    )
    out.append(
        bn.UpdatePoller(office, clients[7 % len(clients)], lab.rng("poller"), 20.0, first, "updates.endpoint-agent.com")
    )
    return out


def _attacks(office: Office, lab: Lab, start_us: int, config: MixedConfig) -> list[atk.Attack]:
    """Ten attacks: six short ones in shuffled slots, four long ones overlapping the rest of the morning."""
    rng = lab.rng("attack-plan")
    seconds = config.seconds
    scale = min(1.0, seconds / NOMINAL_S)
    net = office.net
    spare = [net.local(f"spare{i}", f"10.{SITE}.{ATTACKER_NET}.{10 + i}", LINUX_TTL) for i in range(6)]
    clients = office.clients
    infected = [clients[-1], clients[-2], clients[-3]]  # c2 implant, DNS tunnel client, exfiltrating host
    arp_victims = [clients[len(clients) // 2], clients[len(clients) // 2 - 1]]
    slot = 0.88 * seconds / len(SHORT_ATTACKS)
    order = rng.permutation(len(SHORT_ATTACKS))
    at: dict[str, int] = {}
    span: dict[str, float] = {}
    for position, index in enumerate(order):
        name = SHORT_ATTACKS[int(index)]
        span[name] = min(SHORT_SECONDS[name], 0.7 * slot)
        at[name] = start_us + int((0.05 * seconds + position * slot + rng.uniform(0, slot - span[name])) * 1e6)
    servers = office.servers

    def frac(low: float, high: float) -> int:
        return start_us + int(rng.uniform(low, high) * seconds * 1e6)

    c2 = net.external("c2", "203.0.113.66")
    drop = net.external("drop", "203.0.113.99")
    return [
        pr.SynPortScan(
            office,
            lab.rng("scan"),
            at["port_scan"],
            span["port_scan"],
            spare[0],
            servers["files"],
            (22, 80, 139, 445),
        ),
        pr.PingSweep(office, lab.rng("sweep"), at["ping_sweep"], span["ping_sweep"], spare[1], LAB_VLAN, 14),
        pr.UdpScan(office, lab.rng("udpscan"), at["udp_scan"], span["udp_scan"], spare[2], servers["printer"]),
        ins.SshBruteForce(
            office,
            lab.rng("sshbrute"),
            at["ssh_brute"],
            span["ssh_brute"],
            spare[3],
            servers["ssh"],
            max(8, int(40 * scale)),
        ),
        ins.HttpBruteForce(
            office,
            lab.rng("httpbrute"),
            at["http_brute"],
            span["http_brute"],
            spare[4],
            servers["intranet"],
            max(20, int(200 * scale)),
        ),
        pr.SynFlood(office, lab.rng("flood"), at["syn_flood"], span["syn_flood"], servers["intranet"], 80, 1000.0),
        ins.C2Beacon(office, lab.rng("c2"), frac(0.03, 0.06), 0.88 * seconds, infected[0], c2, 5.0),
        ins.DnsTunnel(
            office,
            lab.rng("tunnel"),
            frac(0.12, 0.16),
            0.3 * seconds,
            infected[1],
            "t.cdn-sync-updates.net",
            4.0,
        ),
        ins.HttpExfiltration(
            office,
            lab.rng("exfil"),
            frac(0.62, 0.65),
            0.3 * seconds,
            infected[2],
            drop,
            max(1, int(20e6 * scale)),
        ),
        ins.ArpSpoof(office, lab.rng("arp"), frac(0.25, 0.3), 0.3 * seconds, spare[5], arp_victims),
    ]


LATERAL_PORTS = (22, 80, 445, 3389, 5900)  # what a foothold checks on its neighbours: SSH, web, SMB, RDP, VNC
SCAN_TARGETS = {  # role -> the services it may have open, all among nmap's first 10 top ports
    "files": (22, 139, 445),
    "nas": (22, 80, 443, 445),
    "intranet": (22, 80, 443),
    "mail": (22, 25, 110),
}
SERVER_SERVICES = {  # role -> the lateral scan's ports its services listen on
    "ssh": (22,),
    "intranet": (22, 80),
    "files": (22, 445),
    "nas": (22, 80, 445),
    "printer": (80,),
}
EXFIL_DOMAINS = ("cdn-metrics-sync.net", "telemetry-edge-cache.com", "static-img-relay.net", "update-cdn-check.org")


def _lateral_services(host: Host, role: str | None, rng: np.random.Generator) -> tuple[int, ...]:
    """Which of LATERAL_PORTS listen on ``host``: by role for a server, by OS (and chance) for a workstation."""
    if role is not None:
        return SERVER_SERVICES.get(role, (22,))
    if host.ttl > LINUX_TTL:  # Windows: file sharing nearly always, remote desktop on some
        return tuple(p for p, share in ((445, 0.9), (3389, 0.35), (5900, 0.05)) if rng.random() < share)
    return tuple(p for p, share in ((22, 0.5), (5900, 0.15)) if rng.random() < share)


def _quiet_attacks(office: Office, lab: Lab, start_us: int, config: MixedConfig) -> list[atk.Attack]:
    """Six quiet attacks, each at a seeded time, one after another in a seeded order with seeded gaps.

    A slow SYN scan of one server and slow SSH guessing from two spare machines on the LAN; from four
    workstations: a lateral scan of nine neighbours, DNS exfiltration in A queries through the resolver,
    a jittered HTTP beacon and an ICMP tunnel. Captures shorter than ``QUIET_S`` shrink the counts and
    durations (the rates stay); when even so the attacks do not fit one after another, they overlap evenly.
    """
    rng = lab.rng("quiet-plan")
    seconds = config.seconds
    scale = min(1.0, seconds / QUIET_S)
    net = office.net
    spare = [net.local(f"spare{i}", f"10.{SITE}.{ATTACKER_NET}.{10 + i}", LINUX_TTL) for i in range(2)]
    clients = office.clients
    picked = rng.permutation(len(clients))[:4]
    scanner, exfil, beaconing, tunnelling = (clients[int(i)] for i in picked)
    servers = office.servers
    externals = [int(x) for x in rng.choice(np.arange(2, 255), 3, replace=False)]
    c2 = net.external("c2", f"203.0.113.{externals[0]}")
    wildcard = net.external("exfil-answer", f"203.0.113.{externals[1]}")
    icmp_peer = net.external("icmp-peer", f"203.0.113.{externals[2]}")

    # what each attack does, and how long it takes (expected seconds)
    scan_role = list(SCAN_TARGETS)[int(rng.integers(len(SCAN_TARGETS)))]
    services = SCAN_TARGETS[scan_role]
    scan_open = tuple(sorted(int(p) for p in rng.choice(services, int(rng.integers(2, 4)), replace=False)))
    scan_ports = max(10, round(int(rng.integers(30, 41)) * scale))
    scan_gap = (2.0, 4.0)
    others = [c for c in clients if c is not scanner]
    picks = rng.permutation(len(others))[:9]
    neighbours: list[tuple[Host, str | None]] = [(others[int(i)], None) for i in picks]
    for role in ("files", "nas", "intranet", "printer", "ssh", "mail", "app-1", "app-2", "monitor"):
        if len(neighbours) == 9:
            break
        neighbours.append((servers[role], role))
    neighbours.sort(key=lambda n: n[0].ip4)
    lateral_open = {host.ip: _lateral_services(host, role, rng) for host, role in neighbours}
    lateral_s = float(rng.uniform(10.0, 20.0))
    exfil_s = max(8.0, float(rng.uniform(60.0, 120.0)) * scale)
    exfil_domain = EXFIL_DOMAINS[int(rng.integers(len(EXFIL_DOMAINS)))]
    encoding = ("hex", "base32")[int(rng.integers(2))]
    ssh_sessions = max(3, round(int(rng.integers(12, 16)) * scale))
    ssh_interval = (8.0, 15.0)
    checkins = max(3, round(int(rng.integers(21, 25)) * scale))
    period_s = 10.0
    tunnel_s = max(4.0, float(rng.uniform(30.0, 60.0)) * scale)
    tunnel_per_s = float(rng.uniform(2.5, 5.0))  # request/reply pairs: 5-10 packets a second
    expected = {
        "scan": scan_ports * sum(scan_gap) / 2,
        "lateral": lateral_s,
        "exfil": exfil_s,
        "ssh": ssh_sessions * sum(ssh_interval) / 2,
        "beacon": checkins * period_s,
        "tunnel": tunnel_s,
    }

    # when: a seeded order, each attack given 10 % + 2 s more than it needs, the time left over shared as gaps
    names = list(expected)
    order = [names[int(i)] for i in rng.permutation(len(names))]
    need = {name: 1.1 * expected[name] + 2.0 for name in names}
    lead, room = 0.02 * seconds, 0.96 * seconds
    free = room - sum(need.values())
    at: dict[str, int] = {}
    if free >= 0:
        gaps = rng.dirichlet(np.ones(len(order) + 1)) * free
        cursor = lead + gaps[0]
        for k, name in enumerate(order):
            at[name] = start_us + int(cursor * 1e6)
            cursor += need[name] + gaps[k + 1]
    else:  # too short a capture: the same order, starts squeezed so that the attacks overlap alike
        squeeze = room / sum(need.values())
        cursor = lead
        for name in order:
            at[name] = start_us + int(cursor * 1e6)
            cursor += need[name] * squeeze

    return [
        pr.SlowSynScan(
            office,
            lab.rng("quiet-scan"),
            at["scan"],
            expected["scan"],
            spare[0],
            servers[scan_role],
            scan_ports,
            scan_open,
            scan_gap,
        ),
        pr.LateralScan(
            office,
            lab.rng("quiet-lateral"),
            at["lateral"],
            lateral_s,
            scanner,
            [host for host, _ in neighbours],
            LATERAL_PORTS,
            lateral_open,
        ),
        ins.DnsQueryExfiltration(
            office, lab.rng("quiet-exfil"), at["exfil"], exfil_s, exfil, exfil_domain, wildcard, (1.0, 3.0), encoding
        ),
        ins.SshBruteForce(
            office,
            lab.rng("quiet-ssh"),
            at["ssh"],
            expected["ssh"],
            spare[1],
            servers["ssh"],
            ssh_sessions,
            interval_s=ssh_interval,
        ),
        ins.C2Beacon(
            office,
            lab.rng("quiet-c2"),
            at["beacon"],
            expected["beacon"],
            beaconing,
            c2,
            period_s,
            jitter=0.3,
            checkins=checkins,
        ),
        ins.IcmpTunnel(office, lab.rng("quiet-icmp"), at["tunnel"], tunnel_s, tunnelling, icmp_peer, tunnel_per_s),
    ]
