"""Per-host behaviour in one analysis window: the rows the anomaly model learns and scores.

One row per host that originated traffic in the window; every column is a
count or ratio a network admin can read ("distinct_dst_ports"), because the
alert explanation quotes them against the baseline.
"""

from __future__ import annotations

import ipaddress

import numpy as np
import pandas as pd

from ..distinct import Remembered, distinct_per_code
from ..records.window import WindowData

FAILED_STATES = ("S0", "REJ", "RSTOS0", "RSTR", "SH", "OTH")  # attempts that got nowhere
DNS_NXDOMAIN = 3
# ICMP types that answer another's packet (echo reply, unreachable, source quench, redirect, time exceeded,
# parameter problem; ICMPv6: the errors and echo reply): a scanned host's port-unreachables are not its acts.
ICMP_ANSWERS = (0, 3, 4, 5, 11, 12)
ICMPV6_ANSWERS = (1, 2, 3, 4, 129)

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
    "max_dns_label_len",
    "nxdomain_replies",
    "icmp_requests_out",
    "max_conns_one_service",
    "failed_sources_in",
)
# Counts of what others did to the host, not of what it did: judged only against the baseline's most
# (the anomaly detector's far-beyond-baseline rule), never learned by the models. A victim's count is not its
# behaviour, and a count that is nearly always 0 makes a density model call its rare 1s outliers.
INBOUND_FEATURES: tuple[str, ...] = ("failed_sources_in",)


def host_features_of(window: WindowData) -> pd.DataFrame:
    """The window's host features: those it carries, else computed from its packets and flows now."""
    if window.host_features is not None:
        return window.host_features
    return host_window_features(window.packets, window.flows)


def host_window_features(packets: pd.DataFrame, flows: pd.DataFrame) -> pd.DataFrame:
    """Features per originating host for one window (index: host address, columns: HOST_FEATURES).

    ``packets`` is the window's packet table; ``flows`` the conn records the window touched. Addresses are
    factorized once, in sorted order, and every feature is a bincount over those codes: one pass each
    instead of a pandas group-by each (the hosts come out in the order a group-by would give them).
    """
    ip = packets["src_ip"].notna().to_numpy()
    addresses, src, dst, features = _by_address(packets, ip)
    n, has_dst = len(addresses), dst >= 0
    if len(flows):
        features.update(_flow_features(flows, pd.Index(addresses), n))
    asked = packets["dns_qname"].notna().to_numpy()[ip] & ~packets["dns_response"].to_numpy(bool, na_value=True)[ip]
    if asked.any():
        names = packets["dns_qname"].to_numpy(dtype=object)[ip][asked]
        features["dns_queries"] = np.bincount(src[asked], minlength=n)
        codes, uniques = pd.factorize(names)
        features["distinct_dns_names"] = distinct_per_code(src[asked], codes, n)
        name_len = np.fromiter(map(len, uniques), dtype=np.float64, count=len(uniques))[codes]
        with np.errstate(invalid="ignore", divide="ignore"):
            features["mean_dns_name_len"] = np.bincount(src[asked], weights=name_len, minlength=n) / np.maximum(
                features["dns_queries"], 1
            )
        features["max_dns_label_len"] = _most_of(src[asked], longest_label(uniques)[codes], n)
    nxdomain = (packets["dns_rcode"].to_numpy(np.float64, na_value=np.nan)[ip] == DNS_NXDOMAIN) & has_dst
    features["nxdomain_replies"] = np.bincount(dst[nxdomain], minlength=n)
    transport = packets["transport"].to_numpy(dtype=object, na_value="")[ip]
    icmp_type = packets["icmp_type"].to_numpy(dtype=np.float64, na_value=np.nan)[ip]
    answers = ((transport == "icmp") & np.isin(icmp_type, ICMP_ANSWERS)) | (
        (transport == "icmpv6") & np.isin(icmp_type, ICMPV6_ANSWERS)
    )
    asking = ((transport == "icmp") | (transport == "icmpv6")) & ~answers
    features["icmp_requests_out"] = np.bincount(src[asking], minlength=n)

    senders = np.flatnonzero(features["packets_out"] > 0)  # the hosts that originated traffic
    out = pd.DataFrame(
        {name: np.asarray(features.get(name, np.zeros(n)), dtype=float)[senders] for name in HOST_FEATURES}
    )
    out["failed_ratio"] = np.where(out["flows"] > 0, out["failed_flows"] / out["flows"].clip(lower=1), 0.0)
    out.index = pd.Index(addresses[senders], dtype=packets["src_ip"].dtype).astype(str)
    out.index.name = "host"
    return out


def _flow_features(flows: pd.DataFrame, addresses: pd.Index, n: int) -> dict[str, np.ndarray]:
    """Per originator code: flows, distinct responders and ports, failed attempts, the most TCP connections to
    one service (a password guesser's or a flooder's concentration; UDP is left out, where every DNS lookup is
    a flow of its own); per responder code: the distinct originators of its connections that got nowhere
    (failed, or a SYN never followed by the handshake's ACK): many such sources are a flood, spoofed or not,
    where a scan is one source."""
    resp_h, resp_p = flows["resp_h"].to_numpy(dtype=object), flows["resp_p"].to_numpy(dtype=object)
    history = flows["history"].fillna("")
    failed_all = flows["conn_state"].isin(FAILED_STATES).fillna(False).to_numpy(dtype=bool)
    nowhere = failed_all | (_never_completed(history) if len(history) else np.zeros(0, dtype=bool))
    orig_all = addresses.get_indexer(flows["orig_h"].to_numpy(dtype=object))
    resp = addresses.get_indexer(resp_h)
    inbound = nowhere & (resp >= 0) & (orig_all >= 0)
    known = orig_all >= 0  # originators that sent no packet in the window are not rows of the table
    orig = orig_all[known]
    failed = failed_all[known]
    hosts, ports = pd.factorize(resp_h[known])[0], pd.factorize(resp_p[known])[0]
    service = hosts.astype(np.int64) * (int(ports.max(initial=0)) + 2) + ports + 1
    tcp = (flows["proto"].to_numpy(dtype=object)[known] == "tcp") & (hosts >= 0)
    return {
        "flows": np.bincount(orig, minlength=n),
        "distinct_dst_hosts": distinct_per_code(orig, hosts, n),
        "distinct_dst_ports": distinct_per_code(orig, ports, n),
        "failed_flows": np.bincount(orig[failed], minlength=n),
        "max_conns_one_service": _most_per_code(orig, np.where(tcp, service, -1), n),
        "failed_sources_in": distinct_per_code(resp[inbound], orig_all[inbound], n),
    }


# A SYN the originator never followed with the handshake's ACK or data (Zeek history letters: upper case are
# the originator's): a half-open connection even when the responder answered (conn_state S1).
_never_completed = Remembered(lambda h: h.str.contains("S", regex=False) & ~h.str.contains("[AD]"))


def longest_label(names) -> np.ndarray:
    """The length of each DNS name's longest label: data hidden in names (exfiltration, tunnels) comes in long
    labels of up to 63 characters, where a name people and services use rarely has one past 30."""
    return np.fromiter((max(map(len, name.split("."))) for name in names), dtype=np.float64, count=len(names))


def _most_of(owner: np.ndarray, value: np.ndarray, n: int) -> np.ndarray:
    """Each owner code's largest value (0 for an owner without any)."""
    most = np.zeros(n, dtype=np.float64)
    np.maximum.at(most, owner, value)
    return most


def _most_per_code(owner: np.ndarray, value: np.ndarray, n: int) -> np.ndarray:
    """How often each owner code's most frequent value (codes, -1 for missing) occurs: a group-by's max count."""
    present = value >= 0
    if not present.any():
        return np.zeros(n, dtype=np.int64)
    pairs, counts = np.unique(np.stack([owner[present], value[present]]), axis=1, return_counts=True)
    most = np.zeros(n, dtype=np.int64)
    np.maximum.at(most, pairs[0], counts)
    return most


def host_traffic(packets: pd.DataFrame) -> pd.DataFrame:
    """Packets and bytes each address sent and received in a window: host, packets_out, bytes_out, packets_in,
    bytes_in (int64), one row per address seen either way, in address order (the store's per-host table)."""
    addresses, _, _, counts = _by_address(packets, packets["src_ip"].notna().to_numpy())
    hosts = pd.Series(addresses, dtype=packets["src_ip"].dtype, name="host")
    return pd.DataFrame({"host": hosts, **{k: v.astype(np.int64) for k, v in counts.items()}})


def _by_address(
    packets: pd.DataFrame, ip: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The window's addresses in sorted order, each IP packet's (``ip``: the rows with a source address)
    source and destination code (-1: none), and the packets and bytes each address sent and received.

    Columns are taken as arrays, never the frame's rows: a row selection of the whole packet table
    costs more than every count here."""
    ends = [packets[c].to_numpy(dtype=object)[ip] for c in ("src_ip", "dst_ip")]
    n_ip = len(ends[0])
    codes, addresses = pd.factorize(np.concatenate(ends), sort=True)
    src, dst = codes[:n_ip], codes[n_ip:]
    n = len(addresses)
    length = packets["length"].to_numpy(dtype=np.float64)[ip]  # byte sums stay exact in float64 below 2**53
    has_dst = dst >= 0
    counts = {
        "packets_out": np.bincount(src, minlength=n),
        "bytes_out": np.bincount(src, weights=length, minlength=n),
        "packets_in": np.bincount(dst[has_dst], minlength=n),
        "bytes_in": np.bincount(dst[has_dst], weights=length[has_dst], minlength=n),
    }
    return np.asarray(addresses, dtype=object), src, dst, counts


def silent_sources_in(flows: pd.DataFrame, senders: pd.Index, least: int = 1) -> pd.Series:
    """Per host that sent nothing in the window (not in ``senders``): how many distinct peers sent it traffic it
    never answered, by flows where its side has no packet. Many is a flood on a victim that does not answer: a
    one-way capture of a spoofed SYN flood, or the reflected answers of an amplification. Multicast and
    broadcast addresses (an x.x.x.255 too) never answer and are left out, as are names the tracker could not
    read. The host table has no row for such a host: this is its ``failed_sources_in``. Only hosts with at
    least ``least`` such peers are given."""
    if len(flows) < least:
        return pd.Series(dtype=np.int64)
    sides = []
    for me, peer, mine in (("resp_h", "orig_h", "resp_pkts"), ("orig_h", "resp_h", "orig_pkts")):
        silent = flows[mine].fillna(0).to_numpy(dtype=np.int64) == 0
        sides.append(pd.DataFrame({"host": flows[me].to_numpy(dtype=object)[silent],
                                   "peer": flows[peer].to_numpy(dtype=object)[silent]}))  # fmt: skip
    pairs = pd.concat(sides, ignore_index=True).dropna()
    pairs = pairs[~pairs["host"].isin(senders)]
    if len(pairs) < least:
        return pd.Series(dtype=np.int64)
    counts = pairs.drop_duplicates().groupby("host", sort=True).size()
    counts = counts[counts >= least]
    return counts[[not _never_answers(h) for h in counts.index]].astype(np.int64)


def _never_answers(address: str) -> bool:
    """Multicast and broadcast destinations, which nobody expects to answer."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return True
    return ip.is_multicast or (ip.version == 4 and (address.endswith(".255") or ip == ipaddress.IPv4Address(0)))
