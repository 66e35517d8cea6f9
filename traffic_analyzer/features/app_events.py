"""A window's decoded DNS, HTTP and TLS messages, each given the uid of the flow it belongs to.

Only packets that carry a decoded message are looked at (a few per connection), and each is
matched to its flow by the connection's canonical 5-tuple and time: the latest flow of that
tuple that had started by the packet's time (a tuple can be reused by a later connection).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..records.app_events import APP_EVENT_COLUMNS, empty_app_events

_MESSAGE_COLUMNS = [c for c in APP_EVENT_COLUMNS if c.startswith(("dns_", "http_", "tls_"))]


def _tuple_key(proto: pd.Series, h1: pd.Series, p1: pd.Series, h2: pd.Series, p2: pd.Series) -> np.ndarray:
    """The same text for both directions of a connection: proto and the two endpoints in sorted order.

    Plain Python over object arrays: these are a few messages and their flows a window, where
    pandas' string methods cost more in overhead than the work.
    """
    values = (s.to_numpy(dtype=object) for s in (proto, h1, p1, h2, p2))
    return np.array(
        [f"{t}|{min(a, b)}|{max(a, b)}" for t, *ends in zip(*values, strict=True) for a, b in [_ends(*ends)]],
        dtype=object,
    )


def _ends(h1: str, p1: int, h2: str, p2: int) -> tuple[str, str]:
    return f"{h1}/{p1}", f"{h2}/{p2}"


def app_events(packets: pd.DataFrame, flows: pd.DataFrame) -> pd.DataFrame:
    """The window's DNS, HTTP and TLS messages with their flow's uid and endpoints (``flows``: the window's conns)."""
    is_dns = packets["dns_qname"].notna()
    is_http = (packets["http_method"].notna() | packets["http_status"].notna()) & (packets["transport"] == "tcp")
    is_ssl = packets["tls_sni"].notna()
    carrying = (is_dns | is_http | is_ssl) & packets["transport"].isin(["tcp", "udp"]) & packets["src_port"].notna()
    if not carrying.any() or flows.empty:
        return empty_app_events()
    p = packets.loc[carrying, ["ts", "src_ip", "src_port", "transport", *_MESSAGE_COLUMNS]].copy()
    p["kind"] = np.select([is_dns[carrying], is_http[carrying]], ["dns", "http"], default="ssl")
    p["key"] = _tuple_key(
        p["transport"], p["src_ip"], p["src_port"], packets.loc[carrying, "dst_ip"], packets.loc[carrying, "dst_port"]
    )
    ports = pd.concat([p["src_port"], packets.loc[carrying, "dst_port"]]).unique()
    f = flows[flows["orig_p"].isin(ports) & flows["resp_p"].isin(ports)]  # cheap: the string keys only for these
    f = f[f["proto"].isin(["tcp", "udp"])]
    f = f.assign(
        key=_tuple_key(f["proto"], f["orig_h"], f["orig_p"], f["resp_h"], f["resp_p"]),
        flow_ts=f["ts"],
    )[["key", "flow_ts", "uid", "orig_h", "orig_p", "resp_h", "resp_p", "proto"]]
    joined = pd.merge_asof(
        p.sort_values("ts", kind="stable"),
        f.sort_values("flow_ts", kind="stable"),
        left_on="ts",
        right_on="flow_ts",
        by="key",
        direction="backward",
    )
    joined = joined[joined["uid"].notna()]
    joined["from_orig"] = (joined["src_ip"] == joined["orig_h"]) & (joined["src_port"] == joined["orig_p"])
    return joined[list(APP_EVENT_COLUMNS)].reset_index(drop=True)  # the message columns keep the packet dtypes
