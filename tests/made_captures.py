"""Captures the tests make, for attacks whose public captures may not be redistributed (see tests/data/pcaps).

Each is one attack (or one infection's few) on the synthesizer's office network (bench/synth), written by
the same code as the lab capture, so it is seeded, byte-identical from run to run, and labelled by the
attack itself. ``STAND_INS`` names, for each of the 20 public captures a clone does not carry, the made
capture with the same property; it is written under the public capture's name, its labels.csv rows too.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from synth import floods as fl  # noqa: E402
from synth import intrusions as ins  # noqa: E402
from synth import malware as mw  # noqa: E402
from synth import probes as pr  # noqa: E402
from synth.attacks import Attack  # noqa: E402
from synth.behaviour import Behaviour  # noqa: E402
from synth.benign import Browsing  # noqa: E402
from synth.lab import FULL_PACKETS, Lab  # noqa: E402
from synth.labels import COLUMNS as LABEL_COLUMNS  # noqa: E402
from synth.network import LINUX_TTL, Host  # noqa: E402
from synth.office import Office, build_office  # noqa: E402
from synth.probes import SCAN_PORTS, SynPortScan  # noqa: E402
from synth.scenario import Plan, run  # noqa: E402

SEED = 7
SITE = 20  # the LAN is 10.20.0.0/16
START_S = 1_717_408_800
START_US = START_S * 1_000_000
AT_US = START_US + 1_000_000  # attacks start a second into the capture
SCAN_S = 5.0  # the scan's 1000 SYNs are spread over this long
CAPTURE_S = 10.0
OPEN_PORTS = (22, 80, 139, 445)
BROWSE_PER_S = 1 / 8  # page visits per second of each browsing workstation
BROWSE_FROM_US = START_US - 5_000_000  # browsing began before the capture did


@dataclass(frozen=True)
class MadeCapture:
    """A made capture and what is known of it by construction: its labels.csv rows (one per attack)."""

    path: Path
    labels: pd.DataFrame
    packets: int

    @property
    def label(self) -> pd.Series:
        """The first (for most, the only) label row."""
        return self.labels.iloc[0]


@dataclass(frozen=True)
class MadeScan(MadeCapture):
    """A made nmap -sS capture."""

    ports: int = SCAN_PORTS


Attacks = Callable[[Office, Lab], list[Attack]]


def write_capture(
    out: Path, seconds: float, attacks_of: Attacks, *, browsing: int = 0, plain_http: bool = False, seed: int = SEED
) -> MadeCapture:
    """``out`` holding the attacks ``attacks_of`` makes, over ``browsing`` workstations browsing the web (over
    HTTP only if ``plain_http``)."""

    def compose(lab: Lab) -> tuple[list[Behaviour], Callable[[], list]]:
        office = build_office(lab, SITE, max(4, browsing), extra_sites=4)
        attacks = attacks_of(office, lab)
        browsers: list[Behaviour] = [
            Browsing(office, host, lab.rng("browse", host.ip), BROWSE_PER_S, BROWSE_FROM_US, plain_http=plain_http)
            for host in office.clients[:browsing]
        ]
        return [*browsers, *attacks], lambda: [row for a in attacks if (row := a.label()) is not None]

    summary = run(Plan(seed, START_US, START_US + int(seconds * 1e6), 0, FULL_PACKETS, SITE), out, compose)
    labels = pd.read_csv(summary.labels_path)
    if labels.empty:  # no attack: the capture is labelled benign as a whole, as the public benign ones are
        labels = pd.DataFrame([{"file": out.name, "kind": "benign", "notes": "office workstations browsing the web"}])
        labels = labels.reindex(columns=LABEL_COLUMNS)
        labels.to_csv(summary.labels_path, index=False)
    return MadeCapture(out, labels, summary.packets)


def write_syn_scan(out: Path) -> MadeScan:
    """nmap -sS of 1000 ports of one server (4 open), with the server's answers, and nothing else."""

    def attacks(office: Office, lab: Lab) -> list[Attack]:
        scanner = lab.net.local("scanner", f"10.{SITE}.5.10", LINUX_TTL)
        return [SynPortScan(office, lab.rng("scan"), AT_US, SCAN_S, scanner, office.servers["files"], OPEN_PORTS)]

    made = write_capture(out, CAPTURE_S, attacks)
    return MadeScan(made.path, made.labels, made.packets)


def _attacker(lab: Lab) -> Host:
    return lab.net.local("attacker", f"10.{SITE}.5.10", LINUX_TTL)


def _infected(office: Office) -> Host:
    return office.clients[0]


def _connect_scan(o: Office, lab: Lab) -> list[Attack]:
    target = o.servers["files"]
    return [pr.ConnectScan(o, lab.rng("scan"), AT_US, SCAN_S, _attacker(lab), target, (135, 139, 445, 5000))]


def _udp_scan(o: Office, lab: Lab) -> list[Attack]:
    return [pr.UdpScan(o, lab.rng("scan"), AT_US, SCAN_S, _attacker(lab), o.servers["printer"])]


def _xmas_scan(o: Office, lab: Lab) -> list[Attack]:
    return [pr.XmasScan(o, lab.rng("scan"), AT_US, 0.2, _attacker(lab), o.servers["files"])]


def _syn_flood(o: Office, lab: Lab) -> list[Attack]:
    return [fl.SpoofedSynBursts(o, lab.rng("flood"), AT_US, 24.0, o.servers["intranet"], 25565, 3, 2500)]


def _amplification(o: Office, lab: Lab) -> list[Attack]:
    return [fl.SnmpAmplification(o, lab.rng("amp"), AT_US, 0.025, o.servers["intranet"], 1500)]


def _reflection(o: Office, lab: Lab) -> list[Attack]:
    return [fl.SynAckReflection(o, lab.rng("refl"), AT_US, 0.15, o.servers["intranet"], 1500)]


def _mac_flood(o: Office, lab: Lab) -> list[Attack]:
    return [fl.MacFlood(o, lab.rng("macof"), AT_US, 0.016, 100)]


def _ftp_brute(o: Office, lab: Lab) -> list[Attack]:
    return [ins.FtpBruteForce(o, lab.rng("ftp"), AT_US, 20.0, _attacker(lab), o.servers["files"], 40)]


def _dns_exfil(o: Office, lab: Lab) -> list[Attack]:
    server = o.net.external("ns1.files-sync.net")
    return [ins.DnsExfiltration(o, lab.rng("exfil"), AT_US, 0.1, _infected(o), server, "files-sync.net", 12)]


def _empire(o: Office, lab: Lab) -> list[Attack]:
    c2 = o.net.external("c2", "203.0.113.66")
    return [mw.EmpireBeacon(o, lab.rng("empire"), AT_US, 70.0, o.clients[-1], c2, 5.0)]


def _strrat(o: Office, lab: Lab) -> list[Attack]:
    c2 = o.net.external("strrat", "203.0.113.40")
    return [mw.StrratKeepAlive(o, lab.rng("strrat"), AT_US, 120.0, _infected(o), c2, 8219)]


def _quasar(o: Office, lab: Lab) -> list[Attack]:
    c2 = o.net.external("quasar", "203.0.113.231")
    name = "tintopretzel.ddns.net"
    return [mw.QuasarTls(o, lab.rng("quasar"), AT_US, 50.0, o.clients[-1], c2, name)]


def _rat(o: Office, lab: Lab) -> list[Attack]:
    controller = lab.net.local("controller", f"10.{SITE}.5.11", LINUX_TTL)
    return [mw.RatScreenCapture(o, lab.rng("rat"), AT_US, 110.0, _infected(o), controller, 4433)]


def _cryptowall(o: Office, lab: Lab) -> list[Attack]:
    victim, kit = _infected(o), o.net.external("ek", "203.0.113.202")
    c2 = [o.net.external("c2-a", "203.0.113.18"), o.net.external("c2-b", "203.0.113.44")]
    return [
        mw.ExploitKitDelivery(o, lab.rng("ek"), AT_US, 20.0, victim, kit, "xktzjm.topcentc.top", 80, 358_400),
        mw.PostCheckins(o, lab.rng("c2"), AT_US + 30_000_000, 30.0, victim, c2, 3, []),
    ]


def _ek_dga(o: Office, lab: Lab) -> list[Attack]:
    victim, kit = _infected(o), o.net.external("ek", "203.0.113.147")
    c2 = [o.net.external(f"c2-{i}", f"203.0.113.{194 + i}") for i in range(3)]
    dead = [o.net.external(f"dead-{i}", f"203.0.113.{210 + i}") for i in range(3)]
    return [
        mw.ExploitKitDelivery(o, lab.rng("ek"), AT_US, 30.0, victim, kit, "qwtrk.zkteekqtrutoi.tk", 10771, 155_648),
        mw.PostCheckins(o, lab.rng("c2"), AT_US + 15_000_000, 110.0, victim, c2, 3, dead),
        mw.DgaBursts(o, lab.rng("dga"), AT_US + 14_000_000, 58.0, victim, o.servers["resolver"], 2, 4),
    ]


def _arp_spoof(o: Office, lab: Lab) -> list[Attack]:
    return [ins.ArpSpoof(o, lab.rng("arp"), AT_US, 10.0, _attacker(lab), [_infected(o)])]


def _sqli(o: Office, lab: Lab) -> list[Attack]:
    return [ins.SqlInjection(o, lab.rng("sqli"), AT_US, 36.0, _attacker(lab), o.servers["intranet"])]


def _nothing(_o: Office, _lab: Lab) -> list[Attack]:
    return []


STAND_INS: dict[str, Callable[[Path], MadeCapture]] = {  # public capture -> writer of its stand-in
    "nmap-syn-scan.pcapng": write_syn_scan,
    "nmap-connect-scan.pcap": lambda out: write_capture(out, CAPTURE_S, _connect_scan),
    "nmap-udp-scan.pcap": lambda out: write_capture(out, CAPTURE_S, _udp_scan),
    "nmap-xmas-scan.pcap": lambda out: write_capture(out, 2.0, _xmas_scan),
    "syn-flood-spoofed.pcap": lambda out: write_capture(out, 26.0, _syn_flood),
    "ddos-snmp-amplification.pcapng": lambda out: write_capture(out, 2.0, _amplification),
    "ddos-tcp-synack-reflection.pcap": lambda out: write_capture(out, 2.0, _reflection),
    "flood-random-mac-ip-syn.pcap": lambda out: write_capture(out, 2.0, _mac_flood),
    "ftp-bruteforce.pcap": lambda out: write_capture(out, 22.0, _ftp_brute),
    "dns-exfil-dnsexfiltrator.pcap": lambda out: write_capture(out, 2.0, _dns_exfil),
    "c2-empire-http-beacon.pcap": lambda out: write_capture(out, 72.0, _empire, browsing=2),
    "c2-strrat-beacon.pcap": lambda out: write_capture(out, 122.0, _strrat),
    "c2-quasarrat.pcap": lambda out: write_capture(out, 52.0, _quasar, browsing=2),
    "rat-c2-screen-capture.pcapng": lambda out: write_capture(out, 112.0, _rat),
    "exploitkit-cryptowall4-c2.pcapng": lambda out: write_capture(out, 65.0, _cryptowall, browsing=1),
    "malware-ek-dga-infection.pcap": lambda out: write_capture(out, 130.0, _ek_dga),
    "arp-spoof-mitm.pcapng": lambda out: write_capture(out, 12.0, _arp_spoof),
    "http-sqli-dvwa.pcapng": lambda out: write_capture(out, 38.0, _sqli),
    "benign-http-browsing-espn.pcapng": lambda out: write_capture(
        out, 15.0, _nothing, browsing=1, plain_http=True, seed=SEED + 1
    ),
    "benign-web-browsing-small.cap": lambda out: write_capture(out, 20.0, _nothing, browsing=1, seed=SEED + 2),
}
