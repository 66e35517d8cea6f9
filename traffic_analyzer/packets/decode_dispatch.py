"""Which dissector gets a TCP or UDP payload: port tables, tshark's heuristics and their cheap pre-checks.

Dissectors are named by keys: a protocol name for those that only name the frame, or the name of
a Python handler that reads the bytes. Ports map to keys as in tshark 4.0's ``decode_tcp_ports``
and ``decode_udp_ports``; the heuristics (TLS and HTTP over TCP, STUN over UDP) run first as
vectorised checks of a payload's first bytes, so only the candidates reach Python.
"""

from __future__ import annotations

import numpy as np

from .decode_http import line_end
from .decode_tls import TLS_APP_DATA, TLS_HANDSHAKE, TLS_HEURISTIC_VERSIONS, looks_like_tls
from .decode_transport import Transport

# Dissector keys: names of the Python handlers (decode_app, decode_reassembly), or a protocol name
# for name-only dissectors.
DNS, MDNS, LLMNR, DNS_TCP, HTTP, SSDP, TLS, FTP, STUN, NBSS = (
    "dns",
    "mdns",
    "llmnr",
    "dns-tcp",
    "http",
    "ssdp",
    "tls",
    "ftp",
    "stun",
    "nbss",
)

HTTP_TCP_PORTS = (80, 3128, 3132, 5985, 8080, 8088, 11371, 1900, 2869, 2710)  # packet-http.c TCP_DEFAULT_RANGE
TLS_TCP_PORTS = (443, 465, 563, 636, 853, 990, 992, 993, 994, 995, 2443, 5061, 5671, 8883)
TCP_PORTS: dict[int, str] = {
    20: "FTP-DATA",
    21: FTP,
    22: "SSH",
    23: "TELNET",
    25: "SMTP",
    53: DNS_TCP,
    88: "KERBEROS",
    110: "POP",
    119: "NNTP",
    135: "DCERPC",
    139: NBSS,
    143: "IMAP",
    179: "BGP",
    389: "LDAP",
    445: NBSS,
    515: "LPD",
    554: "RTSP",
    1433: "TDS",
    1723: "PPTP",
    3306: "MYSQL",
    3389: "TPKT",
    5222: "XMPP",
    5432: "PGSQL",
    6379: "RESP",
    **{port: HTTP for port in HTTP_TCP_PORTS},
    **{port: TLS for port in TLS_TCP_PORTS},
}
UDP_PORTS: dict[int, str] = {
    53: DNS,
    67: "DHCP",
    68: "DHCP",
    69: "TFTP",
    88: "KERBEROS",
    123: "NTP",
    137: "NBNS",
    138: "BROWSER",
    161: "SNMP",
    162: "SNMP",
    389: "CLDAP",
    500: "ISAKMP",
    514: "SYSLOG",
    520: "RIP",
    546: "DHCPV6",
    547: "DHCPV6",
    1194: "OPENVPN",
    1812: "RADIUS",
    1813: "RADIUS",
    1900: SSDP,
    3478: STUN,
    4500: "ISAKMP",
    5060: "SIP",
    5350: "PORTCONTROL",
    5351: "PORTCONTROL",
    5353: MDNS,
    5355: LLMNR,
    17500: "JSON",
}
STUN_COOKIE = 0x2112A442  # RFC 5389 magic cookie
PY_HANDLERS = {DNS, MDNS, LLMNR, DNS_TCP, HTTP, SSDP, TLS, STUN, NBSS}
DNS_NAMES = {DNS: "DNS", MDNS: "MDNS", LLMNR: "LLMNR", DNS_TCP: "DNS"}


def _port_table(ports: dict[int, str]) -> np.ndarray:
    """Port -> key id of the dissector registered for it (0: none)."""
    table = np.zeros(65536, dtype=np.int64)
    for port, key in ports.items():
        table[port] = key_id(key)
    return table


KEYS: list[str] = [""]  # key id -> dissector key; ids are registered on first use


def key_id(key: str) -> int:
    """The id of a dissector key (registered on first use)."""
    if key not in KEYS:
        KEYS.append(key)
    return KEYS.index(key)


TCP_TABLE = _port_table(TCP_PORTS)
UDP_TABLE = _port_table(UDP_PORTS)


def heuristic_dissector(data: bytes) -> str:
    """tshark's enabled TCP heuristics that matter here: TLS records, then HTTP lines."""
    if looks_like_tls(data):
        return TLS
    end, _ = line_end(data, 0)
    if end >= 0 and end != 8:
        pos = end - 8 if end >= 8 else len(data) + end - 8  # a negative tvb offset counts from the end
        if data[pos : pos + 7].upper() == b"HTTP/1." or data[:7].upper() == b"HTTP/1.":
            return HTTP
    return ""


def first_bytes(buf: np.ndarray, t: Transport, rows: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows x count) first payload bytes (0 past the captured end) and the captured lengths."""
    cap = t.payload_cap[rows]
    pos = t.payload_start[rows][:, None] + np.arange(count)
    out = buf[np.minimum(pos, len(buf) - 1)].astype(np.int64)
    out[np.arange(count)[None, :] >= cap[:, None]] = 0
    return out, cap


def stun_candidates(buf: np.ndarray, t: Transport, rows: np.ndarray) -> np.ndarray:
    """Which payloads could pass the STUN heuristic: a STUN header with the magic cookie."""
    b, cap = first_bytes(buf, t, rows, 8)
    cookie = (b[:, 4] << 24) | (b[:, 5] << 16) | (b[:, 6] << 8) | b[:, 7]
    return (cap >= 20) & ((b[:, 0] & 0xC0) == 0) & (cookie == STUN_COOKIE)


def text_or_tls_candidates(buf: np.ndarray, t: Transport, rows: np.ndarray) -> np.ndarray:
    """Which payloads could pass the TCP heuristics: a TLS record header or printable text."""
    b, cap = first_bytes(buf, t, rows, 5)
    tls = (
        (cap >= 5)
        & np.isin(b[:, 0], (TLS_HANDSHAKE, TLS_APP_DATA))
        & np.isin((b[:, 1] << 8) | b[:, 2], TLS_HEURISTIC_VERSIONS)
    )
    text = (b[:, 0] >= 0x20) & (b[:, 0] < 0x7F)
    return tls | text


def is_stun(data: bytes, rep: int, heuristic: bool) -> bool:
    """dissect_stun_message()'s checks (TURN channel data only on the STUN port)."""
    if len(data) < 4:
        return False
    msg_type = (data[0] << 8) | data[1]
    length = (data[2] << 8) | data[3]
    if msg_type & 0xC000:
        if heuristic or (msg_type & 0x8000 and msg_type != 0xFF10):
            return False
        return rep in (length + 4, (length + 4 + 3) & ~3)
    if len(data) < 20:
        return False
    method = (msg_type & 0x000F) | ((msg_type & 0x00E0) >> 1) | ((msg_type & 0x3E00) >> 2)
    cookie = int.from_bytes(data[4:8], "big")
    return method <= 0xFF and cookie == STUN_COOKIE and rep == length + 20


def smb_name(data: bytes) -> str:
    """What NetBIOS session data carries: SMB2, SMB or neither."""
    if len(data) >= 8 and data[0] == 0:
        if data[4:8] == b"\xfeSMB":
            return "SMB2"
        if data[4:8] == b"\xffSMB":
            return "SMB"
    return "NBSS"
