"""DNS messages in wire format (RFC 1035), with owner names compressed against names already written."""

from __future__ import annotations

import struct

TYPE_A = 1  # DNS record types
TYPE_PTR = 12
TYPE_CNAME = 5
TYPE_TXT = 16
TYPE_AAAA = 28
TYPE_SRV = 33
CLASS_IN = 1
FLAG_RD = 0x0100  # recursion desired
RESPONSE_FLAGS = 0x8180  # response, RD, RA, no error
MDNS_RESPONSE_FLAGS = 0x8400  # response, authoritative (multicast DNS)
MDNS_CACHE_FLUSH = 0x8000  # top bit of the class in an mDNS answer
RCODE_NXDOMAIN = 3
TXT_CHUNK = 255  # longest character-string in TXT rdata

_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")

Record = tuple[str, int, int, bytes | str]  # owner name, type, TTL, rdata (bytes, or a name for CNAME/PTR)


class _Writer:
    """Appends names with compression pointers to the first place each suffix was written."""

    def __init__(self, header: bytes) -> None:
        self.buf = bytearray(header)
        self.seen: dict[str, int] = {}

    def name(self, name: str) -> None:
        labels = name.rstrip(".").split(".") if name.strip(".") else []
        for i in range(len(labels)):
            suffix = ".".join(labels[i:]).lower()
            if suffix in self.seen:
                self.buf += struct.pack("!H", 0xC000 | self.seen[suffix])
                return
            if len(self.buf) < 0x3FFF:
                self.seen[suffix] = len(self.buf)
            raw = labels[i].encode()
            self.buf.append(len(raw))
            self.buf += raw
        self.buf.append(0)

    def record(self, owner: str, rtype: int, ttl: int, rdata: bytes | str, rclass: int = CLASS_IN) -> None:
        self.name(owner)
        if isinstance(rdata, str):
            self.buf += _RR.pack(rtype, rclass, ttl, 0)
            start = len(self.buf)
            self.name(rdata)
            struct.pack_into("!H", self.buf, start - 2, len(self.buf) - start)
        else:
            self.buf += _RR.pack(rtype, rclass, ttl, len(rdata)) + rdata


def query(txid: int, name: str, qtype: int, flags: int = FLAG_RD) -> bytes:
    """A one-question query."""
    w = _Writer(_HEADER.pack(txid, flags, 1, 0, 0, 0))
    w.name(name)
    w.buf += struct.pack("!HH", qtype, CLASS_IN)
    return bytes(w.buf)


def response(
    txid: int, name: str, qtype: int, answers: list[Record], rcode: int = 0, flags: int = RESPONSE_FLAGS
) -> bytes:
    """A response repeating the question, with ``answers``."""
    w = _Writer(_HEADER.pack(txid, flags | rcode, 1, len(answers), 0, 0))
    w.name(name)
    w.buf += struct.pack("!HH", qtype, CLASS_IN)
    for owner, rtype, ttl, rdata in answers:
        w.record(owner, rtype, ttl, rdata)
    return bytes(w.buf)


def mdns_query(names: list[tuple[str, int]]) -> bytes:
    """A multicast DNS query (id 0, no flags) for several (name, type) questions."""
    w = _Writer(_HEADER.pack(0, 0, len(names), 0, 0, 0))
    for name, qtype in names:
        w.name(name)
        w.buf += struct.pack("!HH", qtype, CLASS_IN)
    return bytes(w.buf)


def mdns_announce(answers: list[Record]) -> bytes:
    """An unsolicited multicast DNS response (service announcement), cache-flush set on unique records."""
    w = _Writer(_HEADER.pack(0, MDNS_RESPONSE_FLAGS, 0, len(answers), 0, 0))
    for owner, rtype, ttl, rdata in answers:
        w.record(owner, rtype, ttl, rdata, CLASS_IN if rtype == TYPE_PTR else CLASS_IN | MDNS_CACHE_FLUSH)
    return bytes(w.buf)


def txt_rdata(text: str) -> bytes:
    """TXT rdata: the text as length-prefixed character-strings."""
    raw = text.encode()
    chunks = [raw[i : i + TXT_CHUNK] for i in range(0, len(raw), TXT_CHUNK)] or [b""]
    return b"".join(bytes((len(c),)) + c for c in chunks)


def srv_rdata(priority: int, weight: int, port: int, target: str) -> bytes:
    """SRV rdata with an uncompressed target name."""
    labels = b"".join(bytes((len(p),)) + p.encode() for p in target.rstrip(".").split("."))
    return struct.pack("!HHH", priority, weight, port) + labels + b"\x00"
