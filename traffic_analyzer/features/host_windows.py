"""Per-host behaviour in one analysis window: the rows the anomaly model learns and scores.

One row per host that originated traffic in the window; every column is a
count or ratio a network admin can read ("distinct_dst_ports"), because the
alert explanation quotes them against the baseline.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FAILED_STATES = ("S0", "REJ", "RSTOS0", "RSTR", "SH", "OTH")  # attempts that got nowhere
DNS_NXDOMAIN = 3

HOST_FEATURES: tuple[str, ...] = (
    "packets_out",
    "bytes_out",
    "packets_in",
    "bytes_in",
    "flows",
    "distinct_dst_hosts",
    "distinct_dst_ports",
    "failed_flows",
    "failed_ratio",
    "dns_queries",
    "distinct_dns_names",
    "mean_dns_name_len",
    "nxdomain_replies",
    "icmp_packets_out",
)


def host_window_features(packets: pd.DataFrame, flows: pd.DataFrame) -> pd.DataFrame:
    """Features per originating host for one window (index: host address, columns: HOST_FEATURES).

    ``packets`` is the window's packet table; ``flows`` the conn records the window touched.
    """
    ip = packets[packets["src_ip"].notna()]
    out = ip.groupby("src_ip").agg(packets_out=("length", "size"), bytes_out=("length", "sum"))
    inbound = ip.groupby("dst_ip").agg(packets_in=("length", "size"), bytes_in=("length", "sum"))
    out = out.join(inbound, how="left")

    if len(flows):
        by_orig = flows.groupby("orig_h")
        f = pd.DataFrame(
            {
                "flows": by_orig.size(),
                "distinct_dst_hosts": by_orig["resp_h"].nunique(),
                "distinct_dst_ports": by_orig["resp_p"].nunique(),
                "failed_flows": flows["conn_state"].isin(FAILED_STATES).groupby(flows["orig_h"]).sum(),
            }
        )
        out = out.join(f, how="left")
    queries = ip[ip["dns_qname"].notna() & (ip["dns_response"] == False)]  # noqa: E712 (nullable boolean)
    if len(queries):
        q = queries.groupby("src_ip")["dns_qname"]
        dns = pd.DataFrame(
            {
                "dns_queries": q.size(),
                "distinct_dns_names": q.nunique(),
                "mean_dns_name_len": queries["dns_qname"].str.len().astype(float).groupby(queries["src_ip"]).mean(),
            }
        )
        out = out.join(dns, how="left")
    nx = ip[(ip["dns_rcode"] == DNS_NXDOMAIN).fillna(False)]
    if len(nx):
        out = out.join(nx.groupby("dst_ip").size().rename("nxdomain_replies"), how="left")
    icmp = ip[ip["transport"].isin(["icmp", "icmpv6"])]
    if len(icmp):
        out = out.join(icmp.groupby("src_ip").size().rename("icmp_packets_out"), how="left")

    out = out.reindex(columns=list(HOST_FEATURES)).astype(float).fillna(0.0)
    out["failed_ratio"] = np.where(out["flows"] > 0, out["failed_flows"] / out["flows"].clip(lower=1), 0.0)
    out.index = out.index.astype(str)
    out.index.name = "host"
    return out
