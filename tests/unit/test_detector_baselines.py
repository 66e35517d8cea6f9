"""Baseline figures the detectors learn while the model trains (partial_fit, one window at a time), kept with
the model and quoted in later runs' alerts."""

from __future__ import annotations

import pytest
from builders import SCANNER, TARGET, fitted_model, probes, window

from traffic_analyzer.detection.engine import Detection
from traffic_analyzer.detection.portscan import PortScanDetector
from traffic_analyzer.detection.sweep import HostSweepDetector

pytestmark = pytest.mark.unit


def _baseline() -> list:
    return [window(flow_rows=probes(100.0 * k, range(1, 2 + k))) for k in range(1, 4)]  # 2, 3, 4 ports


def test_fit_is_partial_fit_window_by_window_and_starts_afresh():
    streamed = PortScanDetector()
    for w in _baseline():
        streamed.partial_fit(w)
    assert streamed.baseline_figures() == {"baseline_max_ports_": 4}
    fitted = PortScanDetector().fit(iter(_baseline()))  # one pass: a generator is enough
    assert fitted.baseline_figures() == streamed.baseline_figures()
    assert fitted.fit(_baseline()[:1]).baseline_figures() == {"baseline_max_ports_": 2}  # a refit forgets
    assert PortScanDetector().baseline_figures() == {} and HostSweepDetector().fit([]).baseline_figures() == {}


def test_a_run_with_the_model_quotes_what_the_baseline_showed():
    learned = PortScanDetector().fit(_baseline()).baseline_figures()
    detection = Detection([PortScanDetector()], fitted_model(detector_baselines_={"port_scan": learned}))
    (alert,) = [a for a in detection.detect(window(flow_rows=probes(900.0, range(1, 40)))) if a.kind == "port_scan"]
    assert (alert.attacker, alert.victims) == (SCANNER, [TARGET])
    assert "the busiest baseline host touched 4 ports of one target" in alert.explanation
    detection.detectors = [PortScanDetector()]  # a reload's new detectors get the figures too
    assert detection.detectors[0].baseline_figures() == learned
    without = Detection([PortScanDetector()], fitted_model(detector_baselines_={}))
    assert without.detectors[0].baseline_figures() == {}
