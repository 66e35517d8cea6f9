"""Captures the tests make, for attacks whose public captures may not be redistributed (see tests/data/pcaps).

Each is one attack alone on the synthesizer's office network (bench/synth), written by the same code
as the lab capture, so it is seeded, byte-identical from run to run, and labelled by the attack itself.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from synth.lab import FULL_PACKETS  # noqa: E402
from synth.network import LINUX_TTL  # noqa: E402
from synth.office import build_office  # noqa: E402
from synth.probes import SCAN_PORTS, SynPortScan  # noqa: E402
from synth.scenario import Plan, run  # noqa: E402

SEED = 7
SITE = 20  # the LAN is 10.20.0.0/16
START_S = 1_717_408_800
SCAN_S = 5.0  # the scan's 1000 SYNs are spread over this long
CAPTURE_S = 10.0
OPEN_PORTS = (22, 80, 139, 445)


@dataclass(frozen=True)
class MadeScan:
    """A made nmap -sS capture and what is known of it by construction."""

    path: Path
    label: pd.Series  # its labels.csv row
    packets: int
    ports: int = SCAN_PORTS


def write_syn_scan(out: Path) -> MadeScan:
    """nmap -sS of 1000 ports of one server (4 open), with the server's answers, and nothing else."""

    def compose(lab):
        office = build_office(lab, SITE, 4, extra_sites=4)
        scanner = lab.net.local("scanner", f"10.{SITE}.5.10", LINUX_TTL)
        scan = SynPortScan(office, lab.rng("scan"), START_S * 1_000_000 + 1_000_000, SCAN_S, scanner,
                           office.servers["files"], OPEN_PORTS)  # fmt: skip
        return [scan], lambda: [scan.label()]

    start = START_S * 1_000_000
    summary = run(Plan(SEED, start, start + int(CAPTURE_S * 1e6), 0, FULL_PACKETS, SITE), out, compose)
    (label,) = pd.read_csv(summary.labels_path).itertuples(index=False)
    return MadeScan(out, pd.Series(label._asdict()), summary.packets)
