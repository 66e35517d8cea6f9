"""Raw captured frames -> packet table: the fast decoders put together.

:class:`FrameDecoder` runs the vectorised header decode (:mod:`.decode_layers`) over slices of
a chunk, decodes quoted and tunnelled packets again as frames of their own, lets the TCP
sequence analysis (:mod:`.decode_tcp`) and the application decoders (:mod:`.decode_app`) look
at transport payloads, and builds the packet table (:mod:`.decode_fields`). It keeps the state
that must survive from one chunk to the next (TCP streams), so one decoder serves one capture.
"""

from __future__ import annotations

from dataclasses import fields as dataclass_fields

import numpy as np
import pandas as pd

from ..records.packets import empty_packets
from . import decode_protocols as P
from .decode_app import AppDecoder
from .decode_fields import FieldSet, packet_table
from .decode_frames import Frames
from .decode_layers import decode_layers
from .decode_tcp import TcpAnalysis
from .decode_transport import Transport

SLICE_FRAMES = 65_536  # frames decoded together: their header bytes stay in the CPU cache
MAX_NESTING = 3  # packets inside packets inside packets (an ICMP error quoting a tunnelled datagram)


class FrameDecoder:
    """Decodes the frames of one capture, chunk after chunk, into packet tables."""

    def __init__(self, slice_frames: int = SLICE_FRAMES) -> None:
        self.slice_frames = slice_frames
        self.tcp = TcpAnalysis()
        self.app = AppDecoder()

    def table(self, frames: Frames, ts: np.ndarray) -> pd.DataFrame:
        """The packet table of a chunk of frames (``ts``: their capture times)."""
        n = len(frames.start)
        if n == 0:
            return empty_packets()
        parts: list[tuple[FieldSet, np.ndarray]] = []
        transports: list[Transport] = []
        for lo in range(0, n, self.slice_frames):
            hi = min(n, lo + self.slice_frames)
            part = Frames(
                buf=frames.buf,
                start=frames.start[lo:hi],
                caplen=frames.caplen[lo:hi],
                length=frames.length[lo:hi],
                linktype=frames.linktype[lo:hi],
            )
            fields, protocol, transport = self._headers(part, ts[lo:hi], depth=0)
            parts.append((fields, protocol))
            transport.rows = transport.rows + lo
            transports.append(transport)
        fields, protocol = _concat(parts, n)
        # The sequence analysis and the application decoders run once per chunk: their state is per
        # connection, and one pass over a whole chunk costs far less than one per slice.
        self._payloads(frames.buf, _concat_transports(transports), ts, fields, protocol, in_error=False)
        return packet_table(fields, ts, frames.length, protocol, P.protocol_names())

    def _headers(self, frames: Frames, ts: np.ndarray, depth: int) -> tuple[FieldSet, np.ndarray, Transport]:
        """Header decode of a slice, with its quoted and tunnelled packets decoded completely."""
        layers = decode_layers(frames)
        fields, protocol = layers.fields, layers.protocol
        inner = layers.inner
        if inner.rows and depth < MAX_NESTING:
            for rows, sub in inner.frames(frames.buf):
                sub_fields, sub_protocol, sub_transport = self._headers(sub, ts[rows], depth + 1)
                self._payloads(frames.buf, sub_transport, ts[rows], sub_fields, sub_protocol, in_error=sub.in_error)
                fields.fill_from(sub_fields, rows)
                deeper = sub_protocol != P.FRAME
                protocol[rows[deeper]] = sub_protocol[deeper]
        return fields, protocol, layers.transport

    def _payloads(self, buf, transport: Transport, ts, fields: FieldSet, protocol, in_error: bool) -> None:
        if len(transport.rows):
            analysis = self.tcp.analyse(transport, ts, in_error=in_error)
            self.app.dissect(buf, transport, analysis, fields, protocol, in_error=in_error)


def _concat_transports(parts: list[Transport]) -> Transport:
    if len(parts) == 1:
        return parts[0]
    columns = [f.name for f in dataclass_fields(Transport)]
    return Transport(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in columns})


def _concat(parts: list[tuple[FieldSet, np.ndarray]], n: int) -> tuple[FieldSet, np.ndarray]:
    if len(parts) == 1:
        return parts[0]
    out = FieldSet(n)
    names = set().union(*(p[0].values for p in parts))
    for name in names:
        out.values[name] = np.concatenate([fs.get(name)[0] for fs, _ in parts])
        out.present[name] = np.concatenate([fs.get(name)[1] for fs, _ in parts])
    return out, np.concatenate([p[1] for p in parts])
