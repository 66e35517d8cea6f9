"""tshark field values decoded from raw frames, and the packet table built from them.

The fast decoders do not build tshark's text output: they fill a :class:`FieldSet`, one typed
numpy array and one presence mask per tshark field of ``TSHARK_FIELDS``, with tshark's
"first occurrence" rule. :func:`packet_table` then applies the same combination rules as
:func:`~traffic_analyzer.records.packets.packets_from_fields`, so both paths agree column by column.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from .decode_http import Chunks  # a typing cycle only: decode_http builds on this module

from ..records.packets import (
    ICMP_HEADER_LEN,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV6_HEADER_LEN,
    PACKET_SCHEMA,
    TEXT,
    UDP_HEADER_LEN,
    empty_packets,
    fit_integers,
)

# How each decoded field is stored: integers as int64, MAC addresses as 48-bit integers,
# IPv4 addresses as uint32, IPv6 addresses as 16-byte void scalars, text as Python objects.
INT, MAC, IPV4, IPV6, TEXT_FIELD, BOOL = "int", "mac", "ipv4", "ipv6", "text", "bool"
FIELD_KINDS: dict[str, str] = {
    "eth.src": MAC,
    "eth.dst": MAC,
    "eth.type": INT,
    "sll.src.eth": MAC,
    "sll.etype": INT,
    "ip.src": IPV4,
    "ip.dst": IPV4,
    "ip.proto": INT,
    "ip.ttl": INT,
    "ip.len": INT,
    "ip.hdr_len": INT,
    "ipv6.src": IPV6,
    "ipv6.dst": IPV6,
    "ipv6.nxt": INT,
    "ipv6.hlim": INT,
    "ipv6.plen": INT,
    "tcp.srcport": INT,
    "tcp.dstport": INT,
    "tcp.flags": INT,
    "tcp.len": INT,
    "udp.srcport": INT,
    "udp.dstport": INT,
    "udp.length": INT,
    "icmp.type": INT,
    "icmp.code": INT,
    "icmpv6.type": INT,
    "icmpv6.code": INT,
    "arp.opcode": INT,
    "arp.src.hw_mac": MAC,
    "arp.src.proto_ipv4": IPV4,
    "arp.dst.hw_mac": MAC,
    "arp.dst.proto_ipv4": IPV4,
    "dns.qry.name": TEXT_FIELD,
    "dns.qry.type": INT,
    "dns.flags.rcode": INT,
    "dns.flags.response": BOOL,
    "tls.handshake.extensions_server_name": TEXT_FIELD,
    "http.request.method": TEXT_FIELD,
    "http.host": TEXT_FIELD,
    "http.request.uri": TEXT_FIELD,
    "http.user_agent": TEXT_FIELD,
    "http.response.code": INT,
    "http.content_type": TEXT_FIELD,
    "http.content_length": INT,
    "ftp.response.code": INT,
    # Not tshark fields: the answer section already joined as the packet columns hold it (the text
    # path rebuilds the same from tshark's dns.resp.type, dns.a... occurrences).
    "dns_answers": TEXT_FIELD,
    "dns_ttls": TEXT_FIELD,
}
_DTYPES = {INT: np.int64, MAC: np.uint64, IPV4: np.uint32, IPV6: np.dtype("V16"), TEXT_FIELD: object, BOOL: bool}


class FieldSet:
    """Decoded tshark fields of ``n`` frames: ``values[name]`` and ``present[name]`` arrays."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.values: dict[str, np.ndarray] = {}
        self.present: dict[str, np.ndarray] = {}

    def _ensure(self, name: str) -> None:
        if name not in self.values:
            self.values[name] = np.zeros(self.n, dtype=_DTYPES[FIELD_KINDS[name]])
            self.present[name] = np.zeros(self.n, dtype=bool)

    def put(self, name: str, values: np.ndarray, where: np.ndarray) -> None:
        """Set ``name`` to ``values`` (full length) on the rows of ``where`` that have no value yet."""
        if name not in self.values:
            if not where.any():
                return
            self.values[name] = np.asarray(values, dtype=_DTYPES[FIELD_KINDS[name]]).copy()
            self.present[name] = where.copy()
            return
        take = where & ~self.present[name]
        if take.any():
            self.values[name][take] = values[take]
            self.present[name] |= take

    def put_rows(self, name: str, rows: np.ndarray, values) -> None:
        """Set ``name`` on the given row numbers (first occurrence wins), values aligned with rows."""
        if len(rows) == 0:
            return
        self._ensure(name)
        rows = np.asarray(rows, dtype=np.int64)
        values = np.asarray(values, dtype=self.values[name].dtype) if FIELD_KINDS[name] != TEXT_FIELD else values
        free = ~self.present[name][rows]
        if FIELD_KINDS[name] == TEXT_FIELD:
            column = self.values[name]
            for row, value, ok in zip(rows.tolist(), values, free.tolist(), strict=True):
                if ok:
                    column[row] = value
        else:
            self.values[name][rows[free]] = values[free]
        self.present[name][rows[free]] = True

    def get(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        self._ensure(name)
        return self.values[name], self.present[name]

    def fill_from(self, inner: FieldSet, rows: np.ndarray) -> None:
        """Merge the fields of an inner packet (tunnel, quoted datagram) decoded for ``rows``."""
        for name, present in inner.present.items():
            if present.any():
                self.put_rows(name, rows[present], inner.values[name][present])


class AppMessage:
    """Fields of one application message (tshark field -> value) and the protocol name its frame gets."""

    __slots__ = ("name", "values")

    def __init__(self, name: str) -> None:
        self.name = name
        self.values: dict[str, object] = {}


class Pdu(NamedTuple):
    """What a TCP PDU parser found at an offset of a stream's bytes: a whole message, or what it waits for."""

    message: AppMessage | None  # the whole message; while waiting, the headers read so far (or None)
    used: int = 0  # bytes the whole message took
    need: int | Chunks | None = None  # None: whole; else bytes needed, ONE_MORE, UNTIL_FIN or a chunk parser
    body_read: bool = True  # while waiting: whether dissecting the whole PDU reads its bytes past the headers


def packet_table(
    fields: FieldSet, ts: np.ndarray, length: np.ndarray, protocol: np.ndarray, protocol_names: np.ndarray
) -> pd.DataFrame:
    """The typed packet table, combined from decoded fields as packets_from_fields does from text."""
    n = fields.n
    if n == 0:
        return empty_packets()
    f = fields.get
    cols: dict[str, object] = {"ts": ts.astype(np.float64, copy=False), "length": length.astype(np.int64, copy=False)}

    src_mac, src_mac_ok = _first_of(f("eth.src"), f("sll.src.eth"))
    cols["src_mac"] = _mac_text(src_mac, src_mac_ok)
    cols["dst_mac"] = _mac_text(*f("eth.dst"))
    ethertype, ethertype_ok = _first_of(f("eth.type"), f("sll.etype"))
    cols["ethertype"] = fit_integers(ethertype, ethertype_ok, "Int32")

    ip_src, v4 = f("ip.src")
    ip6_src, ip6_src_ok = f("ipv6.src")
    v6 = ip6_src_ok & ~v4
    cols["ip_version"] = fit_integers(np.where(v4, 4, 6), v4 | v6, "Int8")
    cols["src_ip"] = _first_text(_ipv4_text(ip_src, v4), v4, _ipv6_text(ip6_src, ip6_src_ok))
    ip_dst, ip_dst_ok = f("ip.dst")
    cols["dst_ip"] = _first_text(_ipv4_text(ip_dst, ip_dst_ok), ip_dst_ok, _ipv6_text(*f("ipv6.dst")))
    proto, proto_ok = _pick(v4, f("ip.proto"), v6, f("ipv6.nxt"))
    cols["ip_proto"] = fit_integers(proto, proto_ok, "Int16")
    ttl, ttl_ok = _pick(v4, f("ip.ttl"), v6, f("ipv6.hlim"))
    cols["ttl"] = fit_integers(ttl, ttl_ok, "Int16")
    plen, plen_ok = f("ipv6.plen")
    ip_len, ip_len_ok = _pick(v4, f("ip.len"), v6, (plen + IPV6_HEADER_LEN, plen_ok))
    cols["ip_len"] = fit_integers(ip_len, ip_len_ok, "Int32")
    hdr_len, hdr_len_ok = f("ip.hdr_len")
    hdr = np.where(v4, hdr_len, IPV6_HEADER_LEN)
    icmp_payload = np.maximum(ip_len - hdr - ICMP_HEADER_LEN, 0)
    icmp_payload_ok = ip_len_ok & (hdr_len_ok | ~v4)

    is_tcp = proto_ok & (proto == IPPROTO_TCP)
    is_udp = proto_ok & (proto == IPPROTO_UDP)
    is_icmp = proto_ok & (proto == IPPROTO_ICMP)
    is_icmp6 = proto_ok & (proto == IPPROTO_ICMPV6)
    arp_op, arp_op_ok = f("arp.opcode")
    is_arp = arp_op_ok & ~(v4 | v6)
    transport = np.select(
        [is_tcp, is_udp, is_icmp, is_icmp6, is_arp], ["tcp", "udp", "icmp", "icmpv6", "arp"], default="other"
    )
    cols["transport"] = _to_text(transport.astype(object))
    cols["protocol"] = _codes_text(protocol, protocol_names)

    cols["src_port"] = fit_integers(*_pick(is_tcp, f("tcp.srcport"), is_udp, f("udp.srcport")), "Int32")
    cols["dst_port"] = fit_integers(*_pick(is_tcp, f("tcp.dstport"), is_udp, f("udp.dstport")), "Int32")
    flags, flags_ok = f("tcp.flags")
    cols["tcp_flags"] = fit_integers(flags, flags_ok & is_tcp, "Int16")
    udp_len, udp_len_ok = f("udp.length")
    tcp_len, tcp_len_ok = f("tcp.len")
    payload = np.select([is_tcp, is_udp], [tcp_len, np.maximum(udp_len - UDP_HEADER_LEN, 0)], default=icmp_payload)
    payload_ok = np.select(
        [is_tcp, is_udp, is_icmp | is_icmp6], [tcp_len_ok, udp_len_ok, icmp_payload_ok], default=False
    )
    cols["payload_len"] = fit_integers(payload, payload_ok, "Int32")
    cols["icmp_type"] = fit_integers(*_pick(is_icmp, f("icmp.type"), is_icmp6, f("icmpv6.type")), "Int16")
    cols["icmp_code"] = fit_integers(*_pick(is_icmp, f("icmp.code"), is_icmp6, f("icmpv6.code")), "Int16")

    cols["arp_op"] = fit_integers(arp_op, is_arp, "Int8")
    src_hw, src_hw_ok = f("arp.src.hw_mac")
    cols["arp_src_mac"] = _mac_text(src_hw, src_hw_ok & is_arp)
    spa, spa_ok = f("arp.src.proto_ipv4")
    cols["arp_src_ip"] = _to_text(_ipv4_text(spa, spa_ok & is_arp))
    dst_hw, dst_hw_ok = f("arp.dst.hw_mac")
    cols["arp_dst_mac"] = _mac_text(dst_hw, dst_hw_ok & is_arp)
    tpa, tpa_ok = f("arp.dst.proto_ipv4")
    cols["arp_dst_ip"] = _to_text(_ipv4_text(tpa, tpa_ok & is_arp))

    cols["dns_qname"] = _object_text(*f("dns.qry.name"))
    cols["dns_qtype"] = fit_integers(*f("dns.qry.type"), "Int32")
    cols["dns_rcode"] = fit_integers(*f("dns.flags.rcode"), "Int16")
    response, response_ok = f("dns.flags.response")
    cols["dns_response"] = pd.arrays.BooleanArray(response.copy(), ~response_ok)
    cols["dns_answers"] = _object_text(*f("dns_answers"))
    cols["dns_ttls"] = _object_text(*f("dns_ttls"))
    cols["tls_sni"] = _object_text(*f("tls.handshake.extensions_server_name"))
    cols["http_method"] = _object_text(*f("http.request.method"))
    cols["http_host"] = _object_text(*f("http.host"))
    cols["http_uri"] = _object_text(*f("http.request.uri"))
    cols["http_user_agent"] = _object_text(*f("http.user_agent"))
    cols["http_status"] = fit_integers(*f("http.response.code"), "Int16")
    cols["http_content_type"] = _object_text(*f("http.content_type"))
    cols["http_content_length"] = fit_integers(*f("http.content_length"), "Int64")
    cols["ftp_reply_code"] = fit_integers(*f("ftp.response.code"), "Int16")
    return pd.DataFrame({name: cols[name] for name in PACKET_SCHEMA}, copy=False)


def _first_of(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    (av, aok), (bv, bok) = a, b
    return np.where(aok, av, bv), aok | bok


def _pick(
    mask_a: np.ndarray, a: tuple[np.ndarray, np.ndarray], mask_b: np.ndarray, b: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """``a`` where mask_a, else ``b`` where mask_b (the .where(...).fillna(...) chains of the text path)."""
    (av, aok), (bv, bok) = a, b
    return np.where(mask_a, av, bv), np.where(mask_a, aok, mask_b & bok)


_DECIMAL = np.array([str(i) for i in range(256)], dtype=object)
_HEX = np.array([f"{i:02x}" for i in range(256)], dtype=object)


def _joined(keys: np.ndarray, shifts: tuple[int, ...], digits: np.ndarray, sep: str) -> np.ndarray:
    """Object array of formatted addresses, built with whole-array string concatenation."""
    keys = keys.astype(np.uint64)
    out = digits[((keys >> np.uint64(shifts[0])) & np.uint64(0xFF)).astype(np.int64)]
    for shift in shifts[1:]:
        out = out + sep + digits[((keys >> np.uint64(shift)) & np.uint64(0xFF)).astype(np.int64)]
    return out


def _texts_vectorised(keys: np.ndarray, ok: np.ndarray, fmt) -> np.ndarray:
    """Object array of formatted keys (each distinct value formatted once), pd.NA where absent."""
    out = np.full(len(keys), pd.NA, dtype=object)
    if ok.any():
        unique, inverse = np.unique(keys[ok], return_inverse=True)
        out[ok] = fmt(unique)[inverse]
    return out


def _ipv6(keys: np.ndarray) -> np.ndarray:
    return np.array([socket.inet_ntop(socket.AF_INET6, key) for key in keys.tolist()], dtype=object)


def _mac_text(keys: np.ndarray, ok: np.ndarray) -> pd.api.extensions.ExtensionArray:
    return _to_text(_texts_vectorised(keys, ok, lambda u: _joined(u, (40, 32, 24, 16, 8, 0), _HEX, ":")))


def _ipv4_text(keys: np.ndarray, ok: np.ndarray) -> np.ndarray:
    return _texts_vectorised(keys, ok, lambda u: _joined(u, (24, 16, 8, 0), _DECIMAL, "."))


def _ipv6_text(keys: np.ndarray, ok: np.ndarray) -> np.ndarray:
    return _texts_vectorised(keys, ok, _ipv6)


def _first_text(a: np.ndarray, a_ok: np.ndarray, b: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """``a`` where it has a value, else ``b`` (the text path's fillna)."""
    return _to_text(np.where(a_ok, a, b))


def _object_text(values: np.ndarray, ok: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """Text field; like the text path, an empty string is a null."""
    out = np.full(len(ok), pd.NA, dtype=object)
    if ok.any():
        rows = np.flatnonzero(ok)
        kept = values[rows]
        nonempty = kept != ""
        out[rows[nonempty]] = kept[nonempty]
    return _to_text(out)


def _codes_text(codes: np.ndarray, names: np.ndarray) -> pd.api.extensions.ExtensionArray:
    return _to_text(names[codes])


def _to_text(values: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """A string column from an object array of str and pd.NA, without validating every element."""
    simple_new = getattr(pd.arrays.StringArray, "_simple_new", None)
    if simple_new is None:  # a pandas without this constructor: validate element by element
        return pd.array(values, dtype=TEXT)
    return simple_new(values, dtype=TEXT)
