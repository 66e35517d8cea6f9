"""Frames arrive from many overlapping sessions out of time order; the timeline hands them to the writer in order.

Behaviours emit whole sessions when the session starts, so a frame never precedes the start of the
window it was emitted in. Frames are kept in one-second buckets; after every window, the buckets
that end before the window's end are sorted (stable, so equal timestamps keep their emission order
and the output stays deterministic) and written. A long download emitted at once therefore costs one
sort per second of its duration, not one re-sort of everything pending per window.
"""

from __future__ import annotations

import numpy as np

from .pcap_writer import PcapWriter

BUCKET_US = 1_000_000  # width of a time bucket (microseconds)


class Timeline:
    """Collects (timestamp, frame, wire length) from behaviours and releases them in time order."""

    def __init__(self, writer: PcapWriter, start_us: int, end_us: int) -> None:
        self.writer = writer
        self.start_us = start_us  # frames outside [start_us, end_us) fall outside the capture and are dropped
        self.end_us = end_us
        self.first_us: int | None = None
        self.last_us: int | None = None
        self._buckets: dict[int, tuple[list[int], list[bytes], list[int]]] = {}

    def add(self, ts_us: int, frame: bytes, wire_len: int = 0) -> None:
        """One frame; ``wire_len`` 0 means the frame is complete."""
        if self.start_us <= ts_us < self.end_us:
            key = ts_us // BUCKET_US
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = ([], [], [])
            bucket[0].append(ts_us)
            bucket[1].append(frame)
            bucket[2].append(wire_len or len(frame))

    def flush(self, before_us: int) -> None:
        """Write every bucket that ends at or before ``before_us``."""
        for key in sorted(k for k in self._buckets if (k + 1) * BUCKET_US <= before_us):
            ts, frames, wire = self._buckets.pop(key)
            order = np.argsort(np.array(ts, dtype=np.int64), kind="stable").tolist()
            self.writer.write([ts[i] for i in order], [frames[i] for i in order], [wire[i] for i in order])
            self.first_us = ts[order[0]] if self.first_us is None else self.first_us
            self.last_us = ts[order[-1]]

    def close(self) -> None:
        """Write whatever is left."""
        self.flush(self.end_us + BUCKET_US)
