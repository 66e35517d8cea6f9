"""Horizontal sweeps: one host probing the same way (ARP, ping, one TCP/UDP port) across many hosts.

This is how nmap -sn, arp-scan, masscan -p80 and worms find their targets. What separates a probe
from normal use is that nothing is said: a browser that talks to thirty CDN hosts on port 443
sends each of them a TLS hello, a sweep sends a bare SYN, an empty datagram or an echo request.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..distinct import Remembered, pair_hashes, pair_hashes_both_ways
from ..records.alert import Alert
from ..records.window import WindowData
from .base import Detector
from .columns import frame
from .history import still_open, unasked_reply
from .params import COUNT, POSITIVE
from .sliding import SlidingTable
from .span import burst_span

ICMP_REQUESTS = {8: "ICMP echo", 13: "ICMP timestamp", 17: "ICMP address mask", 128: "ICMPv6 echo"}  # type -> name
ARP_REQUEST = 1  # ARP opcode: who-has
ARP_REPLY = 2  # ARP opcode: is-at
ARP_METHOD = "ARP who-has"
UNSPECIFIED_IPV4 = "0.0.0.0"  # source of ARP probes (address conflict detection), not a sweep
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
    _parameter_constraints = {"min_hosts": COUNT, "window_s": POSITIVE, "max_tracked": COUNT}

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

    def partial_fit(self, window: WindowData) -> HostSweepDetector:
        """Remember the most hosts any baseline source probed with one method in a window, to quote in alerts."""
        probes = _without_talk(_probes(window.packets, window.flows), _conversations(window.flows))
        most = int(probes.groupby(["src", "method"])["dst"].nunique().max()) if len(probes) else 0
        self._fold_max("baseline_max_hosts_", most)
        return self

    def detect(self, window: WindowData) -> list[Alert]:
        probes = self._probes.add(_probes(window.packets, window.flows), now=window.end)
        talked = self._talked.add(_conversations(window.flows), now=window.end)
        silent = _untalked(probes, talked)  # a mask: the probes themselves are a frame only for alerts
        sources = probes["src"].to_numpy(dtype=object)[silent]
        active = set(sources.tolist())
        self._sweeps = {a: s for a, s in self._sweeps.items() if a in active}  # a sweep ends with its probes
        if len(sources) < self.min_hosts:
            return []
        methods, targets = (probes[c].to_numpy(dtype=object)[silent] for c in ("method", "dst"))
        sweepers = _sources_probing(sources, methods, targets, self.min_hosts)
        if not sweepers:
            return []
        probes = probes[silent]
        return [self._alert(src, probes[probes["src"] == src]) for src in sweepers]

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


def _sources_probing(sources: np.ndarray, methods: np.ndarray, targets: np.ndarray, min_hosts: int) -> list:
    """Sources (in sorted order) that probed at least ``min_hosts`` distinct hosts with one method."""
    src, sources = pd.factorize(sources)  # sorted below: a flood has thousands
    busy = np.flatnonzero(src >= 0)
    busy = busy[np.bincount(src[busy])[src[busy]] >= min_hosts]  # only a source with min_hosts probes can sweep
    if not len(busy):
        return []
    src = src[busy]
    method, methods = pd.factorize(methods[busy])
    dst, targets = pd.factorize(targets[busy])
    known = (method >= 0) & (dst >= 0)  # as a group-by, rows with a missing key count nowhere
    ways = src[known].astype(np.int64) * len(methods) + method[known]
    pairs = np.unique(ways * len(targets) + dst[known])  # each (source, method, target) once
    way, hosts = np.unique(pairs // len(targets), return_counts=True)
    return sorted(sources[i] for i in np.unique(way[hosts >= min_hosts] // len(methods)))


def _probes(packets: pd.DataFrame, flows: pd.DataFrame) -> pd.DataFrame:
    """This window's probes: ARP requests from the packets, payload-less attempts from the flows.

    Both kinds are gathered as numpy columns and made into one frame at the end (frames cost more
    than the few probes of a usual window).
    """
    parts = [p for p in (_arp_probes(packets), _flow_probes(flows)) if p is not None]
    if not parts:
        return _empty(_PROBE_COLUMNS)
    columns = {c: np.concatenate([p[c] for p in parts]) for c in _ROW_COLUMNS}
    columns["pair"] = pair_hashes(pd.Series(columns["src"], dtype=object), pd.Series(columns["dst"], dtype=object))
    return frame(columns)


def _empty(columns: dict[str, object] = _ROW_COLUMNS) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})


def _conversations(flows: pd.DataFrame) -> pd.DataFrame:
    """TCP/UDP host pairs that exchanged payload, keyed both ways (pair_hashes of a, b and of b, a) -> last time.

    A host that resolves a neighbour and then talks to it was not probing it, however many it
    talks to (a client querying forty local servers ARPs for all forty).
    """
    proto = flows["proto"].to_numpy(dtype=object, na_value="")
    said = (flows["orig_bytes"].to_numpy() + flows["resp_bytes"].to_numpy()) > 0
    at = np.flatnonzero(((proto == "tcp") | (proto == "udp")) & said)
    if not len(at):
        return _TALK_EMPTY
    a, b = flows["orig_h"].iloc[at], flows["resp_h"].iloc[at]
    keys = pair_hashes_both_ways(a, b)
    times = np.tile(flows["last_ts"].to_numpy(float)[at], 2)
    pairs, which = np.unique(keys, return_inverse=True)
    last = np.full(len(pairs), -np.inf)
    np.maximum.at(last, which, times)
    return pd.DataFrame({"pair": pairs, "ts": last})


def _untalked(probes: pd.DataFrame, talked: pd.DataFrame) -> np.ndarray:
    """Which probes went to hosts the source never exchanged payload with."""
    if probes.empty or talked.empty:
        return np.ones(len(probes), dtype=bool)
    return ~probes["pair"].isin(talked["pair"].to_numpy()).to_numpy()  # a hash table: np.isin would sort both


def _without_talk(probes: pd.DataFrame, talked: pd.DataFrame) -> pd.DataFrame:
    """Probes to hosts the source never exchanged payload with."""
    silent = _untalked(probes, talked)
    return probes if silent.all() else probes[silent]


def _arp_probes(packets: pd.DataFrame) -> dict[str, np.ndarray] | None:
    """Who-has requests per (asker, target), answered if the target replied to the asker in this window."""
    at = np.flatnonzero(packets["transport"].to_numpy(dtype=object, na_value="") == "arp")
    if not len(at):
        return None
    op = packets["arp_op"].to_numpy(dtype=np.int64, na_value=-1)[at]
    src = packets["arp_src_ip"].to_numpy(dtype=object, na_value=None)[at]
    dst = packets["arp_dst_ip"].to_numpy(dtype=object, na_value=None)[at]
    known = (src != None) & (dst != None)  # noqa: E711 (elementwise)
    ask = (op == ARP_REQUEST) & known
    ask[ask] = (src[ask] != dst[ask]) & (src[ask] != UNSPECIFIED_IPV4)
    if not ask.any():
        return None
    asker_codes, askers = pd.factorize(src[ask], sort=True)
    target_codes, targets = pd.factorize(dst[ask], sort=True)
    pairs, which = np.unique(asker_codes * len(targets) + target_codes, return_inverse=True)  # sorted as a group-by
    last = np.full(len(pairs), -np.inf)
    np.maximum.at(last, which, packets["ts"].to_numpy(dtype=float)[at][ask])
    asker, target = askers[pairs // len(targets)], targets[pairs % len(targets)]
    reply = op == ARP_REPLY
    replied = set(zip(dst[reply], src[reply], strict=True))
    return {
        "key": np.array([f"arp|{a}|{t}" for a, t in zip(asker, target, strict=True)], dtype=object),
        "ts": last,
        "src": np.asarray(asker, dtype=object),
        "dst": np.asarray(target, dtype=object),
        "method": np.full(len(pairs), ARP_METHOD, dtype=object),
        "answered": np.array([pair in replied for pair in zip(asker, target, strict=True)], dtype=bool),
    }


def _flow_probes(flows: pd.DataFrame) -> dict[str, np.ndarray] | None:
    """TCP/UDP attempts without originator payload, and ICMP requests, to single (not group) hosts."""
    if flows.empty:
        return None
    proto = flows["proto"].to_numpy(dtype=object, na_value="")
    history = flows["history"].fillna("")
    # A SYN-ACK's receiver becomes the originator although it asked nothing (reflection, not probing);
    # an established connection still open may send its data later.
    said_nothing = (flows["orig_bytes"].to_numpy() == 0) & (flows["orig_pkts"].to_numpy() > 0)
    silent = said_nothing & ~unasked_reply(history) & ~still_open(history)
    orig_p = flows["orig_p"].to_numpy(dtype=np.int64, na_value=-1)
    icmp = (proto == "icmp") & np.isin(orig_p, list(ICMP_REQUESTS))
    orig_h = flows["orig_h"].to_numpy(dtype=object, na_value=None)
    resp_h = flows["resp_h"].to_numpy(dtype=object, na_value=None)
    apart = (orig_h != None) & (resp_h != None)  # noqa: E711 (elementwise)
    apart[apart] = orig_h[apart] != resp_h[apart]
    keep = (((proto == "tcp") | (proto == "udp")) & silent | icmp) & apart
    if not keep.any():
        return None
    at = np.flatnonzero(keep)
    at = at[~_is_group_ip(flows["resp_h"].iloc[at])]
    resp_p = flows["resp_p"].iloc[at].astype(str).to_numpy(dtype=object)
    method = [
        ICMP_REQUESTS[port] if kind == "icmp" else f"{kind.upper()}/{service}" if isinstance(service, str) else np.nan
        for kind, port, service in zip(proto[at], orig_p[at], resp_p, strict=True)
    ]
    return {
        "key": flows["uid"].to_numpy(dtype=object)[at],
        "ts": flows["ts"].to_numpy(dtype=np.float64)[at],
        "src": orig_h[at],
        "dst": resp_h[at],
        "method": np.array(method, dtype=object),
        "answered": flows["resp_pkts"].to_numpy()[at] > 0,
    }


def _is_group_text(addresses: pd.Series) -> np.ndarray:
    text = addresses.astype(str).str.lower()
    last_octet = text.str.rsplit(".", n=1).str[-1]
    first_octet = pd.to_numeric(text.str.split(".", n=1).str[0], errors="coerce")
    v4 = first_octet.between(224, 239) | ((last_octet == "255") & text.str.contains(".", regex=False))
    v6 = text.str.match(r"ff[0-9a-f]{2}:")
    return (v4 | v6).fillna(False).to_numpy(dtype=bool)


# Per-value tests, each value tested once across windows.
_is_group_ip = Remembered(_is_group_text)  # multicast or broadcast: one packet reaches many hosts, not a probe of one


def _seconds(duration: float) -> str:
    return f"{duration:.2f} s" if duration < 10 else f"{duration:.0f} s"


def _address_order(address: str) -> tuple:
    """Sort key that puts 10.0.0.9 before 10.0.0.10."""
    parts = address.replace(":", ".").split(".")
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)
