"""Network layers, vectorised: IPv4 (with its options and fragments), IPv6 (with extension headers), ARP.

The rules follow tshark 4.0's packet-ip.c, packet-ipv6.c and packet-arp.c. The IP decoders bound
the layer to the length the header reports, and fill the :class:`~.decode_state.L4Plan`: where each
frame's transport header starts and which IP protocol dissector gets it.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from . import decode_protocols as P
from .decode_frames import HEADER_BYTES, FrameReader
from .decode_link import ETHERTYPE_IPV4
from .decode_state import NET_ARP, NET_IP, NET_IPV4, NET_IPV6, LayerState

IPV4_MIN_HEADER = 20
IPV6_HEADER = 40
IP_MF = 0x2000
IP_OFFSET = 0x1FFF
IPOPT_EOOL, IPOPT_NOP, IPOPT_LSR, IPOPT_SSR = 0, 1, 131, 137
IPPROTO_HOPOPTS, IPPROTO_IPIP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_IPV6 = 0, 4, 6, 17, 41
IPPROTO_ROUTING, IPPROTO_FRAGMENT, IPPROTO_GRE, IPPROTO_AH = 43, 44, 47, 51
IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_NONE, IPPROTO_DSTOPTS = 1, 58, 59, 60
IPV6_EXTENSION_HEADERS = (IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS, 135, 140)  # + AH, fragment
MAX_IPV6_EXTENSIONS = 8  # tshark recurses further, but real traffic never chains more
ARPHRD_ETHER = 1
ARPHRD_IEEE802 = 6
ARP_HEADER_LEN = 8
AX25_P_IP = 0xCC
ARPOP_DRARPERROR = 6
ARP_SUMMARISED_OPS = 25  # opcodes whose addresses packet-arp.c puts in the Info column


def decode_network(st: LayerState) -> None:
    """IPv4, then IPv6 (including what the IPv4 dissector handed over), then ARP."""
    _net_ip(st)
    _net_ipv6(st, st.net == NET_IPV6)
    _net_arp(st, st.net == NET_ARP)


def _net_ip(st: LayerState) -> None:
    """IPv4 (and the 'ip' dissector's hand-over to IPv6 for a version-6 header)."""
    fr, fs, proto, net, cap_end, rep_end, l4 = st.fr, st.fs, st.proto, st.net, st.cap_end, st.rep_end, st.l4
    rows = (net == NET_IP) | (net == NET_IPV4)
    if not rows.any():
        return
    o = st.net_off
    proto[rows] = P.IP
    have = rows & (cap_end >= o + 1)
    version = fr.u8(o) >> 4
    to_v6 = have & (version == 6)
    net[to_v6] = NET_IPV6  # dissect_ip_v4 and dissect_ip both call the IPv6 dissector for version 6
    v4 = have & (version == 4)
    ihl = (fr.u8(o) & 0x0F) * 4
    v4 &= ihl >= IPV4_MIN_HEADER  # "Bogus IP header length": nothing more is added
    fs.put("ip.hdr_len", ihl, v4)
    v4 &= cap_end >= o + 4
    total = fr.u16(o + 2)
    reported = rep_end - o
    tso = v4 & (total == 0)
    total = np.where(tso, reported, total)
    v4 &= total >= ihl  # "Bogus IP length"
    fs.put("ip.len", total, v4)
    fits = v4 & (total <= reported)
    rep_end[fits] = o[fits] + total[fits]  # set_actual_length: the datagram ends where ip.len says
    cap_end[:] = np.minimum(cap_end, rep_end)
    v4 &= cap_end >= o + 12
    frag = fr.u16(o + 6)
    fs.put("ip.ttl", fr.u8(o + 8), v4)
    ip_proto = fr.u8(o + 9)
    fs.put("ip.proto", ip_proto, v4)
    v4 &= cap_end >= o + 16
    src = fr.ipv4(o + 12)
    fs.put("ip.src", src, v4)
    dst_off = _source_route_offset(fr, v4, o, ihl, cap_end)
    v4 &= dst_off >= 0  # options not captured: tshark stops inside get_dst_offset
    v4 &= cap_end >= o + 20 + np.maximum(dst_off, 0)
    dst = fr.ipv4(o + 16 + np.maximum(dst_off, 0))
    fs.put("ip.dst", dst, v4 & (dst_off == 0))  # with a source route tshark shows ip.cur_rt, not ip.dst
    v4 &= cap_end >= o + ihl  # dissect_ip_options throws on an option block that was not captured
    payload = o + ihl
    more = (frag & IP_MF) != 0
    offset = frag & IP_OFFSET
    fragment = v4 & (more | (offset != 0))
    # A fragment goes to reassembly if all of it was captured; reassembly is not emulated, so such a
    # fragment is shown as data (what tshark shows for every fragment but the one completing a datagram).
    whole = fragment & (total > ihl) & (cap_end >= o + total)
    not_first = fragment & (offset != 0)
    as_data = (whole | not_first) & (rep_end > payload)
    proto[as_data] = P.DATA
    go = v4 & ~as_data & (rep_end - payload > 0)
    l4.rows |= go
    l4.off[go] = payload[go]
    l4.proto[go] = ip_proto[go]
    l4.rep_end[go] = rep_end[go]
    l4.fragmented[go] = (fragment & more)[go]
    l4.src_key[go, 1] = src[go]
    l4.dst_key[go, 1] = dst[go]


def _source_route_offset(fr: FrameReader, rows, o, ihl, cap_end) -> np.ndarray:
    """get_dst_offset() of packet-ip.c: where a strict/loose source route keeps the final destination.

    0 for no usable source route, -1 where the options run past the captured bytes (an exception).
    """
    out = np.zeros(len(rows), dtype=np.int64)
    todo = rows & (ihl > IPV4_MIN_HEADER)
    if not todo.any():
        return out
    idx = np.flatnonzero(todo)
    pos = o[idx] + IPV4_MIN_HEADER
    left = ihl[idx] - IPV4_MIN_HEADER
    active = np.ones(len(idx), dtype=bool)
    result = np.zeros(len(idx), dtype=np.int64)
    start = pos.copy()
    sub = FrameReader.__new__(FrameReader)
    sub.frames, sub.hdr, sub.rows, sub.cap = fr.frames, fr.hdr[idx], np.arange(len(idx)), fr.cap[idx]
    sub.flat, sub.base = sub.hdr.reshape(-1), sub.rows * HEADER_BYTES
    cap = cap_end[idx]
    for _ in range(40):  # at most 40 option bytes
        active &= left > 0
        if not active.any():
            break
        short = active & (pos + 1 > cap)
        result[short], active[short] = -1, False
        opt = sub.u8(pos)
        left = left - 1
        simple = active & ((opt == IPOPT_EOOL) | (opt == IPOPT_NOP))
        eool = simple & (opt == IPOPT_EOOL)
        active &= ~eool
        pos = np.where(simple, pos + 1, pos)
        long = active & ~simple
        bogus = long & (left == 0)
        active &= ~bogus
        long &= ~bogus
        short = long & (pos + 2 > cap)
        result[short], active[short] = -1, False
        long &= ~short
        olen = sub.u8(pos + 1)
        left = np.where(long, left - 1, left)
        bad = long & ((olen < 2) | (olen - 2 > left))
        active &= ~bad
        long &= ~bad
        route = long & ((opt == IPOPT_SSR) | (opt == IPOPT_LSR))
        short = route & (pos + 3 > cap)
        result[short], active[short] = -1, False
        route &= ~short
        ptr = sub.u8(pos + 2)
        valid = route & ~((ptr < 4) | ((ptr & 3) != 0) | (ptr > olen))
        result[valid] = (pos - start + 4 + (olen - 4))[valid]
        active &= ~route
        pos = np.where(long & ~route, pos + olen, pos)
        left = np.where(long & ~route, left - (olen - 2), left)
    out[idx] = result
    return out


def _net_ipv6(st: LayerState, rows) -> None:
    """IPv6 over the few frames that carry it, decoded apart and written back."""
    idx = np.flatnonzero(rows)
    if len(idx) == 0:
        return
    sub = st.take(idx)
    _ipv6(sub)
    st.proto[idx], st.cap_end[idx], st.rep_end[idx] = sub.proto, sub.cap_end, sub.rep_end
    st.fs.fill_from(sub.fs, idx)
    up = idx[sub.l4.rows]
    st.l4.rows[up] = True
    for name in ("off", "proto", "rep_end", "ipv6", "src_key", "dst_key"):
        getattr(st.l4, name)[up] = getattr(sub.l4, name)[sub.l4.rows]


def _ipv6(st: LayerState) -> None:
    """IPv6 and its extension headers, over frames that all reach the IPv6 dissector."""
    fr, fs, proto, o, cap_end, rep_end, l4 = st.fr, st.fs, st.proto, st.net_off, st.cap_end, st.rep_end, st.l4
    rows = np.ones(len(o), dtype=bool)
    proto[rows] = P.IPV6
    # Fields come in header order: the fixed part (payload length, next header, hop limit), then the
    # addresses; a short capture stops the dissector where its bytes end.
    ok = rows & (cap_end >= o + 8) & ((fr.u8(o) >> 4) == 6)
    plen = fr.u16(o + 4)
    nxt = fr.u8(o + 6)
    fs.put("ipv6.plen", plen, ok)
    fs.put("ipv6.nxt", nxt, ok)
    fs.put("ipv6.hlim", fr.u8(o + 7), ok)
    src, dst = fr.ipv6(o + 8), fr.ipv6(o + 24)
    fs.put("ipv6.src", src, ok & (cap_end >= o + 24))
    ok &= cap_end >= o + IPV6_HEADER
    fs.put("ipv6.dst", dst, ok)
    end = o + IPV6_HEADER + plen
    shrink = ok & (end < rep_end)
    rep_end[shrink] = end[shrink]
    cap_end[:] = np.minimum(cap_end, rep_end)
    off = o + IPV6_HEADER
    # Extension headers: tshark dissects each one, then the upper layer after the last.
    ext = ok.copy()
    for _ in range(MAX_IPV6_EXTENSIONS):
        hop = ext & np.isin(nxt, IPV6_EXTENSION_HEADERS + (IPPROTO_AH, IPPROTO_FRAGMENT))
        if not hop.any():
            break
        proto[hop] = _ipv6_extension_codes()[nxt[hop] & 0xFF]
        fragment = hop & (nxt == IPPROTO_FRAGMENT)
        have = hop & (cap_end >= off + 2)
        ext_len = fr.u8(off + 1)
        size = np.where(nxt == IPPROTO_AH, (ext_len + 2) * 4, np.where(fragment, 8, (ext_len + 1) * 8))
        have &= cap_end >= off + size
        # A fragment header: reassembly is not emulated, the payload is shown as data.
        frag = have & fragment
        proto[frag] = P.DATA
        nxt = np.where(have, fr.u8(off), nxt)
        off = np.where(have, off + size, off)
        ext = have & ~frag
        stop = hop & ~have
        ok &= ~(stop | frag)
    up = ok & ~np.isin(nxt, IPV6_EXTENSION_HEADERS + (IPPROTO_AH, IPPROTO_FRAGMENT))
    none = up & (nxt == IPPROTO_NONE)
    proto[none & (rep_end > off)] = P.DATA
    up &= ~none
    l4.rows |= up
    l4.off[up] = off[up]
    l4.proto[up] = nxt[up]
    l4.rep_end[up] = rep_end[up]
    l4.ipv6[up] = True
    words_src = src.view(np.uint64).reshape(-1, 2)
    words_dst = dst.view(np.uint64).reshape(-1, 2)
    l4.src_key[up] = words_src[up]
    l4.dst_key[up] = words_dst[up]


_IPV6_EXTENSION_NAMES = {
    IPPROTO_HOPOPTS: "IPV6.HOPOPTS",
    IPPROTO_ROUTING: "IPV6.ROUTING",
    IPPROTO_FRAGMENT: "IPV6.FRAGHDR",
    IPPROTO_DSTOPTS: "IPV6.DSTOPTS",
    IPPROTO_AH: "AH",
    135: "MIPV6",
    140: "SHIM6",
}


@cache
def _ipv6_extension_codes() -> np.ndarray:
    """IPv6 next-header value -> protocol code of its extension header dissector (IPV6 for others)."""
    return P.code_table(_IPV6_EXTENSION_NAMES, 256, P.IPV6)


def _net_arp(st: LayerState, rows) -> None:
    """ARP over the few frames that carry it, decoded apart and written back."""
    idx = np.flatnonzero(rows)
    if len(idx) == 0:
        return
    sub = st.take(idx)
    _arp(sub)
    st.proto[idx] = sub.proto
    st.fs.fill_from(sub.fs, idx)


def _arp(st: LayerState) -> None:
    """ARP over frames that all carry it."""
    fr, fs, proto, o, cap_end, rep_end = st.fr, st.fs, st.proto, st.net_off, st.cap_end, st.rep_end
    proto[:] = P.ARP
    ok = cap_end >= o + ARP_HEADER_LEN
    hrd, pro, hln, pln, op = fr.u16(o), fr.u16(o + 2), fr.u8(o + 4), fr.u8(o + 5), fr.u16(o + 6)
    other = ok & ((hrd == 19) | (hrd == 3))  # ATM and AX.25 ARP have dissectors of their own
    proto[other] = P.protocol_id("ATMARP")
    ok &= ~other
    fs.put("arp.opcode", op, ok)
    # tvb_set_reported_length(tot_len) throws when the ARP body claims more than the frame reports.
    ok &= o + ARP_HEADER_LEN + 2 * hln + 2 * pln <= rep_end
    ether = (hrd == ARPHRD_ETHER) | (hrd == ARPHRD_IEEE802)
    hw_mac = ether & (hln == 6)
    pro_v4 = ((pro == ETHERTYPE_IPV4) | (pro == AX25_P_IP)) & (pln == 4)
    # tvb_set_reported_length(tot_len): the addresses must lie inside the ARP body and the capture.
    limit = np.minimum(cap_end, np.minimum(rep_end, o + ARP_HEADER_LEN + 2 * hln + 2 * pln))
    sha, spa = o + ARP_HEADER_LEN, o + ARP_HEADER_LEN + hln
    tha, tpa = spa + pln, spa + pln + hln
    # Before adding any address, tshark reads the addresses it summarises (for a request or reply, the
    # target address it compares with the sender's): their bytes must all be there.
    summarised = ok & (op >= 1) & (op <= ARP_SUMMARISED_OPS)
    ok &= ~summarised | (limit >= tpa + pln)
    steps = [
        ("arp.src.hw_mac", sha, hln, hw_mac, hln != 0),
        ("arp.src.proto_ipv4", spa, pln, pro_v4, pln != 0),
        ("arp.dst.hw_mac", tha, hln, hw_mac, hln != 0),
        ("arp.dst.proto_ipv4", tpa, pln, pro_v4 & (op != ARPOP_DRARPERROR), pln != 0),
    ]
    for name, pos, size, typed, added in steps:
        fits = limit >= pos + size
        if name.endswith("mac"):
            fs.put(name, fr.mac(pos), ok & added & fits & typed)
        else:
            fs.put(name, fr.ipv4(pos), ok & added & fits & typed)
        ok &= ~added | fits  # proto_tree_add_item throws on an address past the end
