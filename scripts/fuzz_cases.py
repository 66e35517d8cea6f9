"""Fuzz cases for the capture readers: hostile capture files built from seeds, deterministically.

A case is a whole capture file (bytes). Seeds are the public captures (each sliced to its first
``SEED_RECORDS`` records so cases stay small), the tiny committed captures and crafted captures
written here with :mod:`struct`: packets that break header rules (IPv4 header length below 5, TCP
data offset out of range, DNS pointer loops and over-long names, absurd HTTP numbers, deep
tunnels and VLAN stacks...) and files that break the format (zero-length and jumbo records,
snaplen lies, unknown link types, pcapng blocks with bad lengths, nanosecond and big-endian
pcap). Case ``i`` of seed ``s`` is a seed plus a few mutations drawn from ``random.Random(f"{s}:{i}")``,
so any case is rebuilt from its number alone.
"""

from __future__ import annotations

import random
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_PCAPS = ROOT.parent / "shared" / "pcaps"
REPO_PCAPS = ROOT / "tests" / "data" / "pcaps"  # the redistributable subset, present in every clone
TINY_PCAPS = ROOT / "tests" / "data"
SEED_RECORDS = 300  # records kept of each public capture: enough for handshakes, small enough to be quick
SEED_SPAN_S = 30.0  # ... and no more than this much of its time: a few analysis windows
SEED_SCAN_BYTES = 4 * 2**20  # bytes of a public capture read to find those records

PCAP_MAGIC_US, PCAP_MAGIC_NS = 0xA1B2C3D4, 0xA1B23C4D
PCAPNG_SHB, PCAPNG_IDB, PCAPNG_EPB, PCAPNG_SPB = 0x0A0D0D0A, 1, 6, 3
LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_SLL, LINKTYPE_SLL2 = 0, 1, 101, 113, 276
UNKNOWN_LINKTYPES = (105, 127, 189, 147, 0xFFFF, 0x03FFFFFF)  # 802.11, radiotap, USB, user0, absurd ones
T0 = 1_700_000_000
FRAME_GAP_US = 10_000  # crafted packets 10 ms apart: a case is a window or two, analysed quickly


@dataclass
class Seed:
    """A capture to mutate, with where its records and frames are (so mutations can aim at them)."""

    name: str
    data: bytes
    records: list[tuple[int, int, int]]  # (record header offset, frame offset, captured length)
    pcapng: bool
    crafted: bool = False


@dataclass
class Case:
    """One fuzz case: the capture bytes and how they were made."""

    number: int
    seed: str
    mutations: list[str]
    data: bytes


# --------------------------------------------------------------------------- packet builders

MAC_A, MAC_B = bytes.fromhex("020000000002"), bytes.fromhex("020000000050")
CLIENT, SERVER = "10.0.0.2", "10.0.0.80"


def eth(payload: bytes, ethertype: int = 0x0800) -> bytes:
    return MAC_B + MAC_A + struct.pack("!H", ethertype) + payload


def ipv4(payload: bytes, proto: int = 6, vihl: int = 0x45, total: int | None = None, frag: int = 0x4000) -> bytes:
    opts = bytes(max(0, (vihl & 0x0F) * 4 - 20))
    total = 20 + len(opts) + len(payload) if total is None else total
    header = struct.pack(
        "!BBHHHBBH4s4s",
        vihl,
        0,
        total & 0xFFFF,
        7,
        frag,
        64,
        proto,
        0,
        socket.inet_aton(CLIENT),
        socket.inet_aton(SERVER),
    )
    return header + opts + payload


def ipv6(payload: bytes, nxt: int, plen: int | None = None) -> bytes:
    plen = len(payload) if plen is None else plen
    return (
        struct.pack("!IHBB", 0x60000000, plen & 0xFFFF, nxt, 64)
        + socket.inet_pton(socket.AF_INET6, "fe80::1")
        + socket.inet_pton(socket.AF_INET6, "2001:db8::1")
        + payload
    )


def tcp(data: bytes = b"", flags: int = 0x18, offset: int = 5, sport: int = 40000, dport: int = 80, seq: int = 1):
    opts = bytes(max(0, offset * 4 - 20))
    return struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, 1, (offset & 0xF) << 4, flags, 1000, 0, 0) + (
        opts + data
    )


def udp(data: bytes, sport: int = 40000, dport: int = 53, length: int | None = None) -> bytes:
    return struct.pack("!HHHH", sport, dport, (8 + len(data) if length is None else length) & 0xFFFF, 0) + data


def dns(question: bytes, flags: int = 0x0100, counts: tuple[int, int, int, int] = (1, 0, 0, 0), rest: bytes = b""):
    return struct.pack("!HHHHHH", 0x1234, flags, *counts) + question + rest


def labels(*parts: bytes) -> bytes:
    return b"".join(bytes([len(p)]) + p for p in parts) + b"\0"


def client_hello(sni: bytes, sni_len: int | None = None, ext_len: int | None = None) -> bytes:
    name = struct.pack("!BH", 0, len(sni) if sni_len is None else sni_len) + sni
    ext = struct.pack("!HHH", 0, len(name) + 2, len(name)) + name
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    body += struct.pack("!H", len(ext) if ext_len is None else ext_len) + ext
    hs = struct.pack("!B", 1) + len(body).to_bytes(3, "big") + body
    return struct.pack("!BHH", 22, 0x0301, len(hs)) + hs


def crafted_frames() -> list[tuple[str, bytes]]:
    """Frames that break a header rule each, named after the rule (Ethernet link type)."""
    q = labels(b"www", b"example", b"com") + struct.pack("!HH", 1, 1)
    long_name = labels(*[b"a" * 63] * 4)  # 4 x 64 + 1 = 257 bytes: longer than a name may be
    name_255 = labels(*[b"b" * 63] * 3, b"c" * 61)  # exactly 255 bytes
    frames = [
        *[(f"ipv4-ihl-{ihl}", eth(ipv4(tcp(), vihl=0x40 | ihl))) for ihl in range(5)],
        ("ipv4-ihl-15-short", eth(ipv4(tcp(), vihl=0x4F))[:40]),
        *[(f"ipv4-total-{t}", eth(ipv4(tcp(), total=t))) for t in (0, 1, 19, 21, 65535)],
        *[(f"tcp-offset-{o}", eth(ipv4(tcp(b"xyz", offset=o)))) for o in (0, 1, 4, 15)],
        ("tcp-offset-past-segment", eth(ipv4(tcp(offset=15)[:24], total=44))),
        ("tcp-options-zero-length", eth(ipv4(tcp(offset=6)[:20] + b"\x02\x00\x00\x00"))),
        ("tcp-options-long", eth(ipv4(tcp(offset=6)[:20] + b"\x08\xff\x00\x00"))),
        ("tcp-seq-wrap", eth(ipv4(tcp(b"a" * 10, seq=2**32 - 3)))),
        ("udp-length-0", eth(ipv4(udp(b"abc", length=0), 17))),
        ("udp-length-65535", eth(ipv4(udp(b"abc", length=65535), 17))),
        ("dns-pointer-self", eth(ipv4(udp(dns(b"\xc0\x0c" + b"\x00\x01\x00\x01")), 17))),
        ("dns-pointer-loop", eth(ipv4(udp(dns(b"\x01a\xc0\x0e" + b"\x00\x01\x00\x01")), 17))),
        ("dns-pointer-forward", eth(ipv4(udp(dns(b"\xc0\x20" + bytes(20) + b"\xc0\x0c")), 17))),
        ("dns-pointer-past-end", eth(ipv4(udp(dns(b"\xff\xff")), 17))),
        ("dns-name-257", eth(ipv4(udp(dns(long_name + b"\x00\x01\x00\x01")), 17))),
        ("dns-name-255", eth(ipv4(udp(dns(name_255 + b"\x00\x01\x00\x01")), 17))),
        ("dns-label-64", eth(ipv4(udp(dns(b"\x40" + b"x" * 64 + b"\x00\x00\x01\x00\x01")), 17))),
        ("dns-label-past-end", eth(ipv4(udp(dns(b"\x3fabc")), 17))),
        ("dns-counts-65535", eth(ipv4(udp(dns(q, counts=(65535, 65535, 65535, 65535))), 17))),
        (
            "dns-answer-rdlength",
            eth(ipv4(udp(dns(q, 0x8180, (1, 1, 0, 0), b"\xc0\x0c\x00\x01\x00\x01" + bytes(4) + b"\xff\xff")), 17)),
        ),
        ("dns-rcode-15", eth(ipv4(udp(dns(q, 0x818F)), 17))),
        ("dns-tcp-length-lie", eth(ipv4(tcp(struct.pack("!H", 65535) + dns(q), dport=53)))),
        ("dns-tcp-length-0", eth(ipv4(tcp(struct.pack("!H", 0) + dns(q), dport=53)))),
        (
            "http-content-length-huge",
            eth(
                ipv4(tcp(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", sport=80, dport=40000))
            ),
        ),
        (
            "http-content-length-negative",
            eth(ipv4(tcp(b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nab", sport=80, dport=40001))),
        ),
        ("http-status-huge", eth(ipv4(tcp(b"HTTP/1.1 99999 X\r\n\r\n", sport=80, dport=40002)))),
        ("http-status-negative", eth(ipv4(tcp(b"HTTP/1.1 -200 X\r\n\r\n", sport=80, dport=40003)))),
        (
            "http-chunk-huge",
            eth(
                ipv4(
                    tcp(
                        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nab",
                        sport=80,
                        dport=40004,
                    )
                )
            ),
        ),
        ("http-no-crlf", eth(ipv4(tcp(b"GET /" + b"A" * 1400, dport=80)))),
        ("http-header-only-colons", eth(ipv4(tcp(b"GET / HTTP/1.1\r\n" + b":" * 500 + b"\r\n\r\n", dport=80)))),
        ("ftp-code-huge", eth(ipv4(tcp(b"99999 no\r\n", sport=21, dport=40005)))),
        ("ftp-code-short", eth(ipv4(tcp(b"5\r\n", sport=21, dport=40006)))),
        ("tls-sni-length-lie", eth(ipv4(tcp(client_hello(b"example.com", sni_len=65535), dport=443)))),
        ("tls-ext-length-lie", eth(ipv4(tcp(client_hello(b"example.com", ext_len=65535), dport=443)))),
        ("tls-record-huge", eth(ipv4(tcp(struct.pack("!BHH", 22, 0x0303, 65535) + b"\x01", dport=443)))),
        ("tls-sni-binary", eth(ipv4(tcp(client_hello(bytes(range(256))[:200]), dport=443)))),
        (
            "icmp-error-quoting-error",
            eth(ipv4(b"\x03\x03" + bytes(6) + ipv4(b"\x03\x03" + bytes(6) + ipv4(udp(b"x"), 17), 1), 1)),
        ),
        ("ipip-deep", eth(_nested_ipip(12))),
        ("gre-deep", eth(_nested_gre(8))),
        ("vlan-stack-200", eth(struct.pack("!HH", 0, 0x8100) * 200 + ipv4(tcp()), 0x8100)),
        ("ipv6-ext-chain", eth(ipv6(b"\x00\x00" + bytes(6) + b"\x00\xff" + bytes(6 + 255 * 8), 0), 0x86DD)),
        (
            "ipv6-ext-loop-40",
            eth(ipv6(b"".join(b"\x00\x00" + bytes(6) for _ in range(40)) + b"\x06\x00" + bytes(6), 0), 0x86DD),
        ),
        ("ipv6-fragment", eth(ipv6(b"\x11\x00\x00\x01" + bytes(4) + udp(b"frag"), 44), 0x86DD)),
        ("ipv6-plen-lie", eth(ipv6(tcp(), 6, plen=65535), 0x86DD)),
        (
            "arp-opcode-ff01",
            eth(struct.pack("!HHBBH", 1, 0x0800, 6, 4, 0xFF01) + MAC_A + bytes(4) + MAC_B + bytes(4), 0x0806),
        ),
        ("arp-hlen-0", eth(struct.pack("!HHBBH", 1, 0x0800, 0, 4, 1) + bytes(8), 0x0806)),
        ("arp-hlen-255", eth(struct.pack("!HHBBH", 1, 0x0800, 255, 255, 1) + bytes(40), 0x0806)),
        ("ethernet-cut", eth(b"")[:7]),
        ("llc-short", eth(b"\x42", 0x0003)),
        ("empty", b""),
    ]
    return frames


def _nested_ipip(depth: int) -> bytes:
    packet = ipv4(udp(b"inner"), 17)
    for _ in range(depth):
        packet = ipv4(packet, 4)
    return packet


def _nested_gre(depth: int) -> bytes:
    packet = ipv4(tcp(), 6)
    for _ in range(depth):
        packet = ipv4(struct.pack("!HH", 0, 0x0800) + packet, 47)
    return packet


# --------------------------------------------------------------------------- file writers


def pcap_file(
    frames: list[bytes],
    linktype: int = LINKTYPE_ETHERNET,
    order: str = "<",
    nanoseconds: bool = False,
    snaplen: int = 262144,
    wire: Callable[[int, bytes], int] | None = None,
) -> bytes:
    """A classic pcap file of ``frames``, ``FRAME_GAP_US`` apart (``wire`` gives each record's original length)."""
    magic = PCAP_MAGIC_NS if nanoseconds else PCAP_MAGIC_US
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for i, frame in enumerate(frames):
        length = len(frame) if wire is None else wire(i, frame)
        sec, usec = divmod(i * FRAME_GAP_US, 1_000_000)
        frac = usec * 1000 if nanoseconds else usec
        out.append(struct.pack(order + "IIII", T0 + sec, frac, len(frame), length & 0xFFFFFFFF) + frame)
    return b"".join(out)


def _block(order: str, block_type: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    total = 12 + len(body)
    return struct.pack(order + "II", block_type, total) + body + struct.pack(order + "I", total)


def pcapng_file(
    frames: list[bytes], linktypes: tuple[int, ...] = (LINKTYPE_ETHERNET,), order: str = "<", tsresol: int | None = None
) -> bytes:
    """A pcapng file: one section, an interface per link type, frames spread over the interfaces."""
    out = [_block(order, PCAPNG_SHB, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))]
    for linktype in linktypes:
        options = b""
        if tsresol is not None:
            options = struct.pack(order + "HHB", 9, 1, tsresol) + bytes(3) + bytes(4)
        out.append(_block(order, PCAPNG_IDB, struct.pack(order + "HHI", linktype & 0xFFFF, 0, 0) + options))
    for i, frame in enumerate(frames):
        stamp = T0 * 1_000_000 + i * FRAME_GAP_US
        iface = i % len(linktypes)
        header = struct.pack(order + "IIIII", iface, stamp >> 32, stamp & 0xFFFFFFFF, len(frame), len(frame))
        out.append(_block(order, PCAPNG_EPB, header + frame))
    return b"".join(out)


def crafted_captures() -> dict[str, bytes]:
    """Hostile capture files: every crafted frame, then files that break the pcap/pcapng format."""
    named = crafted_frames()
    frames = [f for _, f in named]
    out = {f"crafted-{name}.pcap": pcap_file([f, eth(ipv4(tcp()))]) for name, f in named}
    out["crafted-all.pcap"] = pcap_file(frames)
    out["crafted-all-ns-bigendian.pcap"] = pcap_file(frames, order=">", nanoseconds=True)
    out["crafted-all.pcapng"] = pcapng_file(frames)
    out["crafted-all-bigendian.pcapng"] = pcapng_file(frames, order=">")
    raw = [f[14:] for f in frames if len(f) > 14]
    out["crafted-raw.pcap"] = pcap_file(raw, linktype=LINKTYPE_RAW)
    out["crafted-sll.pcap"] = pcap_file([struct.pack("!HHH8sH", 0, 1, 6, MAC_A, 0x0800) + r for r in raw], LINKTYPE_SLL)
    out["crafted-null.pcap"] = pcap_file([struct.pack("<I", 2) + r for r in raw], LINKTYPE_NULL)
    out["crafted-sll2.pcap"] = pcap_file(
        [struct.pack("!HHIHBB8s", 0x0800, 0, 1, 1, 0, 6, MAC_A) + r for r in raw], LINKTYPE_SLL2
    )
    out["zero-length-frames.pcap"] = pcap_file([b""] * 20, wire=lambda i, f: [0, 1, 65535, 2**32 - 1][i % 4])
    out["jumbo-65535.pcap"] = pcap_file([eth(ipv4(tcp(b"j" * 65400)))[:65535]] * 3)
    out["jumbo-262144.pcap"] = pcap_file([eth(ipv4(udp(b"j" * 262100, length=0), 17, total=0))[:262144]])
    out["jumbo-262145.pcap"] = pcap_file([bytes(262145)])
    out["wire-shorter-than-captured.pcap"] = pcap_file(frames[:20], wire=lambda i, f: i)
    out["wire-huge.pcap"] = pcap_file(frames[:20], wire=lambda i, f: 2**32 - 1 - i)
    out["snaplen-lie.pcap"] = pcap_file([eth(ipv4(tcp(b"s" * 1000)))] * 5, snaplen=64)
    out["snaplen-zero.pcap"] = pcap_file([eth(ipv4(tcp()))] * 5, snaplen=0)
    for linktype in UNKNOWN_LINKTYPES:
        out[f"unknown-linktype-{linktype}.pcap"] = pcap_file(frames[:5], linktype=linktype)
        out[f"unknown-linktype-{linktype}.pcapng"] = pcapng_file(frames[:6], linktypes=(LINKTYPE_ETHERNET, linktype))
    for resol in (0, 6, 9, 19, 20, 63, 0x7F, 0x80, 0x8A, 0xBF, 0xFF):
        out[f"tsresol-{resol:#x}.pcapng"] = pcapng_file(frames[:8], tsresol=resol)
    good = pcapng_file(frames[:6])
    first_packet = len(_block("<", PCAPNG_SHB, bytes(16))) + len(_block("<", PCAPNG_IDB, bytes(8)))
    for total in (0, 4, 12, 13, 28, 2**31, 2**32 - 4):
        out[f"pcapng-block-length-{total}.pcapng"] = (
            good[: first_packet + 4] + struct.pack("<I", total) + good[first_packet + 8 :]
        )
    out["pcapng-trailer-mismatch.pcapng"] = good[:-4] + struct.pack("<I", 12)
    out["pcapng-packet-before-interface.pcapng"] = (
        _block("<", PCAPNG_SHB, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)) + good[first_packet:]
    )
    out["pcapng-simple-packet-before-interface.pcapng"] = _block(
        "<", PCAPNG_SHB, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
    ) + _block("<", PCAPNG_SPB, struct.pack("<I", 60) + bytes(60))
    out["pcapng-simple-packet-length-lie.pcapng"] = good[:first_packet] + _block(
        "<", PCAPNG_SPB, struct.pack("<I", 2**32 - 1) + eth(ipv4(tcp()))
    )
    out["pcapng-two-sections-switching-order.pcapng"] = good + pcapng_file(frames[6:12], order=">") + good
    out["pcapng-interface-options-overrun.pcapng"] = (
        good[:28]
        + _block("<", PCAPNG_IDB, struct.pack("<HHI", 1, 0, 0) + struct.pack("<HH", 9, 65535) + b"\x06")
        + good[first_packet:]
    )
    out["pcap-header-only.pcap"] = pcap_file([])
    out["pcap-header-cut.pcap"] = pcap_file([])[:20]
    out["pcap-record-header-cut.pcap"] = pcap_file([eth(ipv4(tcp()))])[:30]
    out["pcap-usec-overflow.pcap"] = _restamp(pcap_file(frames[:10]), lambda i: (T0, 999_999_999 + i))
    out["pcap-times-extreme.pcap"] = _restamp(pcap_file(frames[:10]), lambda i: [(0, 0), (2**32 - 1, 999_999)][i % 2])
    out["pcap-times-backwards.pcap"] = _restamp(pcap_file(frames[:10]), lambda i: (T0 + 1000 - 100 * i, 0))
    out["pcap-every-packet-own-window.pcap"] = _restamp(pcap_file(frames[:16]), lambda i: (T0 + 3600 * i, 0))
    out["tcp-many-tiny-segments.pcap"] = pcap_file([eth(ipv4(tcp(b"x", seq=1 + i, dport=80))) for i in range(400)])
    out["tcp-seq-gaps.pcap"] = pcap_file(
        [eth(ipv4(tcp(b"HTTP/1.1 200 OK\r\n", seq=i * 2**28, sport=80))) for i in range(40)]
    )
    return out


def _restamp(pcap: bytes, stamp: Callable[[int], tuple[int, int]]) -> bytes:
    """The same little-endian pcap with record i stamped ``stamp(i)`` = (seconds, fraction)."""
    data = bytearray(pcap)
    off, i = 24, 0
    while off + 16 <= len(data):
        sec, frac = stamp(i)
        caplen = struct.unpack_from("<I", data, off + 8)[0]
        struct.pack_into("<II", data, off, sec & 0xFFFFFFFF, frac & 0xFFFFFFFF)
        off += 16 + caplen
        i += 1
    return bytes(data)


# --------------------------------------------------------------------------- seeds


def record_positions(data: bytes) -> tuple[list[tuple[int, int, int]], bool]:
    """(record header offset, frame offset, captured length) of each complete record, and whether pcapng."""
    if len(data) < 24:
        return [], False
    if struct.unpack_from("<I", data)[0] == PCAPNG_SHB:
        return _pcapng_positions(data), True
    magic = struct.unpack_from("<I", data)[0]
    order = "<" if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS) else ">"
    out, off = [], 24
    while off + 16 <= len(data):
        caplen = struct.unpack_from(order + "I", data, off + 8)[0]
        if off + 16 + caplen > len(data):
            break
        out.append((off, off + 16, caplen))
        off += 16 + caplen
    return out, False


def _pcapng_blocks(data: bytes) -> list[tuple[int, int]]:
    """(offset, block type) of each whole block, up to the first one that does not parse."""
    out, off, order = [], 0, "<"
    while off + 12 <= len(data):
        if struct.unpack_from("<I", data, off)[0] == PCAPNG_SHB:
            order = "<" if struct.unpack_from("<I", data, off + 8)[0] == 0x1A2B3C4D else ">"
        block_type, total = struct.unpack_from(order + "II", data, off)
        if total < 12 or total % 4 or off + total > len(data):
            break
        out.append((off, block_type))
        off += total
    return out


def _pcapng_positions(data: bytes) -> list[tuple[int, int, int]]:
    out, order = [], "<"
    for off, block_type in _pcapng_blocks(data):
        if block_type == PCAPNG_SHB:
            order = "<" if struct.unpack_from("<I", data, off + 8)[0] == 0x1A2B3C4D else ">"
        total = struct.unpack_from(order + "I", data, off + 4)[0]
        if block_type == PCAPNG_EPB and total >= 32:
            caplen = struct.unpack_from(order + "I", data, off + 20)[0]
            out.append((off, off + 28, min(caplen, total - 32)))
    return out


def sliced(data: bytes, records: int, span_s: float = SEED_SPAN_S) -> bytes:
    """The file up to its ``records``-th record (or packet block), and no more than ``span_s`` past the first."""
    positions, pcapng = record_positions(data)
    times = [_record_time(data, header, pcapng) for header, _, _ in positions[:records]]
    keep = sum(1 for t in times if t - times[0] <= span_s) if times else 0
    return data if keep == len(positions) else data[: positions[keep][0]]


def _record_time(data: bytes, header: int, pcapng: bool) -> float:
    """Seconds of a record (pcapng: read as microseconds, the default resolution; close enough to slice)."""
    if pcapng:
        order = "<" if data[8:12] == struct.pack("<I", 0x1A2B3C4D) else ">"
        hi, lo = struct.unpack_from(order + "II", data, header + 12)
        return ((hi << 32) | lo) / 1e6
    order = "<" if struct.unpack_from("<I", data)[0] in (PCAP_MAGIC_US, PCAP_MAGIC_NS) else ">"
    return float(struct.unpack_from(order + "I", data, header)[0])


def load_seeds(folders: tuple[Path, ...] = (SHARED_PCAPS, REPO_PCAPS), records: int = SEED_RECORDS) -> list[Seed]:
    """Public captures (sliced; a name in several folders once), the tiny committed captures and the crafted ones."""
    found: dict[str, bytes] = {}
    for path in sorted((p for folder in folders if folder.is_dir() for p in folder.iterdir()), key=lambda p: p.name):
        if path.suffix in (".pcap", ".pcapng", ".cap") and path.name not in found:
            with path.open("rb") as fh:
                found[path.name] = sliced(fh.read(SEED_SCAN_BYTES), records)
    for path in sorted(TINY_PCAPS.glob("tiny-*.pcap*")):
        found[path.name] = path.read_bytes()
    real = [Seed(name, data, *record_positions(data)) for name, data in found.items()]
    return real + [Seed(name, data, *record_positions(data), True) for name, data in crafted_captures().items()]


# --------------------------------------------------------------------------- mutations

INTERESTING_BYTES = (0x00, 0x01, 0x04, 0x05, 0x0F, 0x3F, 0x40, 0x7F, 0x80, 0xC0, 0xFE, 0xFF)
INTERESTING_U16 = (0, 1, 5, 8, 19, 20, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF)
INTERESTING_U32 = (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 65535, 65536, 262144, 262145)
HEADER_BYTES = 128  # mutations inside a frame aim at its first bytes, where the headers are


def _frame_spot(rng: random.Random, seed: Seed, data: bytearray, width: int = 1) -> int | None:
    if not seed.records:
        return rng.randrange(len(data)) if data else None
    _, frame, caplen = rng.choice(seed.records)
    spot = frame + rng.randrange(max(1, min(caplen, HEADER_BYTES) - width + 1))
    return spot if spot + width <= len(data) else None  # earlier mutations may have moved or cut the frames


def flip_bits(rng, seed, data):
    for _ in range(rng.randint(1, 8)):
        spot = _frame_spot(rng, seed, data)
        if spot is not None:
            data[spot] ^= 1 << rng.randrange(8)
    return data


def set_bytes(rng, seed, data):
    for _ in range(rng.randint(1, 4)):
        spot = _frame_spot(rng, seed, data)
        if spot is not None:
            data[spot] = rng.choice(INTERESTING_BYTES)
    return data


def set_word(rng, seed, data):
    spot = _frame_spot(rng, seed, data, 2)
    if spot is not None:
        data[spot : spot + 2] = struct.pack("!H", rng.choice(INTERESTING_U16))
    return data


def random_file_bytes(rng, seed, data):
    for _ in range(rng.randint(1, 16)):
        if len(data) > 4:
            data[rng.randrange(4, len(data))] = rng.randrange(256)
    return data


def truncate(rng, seed, data):
    return data[: rng.randrange(4, len(data) + 1)] if len(data) > 4 else data


def cut_record(rng, seed, data):
    """End the file inside a record: in its header or in its frame."""
    if not seed.records:
        return truncate(rng, seed, data)
    header, frame, caplen = rng.choice(seed.records)
    return data[: rng.randint(header + 1, frame + caplen - 1)] if frame + caplen > header + 1 else data


def absurd_length(rng, seed, data):
    """A record's captured or original length set to an absurd value."""
    if not seed.records:
        return data
    header, frame, _ = rng.choice(seed.records)
    order = _order(seed, data)
    if seed.pcapng:
        field = header + rng.choice([4, 20, 24])  # block total length, captured length, original length
    else:
        field = header + rng.choice([8, 12])
    if field + 4 <= len(data):
        struct.pack_into(order + "I", data, field, rng.choice(INTERESTING_U32))
    return data


def absurd_time(rng, seed, data):
    if not seed.records or seed.pcapng:
        return data
    header, _, _ = rng.choice(seed.records)
    if header + 8 <= len(data):
        struct.pack_into(
            _order(seed, data) + "II", data, header, rng.choice(INTERESTING_U32), rng.choice(INTERESTING_U32)
        )
    return data


def change_linktype(rng, seed, data):
    linktype = rng.choice(
        [
            *UNKNOWN_LINKTYPES,
            LINKTYPE_NULL,
            LINKTYPE_ETHERNET,
            LINKTYPE_RAW,
            LINKTYPE_SLL,
            12,
            14,
            108,
            228,
            229,
            LINKTYPE_SLL2,
        ]
    )
    if not seed.pcapng and len(data) >= 24:
        struct.pack_into(_order(seed, data) + "I", data, 20, linktype)
    elif seed.pcapng:
        order = _order(seed, data)
        interfaces = [off for off, block_type in _pcapng_blocks(bytes(data)) if block_type == PCAPNG_IDB]
        if interfaces:
            struct.pack_into(order + "H", data, rng.choice(interfaces) + 8, linktype & 0xFFFF)
    return data


def duplicate_records(rng, seed, data):
    """Copy a run of records to another place: retransmissions, reordering, repeated handshakes."""
    if len(seed.records) < 2:
        return data
    a = rng.randrange(len(seed.records))
    b = min(len(seed.records) - 1, a + rng.randint(0, 20))
    run = bytes(data[seed.records[a][0] : seed.records[b][1] + seed.records[b][2]])
    at = rng.choice(seed.records)[0]
    return data[:at] + run + data[at:]


def splice_frame(rng, seed, data):
    """Overwrite the start of one frame with bytes from another (header of one, payload of another)."""
    if len(seed.records) < 2:
        return data
    _, dst, dst_len = rng.choice(seed.records)
    _, src, src_len = rng.choice(seed.records)
    n = min(dst_len, src_len, rng.randint(1, HEADER_BYTES))
    shift = rng.randrange(0, max(1, src_len - n + 1))
    data[dst : dst + n] = data[src + shift : src + shift + n]
    return data


def insert_bytes(rng, seed, data):
    at = rng.randrange(24, len(data) + 1) if len(data) > 24 else len(data)
    return data[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))) + data[at:]


# --------------------------------------------------------------------------- bit flips aimed at protocol fields

ETHERTYPE_IPV4, ETHERTYPE_IPV6 = 0x0800, 0x86DD
ETHERTYPE_VLAN = (0x8100, 0x88A8, 0x9100)  # 802.1Q, 802.1ad and the old QinQ tags
IPPROTO_TCP, IPPROTO_UDP = 6, 17
LINKTYPES_RAW_IP = (LINKTYPE_RAW, 12, 14, 228, 229)
PROTOCOL_REGIONS = ("ip", "transport", "payload")  # IP header, TCP/UDP header, DNS or other TCP/UDP payload


def linktype_of(data: bytes, pcapng: bool) -> int | None:
    """Link type of a pcap file, or of the first interface of a pcapng file."""
    if pcapng:
        for off, block_type in _pcapng_blocks(data):
            if block_type == PCAPNG_IDB and off + 10 <= len(data):
                order = "<" if data[8:12] == struct.pack("<I", 0x1A2B3C4D) else ">"
                return struct.unpack_from(order + "H", data, off + 8)[0]
        return None
    if len(data) < 24:
        return None
    order = "<" if struct.unpack_from("<I", data)[0] in (PCAP_MAGIC_US, PCAP_MAGIC_NS) else ">"
    return struct.unpack_from(order + "I", data, 20)[0] & 0x0FFFFFFF


def _ip_offset(frame: bytes, linktype: int) -> int | None:
    """Where the IP header starts in a frame of this link type (None: not IP, or a link type not handled)."""

    def after(ethertype_at: int, header: int) -> int | None:
        ip = len(frame) >= header and struct.unpack_from("!H", frame, ethertype_at)[0] in (
            ETHERTYPE_IPV4,
            ETHERTYPE_IPV6,
        )
        return header if ip else None

    if linktype == LINKTYPE_ETHERNET:
        off = 14
        while len(frame) >= off + 4 and struct.unpack_from("!H", frame, off - 2)[0] in ETHERTYPE_VLAN:
            off += 4
        return after(off - 2, off)
    if linktype == LINKTYPE_SLL:
        return after(14, 16)
    if linktype == LINKTYPE_SLL2:
        return after(0, 20)
    if linktype == LINKTYPE_NULL:
        return 4
    return 0 if linktype in LINKTYPES_RAW_IP else None


def protocol_regions(frame: bytes, linktype: int) -> dict[str, tuple[int, int]]:
    """(start, end) in the frame of its IP header, TCP/UDP header and their payload (DNS, TCP data), where present."""
    ip = _ip_offset(frame, linktype)
    if ip is None or ip >= len(frame):
        return {}
    version = frame[ip] >> 4
    if version == 4 and len(frame) >= ip + 20:
        ip_end, proto = ip + (frame[ip] & 0x0F) * 4, frame[ip + 9]
    elif version == 6 and len(frame) >= ip + 40:
        ip_end, proto = ip + 40, frame[ip + 6]
    else:
        return {}
    regions = {"ip": (ip, min(ip_end, len(frame)))}
    if proto == IPPROTO_TCP and len(frame) >= ip_end + 20:
        transport_end = ip_end + max(20, (frame[ip_end + 12] >> 4) * 4)
    elif proto == IPPROTO_UDP and len(frame) >= ip_end + 8:
        transport_end = ip_end + 8
    else:
        return regions
    regions["transport"] = (ip_end, min(transport_end, len(frame)))
    if transport_end < len(frame):
        regions["payload"] = (transport_end, len(frame))
    return regions


def flip_protocol_bits(rng, seed, data):
    """Flip 1-8 bits, each in the IP header, the TCP/UDP header or the payload (DNS, TCP data) of a packet.

    Unlike ``flip_bits`` (the first bytes of any frame), each flip lands in a protocol field or in
    application data anywhere in the packet: what corrupts a DNS name, a port, a flag or a fragment
    offset while the file and the frame stay well formed.
    """
    linktype = linktype_of(bytes(data[:4096]), seed.pcapng) if seed.records else None
    if linktype is None:
        return flip_bits(rng, seed, data)
    for _ in range(rng.randint(1, 8)):
        _, frame, caplen = rng.choice(seed.records)
        if frame + caplen > len(data):
            continue  # an earlier mutation moved or cut the frames
        regions = protocol_regions(bytes(data[frame : frame + caplen]), linktype)
        if not regions:
            continue
        start, end = regions[rng.choice([name for name in PROTOCOL_REGIONS if name in regions])]
        if end > start:
            data[frame + rng.randrange(start, end)] ^= 1 << rng.randrange(8)
    return data


def _order(seed: Seed, data: bytearray) -> str:
    if seed.pcapng:
        return "<" if data[8:12] == struct.pack("<I", 0x1A2B3C4D) else ">"
    return "<" if struct.unpack_from("<I", data)[0] in (PCAP_MAGIC_US, PCAP_MAGIC_NS) else ">"


MUTATIONS: dict[str, Callable] = {
    "flip_bits": flip_bits,
    "set_bytes": set_bytes,
    "set_word": set_word,
    "random_file_bytes": random_file_bytes,
    "truncate": truncate,
    "cut_record": cut_record,
    "absurd_length": absurd_length,
    "absurd_time": absurd_time,
    "change_linktype": change_linktype,
    "duplicate_records": duplicate_records,
    "splice_frame": splice_frame,
    "insert_bytes": insert_bytes,
}
# Mutations inside frames find decoder bugs; those of the file structure are drawn less often.
WEIGHTS = {"flip_bits": 4, "set_bytes": 4, "set_word": 4, "splice_frame": 2, "duplicate_records": 1}


def make_flip_case(seeds: list[Seed], seed: int, number: int) -> Case:
    """Case ``number`` of the protocol bit-flip campaign: public capture ``number`` modulo their count (so
    every public capture gets its share), with 1-4 rounds of :func:`flip_protocol_bits`."""
    public = [s for s in seeds if not s.crafted and not s.name.startswith("tiny-")]
    public = public or [s for s in seeds if not s.crafted]  # without ../shared/pcaps: the tiny captures
    base = public[number % len(public)]
    rng = random.Random(f"flips:{seed}:{number}")
    data = bytearray(base.data)
    rounds = rng.randint(1, 4)
    for _ in range(rounds):
        data = flip_protocol_bits(rng, base, data)
    return Case(number, base.name, ["flip_protocol_bits"] * rounds, bytes(data))


def make_case(seeds: list[Seed], seed: int, number: int) -> Case:
    """Case ``number`` of fuzz seed ``seed``: a capture seed plus 0-4 mutations (0 for about 1 in 20)."""
    rng = random.Random(f"{seed}:{number}")
    real = [s for s in seeds if not s.crafted]
    crafted = [s for s in seeds if s.crafted]
    base = rng.choice(real if real and (not crafted or rng.random() < 0.5) else crafted)  # half real traffic
    names = list(MUTATIONS)
    weights = [WEIGHTS.get(name, 1) for name in names]
    count = 0 if rng.random() < 0.05 else rng.randint(1, 4)
    chosen = rng.choices(names, weights, k=count)
    data = bytearray(base.data)
    for name in chosen:
        data = bytearray(MUTATIONS[name](rng, base, data))
    return Case(number, base.name, chosen, bytes(data))


# How case numbers become cases: the mixed mutations above (the default), or protocol bit flips only
# (flip_protocol_bits is kept out of MUTATIONS so that the mixed campaign's cases stay as documented).
CAMPAIGNS: dict[str, Callable[[list[Seed], int, int], Case]] = {"mixed": make_case, "protocol-flips": make_flip_case}
