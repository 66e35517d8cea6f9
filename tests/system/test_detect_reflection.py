"""Reflection/amplification DDoS detector: the two labelled attacks, benign captures, and traffic made between test
namespaces: hping3 "replies" from spoofed reflectors, and forty servers answering questions that were asked.

Run as a script (``python test_detect_reflection.py MODE ...``) inside a namespace, this module is also the
UDP tool of those tests: ``serve`` answers datagrams, ``ask`` sends questions, ``msearch`` sends an SSDP
search to the multicast group, and ``answer`` sends SSDP-style answers from several addresses.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from detection_helpers import BENIGN_GLOB, alerts_of, analyse, labelled_span
from netns import HEADERS_SNAPLEN, HostPair, host_pair, need, recording  # noqa: F401 (fixture)

from traffic_analyzer.capture.pcap_file import PcapFileSource
from traffic_analyzer.detection.reflection import ReflectionDetector
from traffic_analyzer.pipeline import Analysis, file_windows
from traffic_analyzer.records.packets import TCP_ACK, TCP_SYN

HERE = Path(__file__).resolve()
ATTACKS = {"ddos-snmp-amplification.pcapng": "SNMP", "ddos-tcp-synack-reflection.pcap": "tcp/80"}
QUIET_FILES = ("c2-empire-http-beacon.pcap", "c2-quasarrat.pcap", "nmap-syn-scan.pcapng", "syn-flood-spoofed.pcap")
BASELINE = ("benign-iphone-mixed.pcap", "benign-android-mixed.pcap", "benign-msteams-call.pcap")
SPOOFED_REPLIES = 1000  # hping3 packets per simulated attack: bounded
SERVERS = 40  # addresses on host B that answer host A
FIRST_SERVER = 100  # host B's extra addresses are 10.213.0.100 ...
PER_SERVER = 3  # questions (and answers) per server
SSDP_PORT, SEARCH_PORT = 1900, 41900
TOOL_LIFETIME_S = 20.0
SSDP_GROUP = "239.255.255.250"
M_SEARCH = b'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 2\r\nST: ssdp:all\r\n\r\n'
SSDP_ANSWER = b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nST: upnp:rootdevice\r\nUSN: uuid:test\r\n\r\n"
SYN_ACK = TCP_SYN | TCP_ACK
DNS_QUERY = bytes.fromhex("1234010000010000000000000765786d706c6503636f6d0000010001")  # example.com A


def test_labelled_attacks_are_found(pcaps, labels):
    for name, service in ATTACKS.items():
        alerts, analysis = analyse(pcaps / name, ReflectionDetector())
        row = labels.set_index("file").loc[name]
        assert [(a.kind, a.attacker, a.victims) for a in alerts] == [(row["kind"], row["attacker"], [row["victim"]])]
        alert, (start, end) = alerts[0], labelled_span(row, analysis)
        assert start <= alert.start <= alert.end <= end and alert.severity == "critical"
        assert alert.evidence["service"] == service
        assert alert.evidence["reflectors"] > 50 * ReflectionDetector().min_reflectors  # the next lines: exactly
        assert "without having sent them any request" in alert.explanation
        packets = pd.concat(list(PcapFileSource(pcaps / name, progress=False).batches()), ignore_index=True)
        if row["kind"] == "ddos_amplification":  # every UDP datagram from the service port, none asked for
            udp = packets[(packets["transport"] == "udp") & (packets["src_port"] == 161)]
            assert alert.evidence["packets"] == len(udp) and alert.evidence["reflectors"] == udp["src_ip"].nunique()
        else:  # every SYN-ACK, from each of the reflectors that sent one
            synacks = packets[(packets["tcp_flags"].fillna(0) & SYN_ACK) == SYN_ACK]
            assert alert.evidence["reply_types"]["SYN-ACK"] == len(synacks)
            assert alert.evidence["reflectors"] >= synacks["src_ip"].nunique()


def test_totals_hold_when_windows_split_the_attack(pcaps):
    (whole,) = alerts_of(pcaps / "ddos-snmp-amplification.pcapng", ReflectionDetector())
    (split,) = alerts_of(pcaps / "ddos-snmp-amplification.pcapng", ReflectionDetector(), window_s=0.005)
    assert split.updates >= 4  # the 23 ms attack spans several 5 ms windows
    for key in ("packets", "bytes", "reflectors"):
        assert split.evidence[key] == whole.evidence[key], key


def test_no_reflection_on_benign_browsing_scans_or_floods(pcaps):
    for name in [*(p.name for p in sorted(pcaps.glob(BENIGN_GLOB))), *QUIET_FILES]:
        alerts, _ = analyse(pcaps / name, ReflectionDetector())
        assert alerts == [], (name, [a.explanation for a in alerts])


def test_fit_quotes_the_baseline(pcaps):
    analysis, windows = Analysis(detectors=[]), []
    for name in BASELINE:
        for packets in file_windows(PcapFileSource(pcaps / name, progress=False).batches(), 5.0):
            windows.append(analysis.process(packets, live=False)[1])
    detector = ReflectionDetector()
    assert detector.fit(windows) is detector
    assert detector.baseline_max_reflectors_ < detector.min_reflectors
    (alert,) = analyse(pcaps / "ddos-snmp-amplification.pcapng", detector)[0]
    assert f"more than {detector.baseline_max_reflectors_} sources" in alert.explanation


def test_state_stays_bounded(pcaps):
    detector = ReflectionDetector(max_tracked=500)
    alerts, _ = analyse(pcaps / "ddos-tcp-synack-reflection.pcap", detector)
    assert len(detector._unasked) <= 500
    assert [a.kind for a in alerts] == ["ddos_reflection"]


@pytest.mark.parametrize("name", ["min_reflectors", "window_s", "services"])
def test_bad_parameter_is_named(name):
    with pytest.raises(ValueError, match=name):
        ReflectionDetector(**{name: {0: "none"} if name == "services" else -1}).detect(None)


@pytest.mark.parametrize(
    "kind, hping3_args, service",
    [
        ("ddos_amplification", ["--udp", "-s", "53", "-k", "-p", "33333", "-d", "400"], "DNS"),
        ("ddos_reflection", ["-S", "-A", "-s", "443", "-k", "-p", "40000"], "tcp/443"),
    ],
    ids=["dns-amplification", "synack-reflection"],
)
def test_spoofed_replies_from_hping3_are_an_attack(host_pair, tmp_path, kind, hping3_args, service):  # noqa: F811
    """Host B forges what a reflection attack delivers: replies to host A from a thousand random "reflectors"."""
    need("hping3", "tcpdump")
    pcap = tmp_path / "reflection.pcap"
    with recording(host_pair, pcap, snaplen=HEADERS_SNAPLEN):
        args = ["-i", "u1000", "-c", str(SPOOFED_REPLIES), "--rand-source", *hping3_args, host_pair.ip_a]
        done = host_pair.run_in(host_pair.ns_b, "hping3", *args)
        assert f"{SPOOFED_REPLIES} packets transmitted" in done.stdout + done.stderr, done.stderr
    alerts, _ = analyse(pcap, ReflectionDetector())
    assert [(a.kind, a.attacker, a.victims) for a in alerts] == [(kind, "*", [host_pair.ip_a])]
    evidence = alerts[0].evidence
    assert evidence["service"] == service and evidence["reflectors"] >= 0.95 * SPOOFED_REPLIES
    assert alerts[0].severity in ("high", "critical")


def test_answers_to_questions_that_were_asked_are_not_an_attack(host_pair, tmp_path):  # noqa: F811
    """Host A asks forty DNS servers, and multicasts an SSDP search that forty devices answer: no attack.

    Without A's own packets (a capture that misses them) the same answers are an attack, which shows
    that the requests, not the thresholds, keep this quiet.
    """
    need("tcpdump")
    servers = [f"10.213.0.{FIRST_SERVER + i}" for i in range(SERVERS)]
    for address in servers:
        subprocess.run(["ip", "-n", host_pair.ns_b, "addr", "add", f"{address}/24", "dev", host_pair.if_b], check=True)
    pcap = tmp_path / "asked.pcap"
    serve = ["serve", "53", str(SERVERS * PER_SERVER), *servers]
    server = host_pair.popen_in(host_pair.ns_b, *tool(*serve), stdout=subprocess.PIPE, text=True, env=tool_env())
    try:
        assert server.stdout.readline().strip() == "ready"
        with recording(host_pair, pcap, snaplen=HEADERS_SNAPLEN):
            run_tool(host_pair, host_pair.ns_a, "ask", "53", str(PER_SERVER), *servers)
            run_tool(host_pair, host_pair.ns_a, "msearch", host_pair.ip_a)
            run_tool(host_pair, host_pair.ns_b, "answer", host_pair.ip_a, str(PER_SERVER), *servers)
        assert server.wait(timeout=30) == 0
    finally:
        server.kill()
    assert analyse(pcap, ReflectionDetector())[0] == []
    analysis = Analysis(detectors=[ReflectionDetector()])
    answers_only = (b[b["src_ip"] != host_pair.ip_a] for b in PcapFileSource(pcap, progress=False).batches())
    for packets in file_windows(answers_only, 5.0):
        analysis.process(packets, live=False)
    (alert,) = analysis.book.alerts.values()
    assert (alert.kind, alert.victims) == ("ddos_amplification", [host_pair.ip_a])
    assert alert.evidence["services"] == {"DNS": SERVERS * PER_SERVER, "SSDP": SERVERS * PER_SERVER}


def tool(*args: str) -> list[str]:
    return [sys.executable, str(HERE), *args]


def tool_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join((str(HERE.parents[2]), str(HERE.parents[1])))}


def run_tool(pair: HostPair, ns: str, *args: str) -> None:
    done = pair.run_in(ns, *tool(*args), timeout=TOOL_LIFETIME_S + 10, env=tool_env())
    assert done.returncode == 0, done.stderr


def serve(port: int, answers: int, addresses: list[str]) -> None:
    """Answer each datagram to any of ``addresses`` with 300 bytes, until ``answers`` are sent or time is up."""
    sockets = []
    for address in addresses:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((address, port))
        sockets.append(sock)
    print("ready", flush=True)
    deadline = time.monotonic() + TOOL_LIFETIME_S
    while answers > 0 and time.monotonic() < deadline:
        readable, _, _ = select.select(sockets, [], [], 0.5)
        for sock in readable:
            data, peer = sock.recvfrom(2048)
            sock.sendto(data[:2] + b"\x81\x80" + bytes(296), peer)
            answers -= 1


def ask(port: int, per_server: int, addresses: list[str]) -> None:
    """Send ``per_server`` DNS queries to each address and wait for each answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        for address in addresses:
            for _ in range(per_server):
                sock.sendto(DNS_QUERY, (address, port))
                sock.recvfrom(2048)


def msearch(source: str) -> None:
    """One SSDP M-SEARCH from ``source``:SEARCH_PORT to the SSDP multicast group."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, SEARCH_PORT))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(source))
        sock.sendto(M_SEARCH, (SSDP_GROUP, SSDP_PORT))


def answer(searcher: str, per_device: int, addresses: list[str]) -> None:
    """SSDP answers from each address's port 1900 to the searcher, as devices answer an M-SEARCH."""
    for address in addresses:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((address, SSDP_PORT))
            for _ in range(per_device):
                sock.sendto(SSDP_ANSWER, (searcher, SEARCH_PORT))


def main(argv: list[str]) -> None:
    mode, args = argv[0], argv[1:]
    if mode == "serve":
        serve(int(args[0]), int(args[1]), args[2:])
    elif mode == "ask":
        ask(int(args[0]), int(args[1]), args[2:])
    elif mode == "msearch":
        msearch(args[0])
    elif mode == "answer":
        answer(args[0], int(args[1]), args[2:])
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
