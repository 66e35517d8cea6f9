"""Flow state -> Zeek conn.log records: orientation, counts, history case and conn_state.

References: Zeek's ``base/protocols/conn/main.zeek`` (``conn_state``) and the conn.log documentation
for ``history`` letters (upper case: originator).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..distinct import per_distinct
from ..records.flows import FLOW_COLUMNS, empty_flows
from ..records.packets import TEXT, fit_integers
from .flow_packets import Columns


def conn_records(s: Columns) -> pd.DataFrame:
    """Flow state rows -> conn.log records, oriented originator -> responder."""
    if len(s["key"]) == 0:
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
