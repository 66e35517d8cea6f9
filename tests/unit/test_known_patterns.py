"""Patterns learned from the site's baseline: the same beacon, download or upload is not raised again,
anything else is."""

from __future__ import annotations

import pytest
from builders import fitted_model, tcp, window

from traffic_analyzer.detection.beacon import BeaconDetector
from traffic_analyzer.detection.engine import Detection
from traffic_analyzer.detection.exfiltration import ExfiltrationDetector
from traffic_analyzer.detection.known_patterns import KnownPatterns, for_learning
from traffic_analyzer.detection.portscan import PortScanDetector
from traffic_analyzer.records.alert import Alert
from traffic_analyzer.records.packets import TCP_ACK, TCP_PSH

pytestmark = pytest.mark.unit

POLLED, C2 = "198.51.100.7", "203.0.113.66"


def _alert(kind: str, attacker: str, victims: list[str]) -> Alert:
    return Alert(kind, attacker, victims, 0.0, 1.0, 70.0, "hand-built", detector=kind)


def test_a_learned_server_covers_the_same_kind_from_any_client_and_nothing_else():
    known = KnownPatterns.learn(
        [
            _alert("c2_beacon", POLLED, ["10.0.0.5"]),
            _alert("data_exfiltration", "10.0.0.9", ["192.0.2.10"]),
            _alert("port_scan", "10.0.0.66", ["10.0.0.1"]),  # never learned: a scan is not a service
        ]
    )
    assert known.describe() == ["c2_beacon with 198.51.100.7", "data_exfiltration with 192.0.2.10"]
    assert known.covers(_alert("c2_beacon", POLLED, ["10.0.0.77"]))
    assert not known.covers(_alert("c2_beacon", C2, ["10.0.0.5"]))
    assert not known.covers(_alert("suspicious_download", POLLED, ["10.0.0.5"]))  # another kind
    assert known.covers(_alert("data_exfiltration", "10.0.0.3", ["192.0.2.10"]))
    assert not known.covers(_alert("data_exfiltration", "10.0.0.9", ["192.0.2.10", "192.0.2.99"]))
    assert not known.covers(_alert("port_scan", "10.0.0.66", ["10.0.0.1"]))
    assert not KnownPatterns().covers(_alert("c2_beacon", POLLED, ["10.0.0.5"]))


def _check_ins(server: str, client: str) -> list[dict]:
    return [tcp(1000.0 + 30 * i, client, server, 443, 50000, TCP_PSH | TCP_ACK, payload_len=200) for i in range(10)]


def test_detection_drops_what_the_models_baseline_showed_and_keeps_a_new_server():
    known = KnownPatterns.learn([_alert("c2_beacon", POLLED, ["10.0.0.5"])])
    detection = Detection([BeaconDetector()], fitted_model(known_patterns_=known))
    polled = window(_check_ins(POLLED, "10.0.0.8"))
    assert [a.kind for a in detection.detect(polled) if a.kind == "c2_beacon"] == []
    model = fitted_model(known_patterns_=known)
    fresh = Detection([BeaconDetector()], model).detect(window(_check_ins(C2, "10.0.0.8")))
    assert [(a.kind, a.attacker) for a in fresh if a.kind == "c2_beacon"] == [("c2_beacon", C2)]


def test_on_the_baseline_a_poller_seen_a_few_times_is_learned_though_it_would_not_alert():
    five = [tcp(1000.0 + 60 * i, "10.0.0.5", POLLED, 443, 50000, TCP_PSH | TCP_ACK, payload_len=200) for i in range(5)]
    assert BeaconDetector().detect(window(five)) == []  # five check-ins: too few to raise
    learning = for_learning([BeaconDetector()])[0]
    assert [a.attacker for a in learning.detect(window(five))] == [POLLED]


def test_learning_scales_the_thresholds_the_user_set_and_only_those_of_learned_kinds():
    beacon, upload, scan = for_learning(
        [BeaconDetector(min_beacons=12), ExfiltrationDetector(min_bytes=100_000_000), PortScanDetector()]
    )
    assert (beacon.min_beacons, beacon.max_jitter) == (6, pytest.approx(0.3))
    assert upload.min_bytes == 25_000_000
    assert (scan.min_ports, scan.window_s) == (25, 300.0)  # a scan is never learned: its detector looks as usual
    assert for_learning([BeaconDetector(min_beacons=4)])[0].min_beacons == 3  # never below three check-ins
