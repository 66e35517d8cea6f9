"""Detectors in a second process (detection/remote.py): the same alerts as in one process, and failures said.

The worker is a real spawned process; windows are hand-built (tests/unit/builders.py) or read from
the public captures through the real pipeline, or a lab capture (bench/) read by the real command line.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, read_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))  # the hand-built window makers

from builders import flow, tcp, window  # noqa: E402

from traffic_analyzer.capture.file_reader import CaptureFileSource  # noqa: E402
from traffic_analyzer.detection.anomaly.iforest import HostAnomalyModel  # noqa: E402
from traffic_analyzer.detection.anomaly.persist import save_model  # noqa: E402
from traffic_analyzer.detection.base import Detector  # noqa: E402
from traffic_analyzer.detection.portscan import PortScanDetector  # noqa: E402
from traffic_analyzer.detection.remote import RemoteDetection  # noqa: E402
from traffic_analyzer.errors import AnalyzerError  # noqa: E402
from traffic_analyzer.features.host_windows import HOST_FEATURES  # noqa: E402
from traffic_analyzer.pipeline import Analysis, default_detectors, file_windows, parallel_worthwhile  # noqa: E402

pytestmark = pytest.mark.process  # spawns the detection worker

SCANNER, TARGET = "10.0.0.66", "10.0.0.5"
# The command line's main in this process, then the heavy packages this process imported, on stderr's last line.
CLI_THEN_IMPORTS = """
import sys
from network_traffic_analyzer import NetworkTrafficAnalyzer
from traffic_analyzer.cli import main
code = main(sys.argv[1:], NetworkTrafficAnalyzer)
print(sorted({name.split(".")[0] for name in sys.modules} & {"sklearn", "scipy"}), file=sys.stderr)
sys.exit(code)
"""


class Exploding(Detector):
    """A detector with a bug: its error must reach the main process as itself."""

    name = "exploding"

    def detect(self, window):
        raise ZeroDivisionError("a detector's bug")


def probe_window(first_ts: float, ports: range):
    rows = [
        flow(first_ts + 0.1 * i, SCANNER, TARGET, port, conn_state="REJ", history="Sr", resp_pkts=1)
        for i, port in enumerate(ports)
    ]
    return window(flow_rows=rows)


def traffic_window(first_ts: float):
    """Packets both ways between two hosts: host windows for the anomaly model to score."""
    rows = [tcp(first_ts + 0.1 * i, *((SCANNER, TARGET) if i % 2 else (TARGET, SCANNER)), 80) for i in range(20)]
    return window(packet_rows=rows)


def test_every_default_detector_travels_to_the_worker():
    for detector in default_detectors(25, 60.0):
        assert type(pickle.loads(pickle.dumps(detector))) is type(detector), detector.name


def test_worker_keeps_state_across_windows_and_through_a_swap():
    remote = RemoteDetection([PortScanDetector(min_ports=25)])
    try:
        remote.submit(probe_window(100.0, range(1, 15)))
        remote.submit(probe_window(105.0, range(15, 30)))  # two windows in flight: the lag the runner uses
        assert remote.collect().alerts == []
        (alert,) = remote.collect().alerts
        assert (alert.kind, alert.attacker, alert.victims) == ("port_scan", SCANNER, [TARGET])
        assert alert.evidence["distinct_ports"] == 29  # the probes of both windows add up in the worker
        remote.detectors = list(remote.detectors)  # a reload that changed nothing keeps the state
        remote.submit(probe_window(110.0, range(30, 35)))
        (again,) = remote.collect().alerts
        assert again.evidence["distinct_ports"] == 34
        remote.detectors = [PortScanDetector(min_ports=25)]  # a changed detector starts afresh
        remote.submit(probe_window(115.0, range(35, 40)))
        assert remote.collect().alerts == []
        assert list(remote.book.alerts) == [alert.key]
    finally:
        remote.close()


def test_the_worker_loads_a_saved_model_and_moves_its_threshold_for_a_new_budget(tmp_path):
    rng = np.random.default_rng(7)
    baseline = pd.DataFrame(rng.integers(1, 50, size=(60, len(HOST_FEATURES))), columns=list(HOST_FEATURES))
    saved = tmp_path / "model.joblib"
    save_model(HostAnomalyModel(n_estimators=20).fit(baseline, seconds=600.0), saved, trained_on="hand-built")
    remote = RemoteDetection([])
    try:
        remote.load_model(saved, HOST_FEATURES, 1.0, None)  # the budget it was saved with
        remote.submit(traffic_window(100.0))
        first = remote.collect()
        (loaded,) = remote.model_reports()
        assert (loaded.loaded_from, loaded.placed, loaded.meta["trained_on"]) == (str(saved), None, "hand-built")
        assert first.anomaly is not None and sorted(first.anomaly.index) == sorted([SCANNER, TARGET])
        remote.submit(traffic_window(105.0))
        remote.set_budget(1000.0, None)  # asked with a window in flight: that one keeps the threshold it met
        (moved,) = remote.model_reports(wait=True)
        assert moved.placed is not None and moved.meta["alerts_per_day"] == 1000.0
        assert moved.meta["threshold"] > loaded.meta["threshold"]
        pd.testing.assert_series_equal(remote.collect().anomaly, first.anomaly)
        remote.submit(traffic_window(110.0))
        later = remote.collect().anomaly
        assert later is not None and (later > first.anomaly).all()  # a higher threshold: every margin grows
    finally:
        remote.close()


def test_a_detector_error_is_raised_in_the_main_process():
    remote = RemoteDetection([Exploding()])
    try:
        remote.submit(probe_window(100.0, range(1, 3)))
        with pytest.raises(ZeroDivisionError, match="a detector's bug"):
            remote.collect()
    finally:
        remote.close()


def test_a_killed_worker_is_a_one_line_error_not_a_hang():
    remote = RemoteDetection([PortScanDetector()])
    try:
        remote.submit(probe_window(100.0, range(1, 3)))
        remote.collect()
        os.kill(remote._process.pid, signal.SIGKILL)
        remote._process.join(10)
        with pytest.raises(AnalyzerError, match="detection worker process was killed by signal 9"):
            remote.submit(probe_window(105.0, range(3, 5)))
    finally:
        remote.close()


@pytest.mark.parametrize("name", ["dns-tunnel-iodine.pcap", "ssh-bruteforce-sshguess.pcap", "icmp-tunnel-ssh.pcap"])
def test_parallel_run_gives_the_alerts_of_one_process(pcaps, name):
    def run(parallel: bool) -> list[tuple]:
        analysis = Analysis(default_detectors(25, 60.0), parallel=parallel)
        windows = file_windows(CaptureFileSource(pcaps / name, "fast", progress=False).batches(), 5.0)
        try:
            per_window = [
                [(a.kind, a.attacker, tuple(a.victims), a.start, a.end, a.score, a.explanation) for a in r.alerts]
                for r, _ in analysis.results(windows, live=False)
            ]
        finally:
            analysis.close()
        return per_window + [sorted(analysis.book.alerts)]

    serial = run(parallel=False)
    assert any(serial[:-1]), f"{name} raises no alert: the comparison would be empty"
    assert run(parallel=True) == serial


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A lab capture of 20 s with its ten attacks (9 MB: big enough for the worker), and a benign one to train on."""
    out = tmp_path_factory.mktemp("lab")
    made = [
        (ROOT / "bench" / "make_mixed_capture.py", "--seed", "7", "--seconds", "20", "--hosts", "10", "--out"),
        (ROOT / "bench" / "make_benign_corpus.py", "--seed", "3", "--hours", "0.1", "--hosts", "10", "--out"),
    ]
    for (script, *args), name in zip(made, ["mixed.pcap", "benign.pcap"], strict=True):
        subprocess.run([sys.executable, str(script), *args, str(out / name)], check=True, capture_output=True)
    return out / "mixed.pcap", out / "benign.pcap"


def _alerts(summary: dict) -> list[dict]:
    """The summary's alerts, their evidence pcap's name (the run's id in it) aside."""
    return [
        {**a, "evidence": {k: v for k, v in a["evidence"].items() if k != "evidence_pcap"}} for a in summary["alerts"]
    ]


def _stored(data: Path, run_id: str) -> tuple[dict, list[tuple]]:
    """The run row's model metadata and every host window's anomaly margin."""
    with sqlite3.connect(data / "analyzer.db") as db:
        (model,) = db.execute("SELECT model FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        query = "SELECT window_start, host, anomaly FROM hosts WHERE run_id = ? ORDER BY window_start, host"
        return json.loads(model), db.execute(query, (run_id,)).fetchall()


def test_a_saved_model_is_loaded_and_scored_in_the_worker_and_the_main_process_imports_no_sklearn(lab, tmp_path):
    capture, benign = lab
    assert parallel_worthwhile(capture)
    read_json(tmp_path, benign, "--train", str(benign))  # saves data/model.joblib
    budget = ("--anomaly-alerts-per-day", "200")  # not the saved one: the threshold moves where the model is
    one = read_json(tmp_path, capture, "--no-parallel-detection", *budget)
    args = ["--read", str(capture), "--no-dashboard", "--json", "--no-progress", *budget]
    args += ["--data-dir", str(tmp_path / "data"), "--log-file", str(tmp_path / "analysis.log")]
    proc = subprocess.run(
        [sys.executable, "-c", CLI_THEN_IMPORTS, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[-1] == "[]", proc.stderr  # no scikit-learn, no SciPy in the main process
    two = json.loads(proc.stdout)
    assert two["model"] == one["model"] and one["model"]["alerts_per_day"] == 200
    assert [a["kind"] for a in one["alerts"]].count("anomaly") > 0  # the model flags hosts: something to compare
    assert _alerts(two) == _alerts(one)
    model, margins = _stored(tmp_path / "data", one["run_id"])
    assert model == one["model"] and any(anomaly is not None for *_, anomaly in margins)
    assert _stored(tmp_path / "data", two["run_id"]) == (model, margins)
