"""Brute force, ARP spoofing, web attacks, C2 beacons and exploit-kit downloads on the labelled captures:
what each detector must find (kind, host, time) and what it must not."""

from __future__ import annotations

import subprocess

import pytest
from detection_helpers import BENIGN_GLOB, addresses, alerts_of, default_alerts, in_range, label_rows, spoofer

from traffic_analyzer.detection.arp_spoof import ArpSpoofDetector
from traffic_analyzer.detection.beacon import BeaconDetector
from traffic_analyzer.detection.brute_force import BruteForceDetector
from traffic_analyzer.detection.suspicious_download import SuspiciousDownloadDetector
from traffic_analyzer.detection.web_attack import WebAttackDetector

DETECTORS = {  # labelled kind -> the detectors that may report it
    "brute_force": {BruteForceDetector.name},
    "arp_spoof": {ArpSpoofDetector.name},
    "sql_injection": {WebAttackDetector.name},
    # Regular check-ins are beacons; CryptoWall's 3 rounds and the EK infection's POSTs are too few for
    # that, and are caught as check-ins right after the exploit chain.
    "c2_beacon": {BeaconDetector.name, SuspiciousDownloadDetector.name},
    "exploit_kit": {SuspiciousDownloadDetector.name},
}


def labelled(labels, kind):
    return [(row["file"], row) for row in label_rows(labels, kind)]


@pytest.mark.parametrize("kind", sorted(DETECTORS))
def test_detector_finds_each_labelled_attack(pcaps, labels, kind):
    for name, label in labelled(labels, kind):
        alerts = [a for a in default_alerts(pcaps / name) if a.detector in DETECTORS[kind] and in_range(a, label)]
        assert alerts, f"{kind} missed in {name}"
        named = {a.attacker for a in alerts} | {v for a in alerts for v in a.victims}
        if kind in ("c2_beacon", "exploit_kit"):  # the C2/EK server and the infected host are both named
            assert addresses(label["attacker"]) & named and addresses(label["victim"]) & named, (name, named)
            if kind == "c2_beacon":  # every labelled C2 server, not just one of them
                assert addresses(label["attacker"]) <= {a.attacker for a in alerts}, (name, named)
        else:
            assert {a.attacker for a in alerts} & addresses(label["attacker"]), (name, [a.attacker for a in alerts])
        assert all(a.explanation and 0 <= a.score <= 100 for a in alerts)


def test_detectors_are_quiet_on_benign_captures(pcaps):
    for path in sorted(pcaps.glob(BENIGN_GLOB)):
        assert default_alerts(path) == (), path.name


def test_brute_force_is_not_a_beacon_and_a_scan_is_not_brute_force(pcaps):
    assert alerts_of(pcaps / "ssh-bruteforce-hydra.pcap", BeaconDetector()) == []
    assert alerts_of(pcaps / "nmap-connect-scan.pcap", BruteForceDetector()) == []


def test_arp_spoof_names_attacker_ip_and_victim(pcaps, labels):
    (alert,) = [a for a in default_alerts(pcaps / "arp-spoof-mitm.pcapng") if a.kind == "arp_spoof"]
    row = labels.set_index("file").loc["arp-spoof-mitm.pcapng"]
    assert (alert.attacker, alert.victims) == (row["attacker"], [row["victim"]])
    mac, gateway = spoofer(row)
    assert alert.evidence["spoofed_ips"] == [gateway] and alert.evidence["mac"] == mac


def test_sql_injection_explanation_quotes_the_request(pcaps):
    (alert,) = [a for a in default_alerts(pcaps / "http-sqli-dvwa.pcapng") if a.kind == "sql_injection"]
    assert alert.evidence["requests"] == 3 and "union select" in alert.explanation.lower()
    assert alert.severity in ("medium", "high")


SYN_ACK = "tcp.flags.syn == 1 && tcp.flags.ack == 1"  # a port that accepts the connection


def test_a_port_scan_names_the_ports_that_answered_open(pcaps):
    """Issue 15 item 10: the alert did not say which ports were open (SYN-ACK: flow state S1/SF).
    tshark's SYN-ACKs of the nmap SYN scan are the oracle."""
    capture = pcaps / "nmap-syn-scan.pcapng"
    synacks = subprocess.run(
        ["tshark", "-r", str(capture), "-Y", SYN_ACK, "-T", "fields", "-e", "tcp.srcport"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    want = sorted({int(port) for port in synacks})
    [scan] = [a for a in default_alerts(capture) if a.kind == "port_scan"]
    assert want and scan.evidence["open_ports"] == want and scan.evidence["open_port_count"] == len(want)
    assert f"open ports: {', '.join(map(str, want))}" in scan.explanation
    [xmas] = [a for a in default_alerts(pcaps / "nmap-xmas-scan.pcap") if a.kind == "port_scan"]
    assert xmas.evidence["open_ports"] == [] and "no port answered as open" in xmas.explanation  # RSTs: closed
