"""A window's decoded DNS, HTTP and TLS messages, each given the uid of the flow it belongs to.

Only packets that carry a decoded message are looked at (a few per connection); the flow tracker,
which put every packet into its connection (a tuple reused by a later connection is a new one),
says which flow each belongs to.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..records.app_events import APP_EVENT_COLUMNS, empty_app_events

_MESSAGE_COLUMNS = [c for c in APP_EVENT_COLUMNS if c.startswith(("dns_", "http_", "tls_"))]
_FLOW_COLUMNS = ["orig_h", "orig_p", "resp_h", "resp_p", "proto"]


def app_events(
    packets: pd.DataFrame, flows: pd.DataFrame, packet_uids: np.ndarray, from_orig: np.ndarray
) -> pd.DataFrame:
    """The window's DNS, HTTP and TLS messages with their flow's uid and endpoints.

    ``flows`` are the window's conns; ``packet_uids`` and ``from_orig`` say, per packet, which of them
    it belongs to and in which direction (the flow tracker knows: :class:`~.flows.FlowUpdate`).
    """
    is_dns = packets["dns_qname"].notna().to_numpy()
    is_http = (packets["http_method"].notna() | packets["http_status"].notna()).to_numpy()
    transport = packets["transport"].to_numpy(dtype=object, na_value="")
    is_http = is_http & (transport == "tcp")
    is_ssl = packets["tls_sni"].notna().to_numpy()
    carrying = (is_dns | is_http | is_ssl) & ((transport == "tcp") | (transport == "udp"))
    carrying &= packets["src_port"].notna().to_numpy() & np.not_equal(packet_uids, None)
    rows = np.flatnonzero(carrying)
    if len(rows) == 0 or flows.empty:
        return empty_app_events()
    rows = rows[np.argsort(packets["ts"].to_numpy()[rows], kind="stable")]
    uids = packet_uids[rows]
    at = pd.Index(flows["uid"]).get_indexer(uids)
    rows, uids, at = rows[at >= 0], uids[at >= 0], at[at >= 0]
    # Column by column into one frame: the message columns keep the packet dtypes.
    events = {c: packets[c].array.take(rows) for c in ("ts", *_MESSAGE_COLUMNS)}
    events["uid"] = uids
    events["kind"] = np.select([is_dns[rows], is_http[rows]], ["dns", "http"], default="ssl")
    events.update({c: flows[c].array.take(at) for c in _FLOW_COLUMNS})
    events["from_orig"] = from_orig[rows]
    return pd.DataFrame({c: events[c] for c in APP_EVENT_COLUMNS})
