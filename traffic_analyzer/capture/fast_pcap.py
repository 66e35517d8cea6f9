"""Reading pcap/pcapng files in-process: bounded chunks of raw frames -> packet-table chunks.

:class:`FastPcapSource` gives the same packet table as :class:`~.pcap_file.PcapFileSource`
(tshark's field output) for the fields it decodes, without a tshark process and without a
Python object per packet on the hot path: the file is read in chunks of ``chunk_bytes``,
a tight loop over record headers finds where the frames are, and the frames are decoded
with numpy (:mod:`traffic_analyzer.packets.decode_batch`). Where it differs from tshark, and
why, is listed in ``bench/RESULTS.md`` and asserted in ``tests/integration/test_fast_pcap.py``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CaptureError, TruncatedCaptureError
from ..packets.decode_batch import FrameDecoder
from ..packets.decode_frames import HEADER_BYTES, LINK_TYPE_NAMES, Frames
from .pcap_file import check_capture_file
from .progress import file_progress_bar
from .source import CaptureStats

CHUNK_BYTES = 4 * 2**20  # file bytes read at a time
BATCH_FRAMES = 16_384  # frames decoded together (one packet table) at most: smaller is leaner and, cache-warm, faster
MAX_FRAME_BYTES = 262_144  # wiretap's WTAP_MAX_PACKET_SIZE_STANDARD: a bigger record means a damaged file
MAX_BLOCK_BYTES = 16 * 2**20  # a pcapng block claiming more than this is taken as damage
PCAP_HEADER_BYTES = 24
PCAP_RECORD_BYTES = 16
LINKTYPE_MASK = 0x03FFFFFF  # the upper bits of a pcap link type carry FCS information
PCAPNG_SHB, PCAPNG_IDB, PCAPNG_PB, PCAPNG_SPB, PCAPNG_EPB = 0x0A0D0D0A, 1, 2, 3, 6
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D
IDB_OPT_TSRESOL, IDB_OPT_TSOFFSET = 9, 14
PCAPNG_PACKET_HEADER_BYTES = 28  # block type, length, interface, timestamp (2 words), captured and wire length
PCAPNG_SIMPLE_HEADER_BYTES = 12  # block type, length, wire length
NANOSECONDS = 1_000_000_000

# pcap magic (as read little-endian) -> (byte order of the file, timestamp fraction units per second)
_PCAP_MAGICS = {
    0xA1B2C3D4: ("<", 1_000_000),
    0xD4C3B2A1: (">", 1_000_000),
    0xA1B23C4D: ("<", NANOSECONDS),
    0x4D3CB2A1: (">", NANOSECONDS),
}


@dataclass
class _Records:
    """Where the frames of a chunk are, and their record-header values."""

    start: np.ndarray
    caplen: np.ndarray
    length: np.ndarray
    ts: np.ndarray
    linktype: np.ndarray
    block: np.ndarray  # where each frame's pcap record header or pcapng block starts in the chunk
    ns: np.ndarray  # capture time in integer epoch nanoseconds (exact, unlike ts)

    @classmethod
    def empty(cls) -> _Records:
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z, z, np.zeros(0), z, z, z)

    def slice(self, lo: int, hi: int) -> _Records:
        return _Records(
            self.start[lo:hi],
            self.caplen[lo:hi],
            self.length[lo:hi],
            self.ts[lo:hi],
            self.linktype[lo:hi],
            self.block[lo:hi],
            self.ns[lo:hi],
        )


class UnsupportedLinkTypeError(CaptureError):
    """The capture holds frames of a link type the fast decoders do not know; tshark can read it."""


class _DamagedFile(Exception):
    """The file says something impossible (tshark: 'appears to be damaged or corrupt')."""


class _CutShort(Exception):
    """The file ends inside a record (tshark: 'cut short in the middle of a packet')."""


class FastPcapSource:
    """Packets of a pcap/pcapng file, decoded in-process into packet-table chunks.

    Parameters
    ----------
    path : str or Path
        The capture file.
    progress : bool
        Show a progress bar on stderr (as :class:`~.pcap_file.PcapFileSource` does).
    chunk_bytes : int
        File bytes read and decoded at a time; memory use is a small multiple of it.
    """

    def __init__(self, path: str | Path, progress: bool = True, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.path = Path(path)
        self.progress = progress
        self.chunk_bytes = chunk_bytes
        self.stats = CaptureStats(source=f"file {self.path}")
        self._stopped = False

    def check(self) -> None:
        """Fail now, with one line, if the file is missing, not a capture, or of a link type we cannot read.

        An unknown link type raises :class:`UnsupportedLinkTypeError`, so a caller can fall back to
        :class:`~.pcap_file.PcapFileSource` for that file.
        """
        check_capture_file(self.path)
        if self.chunk_bytes < 2 * MAX_FRAME_BYTES:
            raise CaptureError(f"chunk_bytes must be at least {2 * MAX_FRAME_BYTES}, not {self.chunk_bytes}")
        _check_linktypes(self.path, _declared_linktypes(self.path))

    def stop(self) -> None:
        self._stopped = True

    def batches(self) -> Iterator[pd.DataFrame]:
        self.check()
        bar = file_progress_bar(self.path, self.progress)
        decoder = FrameDecoder()
        try:
            with self.path.open("rb") as fh:
                reader = _open_reader(fh, self.path)
                for chunk, records, consumed in reader.chunks(self.chunk_bytes):
                    bar.update(consumed)
                    # Decoding memory grows with frames, not bytes: small frames are decoded in parts,
                    # and a chunk's parts go on as one table (late packets stay with their window).
                    parts = []
                    for lo in range(0, len(records.start), BATCH_FRAMES):
                        part = records.slice(lo, lo + BATCH_FRAMES)
                        parts.append(decoder.table(_frames(chunk, part), part.ts))
                    if parts:
                        packets = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
                        self.stats.packets += len(packets)
                        self.stats.bytes += int(records.length.sum())
                        yield packets
                    if self._stopped:
                        break
        except _DamagedFile:
            self.stats.finished = True
            raise TruncatedCaptureError(
                f"{self.path} is damaged: analysed the {self.stats.packets} packets before the damage"
            ) from None
        except _CutShort:
            self.stats.finished = True
            raise TruncatedCaptureError(
                f"{self.path} is cut short: analysed the {self.stats.packets} packets before the cut"
            ) from None
        finally:
            bar.close()
        self.stats.finished = True


def _frames(chunk: np.ndarray, records: _Records) -> Frames:
    return Frames(
        buf=chunk,
        start=records.start,
        caplen=records.caplen,
        length=records.length,
        linktype=records.linktype,
    )


def _open_reader(fh, path: Path):
    head = fh.read(PCAP_HEADER_BYTES)
    magic = struct.unpack("<I", head[:4])[0]
    if magic == PCAPNG_SHB:
        return _PcapngReader(fh, path, head)
    if len(head) < PCAP_HEADER_BYTES:
        raise _CutShort
    order, units = _PCAP_MAGICS[magic]
    linktype = struct.unpack(order + "I", head[20:24])[0] & LINKTYPE_MASK
    _check_linktypes(path, [linktype])
    return _PcapReader(fh, order, units, linktype)


LINKTYPE_SCAN_BYTES = 2**20  # check() looks for pcapng interface blocks in this much of the file


def _declared_linktypes(path: Path) -> list[int]:
    """Link types a file declares up front: the pcap header's, or the pcapng interfaces near its start."""
    with path.open("rb") as fh:
        head = fh.read(LINKTYPE_SCAN_BYTES)
    if len(head) < PCAP_HEADER_BYTES:
        return []
    magic = struct.unpack("<I", head[:4])[0]
    if magic in _PCAP_MAGICS:
        return [struct.unpack(_PCAP_MAGICS[magic][0] + "I", head[20:24])[0] & LINKTYPE_MASK]
    found, off = [], 0
    order = "<" if head[8:12] == struct.pack("<I", PCAPNG_BYTE_ORDER_MAGIC) else ">"
    while off + 16 <= len(head):
        block_type, total = struct.unpack_from(order + "II", head, off)
        if total < 12 or total % 4:
            break
        if block_type == PCAPNG_IDB:
            found.append(struct.unpack_from(order + "H", head, off + 8)[0])
        off += total
    return found


def _check_linktypes(path: Path, linktypes) -> None:
    for linktype in set(linktypes):
        if linktype not in LINK_TYPE_NAMES:
            known = ", ".join(f"{k} ({v})" for k, v in sorted(LINK_TYPE_NAMES.items()))
            raise UnsupportedLinkTypeError(
                f"{path} has packets of link type {linktype}, which the fast reader cannot decode "
                f"(it reads {known}); use the tshark reader for this file"
            )


_PAD = HEADER_BYTES + 8  # zero bytes after a chunk: header gathers of its last frames stay inside it


class _ChunkedFile:
    """File bytes in numpy chunks: what was left of the last chunk, fresh bytes, then zero padding."""

    def __init__(self, fh, head: bytes) -> None:
        self.fh = fh
        self.pending = np.frombuffer(head, dtype=np.uint8).copy()

    def read(self, chunk_bytes: int) -> tuple[np.ndarray, int, bool]:
        """(buffer, valid bytes in it, whether the file is exhausted)."""
        k = len(self.pending)
        buf = np.empty(k + chunk_bytes + _PAD, dtype=np.uint8)
        buf[:k] = self.pending
        got = self.fh.readinto(memoryview(buf)[k : k + chunk_bytes]) or 0
        n = k + got
        buf[n : n + _PAD] = 0
        return buf, n, got < chunk_bytes

    def keep(self, buf: np.ndarray, off: int, n: int) -> None:
        self.pending = buf[off:n].copy()


class _PcapReader:
    """Classic pcap: a 24-byte file header, then 16-byte record headers each followed by a frame."""

    def __init__(self, fh, order: str, units: int, linktype: int) -> None:
        self.file = _ChunkedFile(fh, b"")
        self.order = order
        self.units = units
        self.linktype = linktype

    def chunks(self, chunk_bytes: int):
        incl = struct.Struct(self.order + "I").unpack_from
        while True:
            buf, n, at_end = self.file.read(chunk_bytes)
            offsets: list[int] = []
            append = offsets.append
            off = 0
            damaged = False
            # The only per-record Python work: follow the chain of record lengths.
            while off + PCAP_RECORD_BYTES <= n:
                size = incl(buf, off + 8)[0]
                if size > MAX_FRAME_BYTES:
                    damaged = True
                    break
                if off + PCAP_RECORD_BYTES + size > n:
                    break
                append(off)
                off += PCAP_RECORD_BYTES + size
            yield buf, self._records(buf, np.array(offsets, dtype=np.int64)), off
            if damaged:
                raise _DamagedFile
            if at_end:
                if off < n:
                    raise _CutShort
                return
            self.file.keep(buf, off, n)

    def _records(self, buf: np.ndarray, offsets: np.ndarray) -> _Records:
        if len(offsets) == 0:
            return _Records.empty()
        words = np.ndarray(shape=(len(buf) - 3,), dtype=np.dtype(self.order + "u4"), buffer=buf, strides=(1,))
        sec, frac, caplen, length = (words[offsets + 4 * k].astype(np.int64) for k in range(4))
        nsec = frac * (NANOSECONDS // self.units)
        return _Records(
            start=offsets + PCAP_RECORD_BYTES,
            caplen=caplen,
            length=length,
            ts=_epoch(sec, nsec),
            linktype=np.full(len(offsets), self.linktype, dtype=np.int64),
            block=offsets,
            ns=sec * NANOSECONDS + nsec,
        )


EXACT_SUM_LIMIT = 2**53  # integers below this are exact in a float64


def _epoch(sec: np.ndarray, nsec: np.ndarray) -> np.ndarray:
    """Epoch seconds exactly as pandas parses tshark's frame.time_epoch text ("sec.nnnnnnnnn").

    That text is rounded to the nearest float64 once. ``sec + nsec / 1e9`` rounds twice, which is
    still exact from 2**20 s on (the decimal fraction never lies that close to a rounding
    boundary); below, ``(sec * 1e9 + nsec) / 1e9`` is a single rounding of an exact integer.
    """
    digits = np.maximum(9, np.floor(np.log10(np.maximum(nsec, 1))).astype(np.int64) + 1)
    scale = 10.0**digits
    sec_f = sec.astype(np.float64)
    whole = sec_f * scale + nsec
    exact = whole < EXACT_SUM_LIMIT
    return np.where(exact, whole / scale, sec_f + nsec / scale)


@dataclass
class _Interface:
    linktype: int
    snaplen: int
    units_per_second: int = 1_000_000
    offset_s: int = 0


class _PcapngReader:
    """pcapng: a loop over block headers (type, length) that collects packet blocks into arrays."""

    def __init__(self, fh, path: Path, head: bytes) -> None:
        self.file = _ChunkedFile(fh, head)
        self.path = path
        self.order = "<"
        self.interfaces: list[_Interface] = []
        # Section header and interface blocks of the last chunk, for copying packet blocks out
        # (traffic_analyzer.capture.pcap_cut): (offset in the chunk, length, packet records before it).
        self.meta: list[tuple[int, int, int]] = []
        self._simple: list[int] = []  # starts of the last chunk's simple packet blocks (their header is shorter)

    def chunks(self, chunk_bytes: int):
        while True:
            buf, n, at_end = self.file.read(chunk_bytes)
            cols, off, damaged = self._blocks(buf, n)
            yield buf, self._records(cols), off
            if damaged:
                raise _DamagedFile
            if at_end:
                if off < n:
                    raise _CutShort
                return
            self.file.keep(buf, off, n)

    def _blocks(self, buf: np.ndarray, n: int):
        starts: list[int] = []
        caplens: list[int] = []
        lengths: list[int] = []
        iface_ids: list[int] = []
        stamps: list[int] = []
        off = 0
        u32 = struct.Struct(self.order + "I").unpack_from
        epb = struct.Struct(self.order + "IIIII").unpack_from
        self.meta, self._simple = [], []
        while off + 12 <= n:
            block_type = u32(buf, off)[0]
            if block_type == PCAPNG_SHB:
                order = "<" if struct.unpack_from("<I", buf, off + 8)[0] == PCAPNG_BYTE_ORDER_MAGIC else ">"
                if struct.unpack_from(order + "I", buf, off + 8)[0] != PCAPNG_BYTE_ORDER_MAGIC:
                    return (starts, caplens, lengths, iface_ids, stamps), off, True
                if order != self.order:
                    self.order = order
                    u32 = struct.Struct(order + "I").unpack_from
                    epb = struct.Struct(order + "IIIII").unpack_from
                block_type = u32(buf, off)[0]
            total = u32(buf, off + 4)[0]
            if total < 12 or total % 4 or total > MAX_BLOCK_BYTES:
                return (starts, caplens, lengths, iface_ids, stamps), off, True
            if off + total > n:
                break
            if u32(buf, off + total - 4)[0] != total:  # wiretap: "total block lengths ... don't match"
                return (starts, caplens, lengths, iface_ids, stamps), off, True
            body = off + 8
            if block_type == PCAPNG_EPB or block_type == PCAPNG_PB:
                if total < 32:
                    return (starts, caplens, lengths, iface_ids, stamps), off, True
                if block_type == PCAPNG_EPB:
                    iface, hi, lo, caplen, length = epb(buf, body)
                else:
                    iface = struct.unpack_from(self.order + "H", buf, body)[0]
                    hi, lo, caplen, length = struct.unpack_from(self.order + "IIII", buf, body + 4)
                if caplen > MAX_FRAME_BYTES or caplen > total - 32 or iface >= len(self.interfaces):
                    return (starts, caplens, lengths, iface_ids, stamps), off, True
                starts.append(body + 20)
                caplens.append(caplen)
                lengths.append(length)
                iface_ids.append(iface)
                stamps.append((hi << 32) | lo)
            elif block_type == PCAPNG_SPB:
                if not self.interfaces or total < 16:
                    return (starts, caplens, lengths, iface_ids, stamps), off, True
                length = u32(buf, body)[0]
                caplen = min(length, self.interfaces[0].snaplen or length)
                # wiretap reads the trailer right after the padded data: a block of another size is damage
                if caplen > MAX_FRAME_BYTES or 16 + caplen + (-caplen % 4) != total:
                    return (starts, caplens, lengths, iface_ids, stamps), off, True
                starts.append(body + 4)
                self._simple.append(body + 4)
                caplens.append(caplen)
                lengths.append(length)
                iface_ids.append(0)
                stamps.append(0)
            elif block_type == PCAPNG_SHB:
                self.interfaces = []
                self.meta.append((off, total, len(starts)))
            elif block_type == PCAPNG_IDB:
                interface = self._interface(buf, body, off + total - 4) if total >= 20 else None
                if interface is None:
                    return (starts, caplens, lengths, iface_ids, stamps), off, True
                self.interfaces.append(interface)
                self.meta.append((off, total, len(starts)))
            off += total
        return (starts, caplens, lengths, iface_ids, stamps), off, False

    def _interface(self, buf: np.ndarray, body: int, end: int) -> _Interface | None:
        """The interface an IDB describes; None if an option runs past the block (wiretap: damage)."""
        linktype, _, snaplen = struct.unpack_from(self.order + "HHI", buf, body)
        iface = _Interface(linktype=linktype, snaplen=snaplen)
        pos = body + 8
        while pos + 4 <= end:
            code, size = struct.unpack_from(self.order + "HH", buf, pos)
            if pos + 4 + size > end:
                return None
            if code == 0:
                break
            if code == IDB_OPT_TSRESOL and size >= 1:
                exp = int(buf[pos + 4])
                iface.units_per_second = 2 ** (exp & 0x7F) if exp & 0x80 else 10 ** (exp & 0x7F)
            elif code == IDB_OPT_TSOFFSET and size >= 8:
                iface.offset_s = struct.unpack_from(self.order + "q", buf, pos + 4)[0]
            pos += 4 + size + (-size % 4)
        return iface

    def _records(self, cols) -> _Records:
        starts, caplens, lengths, iface_ids, stamps = cols
        if not starts:
            return _Records.empty()
        iface_ids = np.array(iface_ids, dtype=np.int64)
        used = np.unique(iface_ids)
        _check_linktypes(self.path, [self.interfaces[i].linktype for i in used.tolist()])
        stamp = np.array(stamps, dtype=np.uint64)
        sec = np.zeros(len(stamp), dtype=np.int64)
        nsec = np.zeros(len(stamp), dtype=np.int64)
        linktype = np.zeros(len(stamp), dtype=np.int64)
        for i in used.tolist():
            sel = iface_ids == i
            iface = self.interfaces[i]
            sec[sel], nsec[sel] = _split_units(stamp[sel], iface.units_per_second)
            sec[sel] += iface.offset_s
            linktype[sel] = iface.linktype
        start = np.array(starts, dtype=np.int64)
        block = start - PCAPNG_PACKET_HEADER_BYTES
        if self._simple:
            simple = np.isin(start, self._simple)
            block[simple] = start[simple] - PCAPNG_SIMPLE_HEADER_BYTES
        return _Records(
            start=start,
            caplen=np.array(caplens, dtype=np.int64),
            length=np.array(lengths, dtype=np.int64),
            ts=_epoch(sec, nsec),
            linktype=linktype,
            block=block,
            ns=sec * NANOSECONDS + nsec,
        )


def _split_units(stamp: np.ndarray, units: int) -> tuple[np.ndarray, np.ndarray]:
    """(seconds, nanoseconds) of pcapng timestamps counted in 1/units seconds, as wiretap splits them."""
    if units < 2**63 and (NANOSECONDS % units == 0 or units % NANOSECONDS == 0):
        u = np.uint64(units)
        sec, rem = stamp // u, stamp % u
        if NANOSECONDS % units == 0:
            nsec = rem * np.uint64(NANOSECONDS // units)
        else:
            nsec = rem // np.uint64(units // NANOSECONDS)
        return sec.astype(np.int64), nsec.astype(np.int64)
    # An unusual resolution (a power of two): exact integer arithmetic, one value at a time.
    values = [int(v) for v in stamp.tolist()]
    sec = np.array([v // units for v in values], dtype=np.int64)
    nsec = np.array([(v % units) * NANOSECONDS // units for v in values], dtype=np.int64)
    return sec, nsec
