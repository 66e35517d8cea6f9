"""Classic pcap output: microsecond timestamps, Ethernet link type, records written in large buffered blocks."""

from __future__ import annotations

import struct
from pathlib import Path
from types import TracebackType

PCAP_MAGIC_US = 0xA1B2C3D4  # classic pcap, microsecond timestamps
PCAP_VERSION = (2, 4)
LINKTYPE_ETHERNET = 1
SNAPLEN = 262_144  # the capture's snaplen; frames cut shorter than their wire length are still allowed
WRITE_BLOCK = 8 * 2**20  # bytes gathered before one write call

_RECORD = struct.Struct("<IIII")


class PcapWriter:
    """Appends (timestamp, frame, wire length) records to a classic pcap file, in the order given."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.packets = 0
        self.bytes_on_wire = 0
        self._fh = path.open("wb")
        self._fh.write(struct.pack("<IHHiIII", PCAP_MAGIC_US, *PCAP_VERSION, 0, 0, SNAPLEN, LINKTYPE_ETHERNET))
        self._parts: list[bytes] = []
        self._pending = 0

    def write(self, ts_us: list[int], frames: list[bytes], wire_lens: list[int]) -> None:
        """Write records already in time order (integer microseconds since the epoch)."""
        pack = _RECORD.pack
        parts = self._parts
        for ts, frame, wire in zip(ts_us, frames, wire_lens, strict=True):
            parts.append(pack(ts // 1_000_000, ts % 1_000_000, len(frame), wire))
            parts.append(frame)
            self._pending += 16 + len(frame)
            self.bytes_on_wire += wire
        self.packets += len(frames)
        if self._pending >= WRITE_BLOCK:
            self._flush()

    def _flush(self) -> None:
        self._fh.write(b"".join(self._parts))
        self._parts.clear()
        self._pending = 0

    def close(self) -> None:
        self._flush()
        self._fh.close()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
