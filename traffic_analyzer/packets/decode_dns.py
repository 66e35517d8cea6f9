"""DNS, mDNS and LLMNR messages as tshark 4.0's packet-dns.c reads them: flags, first question, answers."""

from __future__ import annotations

import socket

from ..records.packets import DNS_ANSWER_TYPES, DNS_TYPE_OPT, dns_answer_text
from .decode_fields import AppMessage, Pdu
from .decode_text import field_text, format_text

DNS_TYPE_A = 1  # host address
DNS_TYPE_AAAA = 28  # IPv6 host address
DNS_TYPE_MX = 15  # mail exchange: a 2-byte preference, then the name
DNS_CLASS_IN = 1
DNS_CLASS_FLUSH = 0x8000  # mDNS's cache-flush bit, not part of the class
RR_FIXED_LEN = 10  # type, class, TTL, data length after the owner name

MAX_DNAME_LEN = 255  # packet-dns.h
MIN_DNAME_LEN = 2


def dns_message(data: bytes, rep: int, name: str, tcp: bool) -> AppMessage:
    """dissect_dns_common(): response flag and rcode, then the first question's name and type."""
    msg = AppMessage(name)
    base = 2 if tcp else 0
    if len(data) < base + 4:
        return msg
    flags = (data[base + 2] << 8) | data[base + 3]
    response = bool(flags & 0x8000)
    msg.values["dns.flags.response"] = response
    if response:
        msg.values["dns.flags.rcode"] = flags & 0x000F
    if len(data) < base + 12:
        return msg
    questions = (data[base + 4] << 8) | data[base + 5]
    offset = base + 12
    # A query's fields come from its first question; a response's answers start after all of them.
    for i in range(questions if response else min(questions, 1)):
        parsed = dns_name(data, offset, base)
        if parsed is None:
            return msg
        qname, used = parsed
        end = offset + used
        if end + 4 > len(data):
            return msg
        if i == 0:
            msg.values["dns.qry.name"] = field_text(qname)
            msg.values["dns.qry.type"] = (data[end] << 8) | data[end + 1]
        offset = end + 4
    if response:
        answers = (data[base + 6] << 8) | data[base + 7]
        text = dns_answer_text(dns_answers(data, offset, base, answers, mdns=name == "MDNS"))
        if text is not None:
            msg.values["dns_answers"], msg.values["dns_ttls"] = text
    return msg


def dns_answers(data: bytes, offset: int, base: int, count: int, mdns: bool) -> list[tuple[str, int]]:
    """dissect_answer_records() for the answer section: (data, TTL) of the record types the table keeps.

    Stops at the first record tshark would throw on (truncated or an undecodable name), keeping
    the ones before it, as tshark keeps their fields.
    """
    kept: list[tuple[str, int]] = []
    n = len(data)
    for _ in range(count):
        parsed = _expanded_name(data, offset, base)  # the owner name: only where it ends matters
        if parsed is None or offset + parsed[1] + RR_FIXED_LEN > n:
            break
        start = offset + parsed[1]
        rr_type = (data[start] << 8) | data[start + 1]
        rr_class = (data[start + 2] << 8) | data[start + 3]
        if mdns:
            rr_class &= ~DNS_CLASS_FLUSH
        ttl = int.from_bytes(data[start + 4 : start + 8], "big")
        size = (data[start + 8] << 8) | data[start + 9]
        rdata = start + RR_FIXED_LEN
        offset = rdata + size
        if rr_type == DNS_TYPE_OPT or rr_type not in DNS_ANSWER_TYPES:
            continue
        value = _rdata_text(data, rdata, base, rr_type, rr_class)
        if value is None:
            break
        kept.append((value, ttl))
    return kept


def _rdata_text(data: bytes, rdata: int, base: int, rr_type: int, rr_class: int) -> str | None:
    """The record's data as tshark's field shows it, or None where tshark would throw or add no field."""
    if rr_type == DNS_TYPE_A:
        if rr_class != DNS_CLASS_IN or rdata + 4 > len(data):
            return None
        return socket.inet_ntop(socket.AF_INET, data[rdata : rdata + 4])
    if rr_type == DNS_TYPE_AAAA:
        if rdata + 16 > len(data):
            return None
        return socket.inet_ntop(socket.AF_INET6, data[rdata : rdata + 16])
    if rr_type == DNS_TYPE_MX:
        rdata += 2
    parsed = dns_name(data, rdata, base)
    return None if parsed is None else field_text(parsed[0])


def dns_name(data: bytes, offset: int, base: int) -> tuple[str, int] | None:
    """expanddns_name() + getdns_name() of packet-dns.c: (formatted name, bytes used) or None on an exception."""
    parsed = _expanded_name(data, offset, base)
    if parsed is None or isinstance(parsed[0], str):
        return parsed
    return format_text(parsed[0]), parsed[1]


def _expanded_name(data: bytes, offset: int, base: int) -> tuple[bytes | str, int] | None:
    """The name's bytes (or tshark's text for a special name) and the bytes it used, None on an exception.

    Mirrors tshark exactly, quirks included: at most 255 bytes are kept, a bit-string label is
    written but not counted in the name's length, and a pointer loop ends the name. Only the
    length of a record's owner name matters, so formatting is left to :func:`dns_name`.
    """
    start = offset
    out = bytearray()
    name_len = 0
    maxname = MAX_DNAME_LEN
    length = -1
    pointers = 0
    n = len(data)
    special: str | None = None
    while True:
        if offset >= n:
            return None
        component = data[offset]
        offset += 1
        if component == 0:
            break
        kind = component & 0xC0
        if kind == 0x00:
            if out:
                if maxname > 0:
                    out.append(0x2E)
                    name_len += 1
                    maxname -= 1
            else:
                maxname -= 1
            if offset + component > n:
                return None
            take = component if component <= maxname else max(0, maxname)
            out += data[offset : offset + take]
            name_len += take
            maxname -= take
            offset += component
        elif kind == 0x40:
            if component & 0x3F != 0x01:
                special = "<Unknown extended label>"
                length = offset - start
                break
            if offset >= n:
                return None
            bits = data[offset]
            offset += 1
            label_len = (bits - 1) // 8 + 1 if bits else 32
            if offset + label_len > n:
                return None
            for piece in ["\\[x", *(f"{b:02x}" for b in data[offset : offset + label_len]), f"/{bits}]"]:
                if maxname <= 0:
                    break
                if len(piece) <= maxname:
                    out += piece.encode()
                    maxname -= len(piece)
                else:
                    maxname = 0
            offset += label_len
        elif kind == 0x80:
            return None
        else:
            if offset >= n:
                return None
            target = base + (((component & 0x3F) << 8) | data[offset])
            offset += 1
            pointers += 1
            if length < 0:
                length = offset - start
            if target == offset + 2 or pointers > MAX_DNAME_LEN:
                special = "<Name contains a pointer that loops>"
                break
            offset = target
    if length < 0:
        length = offset - start
    if special is not None:
        if length < 1:
            return None
        return special, length
    if maxname <= 0:
        return "<Name too long>", length
    if not out and length <= MIN_DNAME_LEN:
        return "<Root>", length
    if length < MIN_DNAME_LEN or (length > MIN_DNAME_LEN and name_len == 0):
        return None
    return bytes(out[:name_len]), length


def dns_tcp_message(buffer: bytes, offset: int, can_desegment: bool) -> Pdu:
    """DNS over TCP (tcp_dissect_pdus with a 2-byte length): one message, or the bytes needed for it."""
    left = len(buffer) - offset
    size = 2 + ((buffer[offset] << 8) | buffer[offset + 1]) if left >= 2 else 2
    if left < size and can_desegment:
        return Pdu(None, need=size)
    chunk = buffer[offset : offset + size]
    return Pdu(dns_message(chunk, size, "DNS", tcp=True), min(size, left))
