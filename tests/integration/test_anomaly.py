"""The anomaly models of host windows: estimator contract, calibrated threshold, save/reload, explanations."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import read_json

from traffic_analyzer.capture.pcap_file import PcapFileSource
from traffic_analyzer.detection.anomaly.autoencoder import AutoencoderModel
from traffic_analyzer.detection.anomaly.iforest import HostAnomalyModel
from traffic_analyzer.detection.anomaly.lof import LocalOutlierModel
from traffic_analyzer.detection.anomaly.persist import load_model, save_model
from traffic_analyzer.errors import AnalyzerError
from traffic_analyzer.features.host_windows import HOST_FEATURES, INBOUND_FEATURES, host_features_of
from traffic_analyzer.pipeline import Analysis, file_windows
from traffic_analyzer.store.engine import store_url
from traffic_analyzer.store.reader import ResultReader

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ("benign-netflix-streaming.pcap", "benign-msteams-call.pcap", "benign-android-mixed.pcap")


def host_windows(path) -> pd.DataFrame:
    analysis, rows = Analysis(detectors=[]), []
    for packets in file_windows(PcapFileSource(path, progress=False).batches(), 5.0):
        rows.append(host_features_of(analysis.process(packets, live=False)[1]))
    return pd.concat(rows)


@pytest.fixture(scope="module")
def baseline(pcaps) -> pd.DataFrame:
    return pd.concat([host_windows(pcaps / name) for name in BASELINE])


MODELS = [HostAnomalyModel, AutoencoderModel, LocalOutlierModel]


@pytest.mark.parametrize("model_class", MODELS)
def test_estimator_contract(baseline, model_class):
    model = model_class(false_alarm_rate=0.02, random_state=7)
    assert model.fit(baseline) is model
    assert list(model.feature_names_in_) == [f for f in HOST_FEATURES if f not in INBOUND_FEATURES]
    again = model_class(false_alarm_rate=0.02, random_state=7).fit(baseline)
    np.testing.assert_array_equal(model.score_samples(baseline), again.score_samples(baseline))
    assert set(np.unique(model.predict(baseline))) <= {-1, 1}
    np.testing.assert_array_equal(model.predict(baseline) == -1, model.decision_function(baseline) < 0)


@pytest.mark.parametrize("model_class", MODELS)
@pytest.mark.parametrize("rate", [0.001, 0.02, 0.1])
def test_threshold_is_calibrated_on_the_baseline(baseline, rate, model_class):
    model = model_class(false_alarm_rate=rate).fit(baseline)
    flagged_share = float((model.predict(baseline) == -1).mean())
    assert flagged_share <= rate  # the false-alarm budget holds on the traffic it learned from
    # and the budget is used, not a fixed share of anything: by the baseline's own scores (LOF scores each
    # baseline window without its twin as a neighbour; predicting on the training points counts it)
    used = float((model.baseline_scores_ < model.offset_).mean())
    assert rate - 2 / len(baseline) <= used <= rate


@pytest.mark.parametrize("model_class", MODELS)
def test_too_small_baseline_is_refused(baseline, model_class):
    with pytest.raises(AnalyzerError, match="at least 20"):
        model_class().fit(baseline.iloc[:5])


@pytest.mark.parametrize("model_class", [AutoencoderModel, LocalOutlierModel])
def test_model_flags_the_scanner_and_explains_it(syn_scan, baseline, model_class):
    model = model_class(false_alarm_rate=0.02).fit(baseline)
    scan = host_windows(syn_scan.path)
    scanner = syn_scan.label["attacker"]
    flagged = set(scan.index[model.predict(scan) == -1])
    assert scanner in flagged
    names = [name for name, *_ in model.explain(scan.loc[[scanner]].iloc[0])]
    assert {"distinct_dst_ports", "failed_flows", "flows"} & set(names)


def test_train_save_reload_and_explain(pcaps, syn_scan, tmp_path):
    train = ",".join(str(pcaps / name) for name in BASELINE)
    first = read_json(tmp_path, syn_scan.path, "--train", train, "--false-alarm-rate", "0.02")
    assert first["model"]["status"] == "trained" and first["model"]["baseline_windows"] > 100
    assert (tmp_path / "data" / "model.joblib").exists()
    assert first["model"]["window_rate"] == 0.02
    # The next run has no --train: it reloads the saved model and says what it was trained on.
    second = read_json(tmp_path, syn_scan.path, "--false-alarm-rate", "0.02")
    assert second["model"]["trained_on"] == train
    assert second["model"]["threshold"] == first["model"]["threshold"]
    anomalies = [a for a in second["alerts"] if a["kind"] == "anomaly"]
    assert [a["attacker"] for a in anomalies] == [syn_scan.label["attacker"]]  # the scanner, and nobody else
    text = anomalies[0]["explanation"]
    assert "baseline" in text and ("distinct_dst_ports" in text or "failed_flows" in text)
    # The known-attack detectors learned the baseline's figures while it trained: their alerts quote them.
    most = first["model"]["detector_baselines"]["port_scan"]["baseline_max_ports_"]
    assert second["model"]["detector_baselines"] == first["model"]["detector_baselines"] and 0 < most < 25
    (scan,) = [a for a in second["alerts"] if a["kind"] == "port_scan"]
    assert f"the busiest baseline host touched {most} ports of one target" in scan["explanation"]
    # Every host window's margin is stored: the scanner's passes the threshold, nobody else's does.
    reader, attacker = ResultReader(store_url(tmp_path / "data")), syn_scan.label["attacker"]
    scanner = reader.host_windows(second["run_id"], attacker)["anomaly"]
    assert scanner.notna().all() and (scanner > 0).any()
    others = [h for h in reader.host_totals(second["run_id"])["host"] if h != attacker]
    margins = pd.concat([reader.host_windows(second["run_id"], h)["anomaly"] for h in others])
    assert margins.notna().any() and (margins.dropna() <= 0).all()
    reader.close()
    model, meta = load_model(tmp_path / "data" / "model.joblib", HOST_FEATURES)
    assert meta["features"] == list(HOST_FEATURES) and model.false_alarm_rate == 0.02
    # A budget of alerts a day moves the saved model's threshold beyond its least normal baseline window.
    daily = read_json(tmp_path, syn_scan.path, "--anomaly-alerts-per-day", "1")["model"]
    assert daily["alerts_per_day"] == 1 and daily["false_alarm_rate"] is None
    assert daily["threshold"] < first["model"]["threshold"] and daily["window_rate"] < 1 / meta["baseline_windows"]


def test_model_trained_on_other_features_is_refused(tmp_path, baseline):
    import joblib

    model = HostAnomalyModel(false_alarm_rate=0.01).fit(baseline)
    joblib.dump({"model": model, "meta": {"features": ["something_else"]}}, tmp_path / "old.joblib")
    with pytest.raises(AnalyzerError, match="other features"):
        load_model(tmp_path / "old.joblib", HOST_FEATURES)


def test_summary_reports_no_model_without_baseline(pcaps, tmp_path):
    summary = read_json(tmp_path, pcaps / "benign-tls-firefox.pcap")
    assert summary["model"] == {"status": "none"}
    assert json.dumps(summary)  # plain JSON all the way down


def test_a_saved_forest_scores_in_a_process_that_loads_no_scikit_learn(baseline, syn_scan, tmp_path):
    """The detection worker loads the saved model at every start: the deployed form scores as the fitted
    model does without importing scikit-learn or SciPy (1.5 s of CPU), also after a new budget is placed."""
    model = HostAnomalyModel(alerts_per_day=1.0).fit(baseline, seconds=600.0)
    save_model(model, tmp_path / "model.joblib", "baseline")
    scan = host_windows(syn_scan.path)
    scan.to_pickle(tmp_path / "scan.pickle")
    script = f"""
import sys, pickle, pandas as pd
from traffic_analyzer.detection.anomaly.persist import load_placed
from traffic_analyzer.features.host_windows import HOST_FEATURES
model, report = load_placed({str(tmp_path / "model.joblib")!r}, HOST_FEATURES, 1.0, None)
scan = pd.read_pickle({str(tmp_path / "scan.pickle")!r})
decision = model.decision_function(scan)
loaded = sorted(m for m in ("sklearn", "scipy") if m in sys.modules)
pickle.dump((type(model).__name__, loaded, decision, model.threat_score(decision)), sys.stdout.buffer)
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, timeout=120, check=True)
    kind, loaded, decision, threat = pickle.loads(proc.stdout)
    assert kind == "DeployedForest" and loaded == []
    np.testing.assert_array_equal(decision, model.decision_function(scan))
    np.testing.assert_array_equal(threat, model.threat_score(model.decision_function(scan)))
    deployed, _ = load_model(tmp_path / "model.joblib", HOST_FEATURES)
    deployed.set_budget(24.0)
    assert deployed.offset_ == model.set_budget(24.0).offset_  # a new budget: the same threshold


def test_training_with_the_detection_worker_learns_what_training_in_process_learns(pcaps, tmp_path, monkeypatch):
    """A baseline file big enough for a worker (a day of baseline) is trained on with the detectors there: the
    model, its learned patterns and the detectors' baseline figures are those of training in one process."""
    import traffic_analyzer.runner as runner_module
    from traffic_analyzer.runner import Runner
    from traffic_analyzer.settings import DEFAULTS, config_of

    train = ",".join(str(pcaps / name) for name in (*BASELINE, "ssh-bruteforce-hydra.pcap"))
    learned = {}
    for parallel in (False, True):
        monkeypatch.setattr(runner_module, "parallel_worthwhile", lambda path, wanted, p=parallel: p and wanted)
        config = config_of({**DEFAULTS, "data_dir": str(tmp_path / str(parallel)), "false_alarm_rate": 0.02})
        runner = Runner(config)
        spawned = []
        monkeypatch.setattr(runner_module, "Analysis", _recording(runner_module.Analysis, spawned))
        runner.train(train)
        assert spawned == [parallel] * 4  # one Analysis per file, each with a worker or not
        model = runner.model
        learned[parallel] = (
            model.offset_,
            model.n_baseline_windows_,
            model.known_patterns_.describe(),
            model.detector_baselines_,
        )
    assert learned[True] == learned[False]
    assert learned[True][3]["port_scan"]["baseline_max_ports_"] > 0


def _recording(analysis_class, spawned: list):
    """Analysis, noting whether each one was made with a detection worker."""

    def make(*args, **kwargs):
        spawned.append(bool(kwargs.get("parallel")))
        return analysis_class(*args, **kwargs)

    return make
