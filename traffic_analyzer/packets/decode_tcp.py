"""TCP sequence analysis, vectorised: which segments tshark hands to an application dissector.

tshark's ``tcp_analyze_sequence_number`` (packet-tcp.c) flags each segment; with the default
``tcp.no_subdissector_on_error`` a retransmitted or out-of-order segment is not dissected again
(its highest protocol stays TCP), a keep-alive's byte is shown as data, and a segment whose data
the other side already acknowledged (a spurious retransmission) is dropped by the reassembler.

The same rules run here over whole batches with numpy: segments are grouped by connection and
direction, and the "next expected sequence number" and "last acknowledgement seen from the other
side" that tshark keeps per direction become exclusive running maxima and forward fills. A SYN
with a new initial sequence number starts a new connection on the same ports, as in tshark.
State per connection carries over from batch to batch. Fast retransmissions (which tshark does
dissect) are treated as retransmissions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .decode_net import IPPROTO_TCP
from .decode_transport import Transport

TH_FIN, TH_SYN, TH_RST, TH_ACK = 0x01, 0x02, 0x04, 0x10
_U64 = np.uint64
_MASK32 = (1 << 32) - 1
OUT_OF_ORDER_S = 0.003  # tshark's out-of-order threshold when the first RTT is not known
# Connections idle this long are forgotten, so state stays bounded on long captures (tshark keeps them
# all; only a keep-alive after an hour of silence would then be judged differently).
STATE_IDLE_S = 3600.0


@dataclass
class TcpVerdict:
    """Per transport row: what tshark does with the payload, and the stream it belongs to."""

    dissect: np.ndarray  # the payload reaches the application dissectors
    keepalive: np.ndarray  # a keep-alive: its byte is shown as data
    out_of_order: np.ndarray  # not dissected, but its bytes still fill a pending reassembly
    direction: np.ndarray  # uint64 key of (source, source port, destination, destination port)
    connection: np.ndarray  # int64 id of the connection instance (ports reused after a new SYN differ)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-spread 64-bit hash of 64-bit values."""
    with np.errstate(over="ignore"):
        x = x.astype(_U64, copy=True)
        x ^= x >> _U64(30)
        x *= _U64(0xBF58476D1CE4E5B9)
        x ^= x >> _U64(27)
        x *= _U64(0x94D049BB133111EB)
        x ^= x >> _U64(31)
    return x


def endpoint_keys(transport: Transport) -> tuple[np.ndarray, np.ndarray]:
    """64-bit keys of each row's source and destination endpoint (address and port)."""
    with np.errstate(over="ignore"):
        src = _mix(_mix(transport.src_key[:, 0] ^ _U64(0x9E3779B97F4A7C15)) ^ transport.src_key[:, 1])
        dst = _mix(_mix(transport.dst_key[:, 0] ^ _U64(0x9E3779B97F4A7C15)) ^ transport.dst_key[:, 1])
        src = _mix(src ^ transport.sport.astype(_U64))
        dst = _mix(dst ^ transport.dport.astype(_U64))
    return src, dst


def _int32(x: np.ndarray) -> np.ndarray:
    """Sequence-number difference as a signed 32-bit value (tshark's GT_SEQ/LT_SEQ arithmetic)."""
    return ((x + (1 << 31)) & _MASK32) - (1 << 31)


def _group_starts(group: np.ndarray) -> np.ndarray:
    """Index of the first row of each row's group (rows sorted by group)."""
    first = np.r_[True, group[1:] != group[:-1]]
    return np.maximum.accumulate(np.where(first, np.arange(len(group)), 0))


def _last_before(values: np.ndarray, valid: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row: the latest earlier ``values`` of a valid row in the same group, and whether one exists."""
    n = len(values)
    pos = np.where(valid, np.arange(n), -1)
    last = np.maximum.accumulate(np.r_[-1, pos[:-1]]) if n else pos
    start = _group_starts(group)
    exists = last >= start
    return np.where(exists, values[np.maximum(last, 0)], 0), exists


def _running_max_before(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Exclusive running maximum within groups (rows sorted by group); int64 values >= 0."""
    n = len(values)
    if n == 0:
        return values
    shift = np.int64(1) << np.int64(40)
    start = _group_starts(group)
    gid = np.cumsum(np.r_[True, group[1:] != group[:-1]])
    lifted = values + gid * shift
    prev = np.maximum.accumulate(np.r_[np.int64(-1), lifted[:-1]])
    return np.where(np.arange(n) > start, prev - gid * shift, -1)


@dataclass(frozen=True)
class _BatchEnd:
    """What a batch leaves for the next one to carry on from: per TCP row, sorted by connection then arrival
    ("connection order"), or regrouped by (instance, direction) ("group order", by ``gorder``)."""

    unique_conn: np.ndarray  # the batch's connections (their keys), sorted
    conn_no: np.ndarray  # each row's connection, as an index into unique_conn (connection order)
    epoch: np.ndarray  # each row's instance of its connection in the batch: 0 carries on the stored one
    gorder: np.ndarray  # the rows in (instance, direction) group order
    gg: np.ndarray  # each row's (instance, direction) group, in group order
    is_a_g: np.ndarray  # sent by the connection's side a, in group order
    ref: np.ndarray  # the direction's reference sequence number, in group order
    nxt: np.ndarray  # the highest sequence reached after the row (unwrapped), in group order
    front: np.ndarray  # tshark's frontier after the row, in group order
    seq: np.ndarray  # sequence number (connection order)
    ack: np.ndarray  # acknowledgement number (connection order)
    is_a: np.ndarray  # sent by side a (connection order)
    bare_syn: np.ndarray  # a SYN without ACK (connection order)
    conn_id: np.ndarray  # the connection instance id handed to the stream trackers (connection order)
    ts: np.ndarray  # capture time (connection order)


class _State:
    """Per-connection analysis state kept between batches, as sorted numpy columns."""

    COLUMNS = (
        "epoch",
        "seen_a",
        "seen_b",
        "ref_a",
        "ref_b",
        "next_a",
        "next_b",
        "front_a",
        "front_b",
        "ack_a",
        "ack_b",
        "syn_a",
        "syn_b",
        "rtt_ns",
        "last_s",
    )

    def __init__(self) -> None:
        self.keys = np.zeros(0, dtype=_U64)
        self.cols = {c: np.zeros(0, dtype=np.int64) for c in self.COLUMNS}

    def fetch(self, keys: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        pos = np.searchsorted(self.keys, keys)
        pos = np.minimum(pos, max(len(self.keys) - 1, 0))
        found = (self.keys[pos] == keys) if len(self.keys) else np.zeros(len(keys), dtype=bool)
        return found, {
            c: np.where(found, v[pos], 0) if len(v) else np.zeros(len(keys), np.int64) for c, v in self.cols.items()
        }

    def store(self, keys: np.ndarray, cols: dict[str, np.ndarray], now_s: float) -> None:
        """Replace the state of ``keys``; forget connections idle for longer than STATE_IDLE_S."""
        keep = ~np.isin(self.keys, keys) & (self.cols["last_s"] >= now_s - STATE_IDLE_S)
        merged = np.concatenate([self.keys[keep], keys])
        order = np.argsort(merged, kind="stable")
        self.keys = merged[order]
        self.cols = {c: np.concatenate([self.cols[c][keep], cols[c]])[order] for c in self.COLUMNS}


class TcpAnalysis:
    """tshark's per-direction TCP sequence analysis, batch by batch."""

    def __init__(self) -> None:
        self._state = _State()
        self._next_connection = 0

    def analyse(self, transport: Transport, ts: np.ndarray, in_error: bool = False) -> TcpVerdict:
        n = len(transport.rows)
        src, dst = endpoint_keys(transport)
        tcp = transport.proto == IPPROTO_TCP
        verdict = TcpVerdict(
            dissect=np.ones(n, dtype=bool),
            keepalive=np.zeros(n, dtype=bool),
            out_of_order=np.zeros(n, dtype=bool),
            direction=_mix(src ^ (dst * _U64(3))),
            connection=np.full(n, -1, dtype=np.int64),
        )
        idx = np.flatnonzero(tcp)
        if len(idx) == 0 or in_error:
            return verdict
        self._analyse(transport, ts[transport.rows[idx]], idx, src[idx], dst[idx], verdict)
        return verdict

    def _analyse(self, t: Transport, ts, idx: np.ndarray, src: np.ndarray, dst: np.ndarray, verdict: TcpVerdict):
        a_side = src < dst  # the connection's "a" endpoint is the smaller key
        lo, hi = np.minimum(src, dst), np.maximum(src, dst)
        conn_key = _mix(lo ^ _mix(hi))
        order = np.lexsort((idx, conn_key))
        conn = conn_key[order]
        is_a = a_side[order]
        seq = t.seq[idx][order].astype(np.int64)
        ack = t.ack[idx][order].astype(np.int64)
        flags = t.flags[idx][order]
        seglen = t.payload_rep[idx][order].astype(np.int64)
        syn = (flags & TH_SYN) != 0
        fin = (flags & TH_FIN) != 0
        bare_syn = syn & ((flags & TH_ACK) == 0)
        m = len(order)

        unique_conn, first_pos = np.unique(conn, return_index=True)
        found, state = self._state.fetch(unique_conn)
        conn_no = np.cumsum(np.r_[True, conn[1:] != conn[:-1]]) - 1  # index into unique_conn
        st = {c: v[conn_no] for c, v in state.items()}
        carried = found[conn_no]

        # A new initial sequence number on a bare SYN opens a new connection instance (REUSED_PORTS).
        dir_group = conn_no * 2 + is_a
        dir_order = np.lexsort((np.arange(m), dir_group))
        g = dir_group[dir_order]
        syn_d, seq_d = bare_syn[dir_order], seq[dir_order]
        prev_syn, has_prev_syn = _last_before(seq_d, syn_d, g)
        seen_in_batch = np.arange(m) > _group_starts(g)
        carried_d = carried[dir_order]
        carried_syn = np.where(is_a, st["syn_a"], st["syn_b"])[dir_order] - 1  # stored +1
        carried_seen = np.where(is_a, st["seen_a"], st["seen_b"])[dir_order] > 0
        has_prev_syn_all = has_prev_syn | (carried_d & (carried_syn >= 0))
        prev_syn_all = np.where(has_prev_syn, prev_syn, carried_syn)
        seen = seen_in_batch | (carried_d & carried_seen)
        new_conn_d = syn_d & np.where(has_prev_syn_all, prev_syn_all != seq_d, seen)
        new_conn = np.empty(m, dtype=bool)
        new_conn[dir_order] = new_conn_d
        conn_start = _group_starts(conn_no)
        epoch_in_batch = np.cumsum(new_conn) - np.cumsum(new_conn)[conn_start] + new_conn[conn_start]
        fresh = epoch_in_batch > 0  # rows after a new SYN do not use the carried state
        use_state = carried & ~fresh

        # Per direction of each connection instance.
        grp = (conn_no * 2 + is_a) * (m + 1) + epoch_in_batch
        gorder = np.lexsort((np.arange(m), grp))
        gg = grp[gorder]
        seq_g, seglen_g = seq[gorder], seglen[gorder]
        is_a_g, use_g = is_a[gorder], use_state[gorder]
        synfin_g = (syn | fin)[gorder].astype(np.int64)
        ref_carried = np.where(is_a_g, st["ref_a"][gorder], st["ref_b"][gorder])
        next_carried = np.where(is_a_g, st["next_a"][gorder], st["next_b"][gorder]) - 1  # stored +1
        first_seq = seq_g[_group_starts(gg)]
        ref = np.where(use_g & (next_carried >= 0), ref_carried, first_seq)
        rel = _int32(seq_g - ref) + (1 << 33)  # unwrapped, kept positive for the running max
        upd = rel + seglen_g + synfin_g
        # A retransmitted SYN (same initial sequence) makes tshark restart the expected sequence from it.
        resyn = np.empty(m, dtype=bool)
        resyn[dir_order] = syn_d & has_prev_syn_all & (prev_syn_all == seq_d)
        resyn_g = resyn[gorder]
        resets = np.cumsum(resyn_g) - np.cumsum(resyn_g)[_group_starts(gg)] + resyn_g[_group_starts(gg)]
        sub = gg * (m + 1) + resets
        nxt = _running_max_before(upd, sub)
        # ... from what tshark calls maxseqtobeacked: roughly the highest sequence reached before the SYN,
        # leaving out resets (whose sequence numbers can be anything).
        rst_g = (flags[gorder] & TH_RST) != 0
        front_upd = np.where(rst_g, -1, upd)
        frontier = _running_max_before(front_upd, gg)
        front_carried = np.where(is_a_g, st["front_a"][gorder], st["front_b"][gorder]) - 1  # stored +1
        frontier = np.maximum(frontier, np.where(use_g, front_carried, -1))
        restart = np.maximum(np.where(resyn_g, frontier, -1), np.where(resyn_g, upd, -1))
        restart = restart[_group_starts(sub)]
        nxt = np.where(resets > 0, np.maximum(nxt, restart), nxt)
        use_g = use_g & (resets == 0)
        # When the highest sequence so far was set (tshark's nextseqtime), for the out-of-order test.
        ts_g = ts[order][gorder]
        record = (nxt < 0) | (upd > nxt)
        setter_ts, has_setter = _last_before(ts_g, record, sub)
        setter_ts = np.where(has_setter, setter_ts, -np.inf)
        nxt = np.where(nxt < 0, np.where(use_g, next_carried, -1), np.maximum(nxt, np.where(use_g, next_carried, -1)))
        has_next = nxt >= 0
        next_abs = (ref + (nxt - (1 << 33))) & _MASK32

        # The last acknowledgement from the other direction of the same connection instance.
        cgrp = conn_no * (m + 1) + epoch_in_batch
        corder = np.lexsort((np.arange(m), cgrp))
        cg = cgrp[corder]
        ack_c, a_c = ack[corder], is_a[corder]
        last_from_a, has_a = _last_before(ack_c, a_c, cg)
        last_from_b, has_b = _last_before(ack_c, ~a_c, cg)
        other_ack = np.where(a_c, last_from_b, last_from_a)
        has_other = np.where(a_c, has_b, has_a)
        use_c = use_state[corder]
        carried_other = np.where(a_c, st["ack_b"][corder], st["ack_a"][corder])
        other_ack = np.where(has_other, other_ack, np.where(use_c, carried_other, 0))
        lastack = np.empty(m, dtype=np.int64)
        lastack[corder] = other_ack
        lastack_g = lastack[gorder]

        # tcp_analyze_sequence_number()'s verdicts, in its order.
        flags_g = flags[gorder]
        plain = (flags_g & (TH_SYN | TH_FIN | TH_RST)) == 0
        keepalive = (seglen_g <= 1) & has_next & (seq_g == ((next_abs - 1) & _MASK32)) & plain
        carries = (seglen_g > 0) | (synfin_g > 0)
        behind = has_next & (_int32(seq_g - next_abs) < 0)
        behind &= ~((seglen_g > 1) & (seq_g == ((next_abs - 1) & _MASK32)))
        spurious = (seglen_g > 0) & (lastack_g != 0) & (_int32(seq_g + seglen_g - lastack_g) <= 0)
        retransmission = carries & ~keepalive & ~spurious & behind
        spurious &= carries & ~keepalive
        # Out of order rather than retransmitted: soon after the highest segment (tshark's 3 ms default
        # threshold) and not ending where the next expected one would start.
        threshold = self._rtt(ts[order], cgrp, corder, bare_syn, flags, use_state, st)[gorder]
        ooo = retransmission & (ts_g - setter_ts < threshold) & (next_abs != ((seq_g + seglen_g + synfin_g) & _MASK32))

        whole_g = t.whole[idx][order][gorder]
        dissect_g = ~retransmission & ~(spurious & whole_g) & ~keepalive
        rows_g = idx[order][gorder]
        verdict.dissect[rows_g] = dissect_g
        verdict.keepalive[rows_g] = keepalive
        verdict.out_of_order[rows_g] = ooo & whole_g

        # Connection instance ids for the application stream trackers.
        conn_id = np.empty(m, dtype=np.int64)
        base = self._next_connection
        inst = conn_no * (m + 1) + epoch_in_batch
        uniq_inst, inv = np.unique(inst, return_inverse=True)
        conn_id[:] = base + inv
        carried_id = np.where(use_state, st["epoch"], -1)
        conn_id = np.where(use_state & (carried_id > 0), carried_id - 1, conn_id)
        self._next_connection = base + len(uniq_inst)
        verdict.connection[idx[order]] = conn_id
        end = _BatchEnd(
            unique_conn=unique_conn,
            conn_no=conn_no,
            epoch=epoch_in_batch,
            gorder=gorder,
            gg=gg,
            is_a_g=is_a_g,
            ref=ref,
            nxt=np.maximum(nxt, upd),
            front=np.maximum(frontier, front_upd),
            seq=seq,
            ack=ack,
            is_a=is_a,
            bare_syn=bare_syn,
            conn_id=conn_id,
            ts=ts[order],
        )
        self._save(end, st)

    def _rtt(self, ts, cgrp, corder, bare_syn, flags, use_state, st) -> np.ndarray:
        """Out-of-order threshold per row: the connection's first RTT once known (SYN to first ACK), else 3 ms."""
        m = len(ts)
        cg = cgrp[corder]
        ts_c = ts[corder]
        syn_c = bare_syn[corder]
        last_syn, has_syn = _last_before(ts_c, syn_c, cg)
        ack_only = (flags[corder] & (TH_SYN | TH_ACK)) == TH_ACK
        first_ack = ack_only & has_syn
        # the first such ACK of each connection instance defines the RTT, for the rows after it
        pos = np.where(first_ack, np.arange(m), m)
        start = _group_starts(cg)
        gid = np.cumsum(np.r_[True, cg[1:] != cg[:-1]]) - 1
        firsts = np.full(gid[-1] + 1 if m else 0, m, dtype=np.int64)
        np.minimum.at(firsts, gid, pos)
        first_pos = firsts[gid]
        known = (np.arange(m) > first_pos) & (first_pos < m)
        rtt = np.where(known, ts_c[np.minimum(first_pos, m - 1)] - last_syn[np.minimum(first_pos, m - 1)], 0.0)
        carried = np.where(use_state[corder], st["rtt_ns"][corder], 0) / 1e9
        rtt = np.where(rtt > 0, rtt, carried)
        self._last_rtt = (cg, rtt, start)
        out = np.empty(m)
        out[corder] = np.where(rtt > 0, rtt, OUT_OF_ORDER_S)
        return out

    def _save(self, end: _BatchEnd, st: dict[str, np.ndarray]) -> None:
        """Store each connection's state after its last row of the batch (``st``: the state carried in)."""
        unique_conn, conn_no, epoch, gorder, gg = end.unique_conn, end.conn_no, end.epoch, end.gorder, end.gg
        is_a_g, ref, nxt, front = end.is_a_g, end.ref, end.nxt, end.front
        seq, ack, is_a, bare_syn, conn_id, ts = end.seq, end.ack, end.is_a, end.bare_syn, end.conn_id, end.ts
        k = len(unique_conn)
        last_epoch = np.zeros(k, dtype=np.int64)
        np.maximum.at(last_epoch, conn_no, epoch)
        cols = {c: np.zeros(k, dtype=np.int64) for c in _State.COLUMNS}
        keep_old = np.ones(k, dtype=bool)
        np.logical_and.at(keep_old, conn_no, epoch == 0)
        for c in _State.COLUMNS:
            first = np.zeros(k, dtype=np.int64)
            first[conn_no] = st[c]
            cols[c] = np.where(keep_old, first, 0)
        # Rows of the last connection instance, per direction: the final values.
        final = epoch == last_epoch[conn_no]
        conn_g = conn_no[gorder]
        final_g = final[gorder]
        last_in_group = np.r_[gg[1:] != gg[:-1], True] & final_g
        nxt_after = nxt  # next expected sequence after each row (unwrapped, relative to ref)
        for side, mask in (("a", is_a_g), ("b", ~is_a_g)):
            sel = last_in_group & mask
            cg = conn_g[sel]
            cols[f"seen_{side}"][cg] = 1
            cols[f"ref_{side}"][cg] = ref[sel]
        for side, mask in (("a", is_a_g), ("b", ~is_a_g)):
            sel = final_g & mask
            best = np.full(k, -1, dtype=np.int64)
            np.maximum.at(best, conn_g[sel], nxt_after[sel])
            cols[f"next_{side}"] = np.where(best >= 0, best + 1, cols[f"next_{side}"])
            best = np.full(k, -1, dtype=np.int64)
            np.maximum.at(best, conn_g[sel], front[sel])
            cols[f"front_{side}"] = np.where(best >= 0, best + 1, cols[f"front_{side}"])
        for side, mask in (("a", is_a), ("b", ~is_a)):
            rows = np.flatnonzero(final & mask)
            cols[f"ack_{side}"][conn_no[rows]] = ack[rows]
            syn_rows = np.flatnonzero(final & mask & bare_syn)
            cols[f"syn_{side}"][conn_no[syn_rows]] = seq[syn_rows] + 1
        cols["epoch"][conn_no[final]] = conn_id[final] + 1
        cg, rtt, _ = self._last_rtt
        rtt_rows = np.zeros(len(rtt))
        rtt_rows[:] = rtt
        corder_conn = cg // (len(rtt) + 1)
        best = np.zeros(k)
        np.maximum.at(best, corder_conn, rtt_rows)
        cols["rtt_ns"] = np.where(best > 0, (best * 1e9).astype(np.int64), cols["rtt_ns"])
        last = np.zeros(k)
        np.maximum.at(last, conn_no, ts)
        cols["last_s"] = last.astype(np.int64)
        self._state.store(unique_conn, cols, float(ts.max()))
