"""SYN flood detector: the spoofed-flood capture, scans and busy servers that are not floods, and hping3 floods
made between test namespaces.

Run as a script (``python test_detect_syn_flood.py serve|connect IP PORT COUNT``) inside a namespace, this
module is also the busy server and its client: COUNT connections, each saying hello and getting an answer.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from detection_helpers import BENIGN_GLOB, analyse, labelled_span
from netns import (
    HEADERS_SNAPLEN,
    host_pair,  # noqa: F401 (fixture)
    need,
    recording,
)

from traffic_analyzer.capture.pcap_file import PcapFileSource
from traffic_analyzer.detection.portscan import PortScanDetector
from traffic_analyzer.detection.syn_flood import SynFloodDetector
from traffic_analyzer.pipeline import Analysis, file_windows

HERE = Path(__file__).resolve()
FLOOD_FILE = "syn-flood-spoofed.pcap"
SCANS = ("nmap-syn-scan.pcapng", "nmap-connect-scan.pcap", "nmap-xmas-scan.pcap")
FLOOD_SYNS = 3000  # hping3 packets per flood: bounded
BASELINE = ("benign-http-browsing-espn.pcapng", "benign-msteams-call.pcap", "benign-tls-firefox.pcap")
CONNECTIONS = 400  # completed connections of the busy-server test
SERVER_PORT = 8080
TOOL_LIFETIME_S = 30.0


def test_spoofed_flood_is_found(pcaps, labels):
    alerts, analysis = analyse(pcaps / FLOOD_FILE, SynFloodDetector())
    row = labels.set_index("file").loc[FLOOD_FILE]
    assert [(a.kind, a.attacker, a.victims) for a in alerts] == [(row["kind"], row["attacker"], [row["victim"]])]
    alert = alerts[0]
    start, end = labelled_span(row, analysis)
    assert start <= alert.start <= alert.end <= end
    assert alert.end - alert.start > 20  # the running totals span the pauses between bursts
    assert alert.severity == "critical"
    assert alert.evidence["syns"] == analysis.packets  # every packet of the capture is a flood SYN
    assert alert.evidence["distinct_sources"] >= 10 * SynFloodDetector().min_spoofed_sources  # a new one per SYN
    assert alert.evidence["completed_share"] == 0
    (port,) = pd.concat(list(PcapFileSource(pcaps / FLOOD_FILE, progress=False).batches()))["dst_port"].unique()
    assert alert.evidence["target_port"] == port and alert.evidence["target_port_share"] == 1.0
    assert "spoofed" in alert.explanation and f"tcp/{port}" in alert.explanation


@pytest.mark.parametrize("name", SCANS)
def test_port_scans_are_not_floods(pcaps, name):
    assert analyse(pcaps / name, SynFloodDetector())[0] == []


def test_scans_pass_the_volume_thresholds_and_only_their_shape_clears_them(pcaps):
    """Without the one-service rule the two nmap scans would be floods: the rule, not the volume, tells them apart."""
    for name in SCANS[:2]:
        alerts, _ = analyse(pcaps / name, SynFloodDetector(min_port_share=0.0))
        assert [a.kind for a in alerts] == ["syn_flood"], name


def test_no_flood_on_benign_captures_brute_force_or_random_frames(pcaps):
    names = [p.name for p in sorted(pcaps.glob(BENIGN_GLOB))]
    for name in [*names, "ftp-bruteforce.pcap", "flood-random-mac-ip-syn.pcap"]:
        alerts, _ = analyse(pcaps / name, SynFloodDetector())
        assert alerts == [], (name, [a.explanation for a in alerts])


def test_fit_quotes_the_baseline(pcaps):
    analysis, windows = Analysis(detectors=[]), []
    for path in [pcaps / name for name in BASELINE]:
        for packets in file_windows(PcapFileSource(path, progress=False).batches(), 5.0):
            windows.append(analysis.process(packets, live=False)[1])
    detector = SynFloodDetector()
    assert detector.fit(windows) is detector
    assert 0 < detector.baseline_max_rate_pps_ < detector.min_rate_pps
    (alert,) = analyse(pcaps / FLOOD_FILE, detector)[0]
    assert f"the busiest baseline host received {detector.baseline_max_rate_pps_:g} SYN/s" in alert.explanation


def test_state_stays_bounded(pcaps):
    detector = SynFloodDetector(max_tracked=2000)
    alerts, _ = analyse(pcaps / FLOOD_FILE, detector)
    assert len(detector._syns) <= 2000 and len(detector._attempts) <= 2000
    assert [a.kind for a in alerts] == ["syn_flood"]


@pytest.mark.parametrize("name", ["min_port_share", "min_syns", "window_s"])
def test_bad_parameter_is_named(name):
    with pytest.raises(ValueError, match=name):
        SynFloodDetector(**{name: -1}).detect(None)


@pytest.mark.parametrize(
    "hping3_args, spoofed, ports",
    [
        (["-p", "80", "--rand-source"], True, 1),  # hping3 --flood --rand-source, bounded
        (["-p", "80"], False, 1),  # one real source, its source port counting up
        (["-p", "++1000", "--rand-source"], True, FLOOD_SYNS),  # a new destination port per SYN, like Mirai's flood
    ],
    ids=["rand-source", "one-source", "rand-source-spread-ports"],
)
def test_hping3_flood_between_namespaces(host_pair, tmp_path, hping3_args, spoofed, ports):  # noqa: F811
    need("hping3", "tcpdump")
    pcap = tmp_path / "flood.pcap"
    with recording(host_pair, pcap, snaplen=HEADERS_SNAPLEN):
        args = ["-S", "-i", "u1000", "-c", str(FLOOD_SYNS), *hping3_args, host_pair.ip_a]
        done = host_pair.run_in(host_pair.ns_b, "hping3", *args)
        assert f"{FLOOD_SYNS} packets transmitted" in done.stdout + done.stderr, done.stderr
    alerts, _ = analyse(pcap, SynFloodDetector())
    attacker = "*" if spoofed else host_pair.ip_b
    assert [(a.kind, a.attacker, a.victims) for a in alerts] == [("syn_flood", attacker, [host_pair.ip_a])]
    evidence = alerts[0].evidence
    assert evidence["syns"] == FLOOD_SYNS and evidence["distinct_ports"] == ports
    assert (
        evidence["distinct_sources"] >= FLOOD_SYNS - 5 if spoofed else evidence["distinct_sources"] == 1
    )  # rare repeats
    assert evidence["completed_share"] == 0  # host A refuses (no listener) or its SYN-ACKs go nowhere
    assert alerts[0].severity in ("high", "critical")


def test_nmap_port_scan_between_namespaces_is_not_a_flood(host_pair, tmp_path):  # noqa: F811
    """nmap -T5 between namespaces sends its 2000 SYNs far faster than any flood threshold: still a scan."""
    need("nmap", "tcpdump")
    pcap = tmp_path / "scan.pcap"
    with recording(host_pair, pcap, snaplen=HEADERS_SNAPLEN):
        done = host_pair.run_in(host_pair.ns_b, "nmap", "-n", "-sS", "-p", "1-2000", "-T5", host_pair.ip_a, timeout=120)
        assert done.returncode == 0, done.stderr
    assert analyse(pcap, SynFloodDetector())[0] == []
    (scan,) = analyse(pcap, PortScanDetector())[0]
    assert (scan.attacker, scan.victims, scan.evidence["distinct_ports"]) == (host_pair.ip_b, [host_pair.ip_a], 2000)


def test_busy_server_completing_its_handshakes_is_not_a_flood(host_pair, tmp_path):  # noqa: F811
    need("tcpdump")
    pcap = tmp_path / "busy.pcap"
    args = (host_pair.ip_a, str(SERVER_PORT), str(CONNECTIONS))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(HERE.parents[2]), str(HERE.parents[1])))}
    tool = (sys.executable, str(HERE))
    server = host_pair.popen_in(host_pair.ns_a, *tool, "serve", *args, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert server.stdout.readline().strip() == "ready"
        with recording(host_pair, pcap, snaplen=HEADERS_SNAPLEN):
            done = host_pair.run_in(host_pair.ns_b, *tool, "connect", *args, timeout=TOOL_LIFETIME_S + 10, env=env)
            assert done.returncode == 0, done.stderr
        assert server.wait(timeout=30) == 0
    finally:
        server.kill()
    assert analyse(pcap, SynFloodDetector())[0] == []
    # The burst is flood-sized; only the completed handshakes keep it from being one.
    (alert,) = analyse(pcap, SynFloodDetector(max_completed_share=1.0))[0]
    assert alert.evidence["syns"] == CONNECTIONS and alert.evidence["completed_share"] == 1.0


def serve(ip: str, port: int, connections: int) -> None:
    """Accept ``connections`` connections, read each one's hello and answer it, then exit (or time out)."""
    with socket.create_server((ip, port), backlog=1024) as server:
        server.settimeout(TOOL_LIFETIME_S)
        print("ready", flush=True)
        for _ in range(connections):
            conn, _ = server.accept()
            with conn:
                conn.recv(64)
                conn.sendall(b"ok")


def connect(ip: str, port: int, connections: int) -> None:
    """Open ``connections`` connections one after the other, each saying hello and reading the answer."""
    for _ in range(connections):
        with socket.create_connection((ip, port), timeout=5) as conn:
            conn.sendall(b"hello")
            conn.recv(64)


if __name__ == "__main__":
    (serve if sys.argv[1] == "serve" else connect)(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
