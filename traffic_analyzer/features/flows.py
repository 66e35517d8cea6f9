"""Bidirectional connections, with the fields and state machine of Zeek's conn.log.

:class:`FlowTracker` keeps one aggregated row per open connection (never the
packets), folds each packet batch into it with grouped, vectorised operations,
and hands back the connections a batch touched and the ones that ended.

References: Zeek's ``base/protocols/conn/main.zeek`` (``conn_state``) and the
conn.log documentation for ``history`` letters (upper case: originator).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..distinct import per_distinct
from ..records.flows import FLOW_COLUMNS, empty_flows
from ..records.packets import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN
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
_STATE_COLUMNS = (
    [
        "key",
        "uid",
        "proto",
        "ts",
        "last_ts",
        "a_h",
        "a_p",
        "b_h",
        "b_p",
        "orig_is_a",
        "icmp_resp_p",
        "history",
        "service",
    ]
    + [f"{s}_{c}" for s in _SIDES for c in ("pkts", "bytes", "ip_bytes")]
    + [f"{s}_{f}" for s in _SIDES for f in _FLAG_NAMES]
)


def _empty_state() -> pd.DataFrame:
    """Open-flow state with typed columns, so that concatenating batches never falls back to objects.

    The index is an explicit int64 ``Index`` of flow keys, never a ``RangeIndex``: pandas makes one of
    evenly spaced labels (any two keys are) and keeps it through concatenations, and its range
    arithmetic overflows on 64-bit hash keys, so a later selection lost rows of the state.
    """
    types = {c: "object" for c in ("uid", "proto", "a_h", "b_h", "history", "service")}
    types.update({c: "float64" for c in ("ts", "last_ts")})
    types.update({c: "int64" for c in _STATE_COLUMNS if c.endswith(("pkts", "bytes", "_p"))})
    types.update({c: "bool" for c in _STATE_COLUMNS if c.endswith(_FLAG_NAMES) or c == "orig_is_a"})
    keys = pd.Index(np.zeros(0, dtype=np.int64), name="key")
    return pd.DataFrame({c: pd.Series(dtype=types[c], index=keys) for c in _STATE_COLUMNS[1:]}, index=keys)


def _by_key(instances: pd.DataFrame) -> pd.DataFrame:
    """Instances indexed by their flow key, as an explicit int64 ``Index`` (see :func:`_empty_state`).

    Never ``set_index("key")``: pandas turns evenly spaced integers, and so any two keys, into a
    ``RangeIndex``.
    """
    keys = pd.Index(instances["key"].to_numpy(dtype=np.int64), name="key")
    return instances.drop(columns="key").set_axis(keys)


@dataclass
class FlowUpdate:
    """What one batch did: connections it touched (current state) and connections that ended."""

    active: pd.DataFrame
    finished: pd.DataFrame


class FlowTracker:
    """Bidirectional flow state across packet batches (pandas in, pandas out)."""

    def __init__(
        self, tcp_idle_timeout_s: float = TCP_IDLE_TIMEOUT_S, udp_idle_timeout_s: float = UDP_IDLE_TIMEOUT_S
    ) -> None:
        self.tcp_idle_timeout_s = tcp_idle_timeout_s
        self.udp_idle_timeout_s = udp_idle_timeout_s
        self._state = _empty_state()
        self._flows_started = 0  # salts uids, so a replayed connection gets a new one

    @property
    def open_flows(self) -> int:
        return len(self._state)

    def update(self, packets: pd.DataFrame, now: float | None = None) -> FlowUpdate:
        """Fold a packet batch into the open flows; ``now`` (epoch s) expires idle ones."""
        p = _flow_packets(packets)
        finished: list[pd.DataFrame] = []
        touched_keys: list[pd.Index] = []
        if not p.empty:
            p = self._segment(p)
            instances = _aggregate(p)
            is_continuing = (instances["seg"] == 0) & instances["key"].isin(self._state.index)
            continuing = _by_key(instances[is_continuing])
            merged = _merge(self._state.loc[continuing.index], continuing)
            state = pd.concat([self._state.drop(index=merged.index), merged])
            split = state.index.isin(instances.loc[instances["seg"] > 0, "key"])
            finished.append(state[split])
            fresh = instances[~is_continuing]
            fresh = _by_key(fresh.assign(uid=_uids(fresh, self._flows_started)))
            self._flows_started += len(fresh)
            last_seg = fresh.groupby(level=0)["seg"].transform("max")
            finished.append(fresh[fresh["seg"] < last_seg].drop(columns="seg"))
            newest = fresh[fresh["seg"] == last_seg].drop(columns="seg")
            self._state = pd.concat([state[~split], newest])[_STATE_COLUMNS[1:]]
            touched_keys.append(pd.Index(p["key"].unique()))
        if now is not None and len(self._state):
            expired = self._expired(now)
            finished.append(self._state[expired])
            self._state = self._state[~expired]
        active = self._state.loc[self._state.index.isin(touched_keys[0])] if touched_keys else self._state.iloc[:0]
        done = [f for f in finished if len(f)]
        if not done:
            return FlowUpdate(active=conn_records(active), finished=empty_flows())
        records = conn_records(pd.concat([*done, active]))  # one pass over both: its cost is mostly fixed
        ended = sum(len(f) for f in done)
        return FlowUpdate(active=records.iloc[ended:].reset_index(drop=True), finished=records.iloc[:ended])

    def flush(self) -> pd.DataFrame:
        """End every open flow (end of a file or of a capture)."""
        done, self._state = self._state, self._state.iloc[:0]
        return conn_records(done)

    def _expired(self, now: float) -> np.ndarray:
        s = self._state
        closed = s["a_rst"] | s["b_rst"] | (s["a_fin"] & s["b_fin"])
        timeout = np.where(
            s["proto"] == "tcp", np.where(closed, CLOSED_TCP_LINGER_S, self.tcp_idle_timeout_s), self.udp_idle_timeout_s
        )
        return (now - s["last_ts"].astype(float)).to_numpy() > timeout

    def _segment(self, p: pd.DataFrame) -> pd.DataFrame:
        """Number each key's packets into connection instances: 0 continues the open flow."""
        state_last = p["key"].map(self._state["last_ts"]).astype(float)
        ended = self._state[["a_rst", "b_rst", "a_fin", "b_fin"]].astype(bool).any(axis=1)
        state_closed = p["key"].map(ended).astype("boolean")
        prev_ts = p.groupby("key", sort=False)["ts"].shift().fillna(state_last)
        timeout = np.where(p["proto"] == "tcp", self.tcp_idle_timeout_s, self.udp_idle_timeout_s)
        # A bare SYN after the connection's last RST/FIN (not after a retransmitted SYN) opens a new one.
        event = pd.Series(np.select([p["rst"] | p["fin"], p["bare_syn"]], [1.0, 2.0], default=np.nan), index=p.index)
        last_event = event.groupby(p["key"], sort=False).ffill().groupby(p["key"], sort=False).shift()
        closed_before = (last_event == 1).to_numpy() | (last_event.isna() & state_closed.fillna(False)).to_numpy(
            dtype=bool
        )
        new = ((p["ts"] - prev_ts) > timeout) | (p["bare_syn"] & closed_before & prev_ts.notna())
        p["seg"] = new.astype(int).groupby(p["key"], sort=False).cumsum()
        return p


def _flow_packets(packets: pd.DataFrame) -> pd.DataFrame:
    """The IP packets that make flows, with their canonical key, side and history letters."""
    # Both addresses: a missing one would factorize to code -1 and take another address's place in the key.
    keep = (
        packets["transport"].isin(["tcp", "udp", "icmp", "icmpv6"])
        & packets["src_ip"].notna()
        & packets["dst_ip"].notna()
    )
    p = packets.loc[
        keep,
        [
            "ts",
            "src_ip",
            "dst_ip",
            "src_port",
            "dst_port",
            "transport",
            "tcp_flags",
            "payload_len",
            "ip_len",
            "icmp_type",
            "icmp_code",
            "protocol",
        ],
    ].copy()
    if not p["ts"].is_monotonic_increasing:
        p = p.sort_values("ts", kind="stable")
    is_icmp = p["transport"].isin(["icmp", "icmpv6"])
    p["proto"] = p["transport"].where(~is_icmp, "icmp")
    icmp_type = p["icmp_type"].fillna(-1).astype(int)
    # ICMP "ports": the request type and its reply type, or the type and code.
    type_row = icmp_type.to_numpy()
    type_row = np.where((type_row >= 0) & (type_row < 256), type_row, 256)
    req_type = _ICMP_REQUEST_OF[type_row]
    req_type = np.where(type_row == 256, icmp_type.to_numpy(), req_type)
    reply = _ICMP_REPLY_OF[np.where((req_type >= 0) & (req_type < 256), req_type, 256)]
    icmp_lo = pd.Series(req_type, index=p.index)
    icmp_hi = pd.Series(np.where(reply >= 0, reply, p["icmp_code"].fillna(0).astype(int).to_numpy()), index=p.index)
    sport = p["src_port"].astype("Int64").where(~is_icmp, icmp_lo).fillna(0).astype(int)
    dport = p["dst_port"].astype("Int64").where(~is_icmp, icmp_hi).fillna(0).astype(int)
    # Addresses as codes in sorted order: comparing codes is comparing the strings, at integer cost.
    n = len(p)
    codes, addresses = pd.factorize(
        np.concatenate([p["src_ip"].to_numpy(dtype=object), p["dst_ip"].to_numpy(dtype=object)]), sort=True
    )
    src, dst = codes[:n], codes[n:]
    sport_np, dport_np = sport.to_numpy(dtype=np.int64), dport.to_numpy(dtype=np.int64)
    # For ICMP the ports are the same in both directions, so order by address only.
    src_first = (src < dst) | ((src == dst) & (sport_np <= dport_np))
    keep_ports = src_first | is_icmp.to_numpy(dtype=bool)
    a_code, b_code = np.where(src_first, src, dst), np.where(src_first, dst, src)
    addresses = np.asarray(addresses, dtype=object)
    p["is_a"] = src_first
    p["a_h"] = addresses[a_code]
    p["b_h"] = addresses[b_code]
    p["a_p"] = np.where(keep_ports, sport_np, dport_np)
    p["b_p"] = np.where(keep_ports, dport_np, sport_np)
    p["key"] = _flow_keys(p["proto"].to_numpy(dtype=object), addresses, a_code, p["a_p"], b_code, p["b_p"])

    flags = p["tcp_flags"].fillna(0).astype(int).to_numpy()
    tcp = (p["proto"] == "tcp").to_numpy()
    syn = tcp & (flags & TCP_SYN > 0)
    ack = flags & TCP_ACK > 0
    p["bare_syn"] = syn & ~ack
    p["synack"] = syn & ack
    p["fin"] = tcp & (flags & TCP_FIN > 0)
    p["rst"] = tcp & (flags & TCP_RST > 0)
    p["payload"] = p["payload_len"].fillna(0).astype(int)
    p["ip_bytes"] = p["ip_len"].fillna(0).astype(int)
    p["icmp_request"] = is_icmp & icmp_type.isin(_ICMP_REQUESTS)
    pure_ack = tcp & ack & ~syn & ~p["fin"].to_numpy() & ~p["rst"].to_numpy() & (p["payload"].to_numpy() == 0)
    # History letters in "a" case (upper) for now; flipped to orig/resp case at the end.
    flag_letter = np.select(
        [p["bare_syn"], p["synack"], p["rst"], p["fin"], pure_ack], ["S", "H", "R", "F", "A"], default=""
    )
    data_letter = np.where((p["payload"].to_numpy() > 0) & (tcp | (p["proto"] == "udp").to_numpy()), "D", "")
    letters = pd.Series(np.char.add(data_letter.astype(str), flag_letter.astype(str)), index=p.index)
    p["letters"] = letters.where(p["is_a"], letters.str.lower())
    svc = http_named(p["protocol"].fillna("").astype(str), tcp)
    p["svc"] = svc.where(~svc.isin(_NOT_A_SERVICE) & (svc != ""))
    return p


def _flow_keys(
    proto: np.ndarray, addresses: np.ndarray, a_code: np.ndarray, a_p: pd.Series, b_code: np.ndarray, b_p: pd.Series
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
            "a_p": a_p.to_numpy(dtype=np.int64),
            "b_h": address_hash[b_code],
            "b_p": b_p.to_numpy(dtype=np.int64),
        }
    )
    return pd.util.hash_pandas_object(parts, index=False).to_numpy().view(np.int64)


def _aggregate(p: pd.DataFrame) -> pd.DataFrame:
    """One row per (key, seg) connection instance of this batch, in order of first packet.

    Plain numpy reductions over the packets sorted by instance: a pandas group-by per column
    costs more than the whole reduction on the few hundred packets of a typical window.
    """
    codes = p.groupby(["key", "seg"], sort=False).ngroup().to_numpy()  # numbered in first-seen order
    n = int(codes.max()) + 1
    first = np.unique(codes, return_index=True)[1]
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

    is_a = p["is_a"].to_numpy(dtype=bool)
    payload, ip_bytes = p["payload"].to_numpy(dtype=np.int64), p["ip_bytes"].to_numpy(dtype=np.int64)
    flags = {
        f: p[c].to_numpy(dtype=bool) for f, c in zip(_FLAG_NAMES, ("bare_syn", "synack", "fin", "rst"), strict=True)
    }
    ts = p["ts"].to_numpy(dtype=np.float64)
    cols: dict[str, object] = {
        "key": p["key"].to_numpy()[first],
        "seg": p["seg"].to_numpy()[first],
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
        cols[c] = p[c].to_numpy()[first]
    # Orientation: the first SYN's sender, else the first SYN-ACK's receiver, else the first ICMP
    # request's sender, else the sender of the first packet is the originator.
    orig_is_a = is_a[first].copy()
    for mask, sender_is_orig in (
        (p["icmp_request"].to_numpy(dtype=bool), True),
        (flags["synack"], False),
        (flags["syn"], True),
    ):
        clue = first_where(mask, is_a.astype(np.int64))
        orig_is_a = np.where(clue >= 0, (clue == 1) == sender_is_orig, orig_is_a)
    cols["orig_is_a"] = orig_is_a
    cols["icmp_resp_p"] = cols["b_p"]
    svc = p["svc"]
    known = svc.notna().to_numpy()
    at = first_where(known, np.arange(len(p)))
    cols["service"] = _service(pd.Series(np.where(at >= 0, svc.to_numpy(dtype=object)[np.maximum(at, 0)], None)))
    cols["history"] = _history(p["letters"].to_numpy(dtype=str), codes, n)
    return pd.DataFrame(cols)


def _history(letters: np.ndarray, codes: np.ndarray, n: int) -> np.ndarray:
    """Per instance: its packets' letters in first-seen order, each at most once."""
    chars = np.ascontiguousarray(letters, dtype="<U2").view("<U1")  # a packet has at most two letters
    slot = np.flatnonzero(chars != "")
    group, char = np.repeat(codes, 2)[slot], chars[slot]
    out = np.full(n, "", dtype=object)
    if len(slot) == 0:
        return out
    kept = np.sort(np.unique(group * 0x110000 + char.view(np.uint32), return_index=True)[1])  # first of each
    group, char = group[kept], char[kept].astype(object)
    order = np.argsort(group, kind="stable")
    group, char = group[order], char[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    out[group[starts]] = np.add.reduceat(char, starts)  # string concatenation per instance, in packet order
    return out


def _dedupe_letters(history: str) -> str:
    return "".join(dict.fromkeys(history))


def _service(svc: pd.Series) -> pd.Series:
    return pd.Series(per_distinct(svc, lambda v: v.map(lambda s: s if pd.isna(s) else zeek_service(s))))


def _merge(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Fold this batch's part of continuing connections into their open state."""
    if old.empty:
        return old
    new = new.loc[old.index]
    out = old.copy()
    for c in [c for c in _STATE_COLUMNS if c.endswith(("pkts", "bytes"))]:
        out[c] = old[c].astype(int) + new[c].astype(int)
    for c in [f"{s}_{f}" for s in _SIDES for f in _FLAG_NAMES]:
        out[c] = old[c].astype(bool) | new[c].astype(bool)
    out["last_ts"] = np.maximum(old["last_ts"].astype(float), new["last_ts"].astype(float))
    out["history"] = (old["history"].fillna("") + new["history"].fillna("")).map(_dedupe_letters)
    out["service"] = old["service"].where(old["service"].notna(), new["service"])
    return out


_UID_ALPHABET = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)


def _uids(instances: pd.DataFrame, first_number: int) -> np.ndarray:
    """Zeek-style connection ids ("C" + 17 base-62 digits of a 96-bit hash), the same for the same
    capture read the same way. Vectorised: two keyed row hashes instead of a digest per flow."""
    if instances.empty:
        return np.array([], dtype=object)
    rows = pd.DataFrame(
        {
            "key": instances["key"].to_numpy(),
            "ts": instances["ts"].to_numpy(dtype=np.float64),
            "number": np.arange(first_number, first_number + len(instances), dtype=np.int64),
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


def conn_records(state: pd.DataFrame) -> pd.DataFrame:
    """Flow state rows -> conn.log records, oriented originator -> responder."""
    if state.empty:
        return empty_flows()
    s = state
    a = s["orig_is_a"].astype(bool).to_numpy()

    def pick(a_col: str, b_col: str) -> np.ndarray:
        return np.where(a, s[a_col].to_numpy(), s[b_col].to_numpy())

    # Plain arrays, one DataFrame at the end: column-by-column assignment is most of a small window's cost.
    cols: dict[str, object] = {"ts": s["ts"].to_numpy(dtype=np.float64), "uid": s["uid"].to_numpy(dtype=object)}
    cols["orig_h"], cols["resp_h"] = pick("a_h", "b_h"), pick("b_h", "a_h")
    is_icmp = (s["proto"] == "icmp").to_numpy(dtype=bool)
    cols["orig_p"] = np.where(is_icmp, s["a_p"].to_numpy(), pick("a_p", "b_p"))
    cols["resp_p"] = np.where(is_icmp, s["icmp_resp_p"].to_numpy(), pick("b_p", "a_p"))
    cols["proto"] = s["proto"].to_numpy(dtype=object)
    cols["service"] = s["service"].to_numpy(dtype=object)
    last_ts = s["last_ts"].to_numpy(dtype=np.float64)
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
    history = pd.Series(s["history"].fillna("").astype(str).to_numpy(dtype=object), dtype=object)
    cols["history"] = np.where(a, history.to_numpy(), per_distinct(history, lambda h: h.str.swapcase()))
    cols["conn_state"] = _conn_state(cols, ep)
    cols["last_ts"] = last_ts
    return pd.DataFrame(cols)[list(FLOW_COLUMNS)].astype(FLOW_COLUMNS)


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
