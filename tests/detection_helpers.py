"""Run the real pipeline over a capture with chosen detectors; compare alerts with labels.csv."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pandas as pd

from traffic_analyzer.capture.pcap_file import PcapFileSource
from traffic_analyzer.detection.base import Detector
from traffic_analyzer.pipeline import Analysis, default_detectors, file_windows
from traffic_analyzer.records.alert import Alert
from traffic_analyzer.settings import DEFAULTS

BENIGN_GLOB = "benign-*"
WINDOW_S = 5.0  # the analyzer's default window


def analyse(path: Path, detector: Detector) -> tuple[list[Alert], Analysis]:
    """The merged alerts of one detector over a capture read through the real pipeline, and the analysis."""
    analysis = Analysis(detectors=[detector])
    for packets in file_windows(PcapFileSource(path, progress=False).batches(), WINDOW_S):
        analysis.process(packets, live=False)
    return list(analysis.book.alerts.values()), analysis


def labelled_span(row: pd.Series, analysis: Analysis) -> tuple[float, float]:
    """The label's time range; empty start/end mean the whole file."""
    start = analysis.first_ts if pd.isna(row["start_ts"]) else float(row["start_ts"])
    end = analysis.last_ts if pd.isna(row["end_ts"]) else float(row["end_ts"])
    return start, end


def alerts_of(path: Path, *detectors: Detector, window_s: float = 5.0) -> list[Alert]:
    analysis = Analysis(detectors=list(detectors))
    for packets in file_windows(PcapFileSource(path, progress=False).batches(), window_s):
        analysis.process(packets, live=False)
    return list(analysis.book.alerts.values())


@functools.cache
def default_alerts(path: Path) -> tuple[Alert, ...]:
    """Alerts of all the analyzer's detectors on a capture, computed once per test session."""
    return tuple(alerts_of(path, *default_detectors(DEFAULTS["scan_min_ports"], DEFAULTS["scan_window_s"])))


def label_rows(labels: pd.DataFrame, kind: str) -> list[pd.Series]:
    return [row for _, row in labels[labels["kind"] == kind].iterrows()]


def addresses(value) -> set[str]:
    return set() if not isinstance(value, str) else {v for v in value.split(";") if v}


def in_range(alert: Alert, label: pd.Series, slack_s: float = 5.0) -> bool:
    start = label["start_ts"] if pd.notna(label["start_ts"]) else float("-inf")
    end = label["end_ts"] if pd.notna(label["end_ts"]) else float("inf")
    return alert.end >= start - slack_s and alert.start <= end + slack_s


def open_ports(row: pd.Series) -> set[int]:
    """The open ports a scan's label notes name ("open 22/53/80 answer SYN-ACK"), public capture or stand-in."""
    found = re.search(r"\bopen ((?:\d+/)*\d+) ", row["notes"])
    assert found, row["notes"]
    return {int(p) for p in found[1].split("/")}


def spoofer(row: pd.Series) -> tuple[str, str]:
    """(MAC, gateway address it claims) from an ARP spoofing label's notes, public capture or stand-in."""
    found = re.search(r"MAC ([0-9a-f:]{17})\b.*?claiming (?:gateway )?([\d.]+)", row["notes"])
    assert found, row["notes"]
    return found[1], found[2]
