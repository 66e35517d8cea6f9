"""The host-window counts the anomaly model learns: what a host did, and the one count of what was done to it."""

from __future__ import annotations

import pytest
from builders import dns_answer, dns_query, flow, flows, icmp, packets, tcp, udp

from traffic_analyzer.features.host_windows import host_window_features

pytestmark = pytest.mark.unit

GUESSER, SERVER, CLIENT, RESOLVER = "10.0.0.66", "10.0.0.22", "10.0.0.7", "10.0.0.53"


def test_the_most_connections_to_one_service_counts_tcp_and_not_each_dns_lookup():
    sent = [tcp(100.0 + i, GUESSER, SERVER, 22) for i in range(12)] + [udp(100.0, CLIENT, RESOLVER, 53)]
    done = dict(conn_state="SF", history="ShADadFf")
    conns = [flow(100.0 + i, GUESSER, SERVER, 22, orig_p=40000 + i, **done) for i in range(12)]
    conns += [flow(100.0 + i, GUESSER, SERVER, 80, orig_p=50000 + i, **done) for i in range(3)]
    lookups = [flow(100.0 + i, CLIENT, RESOLVER, 53, orig_p=30000 + i, proto="udp", conn_state="SF") for i in range(30)]
    features = host_window_features(packets(sent), flows(conns + lookups))
    assert features.loc[GUESSER, "max_conns_one_service"] == 12  # port 22, not 22 and 80 together
    assert features.loc[CLIENT, "max_conns_one_service"] == 0  # 30 UDP lookups: flows, not connections
    assert features.loc[CLIENT, "flows"] == 30


def test_failed_sources_in_counts_the_distinct_sources_of_half_open_connections_to_a_host():
    sources = [f"198.18.0.{i}" for i in range(1, 41)]
    sent = [tcp(100.0, s, SERVER, 80) for s in sources] + [tcp(100.1, SERVER, s, 40000) for s in sources]
    half_open = [flow(100.0, s, SERVER, 80, conn_state="S1", history="Sh", resp_pkts=1) for s in sources]
    scan = [flow(100.0 + 0.01 * p, GUESSER, SERVER, p, conn_state="REJ", history="Sr") for p in range(1, 101)]
    sent += [tcp(100.0, GUESSER, SERVER, 1)]
    features = host_window_features(packets(sent), flows(half_open + scan))
    assert features.loc[SERVER, "failed_sources_in"] == 41  # 40 flood sources and the one scanner
    assert features.loc[GUESSER, "failed_sources_in"] == 0


def test_icmp_errors_and_echo_replies_are_answers_not_requests():
    sent = [icmp(100.0, SERVER, GUESSER, 3) for _ in range(50)] + [icmp(100.0, SERVER, GUESSER, 0)]
    sent += [icmp(100.0, GUESSER, f"10.0.1.{i}", 8) for i in range(1, 21)]
    features = host_window_features(packets(sent), flows([]))
    assert features.loc[SERVER, "icmp_requests_out"] == 0  # port unreachables and a reply
    assert features.loc[GUESSER, "icmp_requests_out"] == 20


def test_the_longest_label_of_the_names_a_host_asked_for_answers_not_counted():
    chunk = "4a6f686e20446f6520736563726574732074686520706c616e"  # 50 hex characters of data
    sent = [
        dns_query(100.0, CLIENT, RESOLVER, "www.example.com"),
        dns_query(100.5, CLIENT, RESOLVER, f"{chunk}.update-cdn-check.org"),
        dns_query(101.0, GUESSER, RESOLVER, "r3---sn-4g5edns7.googlevideo.com"),
        dns_answer(100.6, RESOLVER, CLIENT, f"{chunk}.update-cdn-check.org"),
    ]
    features = host_window_features(packets(sent), flows([]))
    assert features.loc[CLIENT, "max_dns_label_len"] == 50
    assert features.loc[CLIENT, "mean_dns_name_len"] == pytest.approx((15 + 71) / 2)  # unchanged by the new count
    assert features.loc[GUESSER, "max_dns_label_len"] == 16  # r3---sn-4g5edns7
    assert features.loc[RESOLVER, "max_dns_label_len"] == 0  # it answered, it asked nothing
