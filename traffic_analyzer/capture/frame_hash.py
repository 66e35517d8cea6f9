"""Flow hashes read straight from Ethernet frame bytes, before any decoding.

Under load the live reader keeps a sample of whole flows (:mod:`.sampling`). Hashing the packet
table means decoding every frame first, sampled-out ones included; reading the addresses and
ports at their fixed offsets lets the reader decode only the frames it keeps. The hash is equal
for both directions of a flow: IPv4/IPv6 by (protocol, both address:port endpoints; ports of
TCP, UDP and SCTP, of the first fragment only), other frames by their MAC pair. Bytes past a
frame's captured length read as zero, so a truncated frame hashes the same way every time.
"""

from __future__ import annotations

import numpy as np

from ..packets.decode_frames import Frames
from .sampling import endpoint_hash, flow_of_endpoints, mix_hash

LINKTYPE_ETHERNET = 1
_VLAN_TAGS = (0x8100, 0x88A8, 0x9100)
_PORT_PROTOCOLS = (6, 17, 132)  # TCP, UDP, SCTP


def frame_number(
    buf: np.ndarray, start: np.ndarray, caplen: np.ndarray, offset: np.ndarray | int, size: int
) -> np.ndarray:
    """The big-endian ``size``-byte number at ``offset`` of each frame (``start``, ``caplen`` into ``buf``);
    bytes past a frame's captured length read as zero."""
    value = np.zeros(len(start), dtype=np.uint64)
    for k in range(size):
        at = offset + k
        inside = at < caplen
        value = (value << np.uint64(8)) | np.where(inside, buf[start + np.where(inside, at, 0)], 0).astype(np.uint64)
    return value


def frame_flow_hash(frames: Frames) -> np.ndarray | None:
    """A 64-bit flow hash per frame, or None when some frame is not Ethernet (hash the table then)."""
    if len(frames.start) == 0:
        return np.zeros(0, dtype=np.uint64)
    if not (frames.linktype == LINKTYPE_ETHERNET).all():
        return None
    buf, start, caplen = frames.buf, frames.start, frames.caplen

    def byte(offset: np.ndarray) -> np.ndarray:
        return frame_number(buf, start, caplen, offset, 1)

    def number(offset: np.ndarray, size: int) -> np.ndarray:
        return frame_number(buf, start, caplen, offset, size)

    zero = np.zeros(len(start), dtype=np.int64)
    ethertype = number(zero + 12, 2)
    tagged = np.isin(ethertype, _VLAN_TAGS)
    l3 = np.where(tagged, 18, 14)
    ethertype = np.where(tagged, number(zero + 16, 2), ethertype)
    ipv4, ipv6 = ethertype == 0x0800, ethertype == 0x86DD

    # IPv4: protocol, addresses, ports after the header when this is the first fragment.
    ihl = (byte(l3) & np.uint64(0x0F)).astype(np.int64) * 4
    first_fragment = (number(l3 + 6, 2) & np.uint64(0x1FFF)) == 0
    proto4 = byte(l3 + 9)
    # IPv6: next header, addresses folded to 64 bits, ports right after the fixed header.
    proto6 = byte(l3 + 6)
    proto = np.where(ipv4, proto4, np.where(ipv6, proto6, np.uint64(0xFFFF)))
    l4 = np.where(ipv4, l3 + ihl, l3 + 40)
    has_ports = (ipv4 & first_fragment | ipv6) & np.isin(proto, _PORT_PROTOCOLS)
    sport = np.where(has_ports, number(l4, 2), 0)
    dport = np.where(has_ports, number(l4 + 2, 2), 0)
    src6 = mix_hash(number(l3 + 8, 8)) ^ number(l3 + 16, 8)
    dst6 = mix_hash(number(l3 + 24, 8)) ^ number(l3 + 32, 8)
    src = np.where(ipv4, number(l3 + 12, 4), np.where(ipv6, src6, number(zero + 6, 6)))
    dst = np.where(ipv4, number(l3 + 16, 4), np.where(ipv6, dst6, number(zero, 6)))
    return flow_of_endpoints(endpoint_hash(src, sport), endpoint_hash(dst, dport), proto)
