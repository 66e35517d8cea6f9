"""Transport layers, vectorised: TCP and UDP headers, ICMP and ICMPv6, and what IP carries inside IP.

The rules follow tshark 4.0's packet-tcp.c, packet-udp.c, packet-icmp.c and packet-icmpv6.c.
What the transport layer hands on (ports, payload position, TCP sequence numbers) is returned in
:class:`Transport` for the TCP analysis and the application decoders; the datagrams an ICMP error
quotes and IP-in-IP payloads go to :class:`~.decode_frames.Inner` to be decoded again.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from . import decode_protocols as P
from .decode_frames import LINKTYPE_IPV4, LINKTYPE_IPV6
from .decode_net import IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_TCP, IPPROTO_UDP
from .decode_state import LayerState

TCP_MIN_HEADER = 20
TCP_FIXED_READ = 16  # tshark reads ports, seq, ack, offset/flags and window before adding anything else
UDP_HEADER = 8
ICMP_FIXED_READ = 6  # type, code and byte 5 are read before the first ICMP field is added
ICMPV6_FIXED_READ = 4


@dataclass
class Transport:
    """TCP segments tshark analysed (every one with tcp.len) and UDP datagrams with a payload."""

    rows: np.ndarray
    proto: np.ndarray  # 6 or 17
    src_key: np.ndarray  # 128-bit-ish address keys (two uint64 columns folded) for stream tracking
    dst_key: np.ndarray
    sport: np.ndarray
    dport: np.ndarray
    payload_start: np.ndarray  # absolute offset in buf
    payload_cap: np.ndarray  # captured payload bytes handed on
    payload_rep: np.ndarray  # reported payload length (tcp.len for TCP)
    has_payload: np.ndarray  # a payload tshark hands to the next dissector
    seq: np.ndarray  # TCP only (zeros for UDP)
    ack: np.ndarray
    flags: np.ndarray
    window: np.ndarray
    whole: np.ndarray  # the whole segment was captured (tshark may reassemble it)


@cache
def _ip_protocol_codes() -> np.ndarray:
    """IP protocol number -> protocol code of its dissector."""
    return P.code_table(P.IP_PROTOCOL_NAMES, 256, P.DATA)


def decode_transport(st: LayerState) -> Transport:
    """Transport headers where the network layer planned them; TCP segments and UDP payloads handed on."""
    fr, fs, proto, l4, cap_end = st.fr, st.fs, st.proto, st.l4, st.cap_end
    frames = fr.frames
    rows = l4.rows
    o = l4.off
    rep_end = l4.rep_end
    limit = np.minimum(cap_end, rep_end)
    in_error = frames.in_error
    tcp = rows & (l4.proto == IPPROTO_TCP)
    udp = rows & (l4.proto == IPPROTO_UDP)
    icmp = rows & (l4.proto == IPPROTO_ICMP) & ~l4.ipv6
    icmp6 = rows & (l4.proto == IPPROTO_ICMPV6)
    known = tcp | udp | icmp | icmp6
    other = rows & ~known
    if other.any():
        codes = _ip_protocol_codes()[l4.proto & 0xFF]
        # The data dissector adds nothing for an empty payload.
        named = other & ((codes != P.DATA) | (rep_end > o))
        proto[named] = codes[named]
        _tunnels(st, other)

    # TCP: ports need 4 bytes; the rest of the fixed part (up to the window) 16 bytes.
    proto[tcp] = P.TCP
    t_ports = tcp & (limit >= o + 4)
    fs.put("tcp.srcport", fr.u16(o), t_ports)
    fs.put("tcp.dstport", fr.u16(o + 2), t_ports)
    t_fixed = t_ports & (limit >= o + TCP_FIXED_READ)
    hlen = (fr.u8(o + 12) >> 4) * 4
    reported = rep_end - o
    analysed = t_fixed & ~l4.fragmented & (not in_error) & (reported >= hlen)
    fs.put("tcp.len", reported - hlen, analysed)
    flags = ((fr.u8(o + 12) & 0x0F) << 8) | fr.u8(o + 13)
    t_hdr = t_fixed & (hlen >= TCP_MIN_HEADER)
    fs.put("tcp.flags", flags, t_hdr)
    # Options are dissected next; a header longer than what was captured ends the dissection there.
    t_payload = t_hdr & (cap_end >= o + hlen) & analysed & (reported - hlen > 0)

    # UDP: ports, then the length field, then the checksum.
    proto[udp] = P.UDP
    u_ports = udp & (limit >= o + 4)
    fs.put("udp.srcport", fr.u16(o), u_ports)
    fs.put("udp.dstport", fr.u16(o + 2), u_ports)
    ulen = fr.u16(o + 4)
    fs.put("udp.length", ulen, u_ports & (limit >= o + 6))
    u_ok = udp & (limit >= o + UDP_HEADER)
    jumbo = u_ok & (ulen == 0) & l4.ipv6
    ulen = np.where(jumbo, reported, ulen)
    u_payload = u_ok & (ulen > UDP_HEADER)
    if in_error:
        u_payload &= cap_end > o + UDP_HEADER

    # ICMP / ICMPv6: a few bytes are read before the first field is added.
    proto[icmp] = P.ICMP
    i_ok = icmp & (limit >= o + ICMP_FIXED_READ)
    fs.put("icmp.type", fr.u8(o), i_ok)
    fs.put("icmp.code", fr.u8(o + 1), i_ok)
    proto[icmp6] = P.ICMPV6
    i6_ok = icmp6 & (limit >= o + ICMPV6_FIXED_READ)
    fs.put("icmpv6.type", fr.u8(o), i6_ok)
    fs.put("icmpv6.code", fr.u8(o + 1), i6_ok)
    _icmp_payloads(st, i_ok, i6_ok, o, rep_end)

    # Every analysed TCP segment goes on (the sequence analysis needs the pure ACKs too), and UDP
    # datagrams with a payload.
    sel = analysed | u_payload
    idx = np.flatnonzero(sel)
    is_tcp = analysed[idx]
    start = o[idx] + np.where(is_tcp, hlen[idx], UDP_HEADER)
    rep_len = np.where(is_tcp, (reported - hlen)[idx], np.minimum(ulen[idx], reported[idx]) - UDP_HEADER)
    cap_len = np.clip(np.minimum(cap_end[idx] - start, rep_len), 0, None)
    return Transport(
        rows=idx,
        proto=np.where(is_tcp, IPPROTO_TCP, IPPROTO_UDP),
        src_key=l4.src_key[idx],
        dst_key=l4.dst_key[idx],
        sport=fr.u16(o)[idx],
        dport=fr.u16(o + 2)[idx],
        payload_start=frames.start[idx] + start,
        payload_cap=cap_len,
        payload_rep=rep_len,
        has_payload=np.where(is_tcp, t_payload[idx], True),
        seq=np.where(is_tcp, fr.u32(o + 4)[idx], 0),
        ack=np.where(is_tcp, fr.u32(o + 8)[idx], 0),
        flags=np.where(is_tcp, flags[idx], 0),
        window=np.where(is_tcp, fr.u16(o + 14)[idx], 0),
        whole=(cap_end[idx] >= start + rep_len) & ~l4.fragmented[idx] & (not in_error),
    )


ICMP_ERRORS = (3, 4, 5, 11, 12)  # unreachable, source quench, redirect, time exceeded, parameter problem
ICMP_ECHO = (0, 8)
ICMPV6_ERRORS = (1, 2, 3, 4)
ICMPV6_ECHO = (128, 129)


def _icmp_payloads(st: LayerState, i_ok, i6_ok, o, rep_end) -> None:
    """What follows an ICMP header: the quoted datagram of an error, or echo data."""
    fr, proto, cap_end, inner = st.fr, st.proto, st.cap_end, st.inner
    icmp_type = fr.u8(o)
    # ICMP errors hand bytes 8.. to the IP dissector, flagged as inside an error packet.
    err = i_ok & np.isin(icmp_type, ICMP_ERRORS) & (rep_end > o + 8)
    if err.any():
        idx = np.flatnonzero(err)
        start = o[idx] + 8
        end = rep_end[idx]
        orig = fr.u8(o + 5)[idx] * 4
        inner_ihl = ((fr.u8(o + 8) & 0x0F) * 4)[idx]
        inner_total = fr.u16(o + 10)[idx]
        redirect = icmp_type[idx] == 5
        length = end - start
        # set_actual_length() of packet-icmp.c: a redirect quotes header + 8 bytes, an RFC 4884 length
        # field bounds the original datagram.
        clip = np.where(redirect, inner_ihl + 8, length)
        bounded = ~redirect & (orig > 0) & (end - o[idx] > 8 + orig) & (inner_total > orig)
        clip = np.where(bounded, inner_ihl + orig, clip)
        length = np.minimum(length, clip)
        base = fr.frames.start[idx]
        inner.add(idx, base + start, base + np.minimum(cap_end[idx], start + length), length, LINKTYPE_IPV4, True)
    echo = i_ok & np.isin(icmp_type, ICMP_ECHO) & (cap_end > o + 8)
    proto[echo] = P.DATA
    type6 = fr.u8(o)
    proto[i6_ok & np.isin(type6, ICMPV6_ECHO) & (cap_end > o + 8)] = P.DATA
    err6 = i6_ok & np.isin(type6, ICMPV6_ERRORS) & (rep_end > o + 8)
    # packet-icmpv6.c hands the quoted bytes to IPv6 only if they start like an IPv6 header.
    not_v6 = err6 & ((fr.u8(o + 8) >> 4) != 6)
    proto[not_v6 & (cap_end > o + 8)] = P.DATA
    err6 &= ~not_v6
    if err6.any():
        idx = np.flatnonzero(err6)
        start = o[idx] + 8
        base = fr.frames.start[idx]
        inner.add(idx, base + start, base + cap_end[idx], rep_end[idx] - start, LINKTYPE_IPV6, True)


def _tunnels(st: LayerState, rows) -> None:
    """IP-in-IP and IPv6-in-IP payloads: decoded again as packets of their own."""
    fr, l4, cap_end, inner = st.fr, st.l4, st.cap_end, st.inner
    base = fr.frames.start
    for number, linktype in ((IPPROTO_IPIP, LINKTYPE_IPV4), (IPPROTO_IPV6, LINKTYPE_IPV6)):
        sel = rows & (l4.proto == number)
        idx = np.flatnonzero(sel)
        inner.add(
            idx,
            base[idx] + l4.off[idx],
            base[idx] + np.minimum(cap_end[idx], l4.rep_end[idx]),
            l4.rep_end[idx] - l4.off[idx],
            linktype,
            False,
        )
