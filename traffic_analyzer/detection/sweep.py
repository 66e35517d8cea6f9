"""Horizontal sweeps: one host probing the same way (ARP, ping, one TCP/UDP port) across many hosts.

This is how nmap -sn, arp-scan, masscan -p80 and worms find their targets. What separates a probe
from normal use is that nothing is said: a browser that talks to thirty CDN hosts on port 443
sends each of them a TLS hello, a sweep sends a bare SYN, an empty datagram or an echo request.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..distinct import pair_hashes, per_distinct
from ..records.alert import Alert
from ..records.window import WindowData
from .base import Detector
from .sliding import SlidingTable
from .span import burst_span

ICMP_REQUESTS = {8: "ICMP echo", 13: "ICMP timestamp", 17: "ICMP address mask", 128: "ICMPv6 echo"}  # type -> name
ARP_REQUEST = 1  # ARP opcode: who-has
ARP_REPLY = 2  # ARP opcode: is-at
ARP_METHOD = "ARP who-has"
UNSPECIFIED_IPV4 = "0.0.0.0"  # source of ARP probes (address conflict detection), not a sweep
OPEN_CONNECTION = r"A[^FRfr]*$"  # originator ACKed and nobody has closed: data may still come
SCORE_FLOOR = 45.0  # score at exactly min_hosts: reconnaissance, not yet harm
SCORE_SPAN = 40.0  # added as the target count grows to SCORE_FULL_RATIO x min_hosts
SCORE_FULL_RATIO = 20.0
SAMPLE_TARGETS = 20  # target addresses listed in the evidence

_TALK_EMPTY = pd.DataFrame({"pair": pd.Series(dtype="uint64"), "ts": pd.Series(dtype="float64")})
_ROW_COLUMNS = {"key": object, "ts": "float64", "src": object, "dst": object, "method": object, "answered": bool}
_PROBE_COLUMNS = {**_ROW_COLUMNS, "pair": "uint64"}  # pair: pair_hashes(src, dst), computed once per probe


class HostSweepDetector(Detector):
    """Flags a host that sends the same kind of probe to at least ``min_hosts`` distinct hosts.

    A probe is an ARP who-has, an ICMP echo/timestamp/mask request, or a TCP/UDP connection
    attempt in which the originator sent no payload (a TCP connection that completed and is
    still open is not counted yet: its data may follow), to a host the source exchanged no
    TCP/UDP payload with. TCP and UDP probes count per destination port, so a peer-to-peer
    client trying random ports on many peers is not a sweep.

    Parameters
    ----------
    min_hosts : int
        Distinct hosts one source must probe with one method (ARP, one ICMP request type, or one
        TCP/UDP port) within ``window_s``. Hosts resolve their gateway and a few peers; a sweep of
        even a /27 touches 30.
    window_s : float
        How far back probes are remembered, so slow sweeps add up across windows.
    max_tracked : int
        Most probe records kept (the newest), bounding memory during a sweep of a /8.

    The evidence of a sweep keeps its peaks while it lasts: ``distinct_targets`` (of the main method)
    and ``all_targets`` (any method) are the most seen within one ``window_s``.
    """

    name = "host_sweep"

    def __init__(self, min_hosts: int = 30, window_s: float = 60.0, max_tracked: int = 200_000) -> None:
        self.min_hosts = min_hosts
        self.window_s = window_s
        self.max_tracked = max_tracked
        self._probes = SlidingTable(
            _empty(_PROBE_COLUMNS),
            window_s,
            max_tracked,
            key="key",
            merge={"ts": "max", "answered": "max"},
            by_time=True,
        )
        # host pairs that exchanged payload, as pair_hashes keys both ways -> last time
        self._talked = SlidingTable(_TALK_EMPTY, window_s, max_tracked, key="pair", merge={"ts": "max"}, by_time=True)
        self._sweeps: dict[str, dict] = {}  # attacker -> start and peaks of the ongoing sweep

    def fit(self, windows: list[WindowData]) -> HostSweepDetector:
        """Remember the most hosts any baseline source probed with one method in a window, to quote in alerts."""
        self._check_params()
        most = 0
        for w in windows:
            probes = _without_talk(_probes(w.packets, w.flows), _conversations(w.flows))
            if len(probes):
                most = max(most, int(probes.groupby(["src", "method"])["dst"].nunique().max()))
        self.baseline_max_hosts_ = most
        return self

    def detect(self, window: WindowData) -> list[Alert]:
        self._check_params()
        probes = self._probes.add(_probes(window.packets, window.flows), now=window.end)
        talked = self._talked.add(_conversations(window.flows), now=window.end)
        probes = _without_talk(probes, talked)
        active = set(probes["src"].unique())
        self._sweeps = {a: s for a, s in self._sweeps.items() if a in active}  # a sweep ends with its probes
        if len(probes) < self.min_hosts:
            return []
        targets = probes.groupby(["src", "method"])["dst"].nunique()
        sweepers = targets[targets >= self.min_hosts].index.get_level_values("src").unique()
        return [self._alert(src, probes[probes["src"] == src]) for src in sweepers]

    def _check_params(self) -> None:
        for name in ("min_hosts", "max_tracked"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not self.window_s > 0:
            raise ValueError(f"window_s must be a positive number of seconds, got {self.window_s!r}")

    def _alert(self, src: str, probes: pd.DataFrame) -> Alert:
        by_method = probes.groupby("method")["dst"].nunique().sort_values(ascending=False)
        method, hosts = str(by_method.index[0]), int(by_method.iloc[0])
        swept = probes[probes["method"] == method]
        answered = float(swept.groupby("dst")["answered"].max().mean())
        start, end = burst_span(swept["ts"])  # the sweep itself, not the source's other probes
        sweep = self._sweeps.setdefault(src, {"start": start, "targets": 0, "all_targets": 0})
        sweep["targets"] = max(sweep["targets"], hosts)
        sweep["all_targets"] = max(sweep["all_targets"], int(probes["dst"].nunique()))
        ratio = hosts / self.min_hosts
        score = SCORE_FLOOR + SCORE_SPAN * min(1.0, math.log(ratio) / math.log(SCORE_FULL_RATIO))
        if hasattr(self, "baseline_max_hosts_"):
            compare = f"the busiest baseline host probed {self.baseline_max_hosts_} hosts one way"
        else:
            compare = f"the sweep threshold is {self.min_hosts} hosts within {self.window_s:g} s"
        others = [f"{m} to {int(n)}" for m, n in by_method.iloc[1:4].items() if n > 1]
        also = f" (also {', '.join(others)})" if others else ""
        explanation = (
            f"{src} sent {method} probes to {hosts} distinct hosts in {_seconds(end - start)}{also}, "
            f"{answered:.0%} of them answering; {compare}."
        )
        sample = sorted(swept["dst"].astype(str).unique(), key=_address_order)[:SAMPLE_TARGETS]
        return Alert(
            kind="host_sweep",
            attacker=src,
            victims=["many"],
            start=min(sweep["start"], start),
            end=end,
            score=round(score, 1),
            explanation=explanation,
            evidence={
                "method": method,
                "distinct_targets": sweep["targets"],
                "all_targets": sweep["all_targets"],
                "recent_targets": hosts,
                "answered_share": round(answered, 3),
                "methods": {str(m): int(n) for m, n in by_method.items()},
                "probes": len(probes),
                "sample_targets": sample,
            },
            detector=self.name,
        )


def _probes(packets: pd.DataFrame, flows: pd.DataFrame) -> pd.DataFrame:
    """This window's probes: ARP requests from the packets, payload-less attempts from the flows."""
    parts = [_arp_probes(packets), _flow_probes(flows)]
    parts = [p for p in parts if len(p)]
    if not parts:
        return _empty(_PROBE_COLUMNS)
    probes = pd.concat(parts, ignore_index=True)
    return probes.assign(pair=pair_hashes(probes["src"], probes["dst"]))


def _empty(columns: dict[str, object] = _ROW_COLUMNS) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})


def _conversations(flows: pd.DataFrame) -> pd.DataFrame:
    """TCP/UDP host pairs that exchanged payload, keyed both ways (pair_hashes of a, b and of b, a) -> last time.

    A host that resolves a neighbour and then talks to it was not probing it, however many it
    talks to (a client querying forty local servers ARPs for all forty).
    """
    talk = flows[flows["proto"].isin(["tcp", "udp"]) & ((flows["orig_bytes"] + flows["resp_bytes"]) > 0)]
    if talk.empty:
        return _TALK_EMPTY
    keys = np.concatenate([pair_hashes(talk["orig_h"], talk["resp_h"]), pair_hashes(talk["resp_h"], talk["orig_h"])])
    times = np.concatenate([talk["last_ts"].to_numpy(float), talk["last_ts"].to_numpy(float)])
    return pd.DataFrame({"pair": keys, "ts": times}).groupby("pair", sort=True)["ts"].max().reset_index()


def _without_talk(probes: pd.DataFrame, talked: pd.DataFrame) -> pd.DataFrame:
    """Probes to hosts the source never exchanged payload with."""
    if probes.empty or talked.empty:
        return probes
    talked_pairs = np.isin(probes["pair"].to_numpy(), talked["pair"].to_numpy())
    return probes[~talked_pairs]


def _arp_probes(packets: pd.DataFrame) -> pd.DataFrame:
    """Who-has requests per (asker, target), answered if the target replied to the asker in this window."""
    is_arp = packets["transport"].to_numpy(dtype=object, na_value="") == "arp"
    if not is_arp.any():
        return _empty()
    arp = packets.loc[is_arp, ["ts", "arp_op", "arp_src_ip", "arp_dst_ip"]]  # never a row selection of every column
    if arp.empty:
        return _empty()
    src, dst = arp["arp_src_ip"], arp["arp_dst_ip"]
    asks = arp[(arp["arp_op"] == ARP_REQUEST).fillna(False) & src.notna() & dst.notna()]
    asks = asks[(asks["arp_src_ip"] != asks["arp_dst_ip"]) & (asks["arp_src_ip"] != UNSPECIFIED_IPV4)]
    if asks.empty:
        return _empty()
    pairs = asks.groupby([asks["arp_src_ip"].astype(str), asks["arp_dst_ip"].astype(str)])["ts"].max()
    replies = arp[(arp["arp_op"] == ARP_REPLY).fillna(False)]
    replied = set(zip(replies["arp_dst_ip"].astype(str), replies["arp_src_ip"].astype(str), strict=True))
    asker, target = pairs.index.get_level_values(0), pairs.index.get_level_values(1)
    return pd.DataFrame(
        {
            "key": "arp|" + asker + "|" + target,
            "ts": pairs.to_numpy(),
            "src": asker,
            "dst": target,
            "method": ARP_METHOD,
            "answered": [pair in replied for pair in pairs.index],
        },
        columns=list(_ROW_COLUMNS),
    ).astype(_ROW_COLUMNS)


def _flow_probes(flows: pd.DataFrame) -> pd.DataFrame:
    """TCP/UDP attempts without originator payload, and ICMP requests, to single (not group) hosts."""
    if flows.empty:
        return _empty()
    proto = flows["proto"].fillna("")
    history = flows["history"].fillna("")
    # A SYN-ACK's receiver becomes the originator although it asked nothing (reflection, not probing);
    # an established connection still open may send its data later.
    unasked = per_distinct(history, lambda h: h.str.contains("h", regex=False) & ~h.str.contains("S", regex=False))
    said_nothing = (flows["orig_bytes"] == 0) & (flows["orig_pkts"] > 0)
    silent = said_nothing & ~unasked & ~per_distinct(history, lambda h: h.str.contains(OPEN_CONNECTION))
    icmp = (proto == "icmp") & flows["orig_p"].isin(list(ICMP_REQUESTS))
    keep = (((proto.isin(["tcp", "udp"]) & silent) | icmp) & (flows["orig_h"] != flows["resp_h"])).fillna(False)
    if not keep.any():
        return _empty()
    f = flows[keep]
    f = f[~_is_group_ip(f["resp_h"])]
    port_method = f["proto"].str.upper() + "/" + f["resp_p"].astype(str)
    icmp_method = f["orig_p"].map(ICMP_REQUESTS)
    return pd.DataFrame(
        {
            "key": f["uid"],
            "ts": f["ts"],
            "src": f["orig_h"],
            "dst": f["resp_h"],
            "method": icmp_method.where(f["proto"] == "icmp", port_method),
            "answered": f["resp_pkts"] > 0,
        },
        columns=list(_ROW_COLUMNS),
    ).astype(_ROW_COLUMNS)


def _is_group_ip(addresses: pd.Series) -> np.ndarray:
    """Multicast or broadcast addresses (one packet there reaches many hosts; it is not a probe of one)."""
    return per_distinct(addresses, _is_group_text)


def _is_group_text(addresses: pd.Series) -> np.ndarray:
    text = addresses.astype(str).str.lower()
    last_octet = text.str.rsplit(".", n=1).str[-1]
    first_octet = pd.to_numeric(text.str.split(".", n=1).str[0], errors="coerce")
    v4 = first_octet.between(224, 239) | ((last_octet == "255") & text.str.contains(".", regex=False))
    v6 = text.str.match(r"ff[0-9a-f]{2}:")
    return (v4 | v6).fillna(False).to_numpy(dtype=bool)


def _seconds(duration: float) -> str:
    return f"{duration:.2f} s" if duration < 10 else f"{duration:.0f} s"


def _address_order(address: str) -> tuple:
    """Sort key that puts 10.0.0.9 before 10.0.0.10."""
    parts = address.replace(":", ".").split(".")
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)
