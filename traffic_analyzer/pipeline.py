"""One analysis window at a time: packets -> flows -> host features -> detectors -> a WindowResult."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import psutil

from .detection.alert_book import AlertBook
from .detection.base import Detector
from .detection.catalogue import build_detectors
from .detection.engine import Detection
from .detection.intel import IndicatorSet
from .detection.intel_match import IntelMatchDetector
from .distinct import count_by
from .errors import TruncatedCaptureError
from .features.app_events import app_events
from .features.flows import FlowTracker
from .features.host_windows import host_traffic
from .features.services import http_named
from .records.alert import Alert
from .records.packets import empty_packets
from .records.window import WindowData, WindowResult, dns_counts

if TYPE_CHECKING:
    from .detection.anomaly.base import BaselineModel
    from .detection.remote import RemoteDetection


def file_windows(batches: Iterator[pd.DataFrame], window_s: float) -> Iterator[pd.DataFrame]:
    """Regroup a file's chunks into windows of ``window_s`` seconds of packet time.

    A window's pieces are joined once, when it is complete: a busy window spans dozens of chunks.
    """
    pieces: list[pd.DataFrame] = []  # the open (latest) window's packets, oldest first
    open_id: float | None = None
    try:
        for batch in batches:
            if batch.empty:
                continue
            window_id = np.floor(batch["ts"].to_numpy() / window_s)
            ids = np.unique(window_id)
            ready: dict[float, list[pd.DataFrame]] = {} if open_id is None else {open_id: pieces}
            for wid in ids:
                ready.setdefault(wid, []).append(batch if len(ids) == 1 else batch[window_id == wid])
            open_id = max(ready)
            for wid in sorted(ready)[:-1]:  # every window before the latest is complete (late packets too)
                yield _joined(ready[wid])
            pieces = ready[open_id]
    except TruncatedCaptureError:
        if pieces:  # the packets before the damage are good: analyse them, then report
            yield _joined(pieces)
        raise
    if pieces:
        yield _joined(pieces)


def _joined(pieces: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(pieces, ignore_index=True) if len(pieces) > 1 else pieces[0].reset_index(drop=True)


# A detection worker costs about a second of start-up (its imports) on the other core: worth it from
# about this size of file on, where detection takes longer than that.
PARALLEL_MIN_BYTES = 8 * 2**20
# Windows metered but not yet detected hold their packets in both processes: bound them (memory), not
# only their number.
MAX_IN_FLIGHT_ROWS = 100_000


def parallel_worthwhile(path: str | os.PathLike, wanted: bool = True) -> bool:
    """Whether this file is analysed with the detectors in a second process (not a pipe: its size is unknown)."""
    try:
        size = os.stat(path).st_size
    except OSError:
        return False
    return wanted and (os.cpu_count() or 1) > 1 and size >= PARALLEL_MIN_BYTES


def start_worker(detectors: list[Detector] | None = None, model: BaselineModel | None = None) -> RemoteDetection:
    """A detection worker process (:mod:`.detection.remote`), started now; it takes about a second to import."""
    from .detection.remote import RemoteDetection  # multiprocessing only for runs that use it

    return RemoteDetection(detectors or [], model)


class Analysis:
    """Stateful analysis of consecutive windows (flows and detectors carry over between them).

    ``parallel`` runs the detectors in a second process (:mod:`.detection.remote`); :meth:`results`
    then overlaps each window's detection with the metering of the next.
    """

    def __init__(
        self,
        detectors: list[Detector],
        model: BaselineModel | None = None,
        parallel: bool = False,
        worker: RemoteDetection | None = None,
    ) -> None:
        if worker is not None:  # started earlier (start_worker), so that its imports overlap the caller's set-up
            worker.detectors, worker.model = detectors, model
            self.detection: Detection | RemoteDetection = worker
        elif parallel:
            self.detection = start_worker(detectors, model)
        else:
            self.detection = Detection(detectors, model)
        self.flows = FlowTracker()
        self.packets = 0
        self.bytes = 0
        self.flows_finished = 0  # each flow finishes once (at the latest in finish()): a count, not a set of uids
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self._process = psutil.Process()
        self._process.cpu_percent()

    def process(self, packets: pd.DataFrame, live: bool) -> tuple[WindowResult, WindowData]:
        """Analyse one window of packets."""
        result, window = self._meter(packets, live)
        self.detection.submit(window)
        return self._detected(result, window)

    def results(self, windows: Iterable[pd.DataFrame], live: bool) -> Iterator[tuple[WindowResult, WindowData]]:
        """:meth:`process` for each window, in order; with a remote detection, the next windows are metered
        while window i is detected (up to ``lag`` windows and MAX_IN_FLIGHT_ROWS packets ahead, so that the
        worker's start-up and its slow windows overlap the reading). A damaged file's last good window is
        still given before its error."""
        pending: list[tuple[WindowResult, WindowData]] = []

        def complete() -> tuple[WindowResult, WindowData]:
            return self._detected(*pending.pop(0))

        def in_flight() -> int:
            return sum(len(window.packets) for _, window in pending)

        try:
            for packets in windows:
                pending.append(self._meter(packets, live))
                self.detection.submit(pending[-1][1])
                while len(pending) > self.detection.lag or (len(pending) > 1 and in_flight() > MAX_IN_FLIGHT_ROWS):
                    yield complete()
        except TruncatedCaptureError:
            while pending:
                yield complete()
            raise
        while pending:
            yield complete()

    def _meter(self, packets: pd.DataFrame, live: bool) -> tuple[WindowResult, WindowData]:
        """Flows, host features and the store's tables of one window: everything but its alerts."""
        start = float(packets["ts"].min()) if len(packets) else time.time()
        end = float(packets["ts"].max()) if len(packets) else start
        now = time.time() if live else end
        update = self.flows.update(packets, now=now if len(packets) or live else None)
        touched = (
            pd.concat([update.finished, update.active], ignore_index=True) if len(update.finished) else update.active
        )
        window = WindowData(start=start, end=end, packets=packets, flows=touched)  # host features: where needed
        self.flows_finished += len(update.finished)
        self._count(packets)
        result = self._result(window, touched, [])
        result.flows_ended = len(update.finished)  # touched lists them first
        result.app = app_events(packets, touched, update.packet_uids, update.from_orig)
        return result, window

    def _detected(self, result: WindowResult, window: WindowData) -> tuple[WindowResult, WindowData]:
        """A metered window with what detection found in it: its alerts, and its hosts' anomaly margins."""
        findings = self.detection.collect()
        result.alerts = findings.alerts
        if findings.anomaly is None:
            return result, window
        result.hosts = _with_anomaly(result.hosts, findings.anomaly)
        return result, replace(window, anomaly=findings.anomaly)

    def finish(self) -> WindowResult:
        """End every open flow: the last window of a file or a capture."""
        finished = self.flows.flush()
        self.flows_finished += len(finished)
        end = self.last_ts or time.time()
        window = WindowData(start=end, end=end, packets=empty_packets(), flows=finished)
        result = self._result(window, finished, [])
        result.flows_ended = len(finished)
        return result

    def close(self) -> None:
        """End the detection worker, if there is one."""
        self.detection.close()

    @property
    def detectors(self) -> list[Detector]:
        """The known-attack detectors (swapped on reload)."""
        return self.detection.detectors

    @detectors.setter
    def detectors(self, detectors: list[Detector]) -> None:
        self.detection.detectors = detectors

    @property
    def model(self) -> BaselineModel | None:
        """The fitted anomaly model, run as the last detector; None until there is one."""
        return self.detection.model

    @model.setter
    def model(self, model: BaselineModel | None) -> None:
        self.detection.model = model

    @property
    def book(self) -> AlertBook:
        """Every alert of the run, by key, in its latest version."""
        return self.detection.book

    @property
    def flow_count(self) -> int:
        """Flows seen so far: the finished ones and those still open."""
        return self.flows_finished + self.flows.open_flows

    def _count(self, packets: pd.DataFrame) -> None:
        self.packets += len(packets)
        self.bytes += int(packets["length"].sum())
        if len(packets):
            lo, hi = float(packets["ts"].min()), float(packets["ts"].max())
            self.first_ts = lo if self.first_ts is None else min(self.first_ts, lo)
            self.last_ts = hi if self.last_ts is None else max(self.last_ts, hi)

    def _result(self, window: WindowData, flows: pd.DataFrame, alerts: list[Alert]) -> WindowResult:
        p = window.packets
        length = {"bytes": p["length"].to_numpy(dtype=np.float64)}  # sums stay exact in float64 below 2**53
        traffic = count_by({"second": np.floor(p["ts"]).astype("int64")}, "packets", length)
        named = http_named(p["protocol"].fillna(p["transport"]), p["transport"] == "tcp")
        protocols = count_by({"protocol": named}, "packets", length)
        return WindowResult(
            window_start=window.start,
            window_end=window.end,
            traffic=traffic,
            protocols=protocols,
            hosts=_with_anomaly(host_traffic(p), window.anomaly),
            flows=flows,
            alerts=alerts,
            dns=dns_counts(p),
        )

    def health(self, stats, status: str, live: bool) -> dict:
        """A capture-health sample for the dashboard."""
        lag = round(max(0.0, time.time() - self.last_ts), 3) if (live and self.last_ts) else None
        return {
            "at": time.time(),
            "packets": stats.packets,
            "bytes": stats.bytes,
            "dropped": stats.dropped,
            "sampled_out": stats.sampled_out,
            "lag_s": lag,
            "open_flows": self.flows.open_flows,
            "cpu_percent": self._process.cpu_percent(),
            "rss_mb": round(self._process.memory_info().rss / 2**20, 1),
            "status": status,
        }


def _with_anomaly(hosts: pd.DataFrame, anomaly: pd.Series | None) -> pd.DataFrame:
    """The store's per-host rows with each host's anomaly margin (NaN where the model did not score it)."""
    hosts["anomaly"] = hosts["host"].map(anomaly).astype("float64") if anomaly is not None else np.nan
    return hosts


def default_detectors(
    scan_min_ports: int,
    scan_window_s: float,
    thresholds: dict[str, dict[str, Any]] | None = None,
    names: list[str] | None = None,
    intel: IndicatorSet | None = None,
) -> list[Detector]:
    """The known-attack detectors with their documented default thresholds, except where the user set them.

    ``thresholds`` ({detector: {threshold: value}}, the ``detector_thresholds`` setting) wins over
    ``scan_min_ports``/``scan_window_s``, which only set the port-scan detector's defaults. ``names`` (the
    ``detectors`` setting) keeps only those detectors; None keeps all. ``intel`` holds the indicators of the
    ``intel_files`` setting, for the intel_match detector (none: it finds nothing).
    """
    chosen = {"port_scan": {"min_ports": scan_min_ports, "window_s": scan_window_s}}
    for detector, values in (thresholds or {}).items():
        chosen[detector] = {**chosen.get(detector, {}), **values}
    built = build_detectors(chosen)
    for detector in built:
        if isinstance(detector, IntelMatchDetector) and intel is not None:
            detector.indicators = intel
    return built if names is None else [d for d in built if d.name in names]
