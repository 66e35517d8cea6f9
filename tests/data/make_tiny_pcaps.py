"""Regenerates the tiny committed captures in this folder: python3 tests/data/make_tiny_pcaps.py

One small conversation (ARP, DNS query/answer, a TCP handshake with an HTTP GET and
close, a refused TCP connection, an ICMP echo) written with four link types:
Ethernet, Linux cooked (SLL and SLL2), raw IP and BSD loopback (NULL), plus the
Ethernet one as pcapng (editcap, from tshark's package, converts it). Built byte by byte so
the files are small, reproducible and need no capture privileges.
"""

from __future__ import annotations

import socket
import struct
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLIENT, SERVER, RESOLVER = "10.0.0.2", "10.0.0.80", "10.0.0.53"
CLIENT_MAC, SERVER_MAC = bytes.fromhex("020000000002"), bytes.fromhex("020000000050")
T0 = 1_700_000_000.0

LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2 = 0, 1, 101, 113, 276
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(src: str, dst: str, proto: int, payload: bytes, ttl: int = 64) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(payload),
        1,
        0x4000,
        ttl,
        proto,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:] + payload


def tcp(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int, data: bytes = b"") -> bytes:
    segment = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0) + data
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(segment))
    segment = segment[:16] + struct.pack("!H", checksum(pseudo + segment)) + segment[18:]
    return ipv4(src, dst, 6, segment)


def udp(src: str, dst: str, sport: int, dport: int, data: bytes) -> bytes:
    datagram = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    return ipv4(src, dst, 17, datagram)


def icmp_echo(src: str, dst: str, icmp_type: int, seq: int) -> bytes:
    body = struct.pack("!BBHHH", icmp_type, 0, 0, 0x1234, seq) + b"ping-data-0123456789"
    body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
    return ipv4(src, dst, 1, body)


def dns_query(name: str, txid: int, response: bool) -> bytes:
    qname = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
    flags = 0x8180 if response else 0x0100
    answers = 1 if response else 0
    msg = struct.pack("!HHHHHH", txid, flags, 1, answers, 0, 0) + qname + struct.pack("!HH", 1, 1)
    if response:
        msg += struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(SERVER)
    return msg


def arp(op: int, sender_mac: bytes, sender_ip: str, target_mac: bytes, target_ip: str) -> bytes:
    return struct.pack(
        "!HHBBH6s4s6s4s",
        1,
        0x0800,
        6,
        4,
        op,
        sender_mac,
        socket.inet_aton(sender_ip),
        target_mac,
        socket.inet_aton(target_ip),
    )


def conversation() -> list[tuple[float, str, bytes, bool]]:
    """(time, kind, packet, sent_by_client): kind is 'ip' or 'arp'."""
    http = b"GET /index.html HTTP/1.1\r\nHost: tiny.example\r\nUser-Agent: tiny\r\n\r\n"
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    c, s = CLIENT, SERVER
    pkts = [
        (0.000, "arp", arp(1, CLIENT_MAC, c, b"\0" * 6, s), True),
        (0.001, "arp", arp(2, SERVER_MAC, s, CLIENT_MAC, c), False),
        (0.010, "ip", udp(c, RESOLVER, 40000, 53, dns_query("tiny.example", 0x1111, False)), True),
        (0.020, "ip", udp(RESOLVER, c, 53, 40000, dns_query("tiny.example", 0x1111, True)), False),
        (0.100, "ip", tcp(c, s, 40001, 80, 1000, 0, SYN), True),
        (0.101, "ip", tcp(s, c, 80, 40001, 5000, 1001, SYN | ACK), False),
        (0.102, "ip", tcp(c, s, 40001, 80, 1001, 5001, ACK), True),
        (0.103, "ip", tcp(c, s, 40001, 80, 1001, 5001, PSH | ACK, http), True),
        (0.110, "ip", tcp(s, c, 80, 40001, 5001, 1001 + len(http), PSH | ACK, reply), False),
        (0.111, "ip", tcp(c, s, 40001, 80, 1001 + len(http), 5001 + len(reply), FIN | ACK), True),
        (0.112, "ip", tcp(s, c, 80, 40001, 5001 + len(reply), 1002 + len(http), FIN | ACK), False),
        (0.113, "ip", tcp(c, s, 40001, 80, 1002 + len(http), 5002 + len(reply), ACK), True),
        (0.200, "ip", tcp(c, s, 40002, 81, 7000, 0, SYN), True),
        (0.201, "ip", tcp(s, c, 81, 40002, 0, 7001, RST | ACK), False),
        (0.300, "ip", icmp_echo(c, s, 8, 1), True),
        (0.301, "ip", icmp_echo(s, c, 0, 1), False),
    ]
    return [(T0 + dt, kind, pkt, by_client) for dt, kind, pkt, by_client in pkts]


def frame(linktype: int, kind: str, packet: bytes, by_client: bool) -> bytes | None:
    src, dst = (CLIENT_MAC, SERVER_MAC) if by_client else (SERVER_MAC, CLIENT_MAC)
    ethertype = 0x0806 if kind == "arp" else 0x0800
    if linktype == LINKTYPE_ETHERNET:
        return dst + src + struct.pack("!H", ethertype) + packet
    if linktype == LINKTYPE_LINUX_SLL:
        packet_type = 4 if by_client else 0  # 4: sent by us, 0: to us
        return struct.pack("!HHH", packet_type, 1, 6) + src + b"\0\0" + struct.pack("!H", ethertype) + packet
    if linktype == LINKTYPE_LINUX_SLL2:
        packet_type = 4 if by_client else 0
        return struct.pack("!HHIHBB", ethertype, 0, 2, 1, packet_type, 6) + src + b"\0\0" + packet
    if kind == "arp":
        return None  # raw IP and loopback links carry no ARP
    if linktype == LINKTYPE_RAW:
        return packet
    return struct.pack("<I", 2) + packet  # NULL: AF_INET in host byte order


def write(path: Path, linktype: int) -> None:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)]
    for ts, kind, packet, by_client in conversation():
        data = frame(linktype, kind, packet, by_client)
        if data is None:
            continue
        sec, usec = int(ts), round((ts - int(ts)) * 1e6)
        out.append(struct.pack("<IIII", sec, usec, len(data), len(data)) + data)
    path.write_bytes(b"".join(out))


if __name__ == "__main__":
    for name, linktype in (
        ("tiny-ethernet.pcap", LINKTYPE_ETHERNET),
        ("tiny-sll.pcap", LINKTYPE_LINUX_SLL),
        ("tiny-sll2.pcap", LINKTYPE_LINUX_SLL2),
        ("tiny-rawip.pcap", LINKTYPE_RAW),
        ("tiny-null.pcap", LINKTYPE_NULL),
    ):
        write(HERE / name, linktype)
        print("wrote", HERE / name)
    subprocess.run(
        ["editcap", "-F", "pcapng", str(HERE / "tiny-ethernet.pcap"), str(HERE / "tiny-ethernet.pcapng")], check=True
    )
    print("wrote", HERE / "tiny-ethernet.pcapng")
