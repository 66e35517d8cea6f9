"""Payloads of LAN housekeeping protocols: NTP, SNMP, DHCP, NetBIOS, LLMNR, SSDP and VRRP."""

from __future__ import annotations

import struct

from . import dns
from .packets import fold, ones_sum

NTP_EPOCH_OFFSET_S = 2_208_988_800  # seconds from 1900-01-01 (NTP era 0) to 1970-01-01
NTP_CLIENT = 0x23  # LI 0, version 4, mode 3 (client)
NTP_SERVER = 0x24  # LI 0, version 4, mode 4 (server)
BOOTP_REQUEST = 1
BOOTP_REPLY = 2
DHCP_MAGIC = 0x63825363
DHCP_DISCOVER, DHCP_OFFER, DHCP_REQUEST, DHCP_ACK = 1, 2, 3, 5  # DHCP message types (option 53)
DHCP_LEASE_S = 86_400  # lease time the office router hands out
NBNS_QUERY_FLAGS = 0x0110  # query, recursion desired, broadcast
NBNS_TYPE_NB = 0x0020
VRRP_V2_ADVERT = 0x21  # version 2, type 1 (advertisement)
SNMP_GET = 0xA0  # SNMP PDU tags
SNMP_RESPONSE = 0xA2
BER_INT, BER_OCTETS, BER_NULL, BER_OID, BER_SEQ = 0x02, 0x04, 0x05, 0x06, 0x30
BER_COUNTER32, BER_GAUGE32, BER_TIMETICKS, BER_COUNTER64 = 0x41, 0x42, 0x43, 0x46
SSDP_SEARCH_TARGETS = ("ssdp:all", "urn:dial-multiscreen-org:service:dial:1", "upnp:rootdevice")


def ntp_timestamp(t_us: int) -> bytes:
    seconds, micros = divmod(t_us, 1_000_000)
    return struct.pack("!II", seconds + NTP_EPOCH_OFFSET_S, (micros << 32) // 1_000_000)


def ntp_request(t_us: int) -> bytes:
    """A client's 48-byte NTPv4 request (only the transmit timestamp set, as chrony and ntpd send it)."""
    return struct.pack("!BBbb", NTP_CLIENT, 0, 6, -23) + bytes(36) + ntp_timestamp(t_us)


def ntp_reply(request_ts: bytes, t_recv_us: int, t_send_us: int, ref_id: bytes, stratum: int = 2) -> bytes:
    """A stratum-``stratum`` server's reply echoing the client's transmit timestamp as origin."""
    head = struct.pack("!BBbbII", NTP_SERVER, stratum, 6, -24, 0x0000_0A3D, 0x0000_1B2F) + ref_id
    return (
        head + ntp_timestamp(t_recv_us - 16_000_000) + request_ts + ntp_timestamp(t_recv_us) + ntp_timestamp(t_send_us)
    )


def _ber(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes((tag, n)) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + body


def _ber_uint(tag: int, value: int) -> bytes:
    raw = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big")  # room for a clear sign bit
    return _ber(tag, raw)


def _ber_oid(oid: str) -> bytes:
    parts = [int(p) for p in oid.split(".")]
    out = bytearray((40 * parts[0] + parts[1],))
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.append(0x80 | (part & 0x7F))
            part >>= 7
        out += bytes(reversed(chunk))
    return _ber(BER_OID, bytes(out))


def snmp(pdu_tag: int, request_id: int, community: str, varbinds: list[tuple[str, int, int | None]]) -> bytes:
    """An SNMPv2c message; each varbind is (OID, value tag, value) with ``None`` for a request's NULL."""
    binds = b"".join(
        _ber(BER_SEQ, _ber_oid(oid) + (_ber(BER_NULL, b"") if value is None else _ber_uint(tag, value)))
        for oid, tag, value in varbinds
    )
    pdu = _ber(
        pdu_tag, _ber_uint(BER_INT, request_id) + _ber_uint(BER_INT, 0) + _ber_uint(BER_INT, 0) + _ber(BER_SEQ, binds)
    )
    return _ber(BER_SEQ, _ber_uint(BER_INT, 1) + _ber(BER_OCTETS, community.encode()) + pdu)


def dhcp(
    op: int,
    msg_type: int,
    xid: int,
    mac: bytes,
    *,
    ciaddr: bytes = bytes(4),
    yiaddr: bytes = bytes(4),
    server: bytes = bytes(4),
    requested: bytes | None = None,
    hostname: str = "",
    router: bytes | None = None,
    dns_server: bytes | None = None,
) -> bytes:
    """A BOOTP/DHCP message with the options a client or an office router puts in it."""
    fixed = struct.pack("!BBBBIHH4s4s4s4s16s", op, 1, 6, 0, xid, 0, 0, ciaddr, yiaddr, bytes(4), bytes(4), mac)
    opts = bytearray(struct.pack("!IBBB", DHCP_MAGIC, 53, 1, msg_type))
    if op == BOOTP_REQUEST:
        opts += bytes((61, 7, 1)) + mac
        if requested is not None:
            opts += bytes((50, 4)) + requested
        if hostname:
            opts += bytes((12, len(hostname))) + hostname.encode()
        opts += bytes((55, 7, 1, 3, 6, 15, 31, 33, 121))
    else:
        opts += bytes((54, 4)) + server + bytes((51, 4)) + DHCP_LEASE_S.to_bytes(4, "big")
        opts += bytes((1, 4, 255, 255, 0, 0))
        if router is not None:
            opts += bytes((3, 4)) + router
        if dns_server is not None:
            opts += bytes((6, 4)) + dns_server
    opts.append(255)
    body = fixed + bytes(64 + 128) + bytes(opts)
    return body + bytes(max(0, 300 - len(body)))  # BOOTP minimum message size


def netbios_name(name: str, suffix: int = 0x00) -> bytes:
    """First-level encoding of a NetBIOS name (RFC 1001): 16 bytes as 32 letters."""
    raw = name.upper().encode()[:15].ljust(15) + bytes((suffix,))
    encoded = bytes(c for b in raw for c in (0x41 + (b >> 4), 0x41 + (b & 0x0F)))
    return b"\x20" + encoded + b"\x00"


def nbns_query(txid: int, name: str) -> bytes:
    """A broadcast NetBIOS name query (UDP 137)."""
    return (
        struct.pack("!HHHHHH", txid, NBNS_QUERY_FLAGS, 1, 0, 0, 0)
        + netbios_name(name)
        + struct.pack("!HH", NBNS_TYPE_NB, 1)
    )


def llmnr_query(txid: int, name: str, qtype: int) -> bytes:
    """An LLMNR query: DNS format without the RD flag, sent to 224.0.0.252:5355."""
    return dns.query(txid, name, qtype, flags=0)


def ssdp_search(target: str) -> bytes:
    return (
        'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\n'
        f"ST: {target}\r\nUSER-AGENT: Microsoft Edge/124.0.2478.80 Windows\r\n\r\n"
    ).encode()


def ssdp_notify(ip: str, uuid: str, nt: str) -> bytes:
    return (
        f"NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nCACHE-CONTROL: max-age=1800\r\n"
        f"LOCATION: http://{ip}:49152/description.xml\r\nNT: {nt}\r\nNTS: ssdp:alive\r\n"
        f"SERVER: Linux/5.10 UPnP/1.0 Cast/1.56\r\nUSN: uuid:{uuid}::{nt}\r\n\r\n"
    ).encode()


def vrrp_advert(vrid: int, priority: int, address: bytes, interval_s: int = 1) -> bytes:
    """A VRRPv2 advertisement for one virtual address, as keepalived sends it."""
    body = struct.pack("!BBBBBBH", VRRP_V2_ADVERT, vrid, priority, 1, 0, interval_s, 0) + address + bytes(8)
    return body[:6] + fold(ones_sum(body)).to_bytes(2, "big") + body[8:]
