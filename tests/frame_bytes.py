"""Frames built byte by byte for the readers' tests: Ethernet, IPv4/IPv6, TCP/UDP, DNS, and a pcap to hold them."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

CLIENT, SERVER = "10.0.0.2", "10.0.0.80"
MAC_A, MAC_B = bytes.fromhex("020000000002"), bytes.fromhex("020000000050")


def eth(payload: bytes, ethertype: int = 0x0800) -> bytes:
    return MAC_B + MAC_A + struct.pack("!H", ethertype) + payload


def ipv4(payload: bytes, proto: int = 6, vihl: int = 0x45, total: int | None = None, frag: int = 0x4000, opts=b""):
    total = 20 + len(opts) + len(payload) if total is None else total
    header = struct.pack(
        "!BBHHHBBH4s4s", vihl, 0, total, 7, frag, 64, proto, 0, socket.inet_aton(CLIENT), socket.inet_aton(SERVER)
    )
    return header + opts + payload


def ipv6(payload: bytes, nxt: int, plen: int | None = None) -> bytes:
    plen = len(payload) if plen is None else plen
    return (
        struct.pack("!IHBB", 0x60000000, plen, nxt, 64)
        + socket.inet_pton(socket.AF_INET6, "fe80::1")
        + socket.inet_pton(socket.AF_INET6, "2001:db8::ffff:1.2.3.4")
        + payload
    )


def tcp(data: bytes = b"", flags: int = 0x18, offset: int = 5, sport: int = 40000, dport: int = 80, seq: int = 1):
    return struct.pack("!HHIIBBHHH", sport, dport, seq, 1, offset << 4, flags, 1000, 0, 0) + data


def udp(data: bytes, sport: int = 40000, dport: int = 53, length: int | None = None) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(data) if length is None else length, 0) + data


def dns_query(name: bytes, extra: bytes = b"", flags: int = 0x0100) -> bytes:
    return struct.pack("!HHHHHH", 0x1234, flags, 1, 0, 0, 0) + name + struct.pack("!HH", 1, 1) + extra


def labels(*parts: bytes) -> bytes:
    return b"".join(bytes([len(p)]) + p for p in parts) + b"\0"


def write_pcap(path: Path, frames: list[tuple[bytes, int]], linktype: int = 1) -> Path:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype)]
    for i, (frame, wire) in enumerate(frames):
        out.append(struct.pack("<IIII", 1_700_000_000 + i, 500_000, len(frame), wire) + frame)
    path.write_bytes(b"".join(out))
    return path
