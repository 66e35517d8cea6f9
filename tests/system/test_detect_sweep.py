"""Host sweep detector: nmap sweeps of a /24 between test namespaces (ARP, TCP SYN to port 80, ICMP echo), a
client talking to forty servers (not a sweep) and the labelled captures (no sweep in any of them).

Host A carries 52 addresses (10.213.0.1 and .10-.60), so host B's sweeps of 10.213.0.0/24 find 52 live
hosts among 254. Run as a script (``python test_detect_sweep.py MODE ...``) inside a namespace, this module
is also the TCP tool of the client test: ``serve`` answers connections, ``visit`` opens one to each address.
Its ``recording`` (every frame, no drops in bursts) is shared with the other flood and DDoS tests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from detection_helpers import BENIGN_GLOB, analyse
from netns import HEADERS_SNAPLEN, SUBNET_PREFIX, HostPair, host_pair, need, recording  # noqa: F401 (fixture)

from traffic_analyzer.capture.pcap_file import PcapFileSource
from traffic_analyzer.detection.sweep import HostSweepDetector
from traffic_analyzer.pipeline import Analysis, file_windows

HERE = Path(__file__).resolve()
EXTRA_HOSTS = range(10, 61)  # host A's addresses besides .1
LIVE_HOSTS = 1 + len(EXTRA_HOSTS)
SUBNET = f"{SUBNET_PREFIX}.0/24"
SCANS = ("nmap-syn-scan.pcapng", "nmap-connect-scan.pcap", "nmap-udp-scan.pcap", "nmap-xmas-scan.pcap")
# Normal traffic with many peers: browsing, a sandbox gateway ARPing for absent hosts, P2P-like UDP to many IPs.
QUIET_FILES = ("c2-empire-http-beacon.pcap", "c2-quasarrat.pcap", "malware-ek-dga-infection.pcap")
BASELINE = ("benign-iphone-mixed.pcap", "benign-android-mixed.pcap", "benign-msteams-call.pcap")
SERVERS = 40  # host B addresses the client test talks to
FIRST_SERVER = 100
SERVER_PORT = 8443
TOOL_LIFETIME_S = 20.0
# tcpdump's kernel ring: in immediate mode each packet takes a snaplen-sized slot, so a short snaplen and a
# large buffer hold the bursts of nmap, hping3 and the MAC flood while a busy CPU delays tcpdump.


def add_addresses(ns: str, dev: str, hosts) -> list[str]:
    addresses = [f"{SUBNET_PREFIX}.{x}" for x in hosts]
    for address in addresses:
        subprocess.run(["ip", "-n", ns, "addr", "add", f"{address}/24", "dev", dev], check=True, timeout=10)
    return addresses


def analyse_without_arp(pcap: Path) -> list:
    """Alerts when the sweep crosses a router: the sensor sees the probes but not the attacker's ARP."""
    analysis = Analysis(detectors=[HostSweepDetector()])
    no_arp = (b[b["transport"] != "arp"] for b in PcapFileSource(pcap, progress=False).batches())
    for packets in file_windows(no_arp, 5.0):
        analysis.process(packets, live=False)
    return list(analysis.book.alerts.values())


@pytest.mark.parametrize(
    "nmap_args, method, targets",
    [
        (["-sn"], "ARP who-has", 250),  # root on a LAN: nmap -sn asks ARP for every address
        (["-sS", "-p", "80"], "TCP/80", LIVE_HOSTS),  # ARP discovery, then a SYN to each live host
        (["-sn", "-PE", "--send-ip"], "ICMP echo", LIVE_HOSTS),  # the kernel ARPs, nmap pings who answered
    ],
    ids=["arp", "tcp-80", "icmp-echo"],
)
def test_nmap_sweep_between_namespaces(host_pair, tmp_path, nmap_args, method, targets):  # noqa: F811
    need("nmap", "tcpdump")
    add_addresses(host_pair.ns_a, host_pair.if_a, EXTRA_HOSTS)
    pcap = tmp_path / "sweep.pcap"
    with recording(host_pair, pcap, snaplen=HEADERS_SNAPLEN):
        done = host_pair.run_in(host_pair.ns_b, "nmap", "-n", "-T4", *nmap_args, SUBNET, timeout=120)
        assert done.returncode == 0, done.stderr
    alerts, _ = analyse(pcap, HostSweepDetector())
    assert [(a.kind, a.attacker, a.victims) for a in alerts] == [("host_sweep", host_pair.ip_b, ["many"])]
    evidence = alerts[0].evidence
    assert evidence["methods"][method] >= targets
    bounded = HostSweepDetector(max_tracked=100)
    assert len(analyse(pcap, bounded)[0]) == 1 and len(bounded._probes) <= 100
    assert alerts[0].severity in ("medium", "high")
    if method == "ARP who-has":
        assert evidence["answered_share"] == pytest.approx(LIVE_HOSTS / evidence["distinct_targets"], abs=0.02)
    else:
        (routed,) = analyse_without_arp(pcap)
        assert (routed.attacker, routed.evidence["method"]) == (host_pair.ip_b, method)
        assert routed.evidence["distinct_targets"] == LIVE_HOSTS


@pytest.mark.parametrize("say", [True, False], ids=["talking", "silent"])
def test_client_of_forty_servers_is_not_a_sweep_unless_it_says_nothing(host_pair, tmp_path, say):  # noqa: F811
    """Host A connects to forty of host B's addresses on one port: with requests and answers that is use,
    connecting and closing without a word is a connect sweep."""
    need("tcpdump")
    servers = add_addresses(host_pair.ns_b, host_pair.if_b, range(FIRST_SERVER, FIRST_SERVER + SERVERS))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(HERE.parents[2]), str(HERE.parents[1])))}
    serve = [sys.executable, str(HERE), "serve", str(SERVER_PORT), str(SERVERS)]
    server = host_pair.popen_in(host_pair.ns_b, *serve, stdout=subprocess.PIPE, text=True, env=env)
    pcap = tmp_path / "client.pcap"
    try:
        assert server.stdout.readline().strip() == "ready"
        with recording(host_pair, pcap, snaplen=HEADERS_SNAPLEN):
            visit = [sys.executable, str(HERE), "visit", str(SERVER_PORT), "say" if say else "silent", *servers]
            done = host_pair.run_in(host_pair.ns_a, *visit, timeout=TOOL_LIFETIME_S + 10, env=env)
            assert done.returncode == 0, done.stderr
        assert server.wait(timeout=30) == 0
    finally:
        server.kill()
    alerts, _ = analyse(pcap, HostSweepDetector())
    if say:
        assert alerts == [], [a.explanation for a in alerts]
    else:
        assert [(a.kind, a.attacker) for a in alerts] == [("host_sweep", host_pair.ip_a)]
        assert alerts[0].evidence["methods"] == {"ARP who-has": SERVERS, f"TCP/{SERVER_PORT}": SERVERS}


def test_vertical_scans_are_not_sweeps(pcaps, labels):
    for name in SCANS:
        alerts, _ = analyse(pcaps / name, HostSweepDetector())
        assert labels.set_index("file").loc[name, "kind"] == "port_scan"
        assert alerts == [], (name, [a.explanation for a in alerts])


def test_no_sweep_on_benign_or_busy_captures(pcaps):
    for name in [*(p.name for p in sorted(pcaps.glob(BENIGN_GLOB))), *QUIET_FILES, "syn-flood-spoofed.pcap"]:
        alerts, _ = analyse(pcaps / name, HostSweepDetector())
        assert alerts == [], (name, [a.explanation for a in alerts])


def test_reflected_synacks_are_not_probes(pcaps):
    """SYN-ACKs make their receiver a connection's originator; it asked nothing, so it swept nothing."""
    assert analyse(pcaps / "ddos-tcp-synack-reflection.pcap", HostSweepDetector())[0] == []


def test_fit_quotes_the_baseline(pcaps):
    analysis, windows = Analysis(detectors=[]), []
    for name in BASELINE:
        for packets in file_windows(PcapFileSource(pcaps / name, progress=False).batches(), 5.0):
            windows.append(analysis.process(packets, live=False)[1])
    detector = HostSweepDetector(min_hosts=3)
    assert detector.fit(windows) is detector
    assert 0 < detector.baseline_max_hosts_ < HostSweepDetector().min_hosts
    alerts, _ = analyse(pcaps / "malware-ek-dga-infection.pcap", detector)  # failed C2 tries on TCP/80 pass 3 hosts
    assert alerts and all(f"probed {detector.baseline_max_hosts_} hosts one way" in a.explanation for a in alerts)


def test_state_stays_bounded(pcaps):
    detector = HostSweepDetector(max_tracked=1000)
    analyse(pcaps / "syn-flood-spoofed.pcap", detector)  # 37,841 one-packet attempts from spoofed sources
    assert len(detector._probes) <= 1000 and len(detector._talked) <= 1000


@pytest.mark.parametrize("name", ["min_hosts", "window_s", "max_tracked"])
def test_bad_parameter_is_named(name):
    with pytest.raises(ValueError, match=name):
        HostSweepDetector(**{name: 0}).detect(None)


def serve(port: int, connections: int) -> None:
    """Accept ``connections`` connections on any address, answer what each says, then exit (or time out)."""
    with socket.create_server(("0.0.0.0", port), backlog=128) as server:
        server.settimeout(TOOL_LIFETIME_S)
        print("ready", flush=True)
        for _ in range(connections):
            conn, _ = server.accept()
            with conn:
                if conn.recv(64):
                    conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nhello")


def visit(port: int, say: bool, addresses: list[str]) -> None:
    """One connection to each address: a request and its answer, or nothing at all."""
    for address in addresses:
        with socket.create_connection((address, port), timeout=5) as conn:
            if say:
                conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                conn.recv(64)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), int(sys.argv[3]))
    else:
        visit(int(sys.argv[2]), sys.argv[3] == "say", sys.argv[4:])
