"""What every packet source hands on: packet-table batches plus capture health counters."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Protocol

import pandas as pd


@dataclass
class CaptureStats:
    """Health of the capture, shown on the dashboard and in the summary."""

    source: str = ""
    packets: int = 0
    bytes: int = 0
    dropped: int | None = None  # kernel/dumpcap drops; None while the capture cannot tell
    sampled_out: int = 0
    sample_rate: float = 1.0  # share of flows kept in the latest batch (see capture.sampling)
    started_at: float = field(default_factory=time.time)
    finished: bool = False
    error: str | None = None
    down: str | None = None  # why the capture is down while it is being restarted
    restarts: int = 0  # captures restarted after ending by themselves
    link_down: str | None = None  # "interface eth0 is down" while the kernel says so

    def as_dict(self) -> dict:
        return asdict(self)


class PacketSource(Protocol):
    """A capture: yields packet tables until it ends or ``stop()`` is called."""

    stats: CaptureStats

    def check(self) -> None: ...

    def batches(self) -> Iterator[pd.DataFrame]: ...

    def stop(self) -> None: ...
