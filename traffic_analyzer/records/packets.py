"""The packet table: one pandas schema that every capture source produces.

Each capture backend hands over the same tshark field values as strings (tshark
``-T fields`` output, or the same fields read from pyshark packets), and
:func:`packets_from_fields` turns them into this typed table in one vectorised
pass. Keeping the conversion in one place is what makes the backends agree.

Missing fields are nulls (pandas ``NA``), never guesses. So is a number that does not fit its
column (an ARP opcode of 0xFF01 in the Int8 column, a 20-digit Content-Length): damaged or hostile
packets carry any value in any field, and wrapping it around would invent one (see :func:`fit_integers`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Text columns use pandas' masked string type: comparisons give nullable booleans that
# combine with the other nullable columns (Arrow-backed strings do not mix with them).
TEXT = pd.StringDtype("python")

# Column name -> pandas dtype. Order is the table's column order.
PACKET_SCHEMA: dict[str, object] = {
    "ts": "float64",  # capture time, epoch seconds
    "length": "int64",  # bytes on the wire (frame.len)
    "src_mac": TEXT,
    "dst_mac": TEXT,
    "ethertype": "Int32",
    "ip_version": "Int8",  # 4 or 6
    "src_ip": TEXT,  # IPv4 or IPv6 source address
    "dst_ip": TEXT,
    "ip_proto": "Int16",  # IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6)
    "ip_len": "Int32",  # IP packet bytes (header + payload)
    "transport": TEXT,  # tcp, udp, icmp, icmpv6, arp, or other
    "protocol": TEXT,  # highest protocol tshark dissected, e.g. DNS, TLS, HTTP
    "ttl": "Int16",  # IPv4 TTL or IPv6 hop limit
    "src_port": "Int32",
    "dst_port": "Int32",
    "tcp_flags": "Int16",  # TCP flag bits (FIN 0x01 ... CWR 0x80)
    "payload_len": "Int32",  # TCP segment, UDP datagram or ICMP message payload bytes
    "icmp_type": "Int16",
    "icmp_code": "Int16",
    "arp_op": "Int8",  # 1 request, 2 reply
    "arp_src_mac": TEXT,
    "arp_src_ip": TEXT,
    "arp_dst_mac": TEXT,
    "arp_dst_ip": TEXT,
    "dns_qname": TEXT,
    "dns_qtype": "Int32",
    "dns_rcode": "Int16",  # only on responses
    "dns_response": "boolean",
    "dns_answers": TEXT,  # A/AAAA addresses, CNAME/PTR/MX/NS names of the answer section, comma-joined
    "dns_ttls": TEXT,  # their TTLs in seconds, in the same order (Zeek dns.log TTLs); responses only
    "tls_sni": TEXT,
    "http_method": TEXT,
    "http_host": TEXT,
    "http_uri": TEXT,
    "http_user_agent": TEXT,
    "http_status": "Int16",  # response status code, e.g. 200, 401
    "http_content_type": TEXT,  # of the response (or of a request body)
    "http_content_length": "Int64",
    "ftp_reply_code": "Int16",  # e.g. 530 for a failed login
}

# TCP flag bits, as in the TCP header.
TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10
TCP_URG = 0x20

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58
ETHERTYPE_ARP = 0x0806

# tshark joins the occurrences of a repeated field with this character (-E aggregator): the DNS
# answer fields keep them all, every other field keeps its first occurrence.
FIELD_AGGREGATOR = "\x1f"

# DNS resource record types whose data the answers column keeps -> the tshark field holding it.
# tshark prints each field separately, so the answer order is rebuilt from dns.resp.type.
DNS_ANSWER_TYPES: dict[int, str] = {
    1: "dns.a",
    2: "dns.ns",
    5: "dns.cname",
    12: "dns.ptr.domain_name",
    15: "dns.mx.mail_exchange",
    28: "dns.aaaa",
}
DNS_TYPE_OPT = 41  # the EDNS pseudo-record: tshark shows no TTL for it
DNS_ANSWER_FIELDS: tuple[str, ...] = (
    "dns.count.answers",
    "dns.resp.type",
    "dns.resp.ttl",
    *DNS_ANSWER_TYPES.values(),
)

# The tshark fields every backend extracts, in this order. Only the first
# occurrence of a field is kept, so a tunnelled or quoted inner header (an ICMP
# error's copy of the offending datagram) never overrides the outer one.
TSHARK_FIELDS: tuple[str, ...] = (
    "frame.time_epoch",
    "frame.len",
    "frame.protocols",
    "eth.src",
    "eth.dst",
    "eth.type",
    "sll.src.eth",
    "sll.etype",
    "ip.src",
    "ip.dst",
    "ip.proto",
    "ip.ttl",
    "ip.len",
    "ip.hdr_len",
    "ipv6.src",
    "ipv6.dst",
    "ipv6.nxt",
    "ipv6.hlim",
    "ipv6.plen",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.flags",
    "tcp.len",
    "udp.srcport",
    "udp.dstport",
    "udp.length",
    "icmp.type",
    "icmp.code",
    "icmpv6.type",
    "icmpv6.code",
    "arp.opcode",
    "arp.src.hw_mac",
    "arp.src.proto_ipv4",
    "arp.dst.hw_mac",
    "arp.dst.proto_ipv4",
    "dns.qry.name",
    "dns.qry.type",
    "dns.flags.rcode",
    "dns.flags.response",
    "tls.handshake.extensions_server_name",
    "http.request.method",
    "http.host",
    "http.request.uri",
    "http.user_agent",
    "http.response.code",
    "http.content_type",
    "http.content_length",
    "ftp.response.code",
    *DNS_ANSWER_FIELDS,
)

UDP_HEADER_LEN = 8
ICMP_HEADER_LEN = 8
IPV6_HEADER_LEN = 40


def fit_integers(values: np.ndarray, ok: np.ndarray, dtype: str) -> pd.arrays.IntegerArray:
    """A nullable integer array of ``dtype`` ("Int8"...): values present where ``ok``, and null where they
    are not whole numbers inside the dtype's range (never wrapped around, never an error)."""
    values = np.asarray(values)
    info = np.iinfo(dtype.lower())
    with np.errstate(invalid="ignore"):
        if values.dtype.kind == "f":  # a float64 cannot hold info.max exactly; 2**(bits-1) it can
            fits = (values >= info.min) & (values < 2.0 ** (info.bits - 1)) & (values == np.floor(values))
        elif values.dtype.kind in "iub":
            fits = (values >= info.min) & (values <= info.max)
        else:
            raise TypeError(f"not a numeric array: {values.dtype}")
    ok = np.asarray(ok, dtype=bool) & fits
    data = np.where(ok, values, 0).astype(info.dtype)
    return pd.arrays.IntegerArray(data, ~ok)


def _fit_column(col: pd.Series, dtype: str) -> pd.arrays.IntegerArray:
    """A numeric column of the text path -> ``dtype``, out-of-range values as nulls (as in the fast path)."""
    numbers = pd.to_numeric(col, errors="coerce")
    kind = numbers.dtype.kind if numbers.dtype.kind in "iu" else "f"
    numpy_dtype = {"i": np.int64, "u": np.uint64, "f": np.float64}[kind]
    values = numbers.to_numpy(dtype=numpy_dtype, na_value=0 if kind != "f" else np.nan)
    return fit_integers(values, numbers.notna().to_numpy(dtype=bool), dtype)


def empty_packets() -> pd.DataFrame:
    """An empty packet table with the full schema."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in PACKET_SCHEMA.items()})


def _text(col: pd.Series) -> pd.Series:
    out = col.astype(TEXT)
    return out.mask(out.str.len() == 0)


def _number(col: pd.Series) -> pd.Series:
    """Decimal or 0x-hex text -> nullable integer; unparsable -> NA."""
    text = _text(col)
    is_hex = text.str.startswith("0x").fillna(False)
    values = pd.to_numeric(text.where(~is_hex), errors="coerce")
    if is_hex.any():
        values[is_hex] = text[is_hex].map(lambda s: int(s, 16) if _is_hex(s) else np.nan)
    return pd.to_numeric(values, errors="coerce")


def _is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True


def _boolean(col: pd.Series) -> pd.Series:
    text = _text(col).str.lower()
    mapped = text.map({"1": True, "true": True, "0": False, "false": False})
    return mapped.astype("boolean")


def dns_answer_text(answers: list[tuple[str, int]]) -> tuple[str, str] | None:
    """(answers, TTLs) column values of a response's kept answer records (data, TTL), or None when it has none.

    Both decoders end here, so they join the same way: tshark's comma, the records in answer order.
    """
    if not answers:
        return None
    return ",".join(data for data, _ in answers), ",".join(str(ttl) for _, ttl in answers)


def _first_occurrence(col: pd.Series) -> pd.Series:
    """The first of the occurrences tshark aggregated (the rule for every field but the DNS answers)."""
    if col.dtype == object or isinstance(col.dtype, pd.StringDtype):
        several = col.str.contains(FIELD_AGGREGATOR, regex=False, na=False)
        if several.any():
            col = col.where(~several, col[several].str.split(FIELD_AGGREGATOR, n=1).str[0])
    return col


def _dns_answers(f: dict[str, pd.Series], response: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The answers and TTLs columns, rebuilt in answer order from tshark's per-field occurrences.

    dns.resp.type lists every record in order (answers first); the n-th record of a type takes the
    n-th occurrence of that type's field. Only responses with answers are looped over.
    """
    answers = np.full(len(response), pd.NA, dtype=object)
    ttls = answers.copy()
    count = _number(_first_occurrence(f["dns.count.answers"])).to_numpy(dtype=float, na_value=0)
    rows = np.flatnonzero(response.fillna(False).to_numpy(dtype=bool) & (count > 0))
    split = {name: _text(f[name]).iloc[rows].str.split(FIELD_AGGREGATOR).tolist() for name in DNS_ANSWER_FIELDS}
    for i, row in enumerate(rows.tolist()):
        text = dns_answer_text(_answer_records({name: v[i] for name, v in split.items()}, int(count[row])))
        if text is not None:
            answers[row], ttls[row] = text
    index = response.index
    return pd.Series(answers, index=index).astype(TEXT), pd.Series(ttls, index=index).astype(TEXT)


def _answer_records(occurrences: dict[str, object], count: int) -> list[tuple[str, int]]:
    """The kept (data, TTL) records among the first ``count`` of one response; stops where fields run out."""
    fields = {name: values if isinstance(values, list) else [] for name, values in occurrences.items()}
    taken = dict.fromkeys(DNS_ANSWER_TYPES.values(), 0)
    ttls = fields["dns.resp.ttl"]
    ttl_at = 0
    kept: list[tuple[str, int]] = []
    for rr_type in fields["dns.resp.type"][:count]:
        rr = int(rr_type) if rr_type.isdecimal() else -1
        if rr == DNS_TYPE_OPT:
            continue
        if ttl_at >= len(ttls) or not ttls[ttl_at].isdecimal():
            break
        ttl = int(ttls[ttl_at])
        ttl_at += 1
        name = DNS_ANSWER_TYPES.get(rr)
        if name is None:
            continue
        if taken[name] >= len(fields[name]):
            break
        kept.append((fields[name][taken[name]], ttl))
        taken[name] += 1
    return kept


def packets_from_fields(fields: pd.DataFrame) -> pd.DataFrame:
    """Typed packet table from a frame of tshark field strings (columns TSHARK_FIELDS)."""
    if fields.empty:
        return empty_packets()
    f = {name: fields[name] if name in fields else pd.Series(pd.NA, index=fields.index) for name in TSHARK_FIELDS}
    f.update({name: _first_occurrence(f[name]) for name in TSHARK_FIELDS if name not in DNS_ANSWER_FIELDS})
    out = pd.DataFrame(index=fields.index)
    out["ts"] = pd.to_numeric(_text(f["frame.time_epoch"]), errors="coerce").astype("float64")
    out["length"] = pd.Series(_fit_column(_number(f["frame.len"]), "Int64"), index=fields.index).fillna(0)
    out["src_mac"] = _text(f["eth.src"]).fillna(_text(f["sll.src.eth"]))
    out["dst_mac"] = _text(f["eth.dst"])
    out["ethertype"] = _number(f["eth.type"]).fillna(_number(f["sll.etype"]))

    v4 = _text(f["ip.src"]).notna()
    v6 = _text(f["ipv6.src"]).notna() & ~v4
    out["ip_version"] = pd.Series(np.where(v4, 4, np.where(v6, 6, 0)), index=fields.index).replace(0, pd.NA)
    out["src_ip"] = _text(f["ip.src"]).fillna(_text(f["ipv6.src"]))
    out["dst_ip"] = _text(f["ip.dst"]).fillna(_text(f["ipv6.dst"]))
    proto = _number(f["ip.proto"]).where(v4, _number(f["ipv6.nxt"]).where(v6))
    out["ip_proto"] = proto
    out["ttl"] = _number(f["ip.ttl"]).where(v4, _number(f["ipv6.hlim"]).where(v6))
    ip_len = _number(f["ip.len"]).where(v4, (_number(f["ipv6.plen"]) + IPV6_HEADER_LEN).where(v6))
    out["ip_len"] = ip_len
    icmp_payload = (ip_len - _number(f["ip.hdr_len"]).where(v4, IPV6_HEADER_LEN) - ICMP_HEADER_LEN).clip(lower=0)

    is_tcp = (proto == IPPROTO_TCP).fillna(False)
    is_udp = (proto == IPPROTO_UDP).fillna(False)
    is_icmp = (proto == IPPROTO_ICMP).fillna(False)
    is_icmp6 = (proto == IPPROTO_ICMPV6).fillna(False)
    arp_op = _number(f["arp.opcode"])
    is_arp = arp_op.notna() & ~(v4 | v6)
    transport = np.select(
        [is_tcp, is_udp, is_icmp, is_icmp6, is_arp],
        ["tcp", "udp", "icmp", "icmpv6", "arp"],
        default="other",
    )
    out["transport"] = pd.Series(transport, index=fields.index, dtype=TEXT)
    protocols = _text(f["frame.protocols"])
    out["protocol"] = protocols.str.rsplit(":", n=1).str[-1].str.upper()

    # Ports and flags only where the outer transport matches: an ICMP error
    # quotes the offending UDP/TCP header, and that is not this packet's port.
    out["src_port"] = _number(f["tcp.srcport"]).where(is_tcp, _number(f["udp.srcport"]).where(is_udp))
    out["dst_port"] = _number(f["tcp.dstport"]).where(is_tcp, _number(f["udp.dstport"]).where(is_udp))
    out["tcp_flags"] = _number(f["tcp.flags"]).where(is_tcp)
    udp_payload = (_number(f["udp.length"]) - UDP_HEADER_LEN).clip(lower=0)
    out["payload_len"] = _number(f["tcp.len"]).where(
        is_tcp, udp_payload.where(is_udp, icmp_payload.where(is_icmp | is_icmp6))
    )
    out["icmp_type"] = _number(f["icmp.type"]).where(is_icmp, _number(f["icmpv6.type"]).where(is_icmp6))
    out["icmp_code"] = _number(f["icmp.code"]).where(is_icmp, _number(f["icmpv6.code"]).where(is_icmp6))

    out["arp_op"] = arp_op.where(is_arp)
    out["arp_src_mac"] = _text(f["arp.src.hw_mac"]).where(is_arp)
    out["arp_src_ip"] = _text(f["arp.src.proto_ipv4"]).where(is_arp)
    out["arp_dst_mac"] = _text(f["arp.dst.hw_mac"]).where(is_arp)
    out["arp_dst_ip"] = _text(f["arp.dst.proto_ipv4"]).where(is_arp)

    out["dns_qname"] = _text(f["dns.qry.name"])
    out["dns_qtype"] = _number(f["dns.qry.type"])
    out["dns_rcode"] = _number(f["dns.flags.rcode"])
    out["dns_response"] = _boolean(f["dns.flags.response"])
    out["dns_answers"], out["dns_ttls"] = _dns_answers(f, out["dns_response"])
    out["tls_sni"] = _text(f["tls.handshake.extensions_server_name"])
    out["http_method"] = _text(f["http.request.method"])
    out["http_host"] = _text(f["http.host"])
    out["http_uri"] = _text(f["http.request.uri"])
    out["http_user_agent"] = _text(f["http.user_agent"])
    out["http_status"] = _number(f["http.response.code"])
    out["http_content_type"] = _text(f["http.content_type"])
    out["http_content_length"] = _number(f["http.content_length"])
    out["ftp_reply_code"] = _number(f["ftp.response.code"])

    out = out.dropna(subset=["ts"])
    for name, dtype in PACKET_SCHEMA.items():
        if isinstance(dtype, str) and dtype.startswith("Int"):
            out[name] = _fit_column(out[name], dtype)
    return out[list(PACKET_SCHEMA)].astype(PACKET_SCHEMA).reset_index(drop=True)
