"""Live capture: a reader thread fills a buffer, and every ``window_s`` the buffer becomes a batch.

Two backends read the same tshark fields: ``pyshark`` (the design's named live
backend, one Python object per packet) and ``tshark`` (tshark's own field
output, several times faster). Both end in :func:`packets_from_fields`.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator

import pandas as pd

from ..errors import CaptureError
from ..packets.schema import TSHARK_FIELDS, packets_from_fields
from .processes import terminate_capture_processes
from .pyshark_fields import packet_fields
from .source import CaptureStats
from .tshark import FIELD_ARGS, check_live_capture, explain_tshark_error, fields_frame, tshark_path

_DROPPED = re.compile(r"(\d+) packets? dropped")


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

    def stop(self) -> None:
        self._stop.set()
        self._kill_capture()

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
            finished = self._done.is_set()
            yield self._take_batch()
            if finished:
                break
        reader.join(timeout=5)
        self.stats.finished = True
        if self.stats.error:
            raise CaptureError(self.stats.error)

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
        try:
            self._read()
        except Exception as exc:  # the capture thread must always report, never die silently
            self.stats.error = f"live capture on {self.interface!r} failed: {exc}"
        finally:
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
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace"
        )
        drain = threading.Thread(target=lambda: self._stderr.extend(proc.stderr), daemon=True)
        drain.start()
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
