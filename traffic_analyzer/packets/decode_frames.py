"""Captured frames as columns, and the reads every layer decoder makes at per-frame offsets.

The first :data:`HEADER_BYTES` bytes of each frame are gathered into a 2-D array; a layer reads a
column of it at each frame's own offset, and reads past it come from the flat chunk buffer. The
link types a frame can carry and the packets found inside packets (:class:`Inner`) live here too,
because the capture readers and every layer decoder share them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

HEADER_BYTES = 104  # gathered per frame: link (<= 22) + IPv4 with options (<= 60) + TCP up to its window (16)
_WORDS = HEADER_BYTES // 8

# pcap/pcapng link types (LINKTYPE_* values of the tcpdump.org registry).
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_12 = 12  # DLT_RAW as some systems write it; wiretap reads it as raw IP
LINKTYPE_RAW_14 = 14
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108  # OpenBSD loopback: address family in network byte order
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228  # also what the decoders use for an IP packet quoted or tunnelled inside another
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
LINK_TYPE_NAMES: dict[int, str] = {
    LINKTYPE_NULL: "BSD loopback",
    LINKTYPE_ETHERNET: "Ethernet",
    LINKTYPE_RAW_12: "raw IP",
    LINKTYPE_RAW_14: "raw IP",
    LINKTYPE_RAW: "raw IP",
    LINKTYPE_LOOP: "OpenBSD loopback",
    LINKTYPE_LINUX_SLL: "Linux cooked (SLL)",
    LINKTYPE_IPV4: "raw IPv4",
    LINKTYPE_IPV6: "raw IPv6",
    LINKTYPE_LINUX_SLL2: "Linux cooked v2 (SLL2)",
}
RAW_LINKTYPES = (LINKTYPE_RAW_12, LINKTYPE_RAW_14, LINKTYPE_RAW)


@dataclass
class Frames:
    """Captured frames of one chunk as columns over a shared byte buffer."""

    buf: np.ndarray  # uint8: the chunk, then at least HEADER_BYTES zero bytes
    start: np.ndarray  # int64 offset of each frame in buf
    caplen: np.ndarray  # int64 captured bytes
    length: np.ndarray  # int64 bytes on the wire (reported length)
    linktype: np.ndarray  # int64 link type of each frame
    in_error: bool = False  # frames quoted inside an ICMP error (tshark's pinfo->flags.in_error_pkt)


@dataclass
class Inner:
    """Packets inside packets (ICMP errors, IP-in-IP, GRE): decoded again as frames of their own."""

    rows: list[np.ndarray] = field(default_factory=list)
    start: list[np.ndarray] = field(default_factory=list)
    cap_end: list[np.ndarray] = field(default_factory=list)  # absolute end of captured bytes
    rep_len: list[np.ndarray] = field(default_factory=list)
    linktype: list[np.ndarray] = field(default_factory=list)
    in_error: list[bool] = field(default_factory=list)

    def add(self, rows, start, cap_end, rep_len, linktype: int, in_error: bool) -> None:
        if len(rows):
            self.rows.append(rows)
            self.start.append(start)
            self.cap_end.append(cap_end)
            self.rep_len.append(rep_len)
            self.linktype.append(np.full(len(rows), linktype, dtype=np.int64))
            self.in_error.append(in_error)

    def frames(self, buf: np.ndarray) -> Iterator[tuple[np.ndarray, Frames]]:
        """Each group of inner packets as (rows of the outer frames, the inner packets as frames of their own)."""
        for rows, start, cap_end, rep_len, linktype, in_error in zip(
            self.rows, self.start, self.cap_end, self.rep_len, self.linktype, self.in_error, strict=True
        ):
            caplen, length = np.maximum(cap_end - start, 0), np.maximum(rep_len, 0)
            yield rows, Frames(buf=buf, start=start, caplen=caplen, length=length, linktype=linktype, in_error=in_error)


def header_bytes(buf: np.ndarray, start: np.ndarray) -> np.ndarray:
    """(n, HEADER_BYTES) uint8 array of each frame's first bytes (bytes past a frame's end are junk)."""
    words = np.ndarray(shape=(len(buf) - 7,), dtype=np.uint64, buffer=buf, strides=(1,))
    out = np.empty((len(start), _WORDS), dtype=np.uint64)
    for j in range(_WORDS):
        out[:, j] = words[start + 8 * j]
    return out.view(np.uint8).reshape(len(start), HEADER_BYTES)


class FrameReader:
    """Reads at per-frame offsets, within the header array or (past it) from the flat buffer."""

    def __init__(self, frames: Frames, hdr: np.ndarray | None = None) -> None:
        self.frames = frames
        self.hdr = header_bytes(frames.buf, frames.start) if hdr is None else hdr
        self.flat = self.hdr.reshape(-1)
        self.rows = np.arange(len(frames.start))
        self.base = self.rows * HEADER_BYTES
        self.cap = frames.caplen

    def take(self, idx: np.ndarray) -> FrameReader:
        """The same reads over a subset of the frames (for protocols few frames carry)."""
        f = self.frames
        sub = Frames(
            buf=f.buf, start=f.start[idx], caplen=f.caplen[idx], length=f.length[idx], linktype=f.linktype[idx]
        )
        return FrameReader(sub, self.hdr[idx])

    def u8(self, pos: np.ndarray) -> np.ndarray:
        pos = np.asarray(pos, dtype=np.int64)
        if len(pos) and 0 <= pos.min() and pos.max() < HEADER_BYTES:
            return self.flat[self.base + pos].astype(np.int64)
        out = self.flat[self.base + np.clip(pos, 0, HEADER_BYTES - 1)].astype(np.int64)
        far = (pos >= HEADER_BYTES) & (pos < self.cap)
        if far.any():
            where = self.frames.start[far] + pos[far]
            out[far] = self.frames.buf[np.minimum(where, len(self.frames.buf) - 1)]
        return out

    def u16(self, pos: np.ndarray) -> np.ndarray:
        return (self.u8(pos) << 8) | self.u8(pos + 1)

    def u32(self, pos: np.ndarray) -> np.ndarray:
        return (self.u16(pos) << 16) | self.u16(pos + 2)

    def col16(self, k: int) -> np.ndarray:
        return (self.hdr[:, k].astype(np.int64) << 8) | self.hdr[:, k + 1]

    def mac(self, pos: np.ndarray) -> np.ndarray:
        out = np.zeros(len(self.rows), dtype=np.uint64)
        for i in range(6):
            out = (out << np.uint64(8)) | self.u8(pos + i).astype(np.uint64)
        return out

    def mac_at(self, k: int) -> np.ndarray:
        """The MAC address at the same offset ``k`` of every frame (within the header array)."""
        out = np.zeros(len(self.rows), dtype=np.uint64)
        for i in range(6):
            out = (out << np.uint64(8)) | self.hdr[:, k + i].astype(np.uint64)
        return out

    def ipv4(self, pos: np.ndarray) -> np.ndarray:
        return self.u32(pos).astype(np.uint32)

    def ipv6(self, pos: np.ndarray) -> np.ndarray:
        cols = np.stack([self.u8(pos + i).astype(np.uint8) for i in range(16)], axis=1)
        return np.ascontiguousarray(cols).view("V16").ravel()
