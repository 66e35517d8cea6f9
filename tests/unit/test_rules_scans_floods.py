"""Scan, sweep and flood rules on hand-built windows: port_scan, host_sweep, syn_flood, reflection."""

from __future__ import annotations

import pytest
from builders import SCANNER, TARGET, arp, feed, flow, probes, summary, tcp, window

from traffic_analyzer.detection.portscan import PortScanDetector
from traffic_analyzer.detection.reflection import ReflectionDetector
from traffic_analyzer.detection.sweep import HostSweepDetector
from traffic_analyzer.detection.syn_flood import SynFloodDetector
from traffic_analyzer.records.packets import TCP_ACK, TCP_SYN

pytestmark = pytest.mark.unit

SCANNER_MAC = "02:00:00:00:00:66"


# port_scan: payload-less attempts to >= min_ports ports of one host within window_s


def test_port_scan_fires_at_min_ports():
    rows = probes(100.0, range(1, 26))
    alerts = PortScanDetector(min_ports=25).detect(window(flow_rows=rows))
    assert [summary(a) for a in alerts] == [("port_scan", SCANNER, [TARGET], 100.0, rows[-1]["ts"])]
    assert alerts[0].evidence["distinct_ports"] == 25 and alerts[0].evidence["unanswered_share"] == 0.0


def test_port_scan_near_miss_one_port_short():
    repeated = probes(100.0, range(1, 25)) + probes(110.0, range(1, 25))  # 48 probes, 24 distinct ports
    with_payload = probes(120.0, range(25, 26), orig_bytes=120)  # a 25th port that got data: a client, not a probe
    assert PortScanDetector(min_ports=25).detect(window(flow_rows=repeated + with_payload)) == []


def test_port_scan_adds_up_across_windows():
    early, late = probes(100.0, range(1, 14)), probes(130.0, range(14, 26))
    first, second = feed(PortScanDetector(min_ports=25), [window(flow_rows=early), window(flow_rows=late)])
    assert first == []
    assert [summary(a) for a in second] == [("port_scan", SCANNER, [TARGET], 100.0, late[-1]["ts"])]


@pytest.mark.parametrize("late_ts, fires", [(150.0, True), (170.0, False)])
def test_port_scan_forgets_probes_older_than_window_s(late_ts, fires):
    early, late = probes(100.0, range(1, 14)), probes(late_ts, range(14, 26))  # late window ends at late_ts + 1.1
    detector = PortScanDetector(min_ports=25, window_s=60.0)
    alerts = feed(detector, [window(flow_rows=early), window(flow_rows=late)])[-1]
    assert bool(alerts) is fires


# host_sweep: one source probing >= min_hosts hosts with one method within window_s


def arp_sweep(first_ts: float, hosts: range) -> list[dict]:
    return [arp(first_ts + 0.1 * i, 1, SCANNER_MAC, SCANNER, f"10.0.0.{h}") for i, h in enumerate(hosts)]


def test_host_sweep_fires_on_an_arp_sweep():
    rows = arp_sweep(200.0, range(1, 31))
    alerts = HostSweepDetector(min_hosts=30).detect(window(rows))
    assert [summary(a) for a in alerts] == [("host_sweep", SCANNER, ["many"], 200.0, rows[-1]["ts"])]
    assert alerts[0].evidence["method"] == "ARP who-has" and alerts[0].evidence["distinct_targets"] == 30


def test_host_sweep_fires_on_a_tcp_port_sweep():
    rows = [flow(200.0 + 0.1 * i, SCANNER, f"10.0.1.{h}", 80) for i, h in enumerate(range(1, 31))]
    alerts = HostSweepDetector(min_hosts=30).detect(window(flow_rows=rows))
    assert [summary(a) for a in alerts] == [("host_sweep", SCANNER, ["many"], 200.0, rows[-1]["ts"])]
    assert alerts[0].evidence["method"] == "TCP/80"


def test_host_sweep_near_miss_one_host_short():
    assert HostSweepDetector(min_hosts=30).detect(window(arp_sweep(200.0, range(1, 30)))) == []


def test_host_sweep_a_host_it_talks_to_is_no_probe_target():
    silent = [flow(200.0 + 0.1 * i, SCANNER, f"10.0.1.{h}", 80) for i, h in enumerate(range(1, 30))]
    talked = flow(205.0, SCANNER, "10.0.1.30", 80, conn_state="SF", history="ShADadFf", orig_bytes=300, resp_bytes=900)
    talked_arp = arp(199.0, 1, SCANNER_MAC, SCANNER, "10.0.1.30")  # resolving a peer it then talks to
    assert HostSweepDetector(min_hosts=30).detect(window([talked_arp], silent + [talked])) == []


def test_host_sweep_spans_the_sweep_not_the_sources_earlier_probes():
    """A who-has and a ping 21 s before an ICMP sweep are not part of it."""
    earlier = [arp(179.0, 1, SCANNER_MAC, SCANNER, "10.0.0.1")]
    ping = flow(179.5, SCANNER, "10.0.9.9", 8, proto="icmp", orig_p=8, resp_pkts=1)
    sweep = [
        flow(200.0 + 0.01 * i, SCANNER, f"10.0.2.{h}", 0, proto="icmp", orig_p=8) for i, h in enumerate(range(1, 41))
    ]
    alerts = HostSweepDetector(min_hosts=30).detect(window(earlier, [ping, *sweep]))
    assert [summary(a) for a in alerts] == [("host_sweep", SCANNER, ["many"], 200.0, sweep[-1]["ts"])]


def test_port_scan_spans_the_scan_not_a_stray_probe_before_it():
    stray, scan = probes(40.0, range(1, 2)), probes(100.0, range(2, 40))
    alerts = PortScanDetector(min_ports=25).detect(window(flow_rows=stray + scan))
    assert [summary(a) for a in alerts] == [("port_scan", SCANNER, [TARGET], 100.0, scan[-1]["ts"])]


@pytest.mark.parametrize("late_ts, fires", [(240.0, True), (270.0, False)])
def test_host_sweep_forgets_probes_older_than_window_s(late_ts, fires):
    detector = HostSweepDetector(min_hosts=30, window_s=60.0)
    windows = [window(arp_sweep(200.0, range(1, 30))), window(arp_sweep(late_ts, range(30, 31)))]
    assert bool(feed(detector, windows)[-1]) is fires


# syn_flood: >= min_syns bare SYNs at >= min_rate_pps to one victim, <= max_completed_share completed


def syns(first_ts: float, count: int, step_s: float = 0.01, src: str = SCANNER, port: int = 80) -> list[dict]:
    return [tcp(first_ts + step_s * i, src, TARGET, port, sport=1024 + i, flags=TCP_SYN) for i in range(count)]


def test_syn_flood_fires_at_min_syns_and_rate():
    rows = syns(300.0, 200)  # 200 SYNs in 1.99 s: 100/s
    alerts = SynFloodDetector(min_syns=200, min_rate_pps=50.0).detect(window(rows))
    assert [summary(a) for a in alerts] == [("syn_flood", SCANNER, [TARGET], 300.0, rows[-1]["ts"])]
    assert alerts[0].evidence["target_port"] == 80 and alerts[0].evidence["syns"] == 200


def test_syn_flood_from_spoofed_sources_names_no_attacker():
    rows = [
        tcp(300.0 + 0.01 * i, f"198.51.{i // 250}.{i % 250 + 1}", TARGET, 1000 + i, sport=40000, flags=TCP_SYN)
        for i in range(200)
    ]  # one SYN per source, to 200 ports: Mirai's random-port flood
    alerts = SynFloodDetector().detect(window(rows))
    assert [summary(a) for a in alerts] == [("syn_flood", "*", [TARGET], 300.0, rows[-1]["ts"])]


@pytest.mark.parametrize(
    "count, step_s",
    [(199, 0.01), (200, 4.1 / 199)],  # one SYN short of min_syns; 200 SYNs over 4.1 s (48.8/s, under 50/s)
)
def test_syn_flood_near_miss(count, step_s):
    assert SynFloodDetector(min_syns=200, min_rate_pps=50.0).detect(window(syns(300.0, count, step_s))) == []


def test_syn_flood_syn_acks_and_acks_are_not_bare_syns():
    rows = syns(300.0, 199) + [tcp(302.0, SCANNER, TARGET, 80, flags=TCP_SYN | TCP_ACK)]
    assert SynFloodDetector(min_syns=200).detect(window(rows)) == []


@pytest.mark.parametrize("completed, fires", [(40, True), (41, False)])
def test_syn_flood_completed_handshakes_are_a_busy_server(completed, fires):
    rows = syns(300.0, 200)
    attempts = [
        flow(r["ts"], SCANNER, TARGET, 80, orig_p=r["src_port"], history="ShAD" if i < completed else "S")
        for i, r in enumerate(rows)
    ]  # max_completed_share 0.2 of 200 attempts is 40
    alerts = SynFloodDetector(max_completed_share=0.2).detect(window(rows, attempts))
    assert bool(alerts) is fires


@pytest.mark.parametrize("late_ts, fires", [(302.0, True), (312.0, False)])
def test_syn_flood_forgets_syns_older_than_window_s(late_ts, fires):
    detector = SynFloodDetector(min_syns=200, window_s=10.0)
    alerts = feed(detector, [window(syns(300.0, 150)), window(syns(late_ts, 100))])
    assert alerts[0] == [] and bool(alerts[1]) is fires


# reflection: >= min_packets unrequested replies from >= min_reflectors sources to one victim within window_s


def replies(first_ts: float, reflectors: range, packets_each: int, **fields) -> list[dict]:
    """DNS answers (UDP from port 53) the victim never asked for, one flow per reflector."""
    return [
        flow(
            first_ts + 0.1 * i,
            f"192.0.2.{r}",
            TARGET,
            40000,
            proto="udp",
            orig_p=53,
            duration=0.4,
            history="D",
            orig_pkts=packets_each,
            orig_ip_bytes=1200 * packets_each,
            **fields,
        )
        for i, r in enumerate(reflectors)
    ]


def test_reflection_fires_on_dns_amplification():
    w = window(flow_rows=replies(400.0, range(1, 21), 5))  # 20 reflectors, 100 answers
    alerts = ReflectionDetector(min_reflectors=20, min_packets=100).detect(w)
    assert [summary(a) for a in alerts] == [("ddos_amplification", "*", [TARGET], 400.0, w.flows["last_ts"].max())]
    assert alerts[0].evidence["reflectors"] == 20 and alerts[0].evidence["service"] == "DNS"


def test_reflection_fires_on_syn_ack_reflection():
    rows = [
        flow(400.0 + 0.1 * i, TARGET, f"192.0.2.{r}", 443, orig_p=40000, history="h", orig_pkts=0, resp_pkts=5)
        for i, r in enumerate(range(1, 21))
    ]  # SYN-ACKs to the victim, which sent no SYN: Zeek makes the receiver the originator
    alerts = ReflectionDetector().detect(window(flow_rows=rows))
    assert [summary(a) for a in alerts] == [("ddos_reflection", "*", [TARGET], 400.0, rows[-1]["ts"])]


@pytest.mark.parametrize(
    "rows",
    [
        replies(400.0, range(1, 20), 6),  # 114 answers from 19 reflectors, one short of min_reflectors
        replies(400.0, range(1, 20), 5) + replies(402.0, range(20, 21), 4),  # 20 reflectors, 99 answers
        replies(400.0, range(1, 21), 5, resp_pkts=1, conn_state="SF"),  # the victim asked: answers, not reflection
    ],
    ids=["19-reflectors", "99-packets", "requested"],
)
def test_reflection_near_miss(rows):
    assert ReflectionDetector(min_reflectors=20, min_packets=100).detect(window(flow_rows=rows)) == []


@pytest.mark.parametrize("late_ts, fires", [(405.0, True), (420.0, False)])
def test_reflection_forgets_replies_older_than_window_s(late_ts, fires):
    detector = ReflectionDetector(min_reflectors=20, min_packets=100, window_s=10.0)
    windows = [window(flow_rows=replies(400.0, range(1, 16), 5)), window(flow_rows=replies(late_ts, range(16, 21), 5))]
    alerts = feed(detector, windows)
    assert alerts[0] == [] and bool(alerts[1]) is fires


# port_scan, lateral: payload-less attempts to >= min_targets (host, port) targets on >= min_spread hosts and
# ports within window_s, at least min_closed of them finding no open port


def lateral(first_ts: float, hosts: int, ports: list[int], open_port: int | None = None) -> list[dict]:
    """SCANNER's SYN probes to each port of hosts 10.0.1.1..N, 0.05 s apart; ``open_port`` answers SYN-ACK."""
    rows, ts = [], first_ts
    for h in range(1, hosts + 1):
        for port in ports:
            if port == open_port:
                rows.append(flow(ts, SCANNER, f"10.0.1.{h}", port, conn_state="RSTO", history="ShR", resp_pkts=1))
            else:
                rows.append(flow(ts, SCANNER, f"10.0.1.{h}", port, conn_state="REJ", history="Sr", resp_pkts=1))
            ts += 0.05
    return rows


def test_lateral_scan_fires_on_five_ports_of_nine_hosts():
    rows = lateral(300.0, 9, [22, 80, 445, 3389, 5900], open_port=445)
    alerts = PortScanDetector().detect(window(flow_rows=rows))
    assert [summary(a) for a in alerts] == [("port_scan", SCANNER, ["many"], 300.0, rows[-1]["ts"])]
    evidence = alerts[0].evidence
    assert (evidence["targets"], evidence["distinct_hosts"], evidence["distinct_ports"]) == (45, 9, 5)
    assert len(evidence["open_targets"]) == 9 and "probed 9 hosts on 5 TCP ports" in alerts[0].explanation


@pytest.mark.parametrize(
    "hosts, ports",
    [
        (12, [443, 80]),  # a browser's speculative connections: many hosts, two ports
        (2, list(range(1, 13))),  # 24 targets on two hosts: neither lateral nor, at 12 ports each, vertical
        (8, [22, 80, 443]),  # 24 targets: one short of min_targets
    ],
)
def test_lateral_scan_near_misses(hosts, ports):
    assert PortScanDetector().detect(window(flow_rows=lateral(300.0, hosts, ports))) == []


def test_lateral_scan_of_open_services_is_a_monitor_not_a_scan():
    rows = [
        flow(300.0 + 0.05 * i, SCANNER, f"10.0.1.{h}", port, conn_state="RSTO", history="ShR", resp_pkts=1)
        for i, (h, port) in enumerate((h, p) for h in range(1, 10) for p in (22, 80, 443, 9100, 161))
    ]
    assert PortScanDetector().detect(window(flow_rows=rows)) == []


def test_a_vertical_scan_of_three_hosts_raises_no_lateral_alert_beside_it():
    rows = [
        flow(300.0 + 2 * h + 0.05 * p, SCANNER, f"10.0.2.{h}", p, conn_state="REJ", history="Sr", resp_pkts=1)
        for h in (1, 2, 3)
        for p in range(1, 31)
    ]
    alerts = PortScanDetector().detect(window(flow_rows=rows))
    assert sorted(a.victims[0] for a in alerts) == ["10.0.2.1", "10.0.2.2", "10.0.2.3"]


def test_lateral_scan_spans_the_scan_not_the_scanners_earlier_one_port_connections():
    earlier = [  # minutes before: payload-less connections to one port of many hosts (a browser's), refused
        flow(100.0 + 10 * h, SCANNER, f"10.0.3.{h}", 443, conn_state="REJ", history="Sr", resp_pkts=1)
        for h in range(1, 8)
    ]
    scan = lateral(300.0, 9, [22, 80, 445, 3389, 5900])
    alerts = PortScanDetector().detect(window(flow_rows=earlier + scan))
    assert [summary(a) for a in alerts] == [("port_scan", SCANNER, ["many"], 300.0, scan[-1]["ts"])]
    assert alerts[0].evidence["targets"] == 45 and alerts[0].evidence["probes"] == 45
