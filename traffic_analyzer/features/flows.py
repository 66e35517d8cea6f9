"""Bidirectional connections, with the fields and state machine of Zeek's conn.log.

:class:`FlowTracker` keeps one aggregated row per open connection (never the
packets), folds each packet batch into it with grouped, vectorised operations,
and hands back the connections a batch touched and the ones that ended, as conn.log
records (:mod:`.conn_log`). Each packet's key and letters come from :mod:`.flow_packets`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..records.flows import empty_flows
from .conn_log import conn_records
from .flow_packets import LETTER_FLAGS, Columns, flow_packets

# Zeek's default inactivity timeouts; a closed TCP connection ends sooner.
TCP_IDLE_TIMEOUT_S = 300.0
UDP_IDLE_TIMEOUT_S = 60.0
ICMP_IDLE_TIMEOUT_S = 60.0
CLOSED_TCP_LINGER_S = 5.0  # Zeek's tcp_close_delay


_SIDES = ("a", "b")
_FLAG_NAMES = ("syn", "synack", "fin", "rst")
_COUNTERS = [f"{s}_{c}" for s in _SIDES for c in ("pkts", "bytes", "ip_bytes")]
_FLAGS = [f"{s}_{f}" for s in _SIDES for f in _FLAG_NAMES]


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
        p = flow_packets(packets)
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


_UPPER = np.array([0] + [ord(c) for c in LETTER_FLAGS[1:]], dtype=np.uint32)
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
