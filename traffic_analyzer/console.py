"""What a live run says on stderr: where it captures, where its dashboard is, and a status line a minute.

The log file has a line per window; a person at the terminal needs to know that the capture runs
and what it has seen so far. ``quiet`` turns it off (warnings and alerts still reach stderr).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from .capture.source import CaptureStats

STATUS_EVERY_S = 60.0  # seconds between two status lines


class ConsoleStatus:
    """Start lines and a periodic one-line status of a live run, on stderr (does nothing when disabled)."""

    def __init__(
        self,
        enabled: bool,
        every_s: float = STATUS_EVERY_S,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = enabled
        self.every_s = every_s
        self.stream = stream
        self.clock = clock
        self._last = clock()

    def say(self, line: str) -> None:
        if self.enabled:
            print(line, file=self.stream or sys.stderr, flush=True)

    def started(self, status: str, duration_s: float) -> None:
        """``status`` is the run's 'capturing on IFACE'."""
        self._last = self.clock()
        until = f"for {duration_s:g} s" if duration_s else "until Ctrl-C"
        self.say(f"{status} ({until})")

    def dashboard(self, url: str) -> None:
        self.say(f"dashboard at {url}")

    def window(self, stats: CaptureStats, packets: int, alerts: int) -> None:
        """After each window: the status line when ``every_s`` has passed since the last one."""
        now = self.clock()
        if now - self._last >= self.every_s:
            self._last = now
            self.say(status_line(stats, packets, alerts))


def status_line(stats: CaptureStats, packets: int, alerts: int) -> str:
    """packets analysed, alerts, kernel drops and sampled-out packets so far, and the capture's trouble if any."""
    dropped = "drops unknown" if stats.dropped is None else f"{stats.dropped:,} dropped"
    line = f"status: {packets:,} packets, {alerts:,} alerts, {dropped}, {stats.sampled_out:,} sampled out"
    trouble = stats.down or stats.link_down
    return f"{line}; {trouble}" if trouble else line
