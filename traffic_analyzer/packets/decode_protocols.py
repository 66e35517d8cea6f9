"""Names of the protocols the fast decoders recognise, as tshark spells them in ``frame.protocols``.

The packet table's ``protocol`` column is tshark's last (highest) dissected protocol in upper
case. The decoders carry it as a small integer code per packet; :data:`PROTOCOL_NAMES` turns
codes back into names.
"""

from __future__ import annotations

import numpy as np

_NAMES: list[str] = []
_IDS: dict[str, int] = {}


def protocol_id(name: str) -> int:
    """Code of a protocol name (registered on first use)."""
    code = _IDS.get(name)
    if code is None:
        code = _IDS[name] = len(_NAMES)
        _NAMES.append(name)
    return code


def code_table(names: dict[int, str], size: int, default: int) -> np.ndarray:
    """Number -> code of the dissector ``names`` gives for it (``default`` for numbers it does not name)."""
    table = np.full(size, default, dtype=np.int64)
    for value, name in names.items():
        table[value] = protocol_id(name)
    return table


def protocol_names() -> np.ndarray:
    """Object array: code -> name (the registry only grows, so older codes stay valid)."""
    return np.array(_NAMES, dtype=object)


FRAME = protocol_id("FRAME")
ETH = protocol_id("ETH")
ETHERTYPE = protocol_id("ETHERTYPE")
VLAN = protocol_id("VLAN")
LLC = protocol_id("LLC")
SLL = protocol_id("SLL")
NULL = protocol_id("NULL")
RAW = protocol_id("RAW")
DATA = protocol_id("DATA")
IP = protocol_id("IP")
IPV6 = protocol_id("IPV6")
ARP = protocol_id("ARP")
TCP = protocol_id("TCP")
UDP = protocol_id("UDP")
ICMP = protocol_id("ICMP")
ICMPV6 = protocol_id("ICMPV6")
PPP = protocol_id("PPP")

# Ethertype -> dissector name, for the non-IP ethertypes seen on ordinary LANs (tshark 4.0 names).
ETHERTYPE_NAMES: dict[int, str] = {
    0x0842: "WOL",
    0x22F0: "IEEE1722",
    0x22F3: "TRILL",
    0x6002: "DEC_DNA",
    0x8035: "ARP",
    0x809B: "DDP",
    0x80F3: "AARP",
    0x8137: "IPX",
    0x8809: "SLOW",
    0x8847: "MPLS",
    0x8848: "MPLS",
    0x8863: "PPPOED",
    0x8864: "PPPOES",
    0x886F: "MSNLB",
    0x888E: "EAPOL",
    0x8892: "PN_RT",
    0x8899: "REALTEK",
    0x88A2: "AOE",
    0x88B8: "GOOSE",
    0x88B9: "GSE",
    0x88BA: "SV",
    0x88CC: "LLDP",
    0x88E1: "HOMEPLUG-AV",
    0x88E3: "MRP",
    0x88E5: "MACSEC",
    0x88F7: "PTP",
    0x8902: "CFM",
    0x8906: "FCOE",
    0x8914: "FIP",
    0x893A: "IEEE1905",
    0x9000: "LOOP",
}

# IP protocol number -> dissector name, for the numbers tshark dissects beyond TCP/UDP/ICMP.
IP_PROTOCOL_NAMES: dict[int, str] = {
    2: "IGMP",
    4: "IP",
    41: "IPV6",
    46: "RSVP",
    47: "GRE",
    50: "ESP",
    51: "AH",
    88: "EIGRP",
    89: "OSPF",
    103: "PIM",
    112: "VRRP",
    132: "SCTP",
}
