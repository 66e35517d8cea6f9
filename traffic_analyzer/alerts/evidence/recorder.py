"""Cutting the alerts' pcaps: after a --read in one pass over the input file, live out of the ring buffer.

Each alert's evidence names its pcap (``evidence["evidence_pcap"]``) from the moment the alert is
fed, so the store, the summary and the alert channels carry the path; the file is there when
the run ends (live: within ``refresh_s`` of the alert, and final at the end).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...capture.fast_pcap import UnsupportedLinkTypeError
from ...capture.pcap_cut import FrameCutter, Selection, first_frame_ns
from ...capture.pcap_extract import extract_packets
from ...capture.ring_buffer import RingBuffer
from ...capture.tshark import default_interface
from ...errors import AnalyzerError, CaptureError
from ...privileges import Account
from ...records.alert import Alert
from .selection import EVIDENCE_KEY, display_filter, frame_selection

REFRESH_S = 10.0  # live: a growing alert's pcap is cut again at most this often
EARLIEST_NS, LATEST_NS = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class _Job:
    alert_id: str
    selection: Selection
    display_filter: str


class EvidenceRecorder:
    """Cuts the pcaps of a run's alerts out of ``sources()`` (capture files, oldest first), in-process.

    Without a ring (a --read run) nothing is cut until :meth:`finish`, which cuts every alert's
    final pcap in one pass over the input file. With the live ring, a background thread cuts
    from the ring's files, so analysis never waits: a new alert at once, a growing one at most
    every ``refresh_s``; the frames of an earlier cut that the ring has since dropped are kept.
    :meth:`finish` stops the ring (dumpcap flushes its newest packets) and cuts every alert once
    more. Frames of a link type the fast decoders cannot read are cut by tshark instead
    (:func:`~traffic_analyzer.capture.pcap_extract.extract_packets`, one pass per alert), for as
    long as that takes.

    Parameters
    ----------
    folder : Path
        Where the pcaps go (DATA_DIR/evidence).
    run_id : str
        The run, for the alert ids.
    sources : callable
        Returns the capture files to cut from at that moment (the ring's files change).
    max_packets, max_bytes : int
        Caps of one pcap; the first packets are kept.
    ring : RingBuffer, optional
        The live ring buffer, stopped (and so flushed) before the last cut.
    """

    def __init__(
        self,
        folder: Path,
        run_id: str,
        sources: Callable[[], list[Path]],
        max_packets: int,
        max_bytes: int,
        logger: logging.Logger,
        ring: RingBuffer | None = None,
        refresh_s: float = REFRESH_S,
    ) -> None:
        self.folder = Path(folder)
        self.run_id = run_id
        self.sources = sources
        self.max_packets = max_packets
        self.max_bytes = max_bytes
        self.logger = logger
        self.ring = ring
        self.refresh_s = refresh_s
        self._lock = threading.Condition()
        self._jobs: dict[str, _Job] = {}  # alert id -> its latest selection
        self._cut: dict[str, _Job] = {}  # alert id -> the selection its pcap was last cut for (live)
        self._spans: dict[Path, tuple[int, int]] = {}  # ring files that no longer grow -> their time span (ns)
        self._last_pass = -math.inf
        self._closed = False
        self._tshark_said = False
        self._thread: threading.Thread | None = None
        if ring is not None:
            self._thread = threading.Thread(target=self._work, name="alert-evidence", daemon=True)
            self._thread.start()

    # -- the analysis thread ------------------------------------------------------------------------
    def feed(self, alerts: list[Alert]) -> None:
        """Name each alert's pcap in its evidence and note its latest span; never waits."""
        with self._lock:
            for alert in alerts:
                alert_id = alert.alert_id(self.run_id)
                out = self.folder / f"{alert_id}.pcap"
                alert.evidence[EVIDENCE_KEY] = str(out)
                self._jobs[alert_id] = _Job(alert_id, frame_selection(alert, out), display_filter(alert))
            self._lock.notify_all()

    def finish(self, alerts: list[Alert]) -> None:
        """Cut every alert's final pcap; waits for it, however long that takes."""
        began = time.monotonic()
        if self.ring is not None:
            self.ring.stop()
        self.feed(alerts)
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join()  # a pass in progress ends; the final one below covers everything
        jobs = list(self._jobs.values())
        kept = self._cut_jobs(jobs) if jobs else {}
        self.logger.info(
            "evidence: %d alert pcap(s) with %d packets in %s; the final cut took %.1f s",
            len(kept),
            sum(kept.values()),
            self.folder,
            time.monotonic() - began,
        )

    def stop(self) -> None:
        """End without the final cut (for runs that failed)."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        if self.ring is not None:
            self.ring.stop()

    # -- the live worker ----------------------------------------------------------------------------
    def _due(self) -> list[_Job] | None:
        """The jobs of the next live pass, waiting until one is due; None once closed."""
        with self._lock:
            while not self._closed:
                due = [job for alert_id, job in self._jobs.items() if self._cut.get(alert_id) != job]
                new = any(job.alert_id not in self._cut for job in due)
                wait_s = self._last_pass + self.refresh_s - time.monotonic()
                if due and (new or wait_s <= 0):
                    return due
                self._lock.wait(timeout=wait_s if due else None)
            return None

    def _work(self) -> None:
        while (due := self._due()) is not None:
            self._cut_jobs(due)

    # -- cutting --------------------------------------------------------------------------------------
    def _cut_jobs(self, jobs: list[_Job]) -> dict[Path, int]:
        """Cut the pcaps of ``jobs`` in one pass over the sources; packets kept per pcap."""
        self._last_pass = time.monotonic()
        sources = self.sources()
        try:
            kept = self._cut_in_process(jobs, sources)
        except UnsupportedLinkTypeError as exc:
            if not self._tshark_said:
                self.logger.info("evidence: %s; tshark cuts the alert pcaps instead", exc)
                self._tshark_said = True
            kept = self._cut_with_tshark(jobs, sources)
        except (CaptureError, OSError) as exc:
            self.logger.warning("evidence pcaps not saved: %s", exc)
            kept = {}
        with self._lock:
            for job in jobs:
                self._cut[job.alert_id] = job
        return kept

    def _cut_in_process(self, jobs: list[_Job], sources: list[Path]) -> dict[Path, int]:
        cutter = FrameCutter(self.max_packets, self.max_bytes)
        selections = [job.selection for job in jobs]
        try:
            if self.ring is not None:
                self._keep_dropped(cutter, selections, sources)
            for i, source in enumerate(sources):
                span = self._spans.get(source)
                if span is not None and not any(s.first_ns <= span[1] and s.last_ns >= span[0] for s in selections):
                    continue  # a full ring file with none of the frames wanted
                try:
                    seen = cutter.read(source, selections)
                except FileNotFoundError:
                    continue  # a ring file rotated away
                if self.ring is not None and seen is not None and i < len(sources) - 1:
                    self._spans[source] = seen  # dumpcap has moved on to a newer file: this one is complete
        except BaseException:
            cutter.abort()
            raise
        self._spans = {path: span for path, span in self._spans.items() if path in sources}
        return cutter.close()

    def _keep_dropped(self, cutter: FrameCutter, selections: list[Selection], sources: list[Path]) -> None:
        """Start each pcap cut before with its frames older than anything the ring still holds."""
        oldest = first_frame_ns(sources[0]) if sources else None
        last = LATEST_NS if oldest is None else oldest - 1
        for selection in selections:
            if selection.out.exists():
                cutter.read(selection.out, [Selection(selection.out, EARLIEST_NS, last)])

    def _cut_with_tshark(self, jobs: list[_Job], sources: list[Path]) -> dict[Path, int]:
        kept = {}
        for job in jobs:
            out = job.selection.out
            try:
                kept[out] = extract_packets(sources, job.display_filter, out, self.max_packets, self.max_bytes)
            except (CaptureError, OSError) as exc:
                self.logger.warning("evidence for alert %s not saved: %s", job.alert_id, exc)
        return {out: n for out, n in kept.items() if n > 0}


def evidence_recorder(
    config, data_dir: Path, run_id: str, live: bool, account: Account | None, logger: logging.Logger
) -> EvidenceRecorder | None:
    """The run's recorder: the input file for --read, a dumpcap ring for live capture; None when switched off.

    A ring buffer that cannot start costs the run its evidence pcaps, not the run: it is logged.
    """
    if not config.evidence:
        return None
    folder = Path(data_dir) / "evidence"
    folder.mkdir(parents=True, exist_ok=True)  # before privileges are dropped, so the folder is handed over
    caps = {"max_packets": int(config.evidence_max_packets), "max_bytes": int(config.evidence_max_mb * 1_000_000)}
    if not live:
        read_file = Path(config.read_file)
        return EvidenceRecorder(folder, run_id, lambda: [read_file], logger=logger, **caps)
    interface = config.interface or default_interface()
    ring = RingBuffer(Path(data_dir) / "ring", interface, config.capture_filter, config.evidence_ring_mb, account)
    try:
        ring.start()
    except AnalyzerError as exc:
        logger.warning("no evidence pcaps this run: %s", exc)
        return None
    logger.info("evidence ring buffer: %s, at most %.0f MB", ring.folder, config.evidence_ring_mb)
    return EvidenceRecorder(folder, run_id, ring.files, logger=logger, ring=ring, **caps)
