"""Vectorised decoding of link, network and transport headers into tshark fields.

Every frame of a batch is handled at once with numpy (:mod:`.decode_frames` gathers the header
bytes and reads at per-frame offsets), one layer after another: :mod:`.decode_link`,
:mod:`.decode_net`, :mod:`.decode_transport`, all writing one :class:`~.decode_state.LayerState`.
The rules follow tshark 4.0's dissectors: a field exists only when the dissector would have
reached it, reading bytes that were captured and that lie inside the layer's reported length.
Nothing here trusts a length from the packet without a bounds check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .decode_fields import FieldSet
from .decode_frames import LINKTYPE_IPV4, LINKTYPE_IPV6, Frames, Inner
from .decode_link import decode_link
from .decode_net import decode_network
from .decode_state import NET_IP, NET_IPV6, LayerState
from .decode_transport import Transport, decode_transport


@dataclass
class Layers:
    """Result of the vectorised decode of one batch."""

    fields: FieldSet
    protocol: np.ndarray  # int code of the highest protocol so far (decode_protocols)
    transport: Transport
    inner: Inner


def decode_layers(frames: Frames) -> Layers:
    """Decode link, network and transport headers of every frame into tshark fields."""
    st = LayerState.start(frames)
    decode_link(st)
    lt = frames.linktype
    st.net[lt == LINKTYPE_IPV4] = NET_IP
    st.net[lt == LINKTYPE_IPV6] = NET_IPV6
    decode_network(st)
    transport = decode_transport(st)
    return Layers(fields=st.fs, protocol=st.proto, transport=transport, inner=st.inner)
