"""A host window far beyond anything the baseline showed, in a count of what it did to others, is an anomaly
whatever the model's threshold says; volumes are not judged that way (a backup is not an attack)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from builders import fitted_model, flows

from traffic_analyzer.detection.anomaly.detector import EXTREME_FACTOR, anomaly_alerts, beyond_baseline
from traffic_analyzer.features.host_windows import HOST_FEATURES
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
    features = _windows(scanner={"failed_flows": 10 * float(model.baseline_max_["failed_flows"])}, target={}, other={})
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
