"""Vectorised decoding of link, network and transport headers into tshark fields.

Every frame of a batch is handled at once with numpy: the first :data:`HEADER_BYTES` bytes of
each frame are gathered into a 2-D array, and each protocol layer is a set of column reads
with per-frame offsets and masks. The rules follow tshark 4.0's dissectors (packet-eth.c,
packet-sll.c, packet-null.c, packet-raw.c, packet-ip.c, packet-ipv6.c, packet-arp.c,
packet-tcp.c, packet-udp.c, packet-icmp.c, packet-icmpv6.c): a field exists only when the
dissector would have reached it, reading bytes that were captured and that lie inside the
layer's reported length. Nothing here trusts a length from the packet without a bounds check.

What the transport layer hands on (ports, payload position, TCP sequence numbers) is returned
in :class:`Transport` for the TCP analysis and the application decoders.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from . import decode_protocols as P
from .decode_fields import FieldSet

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
_RAW_LINKTYPES = (LINKTYPE_RAW_12, LINKTYPE_RAW_14, LINKTYPE_RAW)

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_RARP = 0x8035
ETHERTYPE_VLAN = 0x8100
ETHERTYPE_QINQ_OLD = 0x9100
ETHERTYPE_IPV6 = 0x86DD
IEEE_802_3_MAX_LEN = 1500  # a type/length field up to this is an 802.3 length
ETHERNET_II_MIN_LEN = 1536  # from this on it is an Ethertype
SLL_LTYPE_MAX = 1536  # "yes, 1536 - that's how Linux does it" (packet-sll.c)
ARPHRD_ETHER = 1
ARPHRD_IEEE802 = 6
ARPHRD_IPGRE = 778
ARPHRD_NETLINK = 824
ARP_HEADER_LEN = 8
AX25_P_IP = 0xCC
ARPOP_DRARPERROR = 6
ARP_SUMMARISED_OPS = 25  # opcodes whose addresses packet-arp.c puts in the Info column
BSD_AF_INET = 2
BSD_AF_INET6 = (24, 28, 30)  # NetBSD/OpenBSD, FreeBSD, Darwin
PPP_HDLC = 0xFF03

IPV4_MIN_HEADER = 20
IPV6_HEADER = 40
IP_MF = 0x2000
IP_OFFSET = 0x1FFF
IPOPT_EOOL, IPOPT_NOP, IPOPT_LSR, IPOPT_SSR = 0, 1, 131, 137
TCP_MIN_HEADER = 20
TCP_FIXED_READ = 16  # tshark reads ports, seq, ack, offset/flags and window before adding anything else
UDP_HEADER = 8
ICMP_FIXED_READ = 6  # type, code and byte 5 are read before the first ICMP field is added
ICMPV6_FIXED_READ = 4
IPPROTO_HOPOPTS, IPPROTO_IPIP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_IPV6 = 0, 4, 6, 17, 41
IPPROTO_ROUTING, IPPROTO_FRAGMENT, IPPROTO_GRE, IPPROTO_AH = 43, 44, 47, 51
IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_NONE, IPPROTO_DSTOPTS = 1, 58, 59, 60
IPV6_EXTENSION_HEADERS = (IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS, 135, 140)  # + AH, fragment
MAX_IPV6_EXTENSIONS = 8  # tshark recurses further, but real traffic never chains more

# Net-layer dissectors a frame can be handed to.
NET_NONE, NET_IP, NET_IPV4, NET_IPV6, NET_ARP = 0, 1, 2, 3, 4


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
class Transport:
    """TCP segments tshark analysed (every one with tcp.len) and UDP datagrams with a payload."""

    rows: np.ndarray
    proto: np.ndarray  # 6 or 17
    src_key: np.ndarray  # 128-bit-ish address keys (two uint64 columns folded) for stream tracking
    dst_key: np.ndarray
    sport: np.ndarray
    dport: np.ndarray
    payload_start: np.ndarray  # absolute offset in buf
    payload_cap: np.ndarray  # captured payload bytes handed on
    payload_rep: np.ndarray  # reported payload length (tcp.len for TCP)
    has_payload: np.ndarray  # a payload tshark hands to the next dissector
    seq: np.ndarray  # TCP only (zeros for UDP)
    ack: np.ndarray
    flags: np.ndarray
    window: np.ndarray
    whole: np.ndarray  # the whole segment was captured (tshark may reassemble it)


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


@dataclass
class Layers:
    """Result of the vectorised decode of one batch."""

    fields: FieldSet
    protocol: np.ndarray  # int code of the highest protocol so far (decode_protocols)
    transport: Transport
    inner: Inner


def header_bytes(buf: np.ndarray, start: np.ndarray) -> np.ndarray:
    """(n, HEADER_BYTES) uint8 array of each frame's first bytes (bytes past a frame's end are junk)."""
    words = np.ndarray(shape=(len(buf) - 7,), dtype=np.uint64, buffer=buf, strides=(1,))
    out = np.empty((len(start), _WORDS), dtype=np.uint64)
    for j in range(_WORDS):
        out[:, j] = words[start + 8 * j]
    return out.view(np.uint8).reshape(len(start), HEADER_BYTES)


class _Frame:
    """Reads at per-frame offsets, within the header array or (past it) from the flat buffer."""

    def __init__(self, frames: Frames, hdr: np.ndarray | None = None) -> None:
        self.frames = frames
        self.hdr = header_bytes(frames.buf, frames.start) if hdr is None else hdr
        self.flat = self.hdr.reshape(-1)
        self.rows = np.arange(len(frames.start))
        self.base = self.rows * HEADER_BYTES
        self.cap = frames.caplen

    def take(self, idx: np.ndarray) -> _Frame:
        """The same reads over a subset of the frames (for protocols few frames carry)."""
        f = self.frames
        sub = Frames(
            buf=f.buf, start=f.start[idx], caplen=f.caplen[idx], length=f.length[idx], linktype=f.linktype[idx]
        )
        return _Frame(sub, self.hdr[idx])

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

    def ipv4(self, pos: np.ndarray) -> np.ndarray:
        return self.u32(pos).astype(np.uint32)

    def ipv6(self, pos: np.ndarray) -> np.ndarray:
        cols = np.stack([self.u8(pos + i).astype(np.uint8) for i in range(16)], axis=1)
        return np.ascontiguousarray(cols).view("V16").ravel()


def decode_layers(frames: Frames) -> Layers:
    """Decode link, network and transport headers of every frame into tshark fields."""
    n = len(frames.start)
    fr = _Frame(frames)
    fs = FieldSet(n)
    proto = np.full(n, P.FRAME, dtype=np.int64)
    net = np.full(n, NET_NONE, dtype=np.int8)
    net_off = np.zeros(n, dtype=np.int64)
    lt = frames.linktype
    # tshark dissects bytes that were captured even where the record claims a shorter frame.
    cap, rep = frames.caplen, np.maximum(frames.length, frames.caplen)
    inner = Inner()

    _link_ethernet(fr, fs, proto, net, net_off, lt == LINKTYPE_ETHERNET)
    _link_sll(fr, fs, proto, net, net_off, lt == LINKTYPE_LINUX_SLL, version=1)
    _link_sll(fr, fs, proto, net, net_off, lt == LINKTYPE_LINUX_SLL2, version=2)
    _link_null(fr, proto, net, net_off, lt == LINKTYPE_NULL, big_endian=False)
    _link_null(fr, proto, net, net_off, lt == LINKTYPE_LOOP, big_endian=True)
    _link_raw(fr, proto, net, net_off, np.isin(lt, _RAW_LINKTYPES))
    net[lt == LINKTYPE_IPV4] = NET_IP
    net[lt == LINKTYPE_IPV6] = NET_IPV6

    # Layer limits relative to the frame start: what was captured, and what the layer reports.
    cap_end = cap.copy()
    rep_end = rep.copy()
    l4 = _L4Plan(n)
    _net_ip(fr, fs, proto, net, net_off, cap_end, rep_end, l4, inner)
    _net_ipv6(fr, fs, proto, net == NET_IPV6, net_off, cap_end, rep_end, l4, frames.in_error)
    _net_arp(fr, fs, proto, (net == NET_ARP), net_off, cap_end, rep_end)
    transport = _transport(fr, fs, proto, l4, cap_end, frames, inner)
    return Layers(fields=fs, protocol=proto, transport=transport, inner=inner)


# --------------------------------------------------------------------------- link layers


def _mac_at(fr: _Frame, k: int) -> np.ndarray:
    out = np.zeros(len(fr.rows), dtype=np.uint64)
    for i in range(6):
        out = (out << np.uint64(8)) | fr.hdr[:, k + i].astype(np.uint64)
    return out


def _ethertype_dispatch(fr, fs, proto, net, net_off, rows, etype, off) -> None:
    """The ethertype dissector: hand the payload at ``off`` to the dissector of ``etype``."""
    proto[rows] = P.ETHERTYPE
    vlan = rows & ((etype == ETHERTYPE_VLAN) | (etype == ETHERTYPE_QINQ_OLD))
    # Up to two 802.1Q tags (a Q-in-Q frame), each: 2 bytes TCI, 2 bytes inner type/length.
    for _ in range(2):
        if not vlan.any():
            break
        proto[vlan] = P.VLAN
        ok = vlan & (fr.cap >= off + 4)
        inner_type = fr.u16(off + 2)
        off = np.where(ok, off + 4, off)
        etype = np.where(ok, inner_type, etype)
        llc = ok & (inner_type <= IEEE_802_3_MAX_LEN)
        _llc(fr, proto, llc, off)
        ok &= ~llc
        proto[ok] = P.ETHERTYPE
        rows = np.where(vlan, ok, rows)
        vlan = ok & ((etype == ETHERTYPE_VLAN) | (etype == ETHERTYPE_QINQ_OLD))
    rows = rows & ~vlan
    ipv4 = rows & (etype == ETHERTYPE_IPV4)
    ipv6 = rows & (etype == ETHERTYPE_IPV6)
    arp = rows & ((etype == ETHERTYPE_ARP) | (etype == ETHERTYPE_RARP))
    net[ipv4], net_off[ipv4] = NET_IPV4, off[ipv4]
    net[ipv6], net_off[ipv6] = NET_IPV6, off[ipv6]
    net[arp], net_off[arp] = NET_ARP, off[arp]
    other = rows & ~(ipv4 | ipv6 | arp)
    if other.any():
        proto[other] = _ethertype_codes()[etype[other] & 0xFFFF]


_CODE_TABLES: dict[str, np.ndarray] = {}


def _ethertype_codes() -> np.ndarray:
    """Ethertype -> protocol code of its dissector (DATA when tshark has none we know of)."""
    if "ethertype" not in _CODE_TABLES:
        table = np.full(65536, P.DATA, dtype=np.int64)
        for value, name in P.ETHERTYPE_NAMES.items():
            table[value] = P.protocol_id(name)
        _CODE_TABLES["ethertype"] = table
    return _CODE_TABLES["ethertype"]


def _ip_protocol_codes() -> np.ndarray:
    """IP protocol number -> protocol code of its dissector."""
    if "ip" not in _CODE_TABLES:
        table = np.full(256, P.DATA, dtype=np.int64)
        for value, name in P.IP_PROTOCOL_NAMES.items():
            table[value] = P.protocol_id(name)
        _CODE_TABLES["ip"] = table
    return _CODE_TABLES["ip"]


def _link_ethernet(fr, fs, proto, net, net_off, rows) -> None:
    if not rows.any():
        return
    proto[rows] = P.ETH
    ok = rows & (fr.cap >= 14)
    h = fr.hdr
    etype = fr.col16(12)
    isl = (
        ok
        & (etype <= IEEE_802_3_MAX_LEN)
        & ((h[:, 0] == 0x01) | (h[:, 0] == 0x0C))
        & (h[:, 1] == 0)
        & (h[:, 2] == 0x0C)
        & (h[:, 3] == 0)
        & (h[:, 4] == 0)
    )
    proto[isl] = P.protocol_id("ISL")
    ok &= ~isl
    fs.put("eth.dst", _mac_at(fr, 0), ok)
    fs.put("eth.src", _mac_at(fr, 6), ok)
    ether2 = ok & ((etype >= ETHERNET_II_MIN_LEN) | (etype == 0))
    fs.put("eth.type", etype, ether2)
    invalid = ok & (etype > IEEE_802_3_MAX_LEN) & (etype < ETHERNET_II_MIN_LEN)
    proto[invalid] = P.DATA
    _llc(fr, proto, ok & ~ether2 & ~invalid, np.full(len(rows), 14, dtype=np.int64))
    _ethertype_dispatch(fr, fs, proto, net, net_off, ether2, etype, np.full(len(rows), 14, dtype=np.int64))


# Cisco SNAP protocol ids (OUI 00:00:0c) -> dissector name.
_CISCO_SNAP_NAMES = {0x2000: "CDP", 0x2003: "VTP", 0x2004: "DTP", 0x010B: "STP", 0x0111: "UDLD"}


def _llc(fr, proto, rows, off) -> None:
    """802.3 frames: raw IPX, or an 802.2 LLC header and what its SAPs / SNAP id say follows."""
    if not rows.any():
        return
    have = rows & (fr.cap >= off + 2)
    raw_ipx = have & (fr.u16(off) == 0xFFFF)
    proto[rows] = P.LLC
    proto[raw_ipx] = P.protocol_id("IPX")
    llc = rows & ~raw_ipx & (fr.cap >= off + 3)
    dsap, ssap = fr.u8(off), fr.u8(off + 1)
    proto[llc & (dsap == 0x42) & (ssap == 0x42)] = P.protocol_id("STP")
    proto[llc & (dsap == 0xE0) & (ssap == 0xE0)] = P.protocol_id("IPX")
    snap = llc & (dsap == 0xAA) & (ssap == 0xAA) & (fr.cap >= off + 8)
    if snap.any():
        oui = (fr.u8(off + 3) << 16) | fr.u16(off + 4)
        pid = fr.u16(off + 6)
        for value, name in _CISCO_SNAP_NAMES.items():
            proto[snap & (oui == 0x00000C) & (pid == value)] = P.protocol_id(name)


def _link_sll(fr, fs, proto, net, net_off, rows, version: int) -> None:
    if not rows.any():
        return
    if version == 1:
        size, hatype, halen, addr, ptype = 16, fr.col16(2), fr.col16(4), 6, fr.col16(14)
    else:
        size, hatype, halen, addr, ptype = 20, fr.col16(8), fr.hdr[:, 11].astype(np.int64), 12, fr.col16(0)
    netlink = rows & (hatype == ARPHRD_NETLINK) & (fr.cap >= 4 if version == 1 else fr.cap >= 10)
    proto[netlink] = P.protocol_id("NETLINK")
    rows = rows & ~netlink
    proto[rows] = P.SLL
    # packet-sll.c reads the packet type and address type first, then adds fields in header order:
    # v1 address then protocol, v2 protocol then address.
    if version == 1:
        src_ok = rows & (fr.cap >= addr + 6)
        type_ok = rows & (fr.cap >= size)
    else:
        type_ok = rows & (fr.cap >= 12)
        src_ok = type_ok & (fr.cap >= addr + 6)
    fs.put("sll.src.eth", _mac_at(fr, addr), src_ok & (halen == 6))
    ethertype = type_ok & (ptype > SLL_LTYPE_MAX)
    fs.put("sll.etype", ptype, ethertype & (hatype != ARPHRD_IPGRE))
    ok = rows & (fr.cap >= size)
    proto[ok & ~ethertype] = P.DATA
    _ethertype_dispatch(
        fr, fs, proto, net, net_off, ok & ethertype & (hatype != ARPHRD_IPGRE), ptype, np.full(len(rows), size)
    )


def _link_null(fr, proto, net, net_off, rows, big_endian: bool) -> None:
    if not rows.any():
        return
    proto[rows] = P.NULL
    h = fr.hdr[:, :4].astype(np.int64)
    if big_endian:
        family = (h[:, 0] << 24) | (h[:, 1] << 16) | (h[:, 2] << 8) | h[:, 3]
        ok = rows & (fr.cap >= 4)
    else:
        # packet-null.c reads the family in host (little-endian) order, then guesses the writer's order.
        value = h[:, 0] | (h[:, 1] << 8) | (h[:, 2] << 16) | (h[:, 3] << 24)
        ppp = rows & (fr.cap >= 2) & (((h[:, 0] << 8) | h[:, 1]) == PPP_HDLC)
        proto[ppp] = P.PPP
        ok = rows & (fr.cap >= 4) & ~ppp
        high = (value & 0xFFFF0000) != 0
        shifted = ((value & 0xFF000000) == 0) & ((value & 0x00FF0000) < 0x00060000)
        swapped = ((value & 0xFF) << 24) | ((value & 0xFF00) << 8) | ((value >> 8) & 0xFF00) | (value >> 24)
        low_swap = ((value & 0xFF) == 0) & ((value & 0xFF00) < 0x600)
        family = np.where(
            high,
            np.where(shifted, value >> 16, swapped),
            np.where(low_swap, ((value & 0xFF) << 8) | ((value >> 8) & 0xFF), value),
        )
    ethertype = ok & (family > IEEE_802_3_MAX_LEN)
    if ethertype.any():
        sub = ethertype & np.isin(family & 0xFFFF, (ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_ARP, ETHERTYPE_RARP))
        et = family & 0xFFFF
        v4, v6 = sub & (et == ETHERTYPE_IPV4), sub & (et == ETHERTYPE_IPV6)
        arp = sub & ((et == ETHERTYPE_ARP) | (et == ETHERTYPE_RARP))
        net[v4], net[v6], net[arp] = NET_IPV4, NET_IPV6, NET_ARP
        net_off[sub] = 4
        proto[ethertype & ~sub] = P.DATA
    fam = ok & ~ethertype
    v4 = fam & (family == BSD_AF_INET)
    v6 = fam & np.isin(family, BSD_AF_INET6)
    net[v4], net[v6] = NET_IP, NET_IPV6
    net_off[v4 | v6] = 4
    proto[fam & ~(v4 | v6)] = P.DATA


def _link_raw(fr, proto, net, net_off, rows) -> None:
    if not rows.any():
        return
    proto[rows] = P.RAW
    h = fr.hdr.astype(np.int64)
    first = (h[:, 0] << 8) | h[:, 1]
    ok = rows & (fr.cap >= 2)
    ppp = ok & (first == PPP_HDLC)
    ok &= ~ppp
    ok8 = ok & (fr.cap >= 8)  # tvb_get_ntohs(tvb, 6) throws on a shorter frame
    ppp |= ok8 & ((((h[:, 6] << 8) | h[:, 7]) == PPP_HDLC) | (((h[:, 1] << 8) | h[:, 2]) == PPP_HDLC))
    proto[ppp] = P.PPP
    ok8 &= ~ppp
    zeros10 = ok8 & (fr.cap >= 10) & (h[:, :10] == 0).all(axis=1)
    net[zeros10], net_off[zeros10] = NET_IP, 10
    version = h[:, 0] >> 4
    rest = ok8 & ~zeros10
    v4, v6 = rest & (version == 4), rest & (version == 6)
    net[v4], net[v6] = NET_IP, NET_IPV6
    proto[rest & ~(v4 | v6)] = P.DATA


# --------------------------------------------------------------------------- network layers


class _L4Plan:
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


def _net_ip(fr, fs, proto, net, net_off, cap_end, rep_end, l4, inner) -> None:
    """IPv4 (and the 'ip' dissector's hand-over to IPv6 for a version-6 header)."""
    rows = (net == NET_IP) | (net == NET_IPV4)
    if not rows.any():
        return
    o = net_off
    proto[rows] = P.IP
    have = rows & (cap_end >= o + 1)
    version = fr.u8(o) >> 4
    to_v6 = have & (version == 6)
    net[to_v6] = NET_IPV6  # dissect_ip_v4 and dissect_ip both call the IPv6 dissector for version 6
    v4 = have & (version == 4)
    ihl = (fr.u8(o) & 0x0F) * 4
    v4 &= ihl >= IPV4_MIN_HEADER  # "Bogus IP header length": nothing more is added
    fs.put("ip.hdr_len", ihl, v4)
    v4 &= cap_end >= o + 4
    total = fr.u16(o + 2)
    reported = rep_end - o
    tso = v4 & (total == 0)
    total = np.where(tso, reported, total)
    v4 &= total >= ihl  # "Bogus IP length"
    fs.put("ip.len", total, v4)
    fits = v4 & (total <= reported)
    rep_end[fits] = o[fits] + total[fits]  # set_actual_length: the datagram ends where ip.len says
    cap_end[:] = np.minimum(cap_end, rep_end)
    v4 &= cap_end >= o + 12
    frag = fr.u16(o + 6)
    fs.put("ip.ttl", fr.u8(o + 8), v4)
    ip_proto = fr.u8(o + 9)
    fs.put("ip.proto", ip_proto, v4)
    v4 &= cap_end >= o + 16
    src = fr.ipv4(o + 12)
    fs.put("ip.src", src, v4)
    dst_off = _source_route_offset(fr, v4, o, ihl, cap_end)
    v4 &= dst_off >= 0  # options not captured: tshark stops inside get_dst_offset
    v4 &= cap_end >= o + 20 + np.maximum(dst_off, 0)
    dst = fr.ipv4(o + 16 + np.maximum(dst_off, 0))
    fs.put("ip.dst", dst, v4 & (dst_off == 0))  # with a source route tshark shows ip.cur_rt, not ip.dst
    v4 &= cap_end >= o + ihl  # dissect_ip_options throws on an option block that was not captured
    payload = o + ihl
    more = (frag & IP_MF) != 0
    offset = frag & IP_OFFSET
    fragment = v4 & (more | (offset != 0))
    # A fragment goes to reassembly if all of it was captured; reassembly is not emulated, so such a
    # fragment is shown as data (what tshark shows for every fragment but the one completing a datagram).
    whole = fragment & (total > ihl) & (cap_end >= o + total)
    not_first = fragment & (offset != 0)
    as_data = (whole | not_first) & (rep_end > payload)
    proto[as_data] = P.DATA
    go = v4 & ~as_data & (rep_end - payload > 0)
    l4.rows |= go
    l4.off[go] = payload[go]
    l4.proto[go] = ip_proto[go]
    l4.rep_end[go] = rep_end[go]
    l4.fragmented[go] = (fragment & more)[go]
    l4.src_key[go, 1] = src[go]
    l4.dst_key[go, 1] = dst[go]


def _source_route_offset(fr, rows, o, ihl, cap_end) -> np.ndarray:
    """get_dst_offset() of packet-ip.c: where a strict/loose source route keeps the final destination.

    0 for no usable source route, -1 where the options run past the captured bytes (an exception).
    """
    out = np.zeros(len(rows), dtype=np.int64)
    todo = rows & (ihl > IPV4_MIN_HEADER)
    if not todo.any():
        return out
    idx = np.flatnonzero(todo)
    pos = o[idx] + IPV4_MIN_HEADER
    left = ihl[idx] - IPV4_MIN_HEADER
    active = np.ones(len(idx), dtype=bool)
    result = np.zeros(len(idx), dtype=np.int64)
    start = pos.copy()
    sub = _Frame.__new__(_Frame)
    sub.frames, sub.hdr, sub.rows, sub.cap = fr.frames, fr.hdr[idx], np.arange(len(idx)), fr.cap[idx]
    sub.flat, sub.base = sub.hdr.reshape(-1), sub.rows * HEADER_BYTES
    cap = cap_end[idx]
    for _ in range(40):  # at most 40 option bytes
        active &= left > 0
        if not active.any():
            break
        short = active & (pos + 1 > cap)
        result[short], active[short] = -1, False
        opt = sub.u8(pos)
        left = left - 1
        simple = active & ((opt == IPOPT_EOOL) | (opt == IPOPT_NOP))
        eool = simple & (opt == IPOPT_EOOL)
        active &= ~eool
        pos = np.where(simple, pos + 1, pos)
        long = active & ~simple
        bogus = long & (left == 0)
        active &= ~bogus
        long &= ~bogus
        short = long & (pos + 2 > cap)
        result[short], active[short] = -1, False
        long &= ~short
        olen = sub.u8(pos + 1)
        left = np.where(long, left - 1, left)
        bad = long & ((olen < 2) | (olen - 2 > left))
        active &= ~bad
        long &= ~bad
        route = long & ((opt == IPOPT_SSR) | (opt == IPOPT_LSR))
        short = route & (pos + 3 > cap)
        result[short], active[short] = -1, False
        route &= ~short
        ptr = sub.u8(pos + 2)
        valid = route & ~((ptr < 4) | ((ptr & 3) != 0) | (ptr > olen))
        result[valid] = (pos - start + 4 + (olen - 4))[valid]
        active &= ~route
        pos = np.where(long & ~route, pos + olen, pos)
        left = np.where(long & ~route, left - (olen - 2), left)
    out[idx] = result
    return out


def _net_ipv6(fr, fs, proto, rows, o, cap_end, rep_end, l4, in_error: bool) -> None:
    idx = np.flatnonzero(rows)
    if len(idx) == 0:
        return
    sub_fs = FieldSet(len(idx))
    sub_proto, sub_cap, sub_rep = proto[idx], cap_end[idx], rep_end[idx]
    sub_l4 = _L4Plan(len(idx))
    _ipv6(fr.take(idx), sub_fs, sub_proto, np.ones(len(idx), dtype=bool), o[idx], sub_cap, sub_rep, sub_l4)
    proto[idx], cap_end[idx], rep_end[idx] = sub_proto, sub_cap, sub_rep
    fs.fill_from(sub_fs, idx)
    up = idx[sub_l4.rows]
    l4.rows[up] = True
    for name in ("off", "proto", "rep_end", "ipv6", "src_key", "dst_key"):
        getattr(l4, name)[up] = getattr(sub_l4, name)[sub_l4.rows]


def _ipv6(fr, fs, proto, rows, o, cap_end, rep_end, l4) -> None:
    """IPv6 and its extension headers, over frames that all reach the IPv6 dissector."""
    proto[rows] = P.IPV6
    # Fields come in header order: the fixed part (payload length, next header, hop limit), then the
    # addresses; a short capture stops the dissector where its bytes end.
    ok = rows & (cap_end >= o + 8) & ((fr.u8(o) >> 4) == 6)
    plen = fr.u16(o + 4)
    nxt = fr.u8(o + 6)
    fs.put("ipv6.plen", plen, ok)
    fs.put("ipv6.nxt", nxt, ok)
    fs.put("ipv6.hlim", fr.u8(o + 7), ok)
    src, dst = fr.ipv6(o + 8), fr.ipv6(o + 24)
    fs.put("ipv6.src", src, ok & (cap_end >= o + 24))
    ok &= cap_end >= o + IPV6_HEADER
    fs.put("ipv6.dst", dst, ok)
    end = o + IPV6_HEADER + plen
    shrink = ok & (end < rep_end)
    rep_end[shrink] = end[shrink]
    cap_end[:] = np.minimum(cap_end, rep_end)
    off = o + IPV6_HEADER
    # Extension headers: tshark dissects each one, then the upper layer after the last.
    ext = ok.copy()
    for _ in range(MAX_IPV6_EXTENSIONS):
        hop = ext & np.isin(nxt, IPV6_EXTENSION_HEADERS + (IPPROTO_AH, IPPROTO_FRAGMENT))
        if not hop.any():
            break
        proto[hop] = _ipv6_extension_codes()[nxt[hop] & 0xFF]
        fragment = hop & (nxt == IPPROTO_FRAGMENT)
        have = hop & (cap_end >= off + 2)
        ext_len = fr.u8(off + 1)
        size = np.where(nxt == IPPROTO_AH, (ext_len + 2) * 4, np.where(fragment, 8, (ext_len + 1) * 8))
        have &= cap_end >= off + size
        # A fragment header: reassembly is not emulated, the payload is shown as data.
        frag = have & fragment
        proto[frag] = P.DATA
        nxt = np.where(have, fr.u8(off), nxt)
        off = np.where(have, off + size, off)
        ext = have & ~frag
        stop = hop & ~have
        ok &= ~(stop | frag)
    up = ok & ~np.isin(nxt, IPV6_EXTENSION_HEADERS + (IPPROTO_AH, IPPROTO_FRAGMENT))
    none = up & (nxt == IPPROTO_NONE)
    proto[none & (rep_end > off)] = P.DATA
    up &= ~none
    l4.rows |= up
    l4.off[up] = off[up]
    l4.proto[up] = nxt[up]
    l4.rep_end[up] = rep_end[up]
    l4.ipv6[up] = True
    words_src = src.view(np.uint64).reshape(-1, 2)
    words_dst = dst.view(np.uint64).reshape(-1, 2)
    l4.src_key[up] = words_src[up]
    l4.dst_key[up] = words_dst[up]


_IPV6_EXTENSION_NAMES = {
    IPPROTO_HOPOPTS: "IPV6.HOPOPTS",
    IPPROTO_ROUTING: "IPV6.ROUTING",
    IPPROTO_FRAGMENT: "IPV6.FRAGHDR",
    IPPROTO_DSTOPTS: "IPV6.DSTOPTS",
    IPPROTO_AH: "AH",
    135: "MIPV6",
    140: "SHIM6",
}


def _ipv6_extension_codes() -> np.ndarray:
    if "ipv6ext" not in _CODE_TABLES:
        table = np.full(256, P.IPV6, dtype=np.int64)
        for value, name in _IPV6_EXTENSION_NAMES.items():
            table[value] = P.protocol_id(name)
        _CODE_TABLES["ipv6ext"] = table
    return _CODE_TABLES["ipv6ext"]


def _net_arp(fr, fs, proto, rows, o, cap_end, rep_end) -> None:
    idx = np.flatnonzero(rows)
    if len(idx) == 0:
        return
    sub_fs = FieldSet(len(idx))
    sub_proto = proto[idx]
    _arp(fr.take(idx), sub_fs, sub_proto, o[idx], cap_end[idx], rep_end[idx])
    proto[idx] = sub_proto
    fs.fill_from(sub_fs, idx)


def _arp(fr, fs, proto, o, cap_end, rep_end) -> None:
    """ARP over frames that all carry it."""
    proto[:] = P.ARP
    ok = cap_end >= o + ARP_HEADER_LEN
    hrd, pro, hln, pln, op = fr.u16(o), fr.u16(o + 2), fr.u8(o + 4), fr.u8(o + 5), fr.u16(o + 6)
    other = ok & ((hrd == 19) | (hrd == 3))  # ATM and AX.25 ARP have dissectors of their own
    proto[other] = P.protocol_id("ATMARP")
    ok &= ~other
    fs.put("arp.opcode", op, ok)
    # tvb_set_reported_length(tot_len) throws when the ARP body claims more than the frame reports.
    ok &= o + ARP_HEADER_LEN + 2 * hln + 2 * pln <= rep_end
    ether = (hrd == ARPHRD_ETHER) | (hrd == ARPHRD_IEEE802)
    hw_mac = ether & (hln == 6)
    pro_v4 = ((pro == ETHERTYPE_IPV4) | (pro == AX25_P_IP)) & (pln == 4)
    # tvb_set_reported_length(tot_len): the addresses must lie inside the ARP body and the capture.
    limit = np.minimum(cap_end, np.minimum(rep_end, o + ARP_HEADER_LEN + 2 * hln + 2 * pln))
    sha, spa = o + ARP_HEADER_LEN, o + ARP_HEADER_LEN + hln
    tha, tpa = spa + pln, spa + pln + hln
    # Before adding any address, tshark reads the addresses it summarises (for a request or reply, the
    # target address it compares with the sender's): their bytes must all be there.
    summarised = ok & (op >= 1) & (op <= ARP_SUMMARISED_OPS)
    ok &= ~summarised | (limit >= tpa + pln)
    steps = [
        ("arp.src.hw_mac", sha, hln, hw_mac, hln != 0),
        ("arp.src.proto_ipv4", spa, pln, pro_v4, pln != 0),
        ("arp.dst.hw_mac", tha, hln, hw_mac, hln != 0),
        ("arp.dst.proto_ipv4", tpa, pln, pro_v4 & (op != ARPOP_DRARPERROR), pln != 0),
    ]
    for name, pos, size, typed, added in steps:
        fits = limit >= pos + size
        if name.endswith("mac"):
            fs.put(name, fr.mac(pos), ok & added & fits & typed)
        else:
            fs.put(name, fr.ipv4(pos), ok & added & fits & typed)
        ok &= ~added | fits  # proto_tree_add_item throws on an address past the end


# --------------------------------------------------------------------------- transport layers


def _transport(fr, fs, proto, l4: _L4Plan, cap_end, frames: Frames, inner: Inner) -> Transport:
    rows = l4.rows
    o = l4.off
    rep_end = l4.rep_end
    limit = np.minimum(cap_end, rep_end)
    in_error = frames.in_error
    tcp = rows & (l4.proto == IPPROTO_TCP)
    udp = rows & (l4.proto == IPPROTO_UDP)
    icmp = rows & (l4.proto == IPPROTO_ICMP) & ~l4.ipv6
    icmp6 = rows & (l4.proto == IPPROTO_ICMPV6)
    known = tcp | udp | icmp | icmp6
    other = rows & ~known
    if other.any():
        codes = _ip_protocol_codes()[l4.proto & 0xFF]
        # The data dissector adds nothing for an empty payload.
        named = other & ((codes != P.DATA) | (rep_end > o))
        proto[named] = codes[named]
        _tunnels(fr, other, l4, cap_end, inner)

    # TCP: ports need 4 bytes; the rest of the fixed part (up to the window) 16 bytes.
    proto[tcp] = P.TCP
    t_ports = tcp & (limit >= o + 4)
    fs.put("tcp.srcport", fr.u16(o), t_ports)
    fs.put("tcp.dstport", fr.u16(o + 2), t_ports)
    t_fixed = t_ports & (limit >= o + TCP_FIXED_READ)
    hlen = (fr.u8(o + 12) >> 4) * 4
    reported = rep_end - o
    analysed = t_fixed & ~l4.fragmented & (not in_error) & (reported >= hlen)
    fs.put("tcp.len", reported - hlen, analysed)
    flags = ((fr.u8(o + 12) & 0x0F) << 8) | fr.u8(o + 13)
    t_hdr = t_fixed & (hlen >= TCP_MIN_HEADER)
    fs.put("tcp.flags", flags, t_hdr)
    # Options are dissected next; a header longer than what was captured ends the dissection there.
    t_payload = t_hdr & (cap_end >= o + hlen) & analysed & (reported - hlen > 0)

    # UDP: ports, then the length field, then the checksum.
    proto[udp] = P.UDP
    u_ports = udp & (limit >= o + 4)
    fs.put("udp.srcport", fr.u16(o), u_ports)
    fs.put("udp.dstport", fr.u16(o + 2), u_ports)
    ulen = fr.u16(o + 4)
    fs.put("udp.length", ulen, u_ports & (limit >= o + 6))
    u_ok = udp & (limit >= o + UDP_HEADER)
    jumbo = u_ok & (ulen == 0) & l4.ipv6
    ulen = np.where(jumbo, reported, ulen)
    u_payload = u_ok & (ulen > UDP_HEADER)
    if in_error:
        u_payload &= cap_end > o + UDP_HEADER

    # ICMP / ICMPv6: a few bytes are read before the first field is added.
    proto[icmp] = P.ICMP
    i_ok = icmp & (limit >= o + ICMP_FIXED_READ)
    fs.put("icmp.type", fr.u8(o), i_ok)
    fs.put("icmp.code", fr.u8(o + 1), i_ok)
    proto[icmp6] = P.ICMPV6
    i6_ok = icmp6 & (limit >= o + ICMPV6_FIXED_READ)
    fs.put("icmpv6.type", fr.u8(o), i6_ok)
    fs.put("icmpv6.code", fr.u8(o + 1), i6_ok)
    _icmp_payloads(fr, proto, i_ok, i6_ok, o, cap_end, rep_end, inner)

    # Every analysed TCP segment goes on (the sequence analysis needs the pure ACKs too), and UDP
    # datagrams with a payload.
    sel = analysed | u_payload
    idx = np.flatnonzero(sel)
    is_tcp = analysed[idx]
    start = o[idx] + np.where(is_tcp, hlen[idx], UDP_HEADER)
    rep_len = np.where(is_tcp, (reported - hlen)[idx], np.minimum(ulen[idx], reported[idx]) - UDP_HEADER)
    cap_len = np.clip(np.minimum(cap_end[idx] - start, rep_len), 0, None)
    return Transport(
        rows=idx,
        proto=np.where(is_tcp, IPPROTO_TCP, IPPROTO_UDP),
        src_key=l4.src_key[idx],
        dst_key=l4.dst_key[idx],
        sport=fr.u16(o)[idx],
        dport=fr.u16(o + 2)[idx],
        payload_start=frames.start[idx] + start,
        payload_cap=cap_len,
        payload_rep=rep_len,
        has_payload=np.where(is_tcp, t_payload[idx], True),
        seq=np.where(is_tcp, fr.u32(o + 4)[idx], 0),
        ack=np.where(is_tcp, fr.u32(o + 8)[idx], 0),
        flags=np.where(is_tcp, flags[idx], 0),
        window=np.where(is_tcp, fr.u16(o + 14)[idx], 0),
        whole=(cap_end[idx] >= start + rep_len) & ~l4.fragmented[idx] & (not in_error),
    )


ICMP_ERRORS = (3, 4, 5, 11, 12)  # unreachable, source quench, redirect, time exceeded, parameter problem
ICMP_ECHO = (0, 8)
ICMPV6_ERRORS = (1, 2, 3, 4)
ICMPV6_ECHO = (128, 129)


def _icmp_payloads(fr, proto, i_ok, i6_ok, o, cap_end, rep_end, inner: Inner) -> None:
    """What follows an ICMP header: the quoted datagram of an error, or echo data."""
    icmp_type = fr.u8(o)
    # ICMP errors hand bytes 8.. to the IP dissector, flagged as inside an error packet.
    err = i_ok & np.isin(icmp_type, ICMP_ERRORS) & (rep_end > o + 8)
    if err.any():
        idx = np.flatnonzero(err)
        start = o[idx] + 8
        end = rep_end[idx]
        orig = fr.u8(o + 5)[idx] * 4
        inner_ihl = ((fr.u8(o + 8) & 0x0F) * 4)[idx]
        inner_total = fr.u16(o + 10)[idx]
        redirect = icmp_type[idx] == 5
        length = end - start
        # set_actual_length() of packet-icmp.c: a redirect quotes header + 8 bytes, an RFC 4884 length
        # field bounds the original datagram.
        clip = np.where(redirect, inner_ihl + 8, length)
        bounded = ~redirect & (orig > 0) & (end - o[idx] > 8 + orig) & (inner_total > orig)
        clip = np.where(bounded, inner_ihl + orig, clip)
        length = np.minimum(length, clip)
        base = fr.frames.start[idx]
        inner.add(idx, base + start, base + np.minimum(cap_end[idx], start + length), length, LINKTYPE_IPV4, True)
    echo = i_ok & np.isin(icmp_type, ICMP_ECHO) & (cap_end > o + 8)
    proto[echo] = P.DATA
    type6 = fr.u8(o)
    proto[i6_ok & np.isin(type6, ICMPV6_ECHO) & (cap_end > o + 8)] = P.DATA
    err6 = i6_ok & np.isin(type6, ICMPV6_ERRORS) & (rep_end > o + 8)
    # packet-icmpv6.c hands the quoted bytes to IPv6 only if they start like an IPv6 header.
    not_v6 = err6 & ((fr.u8(o + 8) >> 4) != 6)
    proto[not_v6 & (cap_end > o + 8)] = P.DATA
    err6 &= ~not_v6
    if err6.any():
        idx = np.flatnonzero(err6)
        start = o[idx] + 8
        base = fr.frames.start[idx]
        inner.add(idx, base + start, base + cap_end[idx], rep_end[idx] - start, LINKTYPE_IPV6, True)


def _tunnels(fr, rows, l4: _L4Plan, cap_end, inner: Inner) -> None:
    """IP-in-IP and IPv6-in-IP payloads: decoded again as packets of their own."""
    base = fr.frames.start
    for number, linktype in ((IPPROTO_IPIP, LINKTYPE_IPV4), (IPPROTO_IPV6, LINKTYPE_IPV6)):
        sel = rows & (l4.proto == number)
        idx = np.flatnonzero(sel)
        inner.add(
            idx,
            base[idx] + l4.off[idx],
            base[idx] + np.minimum(cap_end[idx], l4.rep_end[idx]),
            l4.rep_end[idx] - l4.off[idx],
            linktype,
            False,
        )
