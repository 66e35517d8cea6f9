"""Byte builders for Ethernet, ARP, IPv4, TCP, UDP and ICMP frames.

The synthesizer writes millions of frames, so each builder is a handful of ``struct.pack`` calls on
pre-packed addresses (4-byte ``bytes`` for IPv4, 6-byte ``bytes`` for MACs) rather than a layered
object model. Checksums are real: tshark and the analyzer see what a NIC would have put on the wire.

A frame may stand for a longer one: ``wire_len`` lets a builder state the payload length the IP and
TCP/UDP headers claim while only the first ``snap_len`` bytes are returned, as a capture with a
snaplen records them. Checksums then cover the whole (virtual) payload; ``payload_sum`` passes a
precomputed sum for payloads that repeat.
"""

from __future__ import annotations

import struct

ETH_IPV4 = 0x0800  # EtherType of IPv4
ETH_ARP = 0x0806  # EtherType of ARP
ETH_HEADER_LEN = 14  # destination MAC, source MAC, EtherType
MIN_FRAME_LEN = 60  # shortest Ethernet frame without FCS; shorter frames are padded on the wire
IP_HEADER_LEN = 20  # IPv4 header without options
TCP_HEADER_LEN = 20  # TCP header without options
UDP_HEADER_LEN = 8
PROTO_ICMP = 1  # IPv4 protocol numbers
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_VRRP = 112
IP_DF = 0x4000  # don't-fragment flag in the IPv4 flags/fragment field
TCP_FIN = 0x01  # TCP flag bits
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10
TCP_URG = 0x20
ICMP_ECHO_REPLY = 0  # ICMP types
ICMP_UNREACH = 3
ICMP_ECHO = 8
ICMP_PORT_UNREACH = 3  # code of ICMP_UNREACH for a closed UDP port
ARP_REQUEST = 1  # ARP opcodes
ARP_REPLY = 2
BROADCAST_MAC = b"\xff" * 6
ZERO_MAC = b"\x00" * 6
ONES_MOD = 0xFFFF  # one's-complement sums are sums modulo 2**16 - 1, since 2**16 == 1 (mod 2**16 - 1)
PAD = bytes(MIN_FRAME_LEN)

_ETH = struct.Struct("!6s6sH")
_IP = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")
_UDP = struct.Struct("!HHHH")
_ICMP = struct.Struct("!BBHHH")
_ARP = struct.Struct("!HHBBH6s4s6s4s")


def ones_sum(data: bytes) -> int:
    """One's-complement sum of ``data`` as 16-bit big-endian words, reduced modulo 0xFFFF (fast: one big int)."""
    if len(data) & 1:
        data += b"\x00"
    return int.from_bytes(data, "big") % ONES_MOD


def fold(total: int) -> int:
    """The Internet checksum of words whose sum modulo 0xFFFF is ``total`` (0 sums map to 0xFFFF's complement)."""
    total %= ONES_MOD
    return ONES_MOD - total if total else 0


def ip4(text: str) -> bytes:
    """Dotted-quad text to 4 bytes."""
    return bytes(int(part) for part in text.split("."))


def mac6(text: str) -> bytes:
    """Colon-separated MAC text to 6 bytes."""
    return bytes.fromhex(text.replace(":", ""))


def mac_text(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def ip_text(addr: bytes) -> str:
    return ".".join(str(b) for b in addr)


def multicast_mac(group: bytes) -> bytes:
    """The Ethernet address an IPv4 multicast group maps to (01:00:5e + low 23 bits)."""
    return bytes((0x01, 0x00, 0x5E, group[1] & 0x7F, group[2], group[3]))


def ethernet(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> bytes:
    """A frame, padded to the 60-byte minimum as a mirror port records it."""
    frame = _ETH.pack(dst, src, ethertype) + payload
    return frame + PAD[: MIN_FRAME_LEN - len(frame)] if len(frame) < MIN_FRAME_LEN else frame


def ipv4_header(
    src: bytes, dst: bytes, proto: int, payload_len: int, ident: int, ttl: int, flags: int = IP_DF
) -> bytes:
    """A 20-byte IPv4 header with its checksum."""
    total = IP_HEADER_LEN + payload_len
    header = _IP.pack(0x45, 0, total, ident & 0xFFFF, flags, ttl, proto, 0, src, dst)
    return header[:10] + fold(ones_sum(header)).to_bytes(2, "big") + header[12:]


def _pseudo_sum(src: bytes, dst: bytes, proto: int, length: int) -> int:
    return int.from_bytes(src, "big") + int.from_bytes(dst, "big") + proto + length


def tcp_frame(
    src_mac: bytes,
    dst_mac: bytes,
    src: bytes,
    dst: bytes,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    window: int,
    payload: bytes = b"",
    *,
    ident: int = 0,
    ttl: int = 64,
    options: bytes = b"",
    wire_payload_len: int | None = None,
    payload_sum: int | None = None,
    snap_len: int | None = None,
) -> tuple[bytes, int]:
    """An Ethernet/IPv4/TCP frame and its length on the wire.

    ``wire_payload_len`` (with ``payload_sum``, the one's-complement sum of the full payload) makes the
    headers describe a longer segment than ``payload`` holds; the frame is then cut at ``snap_len``.
    """
    pay_len = len(payload) if wire_payload_len is None else wire_payload_len
    psum = ones_sum(payload) if payload_sum is None else payload_sum
    hdr_len = TCP_HEADER_LEN + len(options)
    seg_len = hdr_len + pay_len
    header = _TCP.pack(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, (hdr_len // 4) << 4, flags, window, 0, 0)
    header += options
    check = fold(_pseudo_sum(src, dst, PROTO_TCP, seg_len) + ones_sum(header) + psum)
    header = header[:16] + check.to_bytes(2, "big") + header[18:]
    ip = ipv4_header(src, dst, PROTO_TCP, seg_len, ident, ttl)
    frame = ethernet(dst_mac, src_mac, ETH_IPV4, ip + header + payload)
    wire_len = ETH_HEADER_LEN + IP_HEADER_LEN + seg_len
    if snap_len is not None and len(frame) > snap_len:
        frame = frame[:snap_len]
    return frame, max(wire_len, len(frame))


def udp_frame(
    src_mac: bytes,
    dst_mac: bytes,
    src: bytes,
    dst: bytes,
    sport: int,
    dport: int,
    payload: bytes,
    *,
    ident: int = 0,
    ttl: int = 64,
    flags: int = 0,
) -> bytes:
    """An Ethernet/IPv4/UDP frame with a real UDP checksum."""
    length = UDP_HEADER_LEN + len(payload)
    header = _UDP.pack(sport, dport, length, 0)
    check = fold(_pseudo_sum(src, dst, PROTO_UDP, length) + ones_sum(header) + ones_sum(payload)) or 0xFFFF
    header = header[:6] + check.to_bytes(2, "big")
    return ethernet(
        dst_mac, src_mac, ETH_IPV4, ipv4_header(src, dst, PROTO_UDP, length, ident, ttl, flags) + header + payload
    )


def icmp_frame(
    src_mac: bytes,
    dst_mac: bytes,
    src: bytes,
    dst: bytes,
    icmp_type: int,
    code: int,
    rest: int,
    payload: bytes,
    *,
    ident: int = 0,
    ttl: int = 64,
) -> bytes:
    """An Ethernet/IPv4/ICMP frame; ``rest`` is the 32-bit rest-of-header (echo id << 16 | sequence)."""
    header = _ICMP.pack(icmp_type, code, 0, rest >> 16, rest & 0xFFFF)
    check = fold(ones_sum(header) + ones_sum(payload))
    body = header[:2] + check.to_bytes(2, "big") + header[4:] + payload
    return ethernet(dst_mac, src_mac, ETH_IPV4, ipv4_header(src, dst, PROTO_ICMP, len(body), ident, ttl, 0) + body)


def ip_frame(src_mac: bytes, dst_mac: bytes, src: bytes, dst: bytes, proto: int, body: bytes, *, ttl: int) -> bytes:
    """An Ethernet/IPv4 frame around a ready-made protocol body (VRRP and the like)."""
    return ethernet(dst_mac, src_mac, ETH_IPV4, ipv4_header(src, dst, proto, len(body), 0, ttl, 0) + body)


def arp_frame(
    eth_dst: bytes, src_mac: bytes, op: int, sender_mac: bytes, sender_ip: bytes, target_mac: bytes, target_ip: bytes
) -> bytes:
    """An Ethernet/ARP frame (IPv4 over Ethernet)."""
    body = _ARP.pack(1, ETH_IPV4, 6, 4, op, sender_mac, sender_ip, target_mac, target_ip)
    return ethernet(eth_dst, src_mac, ETH_ARP, body)
