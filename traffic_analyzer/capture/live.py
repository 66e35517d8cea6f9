"""Live capture: a reader thread fills a buffer, and every ``window_s`` the buffer becomes a batch.

Two backends read the same tshark fields: ``pyshark`` (the design's named live
backend, one Python object per packet) and ``tshark`` (tshark's own field
output, several times faster). Both end in :func:`packets_from_fields`.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from ..errors import CaptureError
from ..records.packets import TSHARK_FIELDS, packets_from_fields
from .processes import terminate_capture_processes
from .pyshark_fields import packet_fields
from .source import CaptureStats
from .tshark import FIELD_ARGS, check_live_capture, explain_tshark_error, fields_frame, tshark_path

_DROPPED = re.compile(r"(\d+) packets? dropped")
_PRIVILEGE = re.compile(r"permission|privilege|not permitted", re.IGNORECASE)
RESTART_FIRST_S = 1.0  # first wait before restarting a capture that ended by itself
RESTART_MAX_S = 30.0  # longest wait between restarts (an interface that stays down)
STABLE_S = 60.0  # a capture that ran this long before ending starts a new outage
STOP_GRACE_S = 15.0  # how long a stop waits for the capture to end before leaving it
logger = logging.getLogger("traffic_analyzer")


class LiveSource(ABC):
    """Base of the live backends: buffering, windowing, duration and stop."""

    backend = ""

    def __init__(
        self, interface: str, bpf_filter: str | None = None, duration_s: float = 0, window_s: float = 5.0
    ) -> None:
        self.interface = interface
        self.bpf_filter = bpf_filter or None
        self.duration_s = duration_s
        self.window_s = window_s
        self.stats = CaptureStats(source=f"live {interface} ({self.backend})")
        self._rows: list = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._stderr: list[str] = []
        self._stop_asked_at: float | None = None

    def stop(self) -> None:
        self._stop_asked_at = self._stop_asked_at or time.monotonic()
        self._stop.set()
        self._kill_capture()

    def restart_command(self) -> list[str] | None:
        """The command the root keeper may start again for this capture after the privilege drop.

        None: the capture cannot be restarted without root (tshark and pyshark start dumpcap
        themselves, so the keeper could not hand their output over as it does dumpcap's).
        """
        return None

    def check(self) -> None:
        """Fail now, with one line, if the interface or filter cannot be used."""
        check_live_capture(self.interface, self.bpf_filter)

    def batches(self) -> Iterator[pd.DataFrame]:
        self.check()
        reader = threading.Thread(target=self._run_reader, name=f"capture-{self.backend}", daemon=True)
        reader.start()
        deadline = time.monotonic() + self.duration_s if self.duration_s else None
        while True:
            wait_s = self.window_s
            if deadline is not None:
                wait_s = max(0.0, min(wait_s, deadline - time.monotonic()))
            self._done.wait(wait_s)
            if deadline is not None and time.monotonic() >= deadline:
                self.stop()
            if self._stop.is_set() and not self._done.is_set():
                self._done.wait(5.0)
                stopping_for = time.monotonic() - (self._stop_asked_at or time.monotonic())
                if not self._done.is_set() and stopping_for >= STOP_GRACE_S:
                    logger.warning("capture on %s did not end in %.0f s; leaving it", self.interface, stopping_for)
                    self._done.set()  # a capture process that ignores us must not keep the run alive
            finished = self._done.is_set()
            self._watch_link()
            yield self._take_batch()
            if finished:
                break
        reader.join(timeout=5)
        self.stats.finished = True
        if self.stats.error:
            raise CaptureError(self.stats.error)

    def _watch_link(self) -> None:
        """Report the interface going down and coming back (the capture itself just waits for it)."""
        state = link_state(self.interface)
        down = None if state in ("up", "unknown", None) else f"interface {self.interface} is {state}"
        if down != self.stats.link_down:
            if down:
                logger.warning("%s: no packets until it is back", down)
            else:
                logger.info("interface %s is up again", self.interface)
        self.stats.link_down = down

    def _take_batch(self) -> pd.DataFrame:
        with self._lock:
            rows, self._rows = self._rows, []
        packets = self._to_packets(rows)
        self.stats.packets += len(packets)
        self.stats.bytes += int(packets["length"].sum())
        return packets

    @abstractmethod
    def _to_packets(self, rows: list) -> pd.DataFrame:
        """Turn the buffered rows into a packet table."""

    def _run_reader(self) -> None:
        """Capture; when the capture ends by itself (process killed, interface down), start it again.

        Restarts back off from RESTART_FIRST_S to RESTART_MAX_S and are reported once per outage.
        After the analyzer dropped root, the root keeper starts the capture again for backends
        that have a :meth:`restart_command`; for the others, a restart refused for lack of
        privilege ends the run with the reason instead: retrying could never succeed.
        """
        delay = RESTART_FIRST_S
        outage_since: float | None = None
        try:
            while True:
                began = time.monotonic()
                self.stats.error = None
                self._stderr = []  # each attempt explains its own end
                try:
                    self._read()
                except Exception as exc:  # the capture thread must always report, never die silently
                    self.stats.error = str(exc)
                if self._stop.is_set():
                    self.stats.error = None
                    break
                reason = self.stats.error or "the capture process ended without saying why"
                if _PRIVILEGE.search(reason) and os.geteuid() != 0:
                    self.stats.error = (
                        f"live capture on {self.interface!r} stopped and cannot be reopened without root "
                        f"({reason}); start the analyzer again"
                    )
                    break
                self.stats.error = None
                if time.monotonic() - began >= STABLE_S:
                    delay = RESTART_FIRST_S  # it ran fine for a while: this is a new outage
                    outage_since = None
                if outage_since is None:
                    outage_since = time.time()
                    logger.warning("capture on %s stopped: %s; restarting it", self.interface, reason)
                self.stats.down = f"capture on {self.interface} down: {reason}; retrying every {delay:.0f} s"
                self.stats.restarts += 1
                if self._stop.wait(delay):
                    break
                delay = min(delay * 2, RESTART_MAX_S)
                self.stats.down = None
        finally:
            self.stats.down = None
            self._done.set()

    @abstractmethod
    def _read(self) -> None:
        """Capture until the process ends or stop() is called, appending rows to the buffer."""

    def _kill_capture(self) -> None:
        """End the tshark/dumpcap processes this capture started."""
        terminate_capture_processes()


class TsharkLiveSource(LiveSource):
    """Live capture read from tshark's field output, line by line."""

    backend = "tshark"

    def _read(self) -> None:
        cmd = [tshark_path(), "-n", "-l", "-i", self.interface]
        if self.bpf_filter:
            cmd += ["-f", self.bpf_filter]
        cmd += list(FIELD_ARGS)
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,  # its own process group: dumpcap goes with it (below)
        )
        drain = threading.Thread(target=lambda: self._stderr.extend(proc.stderr), daemon=True)
        drain.start()
        threading.Thread(target=_end_group_after, args=(proc,), daemon=True).start()
        for line in proc.stdout:
            with self._lock:
                self._rows.append(line)
        proc.wait()
        drain.join(timeout=5)
        stderr = "".join(self._stderr)
        dropped = _DROPPED.search(stderr)
        self.stats.dropped = int(dropped.group(1)) if dropped else 0
        if proc.returncode not in (0, -15) and not self._stop.is_set():
            self.stats.error = explain_tshark_error(stderr, self.interface)

    def _to_packets(self, rows: list) -> pd.DataFrame:
        return packets_from_fields(fields_frame(rows))


class PysharkLiveSource(LiveSource):
    """Live capture through pyshark, the design's named backend."""

    backend = "pyshark"

    def _read(self) -> None:
        import asyncio

        import pyshark

        asyncio.set_event_loop(asyncio.new_event_loop())
        capture = pyshark.LiveCapture(interface=self.interface, bpf_filter=self.bpf_filter)
        try:
            for packet in capture.sniff_continuously():
                row = packet_fields(packet)
                with self._lock:
                    self._rows.append(row)
                if self._stop.is_set():
                    break
        except Exception as exc:
            if not self._stop.is_set():
                raise CaptureError(str(exc).splitlines()[0]) from exc
        finally:
            self._kill_capture()
            self.stats.dropped = None

    def _to_packets(self, rows: list) -> pd.DataFrame:
        return packets_from_fields(pd.DataFrame(rows, columns=list(TSHARK_FIELDS), dtype="string"))


def _end_group_after(proc: subprocess.Popen) -> None:
    """When tshark ends, end its dumpcap too: an orphaned dumpcap would hold our pipe open forever."""
    proc.wait()
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    except PermissionError:
        terminate_capture_processes(orphans=True)  # root, after the analyzer dropped root: the keeper ends them


def link_state(interface: str) -> str | None:
    """The kernel's operational state of ``interface`` (up, down, dormant...), "gone" if it no longer
    exists, None where the system does not say (not Linux, or pseudo-interfaces such as "any")."""
    if interface == "any" or not Path("/sys/class/net").is_dir():
        return None
    try:
        return Path("/sys/class/net", interface, "operstate").read_text().strip() or None
    except FileNotFoundError:
        return "gone"
    except OSError:
        return None
