"""A host window far beyond anything the baseline showed, in a count of what it did to others, is an anomaly
whatever the model's threshold says; volumes are not judged that way (a backup is not an attack)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from builders import fitted_model, flows

from traffic_analyzer.detection.anomaly.detector import (
    EXTREME_FACTOR,
    EXTREME_FLOOR,
    anomaly_alerts,
    beyond_baseline,
)
from traffic_analyzer.features.host_windows import HOST_FEATURES, silent_sources_in
from traffic_analyzer.records.flows import empty_flows

pytestmark = pytest.mark.unit


def _windows(**changed: dict[str, float]) -> pd.DataFrame:
    """Host windows at the baseline's median, each host with its changed counts."""
    model = fitted_model()
    rows = {host: {**model.baseline_median_.to_dict(), **values} for host, values in changed.items()}
    return pd.DataFrame.from_dict(rows, orient="index")[list(HOST_FEATURES)]


def test_beyond_baseline_names_the_count_and_how_far_past_the_limit():
    model = fitted_model()
    most = float(model.baseline_max_["distinct_dst_hosts"])
    features = _windows(sweeper={"distinct_dst_hosts": 8 * most}, mover={"bytes_out": 1e12}, quiet={})
    beyond, worst = beyond_baseline(model, features)
    assert worst[0] == "distinct_dst_hosts" and beyond[0] == pytest.approx(8 / EXTREME_FACTOR)
    assert beyond[1] <= 1.0 and beyond[2] <= 1.0  # a volume, and nothing: not past any limit


def test_a_window_past_the_limit_is_an_explained_anomaly_alert():
    model = fitted_model()
    most = float(model.baseline_max_["failed_flows"])
    features = _windows(prober={"failed_flows": 10 * most}, quiet={})
    decision = pd.Series([0.5, 0.5], index=features.index).to_numpy()  # the model itself flags nobody
    alerts = anomaly_alerts(model, features, empty_flows(), 100.0, 105.0, decision)
    assert [a.attacker for a in alerts] == ["prober"]
    assert alerts[0].explanation.startswith(f"prober behaved unlike the baseline of {model.n_baseline_windows_}")
    median = float(model.baseline_median_["failed_flows"])
    shown = f"failed_flows {10 * most:g} is 10 times the most any baseline window showed ({most:g}; median {median:g})"
    assert shown in alerts[0].explanation
    assert alerts[0].explanation.count("failed_flows") == 1  # said once, not again among the standouts
    assert alerts[0].evidence["beyond_baseline"] == 5.0 and 40.0 < alerts[0].score < 90.0


def test_a_resolver_relaying_a_flagged_clients_long_names_is_named_in_its_alert_not_raised():
    model = fitted_model()
    long_names = 5 * float(model.baseline_max_["mean_dns_name_len"])
    features = _windows(tunnel={"mean_dns_name_len": long_names}, resolver={"mean_dns_name_len": long_names})
    lookups = flows(
        [
            {"ts": 101.0, "orig_h": "tunnel", "resp_h": "resolver", "resp_p": 53, "proto": "udp"},
            {"ts": 101.1, "orig_h": "resolver", "resp_h": "198.51.100.53", "resp_p": 53, "proto": "udp"},
        ]
    )
    alerts = anomaly_alerts(model, features, lookups, 100.0, 105.0, np.array([0.5, 0.5]))
    assert [a.attacker for a in alerts] == ["tunnel"]
    assert "its lookups were relayed upstream by resolver" in alerts[0].explanation


def test_labels_far_longer_than_any_the_baseline_asked_for_name_the_client_and_its_relay():
    model = fitted_model()
    longest = 3 * max(float(model.baseline_max_["max_dns_label_len"]), EXTREME_FLOOR)
    features = _windows(client={"max_dns_label_len": longest}, resolver={"max_dns_label_len": longest}, quiet={})
    lookups = flows(
        [
            {"ts": 101.0, "orig_h": "client", "resp_h": "resolver", "resp_p": 53, "proto": "udp"},
            {"ts": 101.1, "orig_h": "resolver", "resp_h": "198.51.100.53", "resp_p": 53, "proto": "udp"},
        ]
    )
    alerts = anomaly_alerts(model, features, lookups, 100.0, 105.0, np.array([0.5, 0.5, 0.5]))
    assert [a.attacker for a in alerts] == ["client"]
    assert alerts[0].explanation.count("max_dns_label_len") == 1
    assert "its lookups were relayed upstream by resolver" in alerts[0].explanation


def test_a_resolver_is_not_raised_for_relaying_in_a_window_where_its_client_looks_ordinary():
    model = fitted_model()
    features = _windows(resolver={"mean_dns_name_len": 5 * float(model.baseline_max_["mean_dns_name_len"])}, tunnel={})
    lookups = flows(
        [
            {"ts": 101.0, "orig_h": "tunnel", "resp_h": "resolver", "resp_p": 53, "proto": "udp"},
            {"ts": 101.1, "orig_h": "resolver", "resp_h": "198.51.100.53", "resp_p": 53, "proto": "udp"},
        ]
    )
    assert anomaly_alerts(model, features, lookups, 100.0, 105.0, np.array([0.5, 0.5])) == []
    alone = anomaly_alerts(model, features, lookups.iloc[1:], 100.0, 105.0, np.array([0.5, 0.5]))
    assert [a.attacker for a in alone] == ["resolver"]  # answering nobody, it sent the long names itself


def test_half_open_connections_from_many_sources_name_the_host_as_the_victim_of_a_flood():
    model = fitted_model()
    sources = 10 * float(model.baseline_max_["failed_sources_in"])
    features = _windows(server={"failed_sources_in": sources}, quiet={})
    alerts = anomaly_alerts(model, features, empty_flows(), 100.0, 105.0, np.array([0.5, 0.5]))
    assert [(a.attacker, a.victims) for a in alerts] == [("*", ["server"])]
    assert alerts[0].explanation.startswith(f"server was sent connections that got nowhere by {sources:g} distinct")


def test_a_host_that_mostly_answered_a_flagged_scanner_is_its_victim_not_an_anomaly():
    model = fitted_model()
    unseen = {"distinct_dst_ports": float(model.baseline_max_["distinct_dst_ports"]) + 1}  # the model may say so
    features = _windows(
        scanner={"failed_flows": 10 * float(model.baseline_max_["failed_flows"])}, target=unseen, other=unseen
    )
    features.loc["target", "packets_out"] = features.loc["other", "packets_out"] = 100.0
    answers = flows(
        [
            {"ts": 101.0, "orig_h": "target", "resp_h": "scanner", "resp_p": 3, "proto": "icmp", "orig_pkts": 90},
            {"ts": 101.0, "orig_h": "other", "resp_h": "scanner", "resp_p": 3, "proto": "icmp", "orig_pkts": 10},
        ]
    )
    decision = np.array([0.5, -0.1, -0.1])  # the model flags the target and the other host as well
    alerts = anomaly_alerts(model, features, answers, 100.0, 105.0, decision)
    assert sorted(a.attacker for a in alerts) == ["other", "scanner"]  # 90 of the target's 100 packets answered


def test_the_models_verdict_is_raised_only_for_a_count_of_what_the_host_did_past_the_baseline():
    """A window the model flags whose counts the baseline has all seen, or that is busier in volume alone, is
    no alert; one count of what the host did past the baseline's most makes it one."""
    model = fitted_model()
    most = model.baseline_max_
    features = _windows(
        mix={"distinct_dst_hosts": float(most["distinct_dst_hosts"]), "flows": float(most["flows"])},
        busier={"packets_in": 10 * float(most["packets_in"]), "bytes_out": 10 * float(most["bytes_out"])},
        prober={"distinct_dst_ports": float(most["distinct_dst_ports"]) + 1},
    )
    decision = np.array([-0.1, -0.1, -0.1])  # the model flags all three
    alerts = anomaly_alerts(model, features, empty_flows(), 100.0, 105.0, decision)
    assert [a.attacker for a in alerts] == ["prober"]
    assert "distinct_dst_ports" in alerts[0].explanation


def _unanswered(victim: str, count: int, flipped: bool = False) -> pd.DataFrame:
    """``count`` distinct sources each sending ``victim`` one packet it never answers; ``flipped``: the tracker
    made the victim the originator (a lone SYN-ACK), with no packet of its own."""
    rows = []
    for k in range(count):
        source = f"198.18.{k // 250}.{k % 250 + 1}"
        if flipped:
            rows.append({"ts": 101.0, "orig_h": victim, "resp_h": source, "resp_p": 80, "orig_pkts": 0, "resp_pkts": 1})
        else:
            rows.append({"ts": 101.0, "orig_h": source, "resp_h": victim, "resp_p": 25565})
    return flows(rows)


@pytest.mark.parametrize("flipped", [False, True], ids=["syn-flood", "reflected-syn-acks"])
def test_a_victim_that_sends_nothing_is_named_when_many_sources_go_unanswered(flipped):
    model = fitted_model()
    limit = EXTREME_FACTOR * max(float(model.baseline_max_["failed_sources_in"]), EXTREME_FLOOR)
    features = _windows(quiet={})  # the victim sent nothing: it has no row
    many = anomaly_alerts(model, features, _unanswered("10.10.10.10", int(limit) * 4, flipped), 100.0, 105.0)
    assert [(a.attacker, a.victims) for a in many] == [("*", ["10.10.10.10"])]
    assert many[0].explanation.startswith(f"10.10.10.10 was sent traffic it never answered by {int(limit) * 4}")
    assert many[0].evidence["beyond_baseline"] == pytest.approx(int(limit) * 4 / limit, abs=0.01)
    assert anomaly_alerts(model, features, _unanswered("10.10.10.10", int(limit), flipped), 100.0, 105.0) == []


@pytest.mark.parametrize("address", ["224.0.0.251", "ff02::fb", "10.0.0.255", "255.255.255.255"])
def test_multicast_and_broadcast_addresses_never_answer_and_are_no_victims(address):
    model = fitted_model()
    assert anomaly_alerts(model, _windows(quiet={}), _unanswered(address, 500), 100.0, 105.0) == []


def test_a_victim_that_sent_something_is_judged_by_its_own_row_not_as_silent():
    model = fitted_model()
    features = _windows(quiet={}, **{"10.10.10.10": {}})  # it sent packets: its row's counts decide
    assert anomaly_alerts(model, features, _unanswered("10.10.10.10", 500), 100.0, 105.0, np.array([0.5, 0.5])) == []
    assert silent_sources_in(_unanswered("10.10.10.10", 30), pd.Index(["quiet"]), least=30).to_dict() == {
        "10.10.10.10": 30
    }


def test_a_burst_of_icmp_requests_far_beyond_the_baseline_is_an_anomaly():
    """An ICMP tunnel's echo requests (icmp-tunnel-ssh: 31 in 5 s where the public baseline's most is 2)."""
    model = fitted_model()
    limit = EXTREME_FACTOR * max(float(model.baseline_max_["icmp_requests_out"]), EXTREME_FLOOR)
    features = _windows(tunnel={"icmp_requests_out": 1.5 * limit}, quiet={})
    alerts = anomaly_alerts(model, features, empty_flows(), 100.0, 105.0, np.array([0.5, 0.5]))
    assert [a.attacker for a in alerts] == ["tunnel"] and "icmp_requests_out" in alerts[0].explanation
