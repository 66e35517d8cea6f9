"""MAC (CAM-table) flood detector: the labelled macof-style capture, benign captures, a busy LAN's first
seconds, and floods of made-up source MACs sent between test namespaces.

Run as a script (``python test_detect_mac_flood.py IFACE FRAMES random|unicast SEED``) inside a namespace,
this module sends the flood: Ethernet frames carrying TCP SYNs, each from a new random source MAC
(``random``: all 48 bits random, as macof and scapy's RandMAC draw them; ``unicast``: group bit clear).
"""

from __future__ import annotations

import os
import random
import socket
import struct
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from detection_helpers import BENIGN_GLOB, analyse, labelled_span
from netns import HEADERS_SNAPLEN, HostPair, host_pair, need, recording  # noqa: F401 (fixture)

from traffic_analyzer.capture.pcap_file import PcapFileSource
from traffic_analyzer.detection.mac_flood import MacFloodDetector
from traffic_analyzer.pipeline import Analysis, file_windows
from traffic_analyzer.records.packets import PACKET_SCHEMA, empty_packets

HERE = Path(__file__).resolve()
FLOOD_FILE = "flood-random-mac-ip-syn.pcap"
QUIET_FILES = (
    "syn-flood-spoofed.pcap",
    "arp-spoof-mitm.pcapng",
    "c2-quasarrat.pcap",
    "ddos-tcp-synack-reflection.pcap",
)
BASELINE = ("benign-iphone-mixed.pcap", "benign-msteams-call.pcap", "benign-android-mixed.pcap")
ETHERTYPE_IPV4 = b"\x08\x00"
GROUP_BIT, LOCAL_BIT = 0x01, 0x02  # first-octet bits of a MAC
LAN_HOSTS = 300  # hosts of the busy LAN whose capture starts


def group_share(macs: pd.Series) -> float:
    return float((macs.map(lambda m: int(m[:2], 16)) & GROUP_BIT).astype(bool).mean())


def test_random_mac_flood_is_found(pcaps, labels):
    alerts, analysis = analyse(pcaps / FLOOD_FILE, MacFloodDetector())
    row = labels.set_index("file").loc[FLOOD_FILE]
    assert [(a.kind, a.attacker, a.victims) for a in alerts] == [(row["kind"], row["attacker"], ["many"])]
    alert, (start, end) = alerts[0], labelled_span(row, analysis)
    assert start <= alert.start <= alert.end <= end
    assert alert.severity in ("high", "critical")
    macs = pd.concat(list(PcapFileSource(pcaps / FLOOD_FILE, progress=False).batches()))["src_mac"].unique()
    assert alert.evidence["new_macs"] == len(macs)
    assert alert.evidence["group_bit_share"] == pytest.approx(group_share(pd.Series(macs)), abs=0.001)
    assert alert.evidence["single_frame_share"] == 1.0
    assert "group bit" in alert.explanation


def test_no_mac_flood_on_benign_or_other_captures(pcaps):
    for name in [*(p.name for p in sorted(pcaps.glob(BENIGN_GLOB))), *QUIET_FILES]:
        alerts, _ = analyse(pcaps / name, MacFloodDetector())
        assert alerts == [], (name, [a.explanation for a in alerts])


def test_first_seconds_of_a_busy_lan_are_not_a_flood():
    """A capture that starts on a busy switch port sees hundreds of real (valid unicast) MACs at once."""
    rng = np.random.default_rng(5)
    frames = 3 * LAN_HOSTS
    ouis = ["00:1b:21", "3c:52:82", "f4:8e:38", "00:50:56"]  # Intel, HP, Dell, VMware
    macs = [f"{ouis[i % 4]}:{i // 256:02x}:{i % 256:02x}:{rng.integers(256):02x}" for i in range(LAN_HOSTS)]
    packets = empty_packets().reindex(range(frames))
    packets["ts"] = 1_700_000_000 + np.sort(rng.uniform(0, 10, frames))
    packets["length"] = 60
    packets["src_mac"] = [macs[i % LAN_HOSTS] for i in range(frames)]
    packets["dst_mac"] = "ff:ff:ff:ff:ff:ff"
    packets["transport"] = "other"
    packets = packets.astype(PACKET_SCHEMA)
    analysis = Analysis(detectors=[MacFloodDetector()])
    for second in range(0, 10, 2):
        window = packets[(packets["ts"] >= 1_700_000_000 + second) & (packets["ts"] < 1_700_000_002 + second)]
        analysis.process(window.reset_index(drop=True), live=False)
    assert analysis.book.alerts == {}
    assert len(analysis.detectors[0]._new) == LAN_HOSTS  # they were all new, and fast enough: only validity spoke


def test_fit_quotes_the_baseline(pcaps):
    analysis, windows = Analysis(detectors=[]), []
    for name in BASELINE:
        for packets in file_windows(PcapFileSource(pcaps / name, progress=False).batches(), 5.0):
            windows.append(analysis.process(packets, live=False)[1])
    detector = MacFloodDetector()
    assert detector.fit(windows) is detector
    assert 0 < detector.baseline_max_macs_ < detector.min_new_macs
    (alert,) = analyse(pcaps / FLOOD_FILE, detector)[0]
    assert f"no baseline window showed more than {detector.baseline_max_macs_} distinct" in alert.explanation


def test_state_stays_bounded(pcaps):
    detector = MacFloodDetector(max_known=60)
    alerts, _ = analyse(pcaps / FLOOD_FILE, detector)
    assert len(detector._known) <= 60 and len(detector._new) <= 60
    assert [a.kind for a in alerts] == ["mac_flood"]


@pytest.mark.parametrize("name", ["min_group_share", "min_new_macs", "memory_s"])
def test_bad_parameter_is_named(name):
    with pytest.raises(ValueError, match=name):
        MacFloodDetector(**{name: -1}).detect(None)


@pytest.mark.parametrize(
    "kind, frames, groups", [("random", 500, (0.4, 0.6)), ("unicast", 3000, (0.0, 0.0))], ids=["random", "unicast"]
)
def test_flood_of_new_source_macs_between_namespaces(host_pair, tmp_path, kind, frames, groups):  # noqa: F811
    """Random MACs are caught by their group bits; valid unicast ones by their rate alone."""
    need("tcpdump")
    pcap = tmp_path / "macflood.pcap"
    with recording(host_pair, pcap, snaplen=HEADERS_SNAPLEN):
        send_flood(host_pair, frames, kind)
    alerts, _ = analyse(pcap, MacFloodDetector())
    assert [(a.kind, a.attacker, a.victims) for a in alerts] == [("mac_flood", "*", ["many"])]
    evidence = alerts[0].evidence
    assert evidence["new_macs"] >= 0.95 * frames and evidence["single_frame_share"] > 0.95
    assert groups[0] <= evidence["group_bit_share"] <= groups[1]
    assert alerts[0].severity in ("high", "critical")


def send_flood(pair: HostPair, frames: int, kind: str) -> None:
    """Host B sends the flood out of its interface (a raw socket: root inside the namespace)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(HERE.parents[2]), str(HERE.parents[1])))}
    done = pair.run_in(pair.ns_b, sys.executable, str(HERE), pair.if_b, str(frames), kind, "7", env=env)
    assert done.returncode == 0, done.stderr


def flood(iface: str, frames: int, kind: str, seed: int) -> None:
    """``frames`` TCP SYN frames, each from a new random source MAC and IPv4 address to random ones."""
    rng = random.Random(seed)
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((iface, 0))
        for _ in range(frames):
            src = bytearray(rng.randbytes(6))
            if kind == "unicast":
                src[0] = (src[0] & ~GROUP_BIT & 0xFF) | LOCAL_BIT
            ip = struct.pack(
                "!BBHHHBBH4s4s", 0x45, 0, 40, rng.getrandbits(16), 0, 64, 6, 0, rng.randbytes(4), rng.randbytes(4)
            )
            tcp = struct.pack(
                "!HHIIBBHHH", rng.getrandbits(16), rng.getrandbits(16), rng.getrandbits(32), 0, 0x50, 2, 512, 0, 0
            )
            sock.send(rng.randbytes(6) + bytes(src) + ETHERTYPE_IPV4 + ip + tcp)


if __name__ == "__main__":
    flood(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
