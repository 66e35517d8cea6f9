"""The flow record: Zeek conn.log's columns, as the flow table every later stage reads."""

from __future__ import annotations

import pandas as pd

from .packets import TEXT

FLOW_COLUMNS: dict[str, object] = {
    "ts": "float64",  # first packet, epoch seconds
    "uid": TEXT,
    "orig_h": TEXT,
    "orig_p": "Int32",  # for ICMP: the type, as Zeek does
    "resp_h": TEXT,
    "resp_p": "Int32",  # for ICMP: the counterpart type or the code
    "proto": TEXT,  # tcp, udp, icmp
    "service": TEXT,
    "duration": "float64",
    "orig_bytes": "int64",  # payload bytes from the originator
    "resp_bytes": "int64",
    "conn_state": TEXT,
    "history": TEXT,
    "orig_pkts": "int64",
    "orig_ip_bytes": "int64",
    "resp_pkts": "int64",
    "resp_ip_bytes": "int64",
    "last_ts": "float64",
}


def empty_flows() -> pd.DataFrame:
    """An empty flow table with the conn.log columns."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in FLOW_COLUMNS.items()})
