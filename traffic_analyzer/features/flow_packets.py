"""Each packet of a batch as flows see it: its connection key, side, flags and history letters.

A flow is a canonical 5-tuple (the lower address first; ICMP requests and replies share one), so
both directions of a connection meet under one 64-bit key. Columns are numpy arrays (:data:`Columns`):
what the flow tracker's grouping and merging read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..records.packets import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN
from .services import http_named, zeek_service

# ICMP request type -> reply type, so both halves of an exchange form one flow.
_ICMP_PAIRS = {8: 0, 13: 14, 15: 16, 17: 18}
_ICMPV6_PAIRS = {128: 129, 130: 131, 133: 134, 135: 136}
_ICMP_REQUESTS = set(_ICMP_PAIRS) | set(_ICMPV6_PAIRS)


def _icmp_tables() -> tuple[np.ndarray, np.ndarray]:
    """The pairs as lookup tables over the 256 types (index 256: no type): request type; reply type or -1."""
    request_of, reply_of = np.r_[np.arange(256), -1], np.full(257, -1)
    for request, reply in {**_ICMP_PAIRS, **_ICMPV6_PAIRS}.items():
        request_of[reply], reply_of[request] = request, reply
    return request_of, reply_of


_ICMP_REQUEST_OF, _ICMP_REPLY_OF = _icmp_tables()

# tshark protocol names that say nothing about the application.
_NOT_A_SERVICE = {"TCP", "UDP", "DATA", "ICMP", "ICMPV6", "IP", "IPV6", "ETH", "ETHERTYPE", "SLL", "FRAME"}


# Flow state and a batch's connection instances are columns of numpy arrays of one length, keyed by
# "key" (a 64-bit hash of the 5-tuple): a window's flow work is a few dozen array operations, where
# a pandas frame cost more in per-call overhead than the work itself on the few thousand packets of a
# typical window (issue 13).
Columns = dict[str, np.ndarray]


def _ints(column: pd.Series, rows: np.ndarray, missing: int) -> np.ndarray:
    """A numeric packet column at ``rows`` as int64, missing values as ``missing``."""
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)[rows]
    return np.where(np.isnan(values), missing, values).astype(np.int64)


_PROTO_OF_TRANSPORT = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "icmpv6": "icmp"}
LETTER_FLAGS = ("", "S", "H", "R", "F", "A")  # none, bare SYN, SYN-ACK, RST, FIN, pure ACK


def flow_packets(packets: pd.DataFrame) -> Columns:
    """The IP packets that make flows, with their canonical key, side and history letters."""
    transport, names = pd.factorize(packets["transport"])
    proto_of = np.array([_PROTO_OF_TRANSPORT.get(str(n), "") for n in names] + [""], dtype=object)
    proto_all = proto_of[transport]  # code -1 (missing) takes the last entry
    # Both addresses: a missing one would factorize to code -1 and take another address's place in the key.
    keep = (proto_all != "") & packets["src_ip"].notna().to_numpy() & packets["dst_ip"].notna().to_numpy()
    rows = np.flatnonzero(keep)
    ts = packets["ts"].to_numpy(dtype=np.float64)[rows]
    if len(ts) > 1 and not (ts[1:] >= ts[:-1]).all():
        by_time = np.argsort(ts, kind="stable")
        rows, ts = rows[by_time], ts[by_time]
    p: Columns = {"ts": ts, "row": rows}
    proto = proto_all[rows]
    is_icmp = proto == "icmp"
    p["proto"] = proto
    icmp_type = _ints(packets["icmp_type"], rows, -1)
    # ICMP "ports": the request type and its reply type, or the type and code.
    type_row = np.where((icmp_type >= 0) & (icmp_type < 256), icmp_type, 256)
    req_type = _ICMP_REQUEST_OF[type_row]
    req_type = np.where(type_row == 256, icmp_type, req_type)
    reply = _ICMP_REPLY_OF[np.where((req_type >= 0) & (req_type < 256), req_type, 256)]
    icmp_hi = np.where(reply >= 0, reply, _ints(packets["icmp_code"], rows, 0))
    sport = np.where(is_icmp, req_type, _ints(packets["src_port"], rows, 0))
    dport = np.where(is_icmp, icmp_hi, _ints(packets["dst_port"], rows, 0))
    # Addresses as codes in sorted order: comparing codes is comparing the strings, at integer cost.
    n = len(rows)
    codes, addresses = pd.factorize(
        np.concatenate(
            [packets["src_ip"].to_numpy(dtype=object)[rows], packets["dst_ip"].to_numpy(dtype=object)[rows]]
        ),
        sort=True,
    )
    src, dst = codes[:n], codes[n:]
    # For ICMP the ports are the same in both directions, so order by address only.
    src_first = (src < dst) | ((src == dst) & (sport <= dport))
    keep_ports = src_first | is_icmp
    a_code, b_code = np.where(src_first, src, dst), np.where(src_first, dst, src)
    addresses = np.asarray(addresses, dtype=object)
    p["is_a"] = src_first
    p["a_h"] = addresses[a_code]
    p["b_h"] = addresses[b_code]
    p["a_p"] = np.where(keep_ports, sport, dport)
    p["b_p"] = np.where(keep_ports, dport, sport)
    p["key"] = _flow_keys(proto, addresses, a_code, p["a_p"], b_code, p["b_p"])

    flags = _ints(packets["tcp_flags"], rows, 0)
    tcp = proto == "tcp"
    syn = tcp & (flags & TCP_SYN > 0)
    ack = flags & TCP_ACK > 0
    p["bare_syn"] = syn & ~ack
    p["synack"] = syn & ack
    p["fin"] = tcp & (flags & TCP_FIN > 0)
    p["rst"] = tcp & (flags & TCP_RST > 0)
    p["payload"] = _ints(packets["payload_len"], rows, 0)
    p["ip_bytes"] = _ints(packets["ip_len"], rows, 0)
    p["icmp_request"] = is_icmp & np.isin(icmp_type, list(_ICMP_REQUESTS))
    pure_ack = tcp & ack & ~syn & ~p["fin"] & ~p["rst"] & (p["payload"] == 0)
    # History letters: a data letter then a flag letter, upper case from side "a", lower from "b";
    # flipped to originator/responder case at the end.
    p["flag_letter"] = np.select([p["bare_syn"], p["synack"], p["rst"], p["fin"], pure_ack], [1, 2, 3, 4, 5], 0)
    p["data_letter"] = (p["payload"] > 0) & (tcp | (proto == "udp"))
    p["svc"] = _services(packets["protocol"], rows, tcp)
    return p


def _services(protocol: pd.Series, rows: np.ndarray, tcp: np.ndarray) -> np.ndarray:
    """Each packet's Zeek service name (None: says nothing about the application), worked out per distinct name."""
    codes, names = pd.factorize(protocol.to_numpy(dtype=object)[rows])
    names = pd.Series(np.asarray(names, dtype=object), dtype=object)

    def table(on_tcp: bool) -> np.ndarray:
        named = http_named(names, np.full(len(names), on_tcp)).to_numpy(dtype=object)
        return np.array(
            [None if n in _NOT_A_SERVICE or n == "" else zeek_service(n) for n in named] + [None], dtype=object
        )

    return np.where(tcp, table(True)[codes], table(False)[codes])


def _flow_keys(
    proto: np.ndarray, addresses: np.ndarray, a_code: np.ndarray, a_p: np.ndarray, b_code: np.ndarray, b_p: np.ndarray
) -> np.ndarray:
    """One 64-bit key per connection 5-tuple (canonical order), stable across batches.

    A keyed hash of the tuple rather than the joined text: grouping and matching integers is what
    keeps a busy window cheap. Two tuples share a key with probability about n^2 / 2^65 (n open
    connections): one in 37 million for a million connections at once.
    """
    address_hash = pd.util.hash_array(addresses).view(np.int64)
    parts = pd.DataFrame(
        {
            "proto": pd.util.hash_array(proto).view(np.int64),
            "a_h": address_hash[a_code],
            "a_p": a_p.astype(np.int64),
            "b_h": address_hash[b_code],
            "b_p": b_p.astype(np.int64),
        }
    )
    return pd.util.hash_pandas_object(parts, index=False).to_numpy().view(np.int64)
