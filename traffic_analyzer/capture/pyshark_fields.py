"""pyshark packets -> the same tshark field strings that ``tshark -T fields`` prints.

pyshark is imported only here and in the live pyshark backend: the rest of the
program sees packet tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from ..records.packets import DNS_ANSWER_FIELDS, FIELD_AGGREGATOR, TSHARK_FIELDS, packets_from_fields
from .pcap_file import check_capture_file
from .source import CaptureStats

# pyshark names the frame layer "frame_info"; every other layer is the field's prefix.
_LAYER_OF = {"frame": "frame_info"}
_FIELD_LAYERS = tuple(_LAYER_OF.get(name.split(".")[0], name.split(".")[0]) for name in TSHARK_FIELDS)


def packet_fields(packet) -> list[str | None]:
    """The TSHARK_FIELDS values of one pyshark packet (first layer of each name; first value, but every
    value of the DNS answer fields, joined as tshark's -E aggregator joins them)."""
    values: list[str | None] = []
    layers: dict[str, object] = {}
    for layer in packet.layers:
        layers.setdefault(layer.layer_name, layer)
    layers["frame_info"] = packet.frame_info
    for field, layer_name in zip(TSHARK_FIELDS, _FIELD_LAYERS, strict=True):
        layer = layers.get(layer_name)
        value = layer.get_field(field) if layer is not None else None
        if value is not None and field in DNS_ANSWER_FIELDS and getattr(value, "all_fields", None):
            value = FIELD_AGGREGATOR.join(str(occurrence.show) for occurrence in value.all_fields)
        values.append(None if value is None else str(value))
    return values


class PysharkFileSource:
    """A capture file read through pyshark: slow, but the reference the fast path must match."""

    def __init__(self, path: str | Path, chunk_packets: int = 5_000) -> None:
        self.path = Path(path)
        self.chunk_packets = chunk_packets
        self.stats = CaptureStats(source=f"file {self.path} (pyshark)")

    def check(self) -> None:
        check_capture_file(self.path)

    def stop(self) -> None:
        """Reading a file ends by itself."""

    def batches(self) -> Iterator[pd.DataFrame]:
        import pyshark

        check_capture_file(self.path)
        capture = pyshark.FileCapture(str(self.path), keep_packets=False)
        rows: list[list[str | None]] = []
        try:
            for packet in capture:
                rows.append(packet_fields(packet))
                if len(rows) >= self.chunk_packets:
                    yield self._emit(rows)
                    rows = []
            if rows:
                yield self._emit(rows)
        finally:
            _close_quietly(capture)
        self.stats.finished = True

    def _emit(self, rows: list[list[str | None]]) -> pd.DataFrame:
        packets = packets_from_fields(pd.DataFrame(rows, columns=list(TSHARK_FIELDS), dtype="string"))
        self.stats.packets += len(packets)
        self.stats.bytes += int(packets["length"].sum())
        return packets


def _close_quietly(capture) -> None:
    """pyshark reports a slow tshark exit as a crash even after every packet was read."""
    from pyshark.capture.capture import TSharkCrashException

    try:
        capture.close()
    except TSharkCrashException:
        pass
