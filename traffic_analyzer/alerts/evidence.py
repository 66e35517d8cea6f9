"""Alert evidence: the packets behind an alert, saved as DATA_DIR/evidence/<alert_id>.pcap.

The packets come from the input file itself for ``--read`` runs, and from a bounded ring
buffer of recent raw packets (:class:`~traffic_analyzer.capture.ring_buffer.RingBuffer`) for
live runs. An alert's pcap holds the packets of its attacker with its victims (their IP
addresses, or the attacker's MAC for ARP alerts) from 2 s before its start to 2 s after its
end, capped in packets and bytes. Cutting is done by tshark in a background thread, so the
analysis loop never waits; an alert that keeps growing is cut again at most every
``refresh_s`` seconds, and once more when the run ends. Only the analysis thread touches
the alerts: :meth:`EvidenceRecorder.feed` records the path of a written pcap in the alert's
evidence (``evidence["evidence_pcap"]``), where the store, the summary and the alert
channels see it.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..capture.pcap_extract import extract_packets
from ..capture.ring_buffer import RingBuffer
from ..capture.tshark import default_interface
from ..errors import AnalyzerError
from ..privileges import Account
from ..records.alert import Alert

EVIDENCE_KEY = "evidence_pcap"  # the alert evidence key holding the pcap's path
SLACK_S = 2.0  # packets this long before an alert's start and after its end are evidence too
REFRESH_S = 10.0  # a growing alert's pcap is cut again at most this often
MAX_FILTER_HOSTS = 64  # victims named in one display filter; an alert with more keeps only its attacker
FINISH_TIMEOUT_S = 30.0  # how long the end of a run waits for the last pcaps
ALERT_ID = re.compile(r"^[0-9a-f]{16}$")  # Alert.alert_id: 8 bytes of blake2b, in hex
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def evidence_path(folder: Path, alert_id: str) -> Path | None:
    """Where an alert's pcap lives, or None for anything that is not an alert id (no path tricks)."""
    return Path(folder) / f"{alert_id}.pcap" if ALERT_ID.match(alert_id) else None


def _address_term(address: str) -> str | None:
    """A display-filter term matching packets to or from ``address``; None for what is not an address."""
    if _MAC.match(address.lower()):
        return f"eth.addr == {address.lower()}"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None  # "*", "many" and anything else never reach tshark
    return f"ip.addr == {ip}" if ip.version == 4 else f"ipv6.addr == {ip}"


def display_filter(alert: Alert, slack_s: float = SLACK_S) -> str:
    """The Wireshark display filter selecting an alert's packets."""
    terms = [f"frame.time_epoch >= {alert.start - slack_s:.6f}", f"frame.time_epoch <= {alert.end + slack_s:.6f}"]
    mac = str(alert.evidence.get("mac", ""))
    attacker = _address_term(mac) if _MAC.match(mac.lower()) else _address_term(alert.attacker)
    victims = [t for t in (_address_term(v) for v in alert.victims) if t is not None]
    if attacker is not None:
        terms.append(attacker)
    if mac or (attacker is not None and len(victims) > MAX_FILTER_HOSTS):
        victims = []  # an L2 alert's victims are IPs it claimed in ARP; too many victims say nothing
    if victims:
        terms.append("(" + " || ".join(victims[:MAX_FILTER_HOSTS]) + ")")
    return " && ".join(terms)


@dataclass(frozen=True)
class _Job:
    alert_id: str
    span: tuple[float, float]
    display_filter: str


class EvidenceRecorder:
    """Cuts alert pcaps from ``sources()`` (capture files, oldest first) in a background thread.

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
        self._pending: dict[str, _Job] = {}
        self._done: dict[str, tuple[float, float]] = {}  # alert id -> span its last cut covered
        self._cut_at: dict[str, float] = {}  # alert id -> monotonic time of its last cut
        self._written: dict[str, Path] = {}
        self._busy = False
        self._final = False
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="alert-evidence", daemon=True)
        self._thread.start()

    # -- the analysis thread ------------------------------------------------------------------------
    def feed(self, alerts: list[Alert]) -> None:
        """Note the pcaps written so far in ``alerts`` and queue new or grown alerts; never waits."""
        with self._lock:
            for alert in alerts:
                alert_id = alert.alert_id(self.run_id)
                if alert_id in self._written:
                    alert.evidence[EVIDENCE_KEY] = str(self._written[alert_id])
                span = (alert.start, alert.end)
                if self._done.get(alert_id) != span:
                    self._pending[alert_id] = _Job(alert_id, span, display_filter(alert))
            self._lock.notify_all()

    def finish(self, alerts: list[Alert], timeout_s: float = FINISH_TIMEOUT_S) -> None:
        """Stop the ring, cut what is still pending (bounded wait), and note every written pcap in ``alerts``."""
        began = time.monotonic()
        if self.ring is not None:
            self.ring.stop()
            with self._lock:
                self._done.clear()  # cut once more from the flushed ring: dumpcap buffers its newest packets
        self.feed(alerts)
        deadline = began + timeout_s
        with self._lock:
            self._final = True
            self._lock.notify_all()
            while (self._pending or self._busy) and time.monotonic() < deadline:
                self._lock.wait(timeout=max(0.0, deadline - time.monotonic()))
            left = len(self._pending)
            self._closed = True
            self._lock.notify_all()
        if left:
            self.logger.warning("evidence: gave up waiting after %.0f s; %d alert pcap(s) not cut", timeout_s, left)
        self._thread.join(timeout=5)
        self.feed_paths(alerts)
        self.logger.info(
            "evidence: %d alert pcap(s) in %s; the last cuts took %.1f s",
            len(self._written),
            self.folder,
            time.monotonic() - began,
        )

    def feed_paths(self, alerts: list[Alert]) -> None:
        """Note written pcaps in ``alerts`` without queueing anything."""
        with self._lock:
            for alert in alerts:
                path = self._written.get(alert.alert_id(self.run_id))
                if path is not None:
                    alert.evidence[EVIDENCE_KEY] = str(path)

    def stop(self) -> None:
        """End without waiting for pending cuts (for runs that failed)."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        if self.ring is not None:
            self.ring.stop()

    # -- the worker ---------------------------------------------------------------------------------
    def _next_job(self) -> _Job | None:
        """The next due job, waiting for one; None once closed."""
        with self._lock:
            while not self._closed:
                now = time.monotonic()
                due = [
                    job
                    for job in self._pending.values()
                    if self._final or now - self._cut_at.get(job.alert_id, -self.refresh_s) >= self.refresh_s
                ]
                if due:
                    job = min(due, key=lambda j: self._cut_at.get(j.alert_id, 0.0))
                    del self._pending[job.alert_id]
                    self._busy = True
                    return job
                soonest = min(
                    (self._cut_at.get(j.alert_id, 0.0) + self.refresh_s - now for j in self._pending.values()),
                    default=None,
                )
                self._lock.wait(timeout=soonest)
            return None

    def _work(self) -> None:
        while (job := self._next_job()) is not None:
            try:
                self._cut(job)
            finally:
                with self._lock:
                    self._busy = False
                    self._lock.notify_all()

    def _cut(self, job: _Job) -> None:
        out = self.folder / f"{job.alert_id}.pcap"
        try:
            kept = extract_packets(self.sources(), job.display_filter, out, self.max_packets, self.max_bytes)
        except (AnalyzerError, OSError) as exc:
            self.logger.warning("evidence for alert %s not saved: %s", job.alert_id, exc)
            kept = -1
        with self._lock:
            self._cut_at[job.alert_id] = time.monotonic()
            if kept >= 0:
                self._done[job.alert_id] = job.span
            if kept > 0:
                first = job.alert_id not in self._written
                self._written[job.alert_id] = out
                if first:
                    self.logger.info("evidence for alert %s: %d packets in %s", job.alert_id, kept, out)


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
