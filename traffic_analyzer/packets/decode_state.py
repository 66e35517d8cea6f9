"""What the layer decoders of one batch share: each writes its fields and hands on to the next.

A link layer says which network dissector gets each frame and where (:attr:`LayerState.net`,
:attr:`LayerState.net_off`); a network layer says where the transport header starts and which IP
protocol dissector gets it (:class:`L4Plan`); any layer may find packets inside packets
(:class:`~.decode_frames.Inner`). One :class:`LayerState` carries all of it, so each decoder takes
the state and the frames it works on instead of a long list of arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import decode_protocols as P
from .decode_fields import FieldSet
from .decode_frames import FrameReader, Frames, Inner

# Net-layer dissectors a frame can be handed to.
NET_NONE, NET_IP, NET_IPV4, NET_IPV6, NET_ARP = 0, 1, 2, 3, 4


class L4Plan:
    """Where each frame's transport header starts and which IP protocol dissector gets it."""

    def __init__(self, n: int) -> None:
        self.rows = np.zeros(n, dtype=bool)
        self.off = np.zeros(n, dtype=np.int64)
        self.proto = np.zeros(n, dtype=np.int64)
        self.rep_end = np.zeros(n, dtype=np.int64)  # frame-relative end of the reported payload
        self.fragmented = np.zeros(n, dtype=bool)  # first fragment of a datagram not reassembled
        self.ipv6 = np.zeros(n, dtype=bool)
        self.src_key = np.zeros((n, 2), dtype=np.uint64)
        self.dst_key = np.zeros((n, 2), dtype=np.uint64)


@dataclass
class LayerState:
    """The per-frame arrays the layer decoders of one batch read and write (all updated in place)."""

    fr: FrameReader
    fs: FieldSet  # the tshark fields found so far
    proto: np.ndarray  # int code of the highest protocol so far (decode_protocols)
    net: np.ndarray  # NET_* dissector the link layer hands each frame to
    net_off: np.ndarray  # where that dissector starts, from the frame start
    cap_end: np.ndarray  # end of the captured bytes of the current layer, from the frame start
    rep_end: np.ndarray  # end of the bytes the current layer reports, from the frame start
    l4: L4Plan
    inner: Inner

    @classmethod
    def start(cls, frames: Frames) -> LayerState:
        """Nothing decoded yet: every frame is a bare frame, its layer as long as the frame."""
        n = len(frames.start)
        # tshark dissects bytes that were captured even where the record claims a shorter frame.
        cap, rep = frames.caplen, np.maximum(frames.length, frames.caplen)
        return cls(
            fr=FrameReader(frames),
            fs=FieldSet(n),
            proto=np.full(n, P.FRAME, dtype=np.int64),
            net=np.full(n, NET_NONE, dtype=np.int8),
            net_off=np.zeros(n, dtype=np.int64),
            cap_end=cap.copy(),
            rep_end=rep.copy(),
            l4=L4Plan(n),
            inner=Inner(),
        )

    def take(self, idx: np.ndarray) -> LayerState:
        """A state of its own for the frames ``idx`` (copies: the caller writes back what it needs)."""
        return LayerState(
            fr=self.fr.take(idx),
            fs=FieldSet(len(idx)),
            proto=self.proto[idx],
            net=self.net[idx],
            net_off=self.net_off[idx],
            cap_end=self.cap_end[idx],
            rep_end=self.rep_end[idx],
            l4=L4Plan(len(idx)),
            inner=Inner(),
        )
