"""A model saved before a host feature was added still loads, scores and judges the counts it knows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from traffic_analyzer.detection.anomaly.detector import anomaly_alerts
from traffic_analyzer.detection.anomaly.iforest import HostAnomalyModel
from traffic_analyzer.detection.anomaly.persist import load_model, save_model
from traffic_analyzer.errors import AnalyzerError
from traffic_analyzer.features.host_windows import HOST_FEATURES
from traffic_analyzer.records.flows import empty_flows

pytestmark = pytest.mark.unit

NEWER = "max_dns_label_len"  # a count this version computes that older models never saw


def _saved(tmp_path, features: list[str]) -> str:
    rng = np.random.default_rng(3)
    baseline = pd.DataFrame(rng.integers(1, 20, size=(80, len(features))), columns=features)
    path = tmp_path / "model.joblib"
    save_model(HostAnomalyModel(n_estimators=10).fit(baseline, seconds=600.0), path, "old.pcap")
    return str(path)


def test_a_model_without_a_newer_feature_scores_and_judges_what_it_knows(tmp_path):
    older = [f for f in HOST_FEATURES if f != NEWER]
    model, meta = load_model(_saved(tmp_path, older), HOST_FEATURES)
    assert NEWER not in meta["features"]
    windows = pd.DataFrame([dict.fromkeys(HOST_FEATURES, 5.0)] * 2, index=["labels", "ports"])
    windows.loc["labels", NEWER] = 1000.0  # unknown to the model: not judged
    windows.loc["ports", "distinct_dst_ports"] = 1000.0  # known: far past its baseline
    assert np.isfinite(model.decision_function(windows)).all()
    alerts = anomaly_alerts(model, windows, empty_flows(), 100.0, 105.0, np.array([0.5, 0.5]))
    assert [a.attacker for a in alerts] == ["ports"]


def test_a_model_needing_a_feature_this_version_does_not_compute_is_refused(tmp_path):
    path = _saved(tmp_path, [*HOST_FEATURES, "tomorrows_feature"])
    with pytest.raises(AnalyzerError, match="trained on other features; train again with --train"):
        load_model(path, HOST_FEATURES)
