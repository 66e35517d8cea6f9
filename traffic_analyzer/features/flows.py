"""Bidirectional connections, with the fields and state machine of Zeek's conn.log.

:class:`FlowTracker` keeps one aggregated row per open connection (never the
packets), folds each packet batch into it with grouped, vectorised operations,
and hands back the connections a batch touched and the ones that ended.

References: Zeek's ``base/protocols/conn/main.zeek`` (``conn_state``) and the
conn.log documentation for ``history`` letters (upper case: originator).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..distinct import per_distinct
from ..records.flows import FLOW_COLUMNS, empty_flows
from ..records.packets import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, TEXT, fit_integers
from .services import http_named, zeek_service

# Zeek's default inactivity timeouts; a closed TCP connection ends sooner.
TCP_IDLE_TIMEOUT_S = 300.0
UDP_IDLE_TIMEOUT_S = 60.0
ICMP_IDLE_TIMEOUT_S = 60.0
CLOSED_TCP_LINGER_S = 5.0  # Zeek's tcp_close_delay


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

_SIDES = ("a", "b")
_FLAG_NAMES = ("syn", "synack", "fin", "rst")
_COUNTERS = [f"{s}_{c}" for s in _SIDES for c in ("pkts", "bytes", "ip_bytes")]
_FLAGS = [f"{s}_{f}" for s in _SIDES for f in _FLAG_NAMES]

# Flow state and a batch's connection instances are columns of numpy arrays of one length, keyed by
# "key" (a 64-bit hash of the 5-tuple): a window's flow work is a few dozen array operations, where
# a pandas frame cost more in per-call overhead than the work itself on the few thousand packets of a
# typical window (issue 13).
Columns = dict[str, np.ndarray]

_STATE_TYPES: dict[str, object] = {
    "key": np.int64,
    "uid": object,
    "proto": object,
    "ts": np.float64,
    "last_ts": np.float64,
    "a_h": object,
    "a_p": np.int64,
    "b_h": object,
    "b_p": np.int64,
    "orig_is_a": bool,
    "icmp_resp_p": np.int64,
    "history": object,
    "service": object,
    **{c: np.int64 for c in _COUNTERS},
    **{c: bool for c in _FLAGS},
}


def _empty_state() -> Columns:
    return {c: np.zeros(0, dtype=t) for c, t in _STATE_TYPES.items()}


def _take(cols: Columns, rows: np.ndarray) -> Columns:
    """The rows (positions or a boolean mask) of every column."""
    return {c: v[rows] for c, v in cols.items()}


def _concat(parts: list[Columns]) -> Columns:
    return {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}


def _rows(cols: Columns) -> int:
    return len(cols["key"])


@dataclass
class FlowUpdate:
    """What one batch did: connections it touched (current state) and connections that ended."""

    active: pd.DataFrame
    finished: pd.DataFrame
    # Per packet of the batch: its flow's uid (None: not part of a flow) and whether the originator sent it.
    packet_uids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    from_orig: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


class FlowTracker:
    """Bidirectional flow state across packet batches (pandas in, pandas out)."""

    def __init__(
        self, tcp_idle_timeout_s: float = TCP_IDLE_TIMEOUT_S, udp_idle_timeout_s: float = UDP_IDLE_TIMEOUT_S
    ) -> None:
        self.tcp_idle_timeout_s = tcp_idle_timeout_s
        self.udp_idle_timeout_s = udp_idle_timeout_s
        self._state = _empty_state()  # one row per open connection, keys unique
        self._flows_started = 0  # salts uids, so a replayed connection gets a new one

    @property
    def open_flows(self) -> int:
        return _rows(self._state)

    def update(self, packets: pd.DataFrame, now: float | None = None) -> FlowUpdate:
        """Fold a packet batch into the open flows; ``now`` (epoch s) expires idle ones."""
        p = _flow_packets(packets)
        finished: list[Columns] = []
        touched: np.ndarray | None = None
        state = self._state
        packet_uids = np.full(len(packets), None, dtype=object)
        from_orig = np.zeros(len(packets), dtype=bool)
        if _rows(p):
            index = pd.Index(state["key"])
            p["seg"] = self._segment(p, index.get_indexer(p["key"]))
            instances = _aggregate(p)
            at = index.get_indexer(instances["key"])
            is_continuing = (instances["seg"] == 0) & (at >= 0)
            merged = _merge(_take(state, at[is_continuing]), _take(instances, is_continuing))
            untouched = np.ones(_rows(state), dtype=bool)
            untouched[at[is_continuing]] = False
            state = _concat([_take(state, untouched), merged])
            split = np.isin(state["key"], instances["key"][instances["seg"] > 0])
            finished.append(_take(state, split))
            fresh = _take(instances, ~is_continuing)
            fresh["uid"] = _uids(fresh["key"], fresh["ts"], self._flows_started)
            # Each packet's flow: its instance continues an open flow or is a fresh one.
            instance_uid = np.empty(_rows(instances), dtype=object)
            instance_uid[is_continuing], instance_uid[~is_continuing] = merged["uid"], fresh["uid"]
            instance_orig_is_a = instances["orig_is_a"].copy()
            instance_orig_is_a[is_continuing] = merged["orig_is_a"]
            packet_uids[p["row"]] = instance_uid[p["instance"]]
            from_orig[p["row"]] = p["is_a"] == instance_orig_is_a[p["instance"]]
            self._flows_started += _rows(fresh)
            keys, of_key = np.unique(fresh["key"], return_inverse=True)
            last_seg = np.full(len(keys), -1, dtype=np.int64)
            np.maximum.at(last_seg, of_key, fresh["seg"])
            newest = fresh["seg"] == last_seg[of_key]
            finished.append(_take(fresh, ~newest))
            state = _concat([_take(state, ~split), _take(fresh, newest)])
            state = {c: state[c] for c in _STATE_TYPES}  # instances carry "seg"
            touched = p["key"]
        if now is not None and _rows(state):
            expired = self._expired(state, now)
            finished.append(_take(state, expired))
            state = _take(state, ~expired)
        self._state = state
        active = _take(state, np.isin(state["key"], touched)) if touched is not None else _take(state, slice(0, 0))
        done = [{c: f[c] for c in _STATE_TYPES} for f in finished if _rows(f)]
        if not done:
            return FlowUpdate(conn_records(active), empty_flows(), packet_uids, from_orig)
        records = conn_records(_concat([*done, active]))  # one pass over both: its cost is mostly fixed
        ended = sum(_rows(f) for f in done)
        return FlowUpdate(records.iloc[ended:].reset_index(drop=True), records.iloc[:ended], packet_uids, from_orig)

    def flush(self) -> pd.DataFrame:
        """End every open flow (end of a file or of a capture)."""
        done, self._state = self._state, _empty_state()
        return conn_records(done)

    def _expired(self, s: Columns, now: float) -> np.ndarray:
        closed = s["a_rst"] | s["b_rst"] | (s["a_fin"] & s["b_fin"])
        timeout = np.where(
            s["proto"] == "tcp", np.where(closed, CLOSED_TCP_LINGER_S, self.tcp_idle_timeout_s), self.udp_idle_timeout_s
        )
        return (now - s["last_ts"]) > timeout

    def _segment(self, p: Columns, at: np.ndarray) -> np.ndarray:
        """Number each key's packets into connection instances: 0 continues the open flow.

        ``at`` is each packet's row in the open-flow state (-1: none). The packets of a key are taken
        together (a stable sort by key keeps their time order) so that "the key's previous packet"
        and "the key's last FIN/RST/SYN before this packet" are shifts and running maxima.
        """
        s = self._state
        known = at >= 0
        # A sentinel row past the state's end for the packets of no open flow (at -1).
        state_last = np.r_[s["last_ts"], np.nan][at]
        state_closed = np.r_[s["a_rst"] | s["b_rst"] | s["a_fin"] | s["b_fin"], False][at] & known
        order = np.argsort(p["key"], kind="stable")
        n = len(order)
        positions = np.arange(n)
        first = np.r_[True, p["key"][order][1:] != p["key"][order][:-1]]
        ts = p["ts"][order]
        prev_ts = np.where(first, state_last[order], np.r_[np.nan, ts[:-1]])
        timeout = np.where(p["proto"][order] == "tcp", self.tcp_idle_timeout_s, self.udp_idle_timeout_s)
        # A bare SYN after the connection's last RST/FIN (not after a retransmitted SYN) opens a new one.
        event = np.select([(p["rst"] | p["fin"])[order], p["bare_syn"][order]], [1, 2], default=0)
        group_start = np.maximum.accumulate(np.where(first, positions, 0))
        last_at = np.maximum.accumulate(np.where(event > 0, positions, -1))  # this packet included
        before = np.r_[-1, last_at[:-1]]  # the last event strictly before this packet...
        before = np.where(before >= group_start, before, -1)  # ...of the same key
        last_event = np.where(before >= 0, event[np.maximum(before, 0)], 0)
        closed_before = (last_event == 1) | ((last_event == 0) & state_closed[order])
        with np.errstate(invalid="ignore"):
            new = ((ts - prev_ts) > timeout) | (p["bare_syn"][order] & closed_before & ~np.isnan(prev_ts))
        running = np.cumsum(new)
        seg_sorted = running - (running - new)[group_start]
        seg = np.empty(n, dtype=np.int64)
        seg[order] = seg_sorted
        return seg


def _ints(column: pd.Series, rows: np.ndarray, missing: int) -> np.ndarray:
    """A numeric packet column at ``rows`` as int64, missing values as ``missing``."""
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)[rows]
    return np.where(np.isnan(values), missing, values).astype(np.int64)


_PROTO_OF_TRANSPORT = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "icmpv6": "icmp"}
_LETTER_FLAGS = ("", "S", "H", "R", "F", "A")  # none, bare SYN, SYN-ACK, RST, FIN, pure ACK


def _flow_packets(packets: pd.DataFrame) -> Columns:
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


def _aggregate(p: Columns) -> Columns:
    """One row per (key, seg) connection instance of this batch, in order of first packet.

    Plain numpy reductions over the packets sorted by instance: a pandas group-by per column
    costs more than the whole reduction on the few hundred packets of a typical window.
    """
    by_key = np.argsort(p["key"], kind="stable")  # each instance's packets together, in time order
    key, seg = p["key"][by_key], p["seg"][by_key]
    boundary = np.r_[True, (key[1:] != key[:-1]) | (seg[1:] != seg[:-1])]
    group_sorted = np.cumsum(boundary) - 1
    n = int(group_sorted[-1]) + 1
    first_seen = by_key[boundary]  # each instance's first packet
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(first_seen, kind="stable")] = np.arange(n)  # numbered in first-seen order
    codes = np.empty(len(by_key), dtype=np.int64)
    codes[by_key] = rank[group_sorted]
    p["instance"] = codes  # each packet's instance: its row in what this returns
    first = np.sort(first_seen)
    order = np.argsort(codes, kind="stable")
    starts = np.flatnonzero(np.r_[True, codes[order][1:] != codes[order][:-1]])

    def total(values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values[order], starts)

    def first_where(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Per instance: ``values`` at its first packet where ``mask`` holds, else -1."""
        found = np.full(n, -1, dtype=np.int64)
        which, at = np.unique(codes[mask], return_index=True)
        found[which] = values[mask][at]
        return found

    is_a = p["is_a"]
    payload, ip_bytes = p["payload"], p["ip_bytes"]
    flags = dict(zip(_FLAG_NAMES, (p["bare_syn"], p["synack"], p["fin"], p["rst"]), strict=True))
    ts = p["ts"]
    cols: Columns = {
        "key": p["key"][first],
        "seg": p["seg"][first],
        "ts": np.minimum.reduceat(ts[order], starts),
        "last_ts": np.maximum.reduceat(ts[order], starts),
    }
    for side, mask in (("a", is_a), ("b", ~is_a)):
        cols[f"{side}_pkts"] = total(mask.astype(np.int64))
        cols[f"{side}_bytes"] = total(np.where(mask, payload, 0))
        cols[f"{side}_ip_bytes"] = total(np.where(mask, ip_bytes, 0))
    for side, mask in (("a", is_a), ("b", ~is_a)):
        for f in _FLAG_NAMES:
            cols[f"{side}_{f}"] = total((mask & flags[f]).astype(np.int64)) > 0
    for c in ("proto", "a_h", "a_p", "b_h", "b_p"):
        cols[c] = p[c][first]
    # Orientation: the first SYN's sender, else the first SYN-ACK's receiver, else the first ICMP
    # request's sender, else the sender of the first packet is the originator.
    orig_is_a = is_a[first].copy()
    for mask, sender_is_orig in ((p["icmp_request"], True), (flags["synack"], False), (flags["syn"], True)):
        clue = first_where(mask, is_a.astype(np.int64))
        orig_is_a = np.where(clue >= 0, (clue == 1) == sender_is_orig, orig_is_a)
    cols["orig_is_a"] = orig_is_a
    cols["icmp_resp_p"] = cols["b_p"]
    known = np.not_equal(p["svc"], None)
    at = first_where(known, np.arange(len(known)))
    cols["service"] = np.where(at >= 0, p["svc"][np.maximum(at, 0)], None)
    cols["history"] = _history(p, codes, n)
    return cols


_UPPER = np.array([0] + [ord(c) for c in _LETTER_FLAGS[1:]], dtype=np.uint32)
_ASCII = np.array([chr(c) for c in range(128)], dtype=object)


def _history(p: Columns, codes: np.ndarray, n: int) -> np.ndarray:
    """Per instance: its packets' letters in first-seen order, each at most once."""
    lower = np.where(p["is_a"], 0, 32).astype(np.uint32)  # ASCII lower case is upper case + 32
    data = np.where(p["data_letter"], ord("D") + lower, 0)
    flag = np.where(p["flag_letter"] > 0, _UPPER[p["flag_letter"]] + lower, 0)
    chars = np.column_stack([data, flag]).ravel()  # a packet's data letter comes before its flag letter
    slot = np.flatnonzero(chars)
    group, char = np.repeat(codes, 2)[slot], chars[slot].astype(np.int64)
    out = np.full(n, "", dtype=object)
    if len(slot) == 0:
        return out
    kept = np.sort(np.unique(group * 0x110000 + char, return_index=True)[1])  # first of each
    group, char = group[kept], _ASCII[char[kept]]
    order = np.argsort(group, kind="stable")
    group, char = group[order], char[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    out[group[starts]] = np.add.reduceat(char, starts)  # string concatenation per instance, in packet order
    return out


def _dedupe_letters(history: str) -> str:
    return "".join(dict.fromkeys(history))


def _merge(old: Columns, new: Columns) -> Columns:
    """Fold this batch's part of continuing connections (rows in the same order) into their open state."""
    out = dict(old)
    for c in _COUNTERS:
        out[c] = old[c] + new[c]
    for c in _FLAGS:
        out[c] = old[c] | new[c]
    out["last_ts"] = np.maximum(old["last_ts"], new["last_ts"])
    history = [_dedupe_letters(a + b) for a, b in zip(old["history"].tolist(), new["history"].tolist(), strict=True)]
    out["history"] = np.array(history, dtype=object) if history else old["history"]
    out["service"] = np.where(np.not_equal(old["service"], None), old["service"], new["service"])
    return out


_UID_ALPHABET = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)


def _uids(keys: np.ndarray, ts: np.ndarray, first_number: int) -> np.ndarray:
    """Zeek-style connection ids ("C" + 17 base-62 digits of a 96-bit hash), the same for the same
    capture read the same way. Vectorised: two keyed row hashes instead of a digest per flow."""
    if len(keys) == 0:
        return np.array([], dtype=object)
    rows = pd.DataFrame(
        {
            "key": keys,
            "ts": ts.astype(np.float64),
            "number": np.arange(first_number, first_number + len(keys), dtype=np.int64),
        }
    )
    digits = []
    for hash_key, count in (("conn-uid-part-01", 10), ("conn-uid-part-02", 7)):
        n = pd.util.hash_pandas_object(rows, index=False, hash_key=hash_key).to_numpy(dtype=np.uint64)
        for _ in range(count):
            n, r = np.divmod(n, np.uint64(62))
            digits.append(_UID_ALPHABET[r.astype(np.intp)])
    chars = np.column_stack([np.full(len(rows), ord("C"), dtype=np.uint8), *digits])
    return np.ascontiguousarray(chars).view("S18").ravel().astype(str).astype(object)


def conn_records(s: Columns) -> pd.DataFrame:
    """Flow state rows -> conn.log records, oriented originator -> responder."""
    if _rows(s) == 0:
        return empty_flows()
    a = s["orig_is_a"]

    def pick(a_col: str, b_col: str) -> np.ndarray:
        return np.where(a, s[a_col], s[b_col])

    # Plain arrays, one DataFrame at the end: column-by-column assignment is most of a small window's cost.
    cols: dict[str, object] = {"ts": s["ts"], "uid": s["uid"]}
    cols["orig_h"], cols["resp_h"] = pick("a_h", "b_h"), pick("b_h", "a_h")
    is_icmp = s["proto"] == "icmp"
    cols["orig_p"] = np.where(is_icmp, s["a_p"], pick("a_p", "b_p"))
    cols["resp_p"] = np.where(is_icmp, s["icmp_resp_p"], pick("b_p", "a_p"))
    cols["proto"] = s["proto"]
    cols["service"] = s["service"]
    last_ts = s["last_ts"]
    cols["duration"] = last_ts - cols["ts"]
    for zeek, side_o, side_r in (
        ("bytes", "a_bytes", "b_bytes"),
        ("pkts", "a_pkts", "b_pkts"),
        ("ip_bytes", "a_ip_bytes", "b_ip_bytes"),
    ):
        cols[f"orig_{zeek}"] = pick(side_o, side_r)
        cols[f"resp_{zeek}"] = pick(side_r, side_o)
    ep = {}
    for role, side_o, side_r in (("o", "a", "b"), ("r", "b", "a")):
        ep[f"{role}_syn"] = pick(f"{side_o}_syn", f"{side_r}_syn").astype(bool)
        ep[f"{role}_synack"] = pick(f"{side_o}_synack", f"{side_r}_synack").astype(bool)
        ep[f"{role}_fin"] = pick(f"{side_o}_fin", f"{side_r}_fin").astype(bool)
        ep[f"{role}_rst"] = pick(f"{side_o}_rst", f"{side_r}_rst").astype(bool)
    history = pd.Series(s["history"], dtype=object)
    cols["history"] = np.where(a, history.to_numpy(), per_distinct(history, lambda h: h.str.swapcase()))
    cols["conn_state"] = _conn_state(cols, ep)
    cols["last_ts"] = last_ts
    return pd.DataFrame({c: _typed(cols[c], dtype) for c, dtype in FLOW_COLUMNS.items()})


def _typed(values, dtype) -> object:
    """A column in its record dtype, made directly: a frame's ``astype`` cost ten times more on a window."""
    if dtype == TEXT:
        return pd.array(values, dtype=TEXT)
    if dtype == "Int32":
        return fit_integers(values, np.ones(len(values), dtype=bool), "Int32")
    return np.asarray(values, dtype=dtype)


def _conn_state(c: dict, ep: dict[str, np.ndarray]) -> np.ndarray:
    """Zeek's conn_state() from each endpoint's final TCP state (main.zeek)."""
    established = ep["o_syn"] & ep["r_synack"]
    o_pk = np.asarray(c["orig_pkts"]) > 0
    r_pk = np.asarray(c["resp_pkts"]) > 0

    def state(role: str, pk: np.ndarray) -> np.ndarray:
        return np.select(
            [ep[f"{role}_rst"], ep[f"{role}_fin"], established & pk, ep[f"{role}_syn"], ep[f"{role}_synack"], pk],
            ["RESET", "CLOSED", "ESTABLISHED", "SYN_SENT", "SYN_ACK_SENT", "PARTIAL"],
            default="INACTIVE",
        )

    os_, rs = state("o", o_pk), state("r", r_pk)
    o_inactive = np.isin(os_, ["INACTIVE", "PARTIAL"])
    r_inactive = np.isin(rs, ["INACTIVE", "PARTIAL"])
    no_payload = (np.asarray(c["orig_bytes"]) == 0) & (np.asarray(c["resp_bytes"]) == 0)
    rstos0 = per_distinct(
        pd.Series(c["history"], dtype=object), lambda h: h.str.fullmatch(r"\^?S[^HAFGIQ]*R.*").fillna(False).to_numpy()
    )
    tcp = np.select(
        [
            (rs == "RESET") & (np.isin(os_, ["SYN_SENT", "SYN_ACK_SENT"]) | ((os_ == "RESET") & no_payload)),
            (rs == "RESET") & o_inactive,
            rs == "RESET",
            (os_ == "RESET") & r_inactive & rstos0,
            (os_ == "RESET") & r_inactive,
            os_ == "RESET",
            (rs == "CLOSED") & (os_ == "CLOSED"),
            (os_ == "CLOSED") & r_inactive,
            os_ == "CLOSED",
            (rs == "CLOSED") & o_inactive,
            rs == "CLOSED",
            (os_ == "SYN_SENT") & (rs == "INACTIVE"),
            (os_ == "ESTABLISHED") & (rs == "ESTABLISHED"),
        ],
        ["REJ", "RSTRH", "RSTR", "RSTOS0", "OTH", "RSTO", "SF", "SH", "S2", "SHR", "S3", "S0", "S1"],
        default="OTH",
    )
    udp = np.select([o_pk & r_pk, o_pk, r_pk], ["SF", "S0", "SHR"], default="OTH")
    proto = np.asarray(c["proto"])
    return np.where(proto == "tcp", tcp, np.where(proto == "udp", udp, "OTH"))
