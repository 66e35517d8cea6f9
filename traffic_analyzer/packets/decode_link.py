"""Link layers, vectorised: Ethernet (with 802.1Q tags and 802.3/LLC), Linux cooked, BSD loopback, raw IP.

The rules follow tshark 4.0's packet-eth.c, packet-vlan.c, packet-llc.c, packet-sll.c,
packet-null.c and packet-raw.c. Each decoder names the link protocol, adds its fields and says
which network dissector gets the frame and where (:attr:`~.decode_state.LayerState.net`).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from . import decode_protocols as P
from .decode_frames import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    RAW_LINKTYPES,
)
from .decode_state import NET_ARP, NET_IP, NET_IPV4, NET_IPV6, LayerState

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_RARP = 0x8035
ETHERTYPE_VLAN = 0x8100
ETHERTYPE_QINQ_OLD = 0x9100
ETHERTYPE_IPV6 = 0x86DD
IEEE_802_3_MAX_LEN = 1500  # a type/length field up to this is an 802.3 length
ETHERNET_II_MIN_LEN = 1536  # from this on it is an Ethertype
SLL_LTYPE_MAX = 1536  # "yes, 1536 - that's how Linux does it" (packet-sll.c)
ARPHRD_IPGRE = 778
ARPHRD_NETLINK = 824
BSD_AF_INET = 2
BSD_AF_INET6 = (24, 28, 30)  # NetBSD/OpenBSD, FreeBSD, Darwin
PPP_HDLC = 0xFF03

# Cisco SNAP protocol ids (OUI 00:00:0c) -> dissector name.
_CISCO_SNAP_NAMES = {0x2000: "CDP", 0x2003: "VTP", 0x2004: "DTP", 0x010B: "STP", 0x0111: "UDLD"}


def decode_link(st: LayerState) -> None:
    """Every frame's link layer, by its link type; IP link types go straight to the IP dissectors."""
    lt = st.fr.frames.linktype
    _link_ethernet(st, lt == LINKTYPE_ETHERNET)
    _link_sll(st, lt == LINKTYPE_LINUX_SLL, version=1)
    _link_sll(st, lt == LINKTYPE_LINUX_SLL2, version=2)
    _link_null(st, lt == LINKTYPE_NULL, big_endian=False)
    _link_null(st, lt == LINKTYPE_LOOP, big_endian=True)
    _link_raw(st, np.isin(lt, RAW_LINKTYPES))


def _ethertype_dispatch(st: LayerState, rows, etype, off) -> None:
    """The ethertype dissector: hand the payload at ``off`` to the dissector of ``etype``."""
    fr, proto, net, net_off = st.fr, st.proto, st.net, st.net_off
    proto[rows] = P.ETHERTYPE
    vlan = rows & ((etype == ETHERTYPE_VLAN) | (etype == ETHERTYPE_QINQ_OLD))
    # Up to two 802.1Q tags (a Q-in-Q frame), each: 2 bytes TCI, 2 bytes inner type/length.
    for _ in range(2):
        if not vlan.any():
            break
        proto[vlan] = P.VLAN
        ok = vlan & (fr.cap >= off + 4)
        inner_type = fr.u16(off + 2)
        off = np.where(ok, off + 4, off)
        etype = np.where(ok, inner_type, etype)
        llc = ok & (inner_type <= IEEE_802_3_MAX_LEN)
        _llc(st, llc, off)
        ok &= ~llc
        proto[ok] = P.ETHERTYPE
        rows = np.where(vlan, ok, rows)
        vlan = ok & ((etype == ETHERTYPE_VLAN) | (etype == ETHERTYPE_QINQ_OLD))
    rows = rows & ~vlan
    ipv4 = rows & (etype == ETHERTYPE_IPV4)
    ipv6 = rows & (etype == ETHERTYPE_IPV6)
    arp = rows & ((etype == ETHERTYPE_ARP) | (etype == ETHERTYPE_RARP))
    net[ipv4], net_off[ipv4] = NET_IPV4, off[ipv4]
    net[ipv6], net_off[ipv6] = NET_IPV6, off[ipv6]
    net[arp], net_off[arp] = NET_ARP, off[arp]
    other = rows & ~(ipv4 | ipv6 | arp)
    if other.any():
        proto[other] = _ethertype_codes()[etype[other] & 0xFFFF]


@cache
def _ethertype_codes() -> np.ndarray:
    """Ethertype -> protocol code of its dissector (DATA when tshark has none we know of)."""
    return P.code_table(P.ETHERTYPE_NAMES, 65536, P.DATA)


def _link_ethernet(st: LayerState, rows) -> None:
    if not rows.any():
        return
    fr, fs, proto = st.fr, st.fs, st.proto
    proto[rows] = P.ETH
    ok = rows & (fr.cap >= 14)
    h = fr.hdr
    etype = fr.col16(12)
    isl = (
        ok
        & (etype <= IEEE_802_3_MAX_LEN)
        & ((h[:, 0] == 0x01) | (h[:, 0] == 0x0C))
        & (h[:, 1] == 0)
        & (h[:, 2] == 0x0C)
        & (h[:, 3] == 0)
        & (h[:, 4] == 0)
    )
    proto[isl] = P.protocol_id("ISL")
    ok &= ~isl
    fs.put("eth.dst", fr.mac_at(0), ok)
    fs.put("eth.src", fr.mac_at(6), ok)
    ether2 = ok & ((etype >= ETHERNET_II_MIN_LEN) | (etype == 0))
    fs.put("eth.type", etype, ether2)
    invalid = ok & (etype > IEEE_802_3_MAX_LEN) & (etype < ETHERNET_II_MIN_LEN)
    proto[invalid] = P.DATA
    _llc(st, ok & ~ether2 & ~invalid, np.full(len(rows), 14, dtype=np.int64))
    _ethertype_dispatch(st, ether2, etype, np.full(len(rows), 14, dtype=np.int64))


def _llc(st: LayerState, rows, off) -> None:
    """802.3 frames: raw IPX, or an 802.2 LLC header and what its SAPs / SNAP id say follows."""
    if not rows.any():
        return
    fr, proto = st.fr, st.proto
    have = rows & (fr.cap >= off + 2)
    raw_ipx = have & (fr.u16(off) == 0xFFFF)
    proto[rows] = P.LLC
    proto[raw_ipx] = P.protocol_id("IPX")
    llc = rows & ~raw_ipx & (fr.cap >= off + 3)
    dsap, ssap = fr.u8(off), fr.u8(off + 1)
    proto[llc & (dsap == 0x42) & (ssap == 0x42)] = P.protocol_id("STP")
    proto[llc & (dsap == 0xE0) & (ssap == 0xE0)] = P.protocol_id("IPX")
    snap = llc & (dsap == 0xAA) & (ssap == 0xAA) & (fr.cap >= off + 8)
    if snap.any():
        oui = (fr.u8(off + 3) << 16) | fr.u16(off + 4)
        pid = fr.u16(off + 6)
        for value, name in _CISCO_SNAP_NAMES.items():
            proto[snap & (oui == 0x00000C) & (pid == value)] = P.protocol_id(name)


def _link_sll(st: LayerState, rows, version: int) -> None:
    if not rows.any():
        return
    fr, fs, proto = st.fr, st.fs, st.proto
    if version == 1:
        size, hatype, halen, addr, ptype = 16, fr.col16(2), fr.col16(4), 6, fr.col16(14)
    else:
        size, hatype, halen, addr, ptype = 20, fr.col16(8), fr.hdr[:, 11].astype(np.int64), 12, fr.col16(0)
    netlink = rows & (hatype == ARPHRD_NETLINK) & (fr.cap >= 4 if version == 1 else fr.cap >= 10)
    proto[netlink] = P.protocol_id("NETLINK")
    rows = rows & ~netlink
    proto[rows] = P.SLL
    # packet-sll.c reads the packet type and address type first, then adds fields in header order:
    # v1 address then protocol, v2 protocol then address.
    if version == 1:
        src_ok = rows & (fr.cap >= addr + 6)
        type_ok = rows & (fr.cap >= size)
    else:
        type_ok = rows & (fr.cap >= 12)
        src_ok = type_ok & (fr.cap >= addr + 6)
    fs.put("sll.src.eth", fr.mac_at(addr), src_ok & (halen == 6))
    ethertype = type_ok & (ptype > SLL_LTYPE_MAX)
    fs.put("sll.etype", ptype, ethertype & (hatype != ARPHRD_IPGRE))
    ok = rows & (fr.cap >= size)
    proto[ok & ~ethertype] = P.DATA
    _ethertype_dispatch(st, ok & ethertype & (hatype != ARPHRD_IPGRE), ptype, np.full(len(rows), size))


def _link_null(st: LayerState, rows, big_endian: bool) -> None:
    if not rows.any():
        return
    fr, proto, net, net_off = st.fr, st.proto, st.net, st.net_off
    proto[rows] = P.NULL
    h = fr.hdr[:, :4].astype(np.int64)
    if big_endian:
        family = (h[:, 0] << 24) | (h[:, 1] << 16) | (h[:, 2] << 8) | h[:, 3]
        ok = rows & (fr.cap >= 4)
    else:
        # packet-null.c reads the family in host (little-endian) order, then guesses the writer's order.
        value = h[:, 0] | (h[:, 1] << 8) | (h[:, 2] << 16) | (h[:, 3] << 24)
        ppp = rows & (fr.cap >= 2) & (((h[:, 0] << 8) | h[:, 1]) == PPP_HDLC)
        proto[ppp] = P.PPP
        ok = rows & (fr.cap >= 4) & ~ppp
        high = (value & 0xFFFF0000) != 0
        shifted = ((value & 0xFF000000) == 0) & ((value & 0x00FF0000) < 0x00060000)
        swapped = ((value & 0xFF) << 24) | ((value & 0xFF00) << 8) | ((value >> 8) & 0xFF00) | (value >> 24)
        low_swap = ((value & 0xFF) == 0) & ((value & 0xFF00) < 0x600)
        family = np.where(
            high,
            np.where(shifted, value >> 16, swapped),
            np.where(low_swap, ((value & 0xFF) << 8) | ((value >> 8) & 0xFF), value),
        )
    ethertype = ok & (family > IEEE_802_3_MAX_LEN)
    if ethertype.any():
        sub = ethertype & np.isin(family & 0xFFFF, (ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_ARP, ETHERTYPE_RARP))
        et = family & 0xFFFF
        v4, v6 = sub & (et == ETHERTYPE_IPV4), sub & (et == ETHERTYPE_IPV6)
        arp = sub & ((et == ETHERTYPE_ARP) | (et == ETHERTYPE_RARP))
        net[v4], net[v6], net[arp] = NET_IPV4, NET_IPV6, NET_ARP
        net_off[sub] = 4
        proto[ethertype & ~sub] = P.DATA
    fam = ok & ~ethertype
    v4 = fam & (family == BSD_AF_INET)
    v6 = fam & np.isin(family, BSD_AF_INET6)
    net[v4], net[v6] = NET_IP, NET_IPV6
    net_off[v4 | v6] = 4
    proto[fam & ~(v4 | v6)] = P.DATA


def _link_raw(st: LayerState, rows) -> None:
    if not rows.any():
        return
    fr, proto, net, net_off = st.fr, st.proto, st.net, st.net_off
    proto[rows] = P.RAW
    h = fr.hdr.astype(np.int64)
    first = (h[:, 0] << 8) | h[:, 1]
    ok = rows & (fr.cap >= 2)
    ppp = ok & (first == PPP_HDLC)
    ok &= ~ppp
    ok8 = ok & (fr.cap >= 8)  # tvb_get_ntohs(tvb, 6) throws on a shorter frame
    ppp |= ok8 & ((((h[:, 6] << 8) | h[:, 7]) == PPP_HDLC) | (((h[:, 1] << 8) | h[:, 2]) == PPP_HDLC))
    proto[ppp] = P.PPP
    ok8 &= ~ppp
    zeros10 = ok8 & (fr.cap >= 10) & (h[:, :10] == 0).all(axis=1)
    net[zeros10], net_off[zeros10] = NET_IP, 10
    version = h[:, 0] >> 4
    rest = ok8 & ~zeros10
    v4, v6 = rest & (version == 4), rest & (version == 6)
    net[v4], net[v6] = NET_IP, NET_IPV6
    proto[rest & ~(v4 | v6)] = P.DATA
