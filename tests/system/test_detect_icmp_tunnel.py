"""ICMP tunnel detector: the labelled tunnel capture, benign captures and scans, and pings between test namespaces."""

from __future__ import annotations

import random

import pytest
from detection_helpers import analyse, labelled_span
from netns import (
    host_pair,  # noqa: F401 (fixture)
    need,
    recording,
)

from traffic_analyzer.detection.icmp_tunnel import IcmpTunnelDetector

PING_COUNT = 20


def test_slow_icmp_tunnel_is_found(pcaps, labels):
    alerts, analysis = analyse(pcaps / "icmp-tunnel-ssh.pcap", IcmpTunnelDetector())
    row = labels.set_index("file").loc["icmp-tunnel-ssh.pcap"]
    assert [(a.kind, a.attacker, a.victims) for a in alerts] == [(row["kind"], row["attacker"], [row["victim"]])]
    alert = alerts[0]
    start, end = labelled_span(row, analysis)
    assert start - 1 <= alert.start <= alert.end <= end + 1
    assert alert.end - alert.start > 1000  # the evidence kept adding up over the 1122 s
    assert alert.severity in ("high", "critical")
    assert alert.evidence["distinct_sizes"] >= 20 and alert.evidence["max_payload"] >= 1000
    assert "ordinary ping repeats one fixed size" in alert.explanation


def test_state_stays_bounded(pcaps):
    detector = IcmpTunnelDetector(max_packets_per_pair=100, max_tracked_packets=150)
    alerts, _ = analyse(pcaps / "icmp-tunnel-ssh.pcap", detector)
    assert len(detector._rows) <= 100
    assert [a.kind for a in alerts] == ["icmp_tunnel"]


def test_no_icmp_alert_on_benign_captures_or_port_unreachables(pcaps, labels):
    names = [*labels.loc[labels["kind"] == "benign", "file"], "nmap-udp-scan.pcap", "c2-empire-http-beacon.pcap"]
    for name in names:
        alerts, _ = analyse(pcaps / name, IcmpTunnelDetector())
        assert alerts == [], (name, [a.explanation for a in alerts])


def test_bad_parameter_is_named():
    with pytest.raises(ValueError, match="min_odd_share"):
        IcmpTunnelDetector(min_odd_share=-1).detect(None)


@pytest.mark.parametrize("size", [56, 32])
def test_ordinary_ping_raises_nothing(host_pair, tmp_path, size):  # noqa: F811
    need("ping", "tcpdump")
    pcap = tmp_path / "ping.pcap"
    with recording(host_pair, pcap, "icmp"):
        done = host_pair.run_in(
            host_pair.ns_b, "ping", "-n", "-c", str(PING_COUNT), "-i", "0.2", "-s", str(size), host_pair.ip_a
        )
        assert done.returncode == 0, done.stdout + done.stderr
    alerts, analysis = analyse(pcap, IcmpTunnelDetector())
    assert analysis.packets == 2 * PING_COUNT  # every request and its reply
    assert alerts == [], [a.explanation for a in alerts]


def test_pings_of_varying_size_carrying_data_are_a_tunnel(host_pair, tmp_path):  # noqa: F811
    need("ping", "tcpdump")
    rng = random.Random(3)
    pcap = tmp_path / "tunnel.pcap"
    with recording(host_pair, pcap, "icmp"):
        for size in rng.sample(range(80, 1400), PING_COUNT):  # chunks of a transfer, as ptunnel or icmpsh send them
            pattern = rng.randbytes(16).hex()
            done = host_pair.run_in(
                host_pair.ns_b, "ping", "-n", "-c", "1", "-W", "1", "-s", str(size), "-p", pattern, host_pair.ip_a
            )
            assert done.returncode == 0, done.stdout + done.stderr
    alerts, _ = analyse(pcap, IcmpTunnelDetector())
    assert [(a.kind, a.attacker, a.victims) for a in alerts] == [("icmp_tunnel", host_pair.ip_b, [host_pair.ip_a])]
    assert alerts[0].evidence["distinct_sizes"] == PING_COUNT
    assert alerts[0].evidence["echo_requests"] == alerts[0].evidence["echo_replies"] == PING_COUNT
