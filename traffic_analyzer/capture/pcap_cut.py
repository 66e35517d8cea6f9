"""Cut frames out of capture files in-process, by capture time and by the addresses of their first layers.

One pass over a file serves any number of :class:`Selection` (all the alerts of a run at once).
The record chain is walked as the fast reader walks it (:mod:`.fast_pcap`); only the frames
inside some selection's time span are decoded, and only as far as their addresses
(:func:`~traffic_analyzer.packets.decode_layers.decode_layers`, quoted and tunnelled packets
included): an address belongs to a frame's *first* layer of its protocol, as in the packet
table and as Wireshark's layer operator says it (``ip.addr#1``). A selected frame is copied as
it is in the file, so an output keeps its input's format:

- classic pcap: the file's own 24-byte header, then the selected records;
- pcapng: the section header and interface description blocks in force, then the selected
  packet blocks (a new section whenever those change, e.g. from one capture run to another).

Each output keeps the first ``max_packets`` frames that fit in ``max_bytes`` of file, headers
included; it is written under a temporary name and renamed once complete.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CaptureError
from ..packets.decode_batch import MAX_NESTING
from ..packets.decode_fields import FieldSet
from ..packets.decode_frames import Frames
from ..packets.decode_layers import decode_layers
from .fast_pcap import (
    BATCH_FRAMES,
    CHUNK_BYTES,
    PCAP_HEADER_BYTES,
    PCAP_RECORD_BYTES,
    PCAPNG_SHB,
    _CutShort,
    _DamagedFile,
    _open_reader,
    _PcapngReader,
    _Records,
)
from .frame_hash import LINKTYPE_ETHERNET, frame_number

# A frame's first layer of each protocol -> the fields holding that layer's two addresses.
LAYER_FIELDS = {"eth": ("eth.src", "eth.dst"), "ip": ("ip.src", "ip.dst"), "ipv6": ("ipv6.src", "ipv6.dst")}
ADDRESS_FIELDS = tuple(name for pair in LAYER_FIELDS.values() for name in pair)
SHB_SECTION_LENGTH = slice(16, 24)  # a copied section header says "length unknown" (-1): the copy is shorter
UNKNOWN_SECTION_LENGTH = b"\xff" * 8
PCAPNG_MAGIC = struct.pack("<I", PCAPNG_SHB)
CLASSIC_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")


@dataclass(frozen=True)
class Address:
    """An address of a frame's first ``layer`` layer (eth, ip or ipv6): Wireshark's ``layer.addr#1 == text``."""

    layer: str
    text: str

    def __post_init__(self) -> None:
        if self.layer not in LAYER_FIELDS:
            raise ValueError(f"layer must be one of {', '.join(LAYER_FIELDS)}, not {self.layer!r}")

    def value(self) -> int | tuple[int, int]:
        """The address as the decoders hold it: a 48-bit MAC, an IPv4 uint32, or an IPv6's two native words."""
        return _address_value(self.layer, self.text)


@functools.lru_cache(maxsize=4096)
def _address_value(layer: str, text: str) -> int | tuple[int, int]:
    if layer == "eth":
        return int(text.replace(":", ""), 16)
    if layer == "ip":
        return int(ipaddress.IPv4Address(text))
    hi, lo = np.frombuffer(ipaddress.IPv6Address(text).packed, dtype=np.uint64)
    return int(hi), int(lo)


@dataclass(frozen=True)
class Selection:
    """Frames captured from ``first_ns`` to ``last_ns`` (epoch nanoseconds, both included) that carry,
    for every group of ``all_of``, one of its addresses; they go to ``out``."""

    out: Path
    first_ns: int
    last_ns: int
    all_of: tuple[tuple[Address, ...], ...] = ()


class FrameCutter:
    """Writes the frames of :class:`Selection` s, read from one capture file after another.

    ``read`` may be called for several files (the files of a ring buffer, oldest first); each
    selection's frames are appended in the order read. ``close`` renames every output into place
    and returns how many frames each holds; ``abort`` removes what was written.
    """

    def __init__(self, max_packets: int, max_bytes: int, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.max_packets = max_packets
        self.max_bytes = max_bytes
        self.chunk_bytes = chunk_bytes
        self._outputs: dict[Path, _Output] = {}

    def read(self, path: Path, selections: list[Selection]) -> tuple[int, int] | None:
        """Cut the ``selections`` out of the capture file ``path``; returns the span of its frames' times (ns).

        A file that ends inside a record (still being written) or is damaged gives the frames before
        that. Raises UnsupportedLinkTypeError for frames the decoders cannot read (tshark can cut
        them: :mod:`.pcap_extract`), CaptureError for what is not a capture or cannot be joined.
        """
        outputs = [self._output(s.out) for s in selections]
        spans = _merged_spans(selections)
        wanted = _Wanted.of(selections)
        seen: tuple[int, int] | None = None
        with path.open("rb") as fh:
            head = fh.read(PCAP_HEADER_BYTES)
            fh.seek(0)
            if len(head) < PCAP_HEADER_BYTES:
                return None  # no frames yet: a ring file dumpcap has only just begun
            if head[:4] not in (PCAPNG_MAGIC, *CLASSIC_MAGICS):
                raise CaptureError(f"{path} is not a pcap or pcapng capture file")
            reader = _open_reader(fh, path)
            source = _Source(head if head[:4] != PCAPNG_MAGIC else b"", isinstance(reader, _PcapngReader))
            try:
                for buf, records, _ in reader.chunks(self.chunk_bytes):
                    segments = source.segments(buf, reader)
                    for output in outputs:
                        output.first_header = output.first_header or segments.headers[-1] or None
                    if len(records.ns):
                        low, high = int(records.ns.min()), int(records.ns.max())
                        seen = (low, high) if seen is None else (min(seen[0], low), max(seen[1], high))
                        self._chunk(buf, records, segments, selections, outputs, spans, wanted)
                    for output in outputs:
                        output.flush()
            except (_CutShort, _DamagedFile):
                for output in outputs:
                    output.flush()
        return seen

    def close(self) -> dict[Path, int]:
        """Put every output in place (one with no frames still gets its file's header); frames per output."""
        kept = {}
        for out, output in self._outputs.items():
            output.finish()
            kept[out] = output.packets
        self._outputs = {}
        return kept

    def abort(self) -> None:
        for output in self._outputs.values():
            output.tmp.unlink(missing_ok=True)
        self._outputs = {}

    def _output(self, out: Path) -> _Output:
        if out not in self._outputs:
            self._outputs[out] = _Output(Path(out), self.max_packets, self.max_bytes)
        return self._outputs[out]

    def _chunk(self, buf, records: _Records, segments, selections, outputs, spans, wanted: _Wanted) -> None:
        ns = records.ns
        rows = np.flatnonzero(_inside(ns, *spans))
        if len(rows) == 0:
            return
        row_ns = ns[rows]
        low, high = int(row_ns.min()), int(row_ns.max())
        candidates = addresses = None
        for selection, output in zip(selections, outputs, strict=True):
            if output.full or selection.first_ns > high or selection.last_ns < low:
                continue
            match = (row_ns >= selection.first_ns) & (row_ns <= selection.last_ns)
            if selection.all_of and match.any():
                if addresses is None:
                    # only frames that may carry a wanted address are decoded: most frames of a span are others'
                    candidates = np.flatnonzero(_may_carry(buf, records, rows, wanted))
                    addresses = _first_addresses(buf, records, rows[candidates])
                carried = np.ones(len(candidates), dtype=bool)
                for group in selection.all_of:
                    carried &= _carries(addresses, group)
                hit = np.zeros(len(rows), dtype=bool)
                hit[candidates[carried]] = True
                match &= hit
            if match.any():
                output.add(buf, records, rows[match], segments)


@dataclass
class _Segments:
    """The records of one chunk by the section header in force: record i has ``headers[k]``, where
    k counts the ``befores`` <= i."""

    befores: list[int]
    headers: list[bytes]
    orders: list[str]
    classic: bool

    def sizes(self, buf: np.ndarray, records: _Records, rows: np.ndarray) -> np.ndarray:
        """Bytes of each record (classic: record header + frame; pcapng: the whole block)."""
        if self.classic:
            return records.caplen[rows] + PCAP_RECORD_BYTES
        seg = np.searchsorted(self.befores, rows, side="right")
        out = np.empty(len(rows), dtype=np.int64)
        for k in np.unique(seg).tolist():
            words = np.ndarray(shape=(len(buf) - 3,), dtype=np.dtype(self.orders[k] + "u4"), buffer=buf, strides=(1,))
            here = seg == k
            out[here] = words[records.block[rows[here]] + 4]
        return out


class _Source:
    """The header of the file being read that its frames need in an output, as it changes."""

    def __init__(self, classic_header: bytes, pcapng: bool) -> None:
        self.pcapng = pcapng
        self.header = classic_header
        self.order = "<"

    def segments(self, buf: np.ndarray, reader) -> _Segments:
        if not self.pcapng:
            return _Segments([], [self.header], [self.order], classic=True)
        befores, headers, orders = [], [self.header], [self.order]
        for off, total, before in reader.meta:
            block = bytes(buf[off : off + total])
            if block[:4] == PCAPNG_MAGIC:
                self.order = "<" if block[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
                length = SHB_SECTION_LENGTH
                self.header = block[: length.start] + UNKNOWN_SECTION_LENGTH + block[length.stop :]
            else:
                self.header += block
            befores.append(before)
            headers.append(self.header)
            orders.append(self.order)
        return _Segments(befores, headers, orders, classic=False)


class _Output:
    """One output file: its header as written so far, its size and frame count under the caps."""

    def __init__(self, out: Path, max_packets: int, max_bytes: int) -> None:
        self.out = out
        self.tmp = out.with_name(f".{out.name}.part")
        self.max_packets = max_packets
        self.max_bytes = max_bytes
        self.header: bytes | None = None  # the header the frames written last belong to
        self.first_header: bytes | None = None  # for an output with no frames at all
        self.size = 0
        self.packets = 0
        self.full = False
        self._pending: list = []
        self._started = False

    def add(self, buf: np.ndarray, records: _Records, rows: np.ndarray, segments: _Segments) -> None:
        sizes = segments.sizes(buf, records, rows)
        seg = np.searchsorted(segments.befores, rows, side="right") if segments.befores else np.zeros(len(rows), int)
        view = memoryview(buf)
        for k in np.unique(seg).tolist():
            here = seg == k
            if not self._add(view, segments.headers[k], records.block[rows[here]], sizes[here], segments.classic):
                return

    def _add(self, view, header: bytes, blocks: np.ndarray, sizes: np.ndarray, classic: bool) -> bool:
        """Append the records that fit; False once the caps are reached."""
        if self.full:
            return False
        if self.header is None or self.header == header:
            extra = b"" if self.header is not None else header
        elif classic:
            raise CaptureError("classic pcap files of different link types or time resolutions cannot be joined")
        elif header.startswith(self.header):
            extra = header[len(self.header) :]  # interfaces added to the same section
        else:
            extra = header
        room = min(self.max_packets - self.packets, len(sizes))
        fits = int(np.searchsorted(np.cumsum(sizes[:room]), self.max_bytes - self.size - len(extra), side="right"))
        if fits == 0:
            self.full = True
            return False
        if extra:
            self._pending.append(extra)
            self.header = header
        kept = zip(blocks[:fits].tolist(), sizes[:fits].tolist(), strict=True)
        self._pending.extend(view[b : b + n] for b, n in kept)
        self.size += len(extra) + int(sizes[:fits].sum())
        self.packets += fits
        if fits < len(sizes) or self.packets >= self.max_packets:
            self.full = True
            return False
        return True

    def flush(self) -> None:
        if not self._pending:
            return
        with self.tmp.open("ab" if self._started else "wb") as fh:
            fh.write(b"".join(self._pending))
        self._pending = []
        self._started = True

    def finish(self) -> None:
        self.flush()
        if not self._started:
            if self.first_header is None:
                return  # nothing read that says what the file would be
            self.tmp.write_bytes(self.first_header)
        os.replace(self.tmp, self.out)


def _merged_spans(selections: list[Selection]) -> tuple[np.ndarray, np.ndarray]:
    """The union of the selections' time spans as sorted, disjoint [low, high] arrays."""
    lows, highs = [], []
    for first, last in sorted((s.first_ns, s.last_ns) for s in selections):
        if highs and first <= highs[-1]:
            highs[-1] = max(highs[-1], last)
        else:
            lows.append(first)
            highs.append(last)
    return np.array(lows, dtype=np.int64), np.array(highs, dtype=np.int64)


def _inside(ns: np.ndarray, lows: np.ndarray, highs: np.ndarray) -> np.ndarray:
    at = np.searchsorted(lows, ns, side="right") - 1
    return (at >= 0) & (ns <= highs[np.maximum(at, 0)]) if len(lows) else np.zeros(len(ns), dtype=bool)


@dataclass(frozen=True)
class _Wanted:
    """Every address some selection asks for, as the byte-level prefilter compares them."""

    ipv4: np.ndarray  # uint64 values of IPv4 addresses
    macs: np.ndarray  # uint64 values of MAC addresses
    ipv6: bool  # some selection asks for an IPv6 address (which a tunnel may carry inside IPv4)

    @staticmethod
    def of(selections: list[Selection]) -> _Wanted:
        wanted = [a for s in selections for group in s.all_of for a in group]
        values = {layer: [int(a.value()) for a in wanted if a.layer == layer] for layer in ("ip", "eth")}
        return _Wanted(
            np.array(values["ip"], dtype=np.uint64),
            np.array(values["eth"], dtype=np.uint64),
            any(a.layer == "ipv6" for a in wanted),
        )


def _may_carry(buf: np.ndarray, records: _Records, rows: np.ndarray, wanted: _Wanted) -> np.ndarray:
    """Which of the frames ``rows`` may carry a wanted address, read from fixed offsets of their bytes.

    A frame is ruled out only when that is certain: Ethernet with IPv4 right after it (or after one VLAN
    tag), a whole IPv4 header, neither MAC nor either IPv4 address wanted, and, when an IPv6 address is
    wanted, TCP inside (no tunnel that could carry IPv6). Its first eth and ip layers are then those
    bytes. Every other frame is decoded as before.
    """
    start, caplen = records.start[rows], records.caplen[rows]

    def number(offset: np.ndarray | int, size: int) -> np.ndarray:
        return frame_number(buf, start, caplen, offset, size)

    ethertype = number(12, 2)
    tagged = ethertype == 0x8100
    l3 = np.where(tagged, 18, 14)
    ethertype = np.where(tagged, number(16, 2), ethertype)
    version_ihl = number(l3, 1)
    plain = (records.linktype[rows] == LINKTYPE_ETHERNET) & (ethertype == 0x0800) & (caplen >= l3 + 20)
    plain &= (version_ihl >> np.uint64(4) == 4) & ((version_ihl & np.uint64(0x0F)) >= 5)
    if wanted.ipv6:
        plain &= number(l3 + 9, 1) == 6
    others = np.isin(number(l3 + 12, 4), wanted.ipv4) | np.isin(number(l3 + 16, 4), wanted.ipv4)
    others |= np.isin(number(0, 6), wanted.macs) | np.isin(number(6, 6), wanted.macs)
    return ~plain | others


def _first_addresses(buf: np.ndarray, records: _Records, rows: np.ndarray) -> FieldSet:
    """The address fields of the frames ``rows``, inner packets filling what the outer layers lack."""
    out = FieldSet(len(rows))
    for lo in range(0, len(rows), BATCH_FRAMES):
        part = rows[lo : lo + BATCH_FRAMES]
        frames = Frames(
            buf=buf,
            start=records.start[part],
            caplen=records.caplen[part],
            length=records.length[part],
            linktype=records.linktype[part],
        )
        fields = _decode(frames, depth=0)
        for name in ADDRESS_FIELDS:
            values, present = fields.get(name)
            out.put_rows(name, np.arange(lo, lo + len(part))[present], values[present])
    return out


def _decode(frames: Frames, depth: int) -> FieldSet:
    layers = decode_layers(frames)
    fields, inner = layers.fields, layers.inner
    if depth < MAX_NESTING:
        for rows, sub in inner.frames(frames.buf):
            fields.fill_from(_decode(sub, depth + 1), rows)
    return fields


def _carries(fields: FieldSet, group: tuple[Address, ...]) -> np.ndarray:
    """Frames whose first layer of an address's protocol has that address as source or destination."""
    hit = np.zeros(fields.n, dtype=bool)
    for layer in {a.layer for a in group}:
        wanted = [a.value() for a in group if a.layer == layer]
        for name in LAYER_FIELDS[layer]:
            values, present = fields.get(name)
            if layer == "ipv6":
                words = values.view(np.uint64).reshape(-1, 2)
                for hi, lo in wanted:
                    hit |= present & (words[:, 0] == np.uint64(hi)) & (words[:, 1] == np.uint64(lo))
            else:
                hit |= present & np.isin(values, np.array(wanted, dtype=values.dtype))
    return hit


def first_frame_ns(path: Path) -> int | None:
    """Capture time (ns) of the first frame of a capture file; None if it has none (yet)."""
    try:
        with path.open("rb") as fh:
            if fh.read(4) not in (PCAPNG_MAGIC, *CLASSIC_MAGICS):
                return None
            fh.seek(0)
            for _, records, _ in _open_reader(fh, path).chunks(CHUNK_BYTES):
                if len(records.ns):
                    return int(records.ns[0])
    except (_CutShort, _DamagedFile, FileNotFoundError):
        pass
    return None
