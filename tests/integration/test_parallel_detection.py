"""Detectors in a second process (detection/remote.py): the same alerts as in one process, and failures said.

The worker is a real spawned process; windows are hand-built (tests/unit/builders.py) or read from
the public captures through the real pipeline.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))  # the hand-built window makers

from builders import flow, window  # noqa: E402

from traffic_analyzer.capture.file_reader import CaptureFileSource  # noqa: E402
from traffic_analyzer.detection.base import Detector  # noqa: E402
from traffic_analyzer.detection.portscan import PortScanDetector  # noqa: E402
from traffic_analyzer.detection.remote import RemoteDetection  # noqa: E402
from traffic_analyzer.errors import AnalyzerError  # noqa: E402
from traffic_analyzer.pipeline import Analysis, default_detectors, file_windows  # noqa: E402

pytestmark = pytest.mark.process  # spawns the detection worker

SCANNER, TARGET = "10.0.0.66", "10.0.0.5"


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


def test_every_default_detector_travels_to_the_worker():
    for detector in default_detectors(25, 60.0):
        assert type(pickle.loads(pickle.dumps(detector))) is type(detector), detector.name


def test_worker_keeps_state_across_windows_and_through_a_swap():
    remote = RemoteDetection([PortScanDetector(min_ports=25)])
    try:
        remote.submit(probe_window(100.0, range(1, 15)))
        remote.submit(probe_window(105.0, range(15, 30)))  # two windows in flight: the lag the runner uses
        assert remote.collect() == []
        (alert,) = remote.collect()
        assert (alert.kind, alert.attacker, alert.victims) == ("port_scan", SCANNER, [TARGET])
        assert alert.evidence["distinct_ports"] == 29  # the probes of both windows add up in the worker
        remote.detectors = list(remote.detectors)  # a reload that changed nothing keeps the state
        remote.submit(probe_window(110.0, range(30, 35)))
        (again,) = remote.collect()
        assert again.evidence["distinct_ports"] == 34
        remote.detectors = [PortScanDetector(min_ports=25)]  # a changed detector starts afresh
        remote.submit(probe_window(115.0, range(35, 40)))
        assert remote.collect() == []
        assert list(remote.book.alerts) == [alert.key]
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
