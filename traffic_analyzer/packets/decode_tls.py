"""TLS records as tshark 4.0's packet-tls.c reads them: record boundaries and the Client Hello's SNI."""

from __future__ import annotations

from .decode_fields import AppMessage, Pdu
from .decode_text import ascii_text, field_text

TLS_HANDSHAKE, TLS_APP_DATA = 22, 23
TLS_RECORD_TYPES = (20, 21, 22, 23, 24)
TLS_HEURISTIC_VERSIONS = (0x0300, 0x0301, 0x0302, 0x0303, 0x0101)
TLS_MAX_RECORD = 2**14 + 2048  # TLS_MAX_RECORD_LENGTH + 2048 (packet-tls.c heuristic bound)


def looks_like_tls(data: bytes) -> bool:
    """is_sslv3_or_tls() of packet-tls.c."""
    if len(data) < 5 or data[0] not in (TLS_HANDSHAKE, TLS_APP_DATA):
        return False
    version = (data[1] << 8) | data[2]
    length = (data[3] << 8) | data[4]
    return version in TLS_HEURISTIC_VERSIONS and 0 < length < TLS_MAX_RECORD


def tls_record(buffer: bytes, offset: int, can_desegment: bool) -> Pdu:
    """One TLS record at offset, or the bytes needed for it."""
    left = len(buffer) - offset
    if left < 5:
        return Pdu(None, need=5) if can_desegment else Pdu(AppMessage("TLS"), left)
    content_type = buffer[offset]
    if content_type not in TLS_RECORD_TYPES:
        return Pdu(AppMessage("TLS"), left)  # not a record header: shown as continuation data
    size = 5 + ((buffer[offset + 3] << 8) | buffer[offset + 4])
    if left < size:
        if not can_desegment:
            return Pdu(AppMessage("TLS"), left)
        return Pdu(None, need=size, body_read=content_type == TLS_HANDSHAKE)  # only a Client Hello's SNI is read
    msg = AppMessage("TLS")
    if content_type == TLS_HANDSHAKE:
        sni = client_hello_sni(buffer[offset + 5 : offset + size])
        if sni is not None:
            msg.values["tls.handshake.extensions_server_name"] = sni
    return Pdu(msg, size)


def client_hello_sni(body: bytes) -> str | None:
    """The first host name of a Client Hello's server_name extension."""
    if len(body) < 4 or body[0] != 1:
        return None
    hello = body[4 : 4 + ((body[1] << 16) | (body[2] << 8) | body[3])]
    pos = 2 + 32
    if pos >= len(hello):
        return None
    pos += 1 + hello[pos]  # session id
    if pos + 2 > len(hello):
        return None
    pos += 2 + ((hello[pos] << 8) | hello[pos + 1])  # cipher suites
    if pos >= len(hello):
        return None
    pos += 1 + hello[pos]  # compression methods
    if pos + 2 > len(hello):
        return None
    end = min(len(hello), pos + 2 + ((hello[pos] << 8) | hello[pos + 1]))
    pos += 2
    while pos + 4 <= end:
        ext_type = (hello[pos] << 8) | hello[pos + 1]
        ext_len = (hello[pos + 2] << 8) | hello[pos + 3]
        pos += 4
        if ext_type == 0 and pos + 2 <= end:
            list_end = min(end, pos + 2 + ((hello[pos] << 8) | hello[pos + 1]))
            item = pos + 2
            while item + 3 <= list_end:
                name_type = hello[item]
                name_len = (hello[item + 1] << 8) | hello[item + 2]
                if item + 3 + name_len > list_end:
                    return None
                if name_type == 0:
                    return field_text(ascii_text(hello[item + 3 : item + 3 + name_len]))
                item += 3 + name_len
            return None
        pos += ext_len
    return None
