"""Port scans: one host probing many ports of another (SYN, connect, UDP, FIN/XMAS/NULL), or a few ports of
each of several hosts (a lateral scan inside the site: 5 ports of 9 hosts is neither a vertical scan nor a
sweep)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..distinct import distinct_per_code
from ..records.alert import Alert
from ..records.window import WindowData
from .base import Detector
from .columns import groups_of, rows_of
from .history import has_syn_ack
from .params import COUNT, POSITIVE, SHARE
from .sliding import SlidingTable
from .span import burst_span

ANSWERED_STATES = ("SF", "S1", "S2", "S3", "RSTO", "RSTR", "REJ")  # the target said something back
MAX_OPEN_PORTS_LISTED = 50  # open ports named in the evidence at most
SCORE_FLOOR = 45.0  # score at exactly min_ports
SCORE_SPAN = 40.0  # added as the port count grows to SCORE_FULL_RATIO x min_ports
SCORE_FULL_RATIO = 40.0
MAX_TRACKED_PROBES = 500_000  # probes remembered at most (the newest): a bound on a busy link, not a threshold
MAX_TARGETS_LISTED = 20  # scanned hosts named in a lateral scan's evidence at most


class PortScanDetector(Detector):
    """Flags a host that sends payload-less probes to at least ``min_ports`` ports of one host, or to at
    least ``min_targets`` (host, port) targets spread over ``min_spread`` hosts and ports, most not open.

    Parameters
    ----------
    min_ports : int
        Distinct destination ports of one target that make a scan. Benign clients
        rarely touch more than a handful of ports on one server.
    window_s : float
        How far back probes are remembered, so slow scans add up across windows.
    min_targets : int
        Distinct (host, port) targets that make a lateral scan, counted over the hosts probed on two ports or
        more that are no vertical scan's target. A browser's speculative connections reach many hosts on one
        or two ports; a monitoring server's checks reach several ports of many hosts, but open ones (see
        ``min_closed``).
    min_spread : int
        Least number of distinct hosts, and of distinct ports, of a lateral scan.
    min_closed : float
        Least share of a lateral scan's probes that found no open port (refused or unanswered): a scanner
        guesses, a monitor checks services it knows are there.
    """

    name = "port_scan"
    _parameter_constraints = {
        "min_ports": COUNT,
        "window_s": POSITIVE,
        "min_targets": COUNT,
        "min_spread": COUNT,
        "min_closed": SHARE,
    }

    def __init__(
        self,
        min_ports: int = 25,
        window_s: float = 300.0,
        min_targets: int = 25,
        min_spread: int = 3,
        min_closed: float = 0.5,
    ) -> None:
        self.min_ports = min_ports
        self.window_s = window_s
        self.min_targets = min_targets
        self.min_spread = min_spread
        self.min_closed = min_closed
        empty = _probes(pd.DataFrame())
        self._probes = SlidingTable(
            empty, window_s, MAX_TRACKED_PROBES, key="uid", merge=dict.fromkeys(empty.columns.drop("uid"), "last")
        )

    def partial_fit(self, window: WindowData) -> PortScanDetector:
        """Remember the most ports any baseline host touched on one target, to quote in alerts."""
        probes = _probes(window.flows)
        most = int(probes.groupby(["orig_h", "resp_h"])["resp_p"].nunique().max()) if len(probes) else 0
        self._fold_max("baseline_max_ports_", most)
        return self

    def detect(self, window: WindowData) -> list[Alert]:
        probes = self._probes.add(_probes(window.flows), now=window.end)
        scanning = _scanning(probes, self.min_ports)
        rows = probes[scanning]
        found = [self._alert(orig_h, resp_h, pair) for (orig_h, resp_h), pair in groups_of(rows, ["orig_h", "resp_h"])]
        others = probes[~scanning]  # a vertical scan's target is its alert's; the rest may add up across hosts
        lateral = _lateral_scanning(others, self.min_targets, self.min_spread, self.min_closed)
        found += [self._lateral_alert(orig_h, spread) for (orig_h,), spread in groups_of(others[lateral], ["orig_h"])]
        return found

    def _lateral_alert(self, orig_h: str, probes: pd.DataFrame) -> Alert:
        targets = probes[["resp_h", "resp_p"]].dropna().drop_duplicates()
        hosts = sorted(targets["resp_h"].astype(str).unique())
        ports = sorted(int(p) for p in targets["resp_p"].unique())
        start, end = burst_span(probes["ts"])
        protos = "/".join(sorted(probes["proto"].str.upper().unique()))
        score = _score(len(targets) / self.min_targets)
        opened = probes.loc[probes["open"] > 0, ["resp_h", "resp_p"]].drop_duplicates()
        open_at = [f"{h}:{int(p)}" for h, p in sorted(zip(opened["resp_h"].astype(str), opened["resp_p"], strict=True))]
        answered = f"open: {', '.join(open_at[:MAX_OPEN_PORTS_LISTED])}" if open_at else "none open"
        explanation = (
            f"{orig_h} probed {len(hosts)} hosts on {len(ports)} {protos} ports "
            f"({len(targets)} host:port targets, {len(probes)} attempts without payload, "
            f"{1.0 - float(probes['open'].mean()):.0%} found no open port; {answered}) in {end - start:.1f} s; "
            f"a lateral scan is {self.min_targets} targets on {self.min_spread}+ hosts and ports within "
            f"{self.window_s:.0f} s, most not open."
        )
        return Alert(
            kind="port_scan",
            attacker=orig_h,
            victims=["many"],
            start=start,
            end=end,
            score=score,
            explanation=explanation,
            evidence={
                "targets": len(targets),
                "distinct_hosts": len(hosts),
                "distinct_ports": len(ports),
                "probes": len(probes),
                "hosts": hosts[:MAX_TARGETS_LISTED],
                "sample_ports": ports[:20],
                "open_targets": open_at[:MAX_OPEN_PORTS_LISTED],
                "protocols": protos,
            },
            detector=self.name,
        )

    def _alert(self, orig_h: str, resp_h: str, pair: pd.DataFrame) -> Alert:
        n_ports = int(pair["resp_p"].nunique())
        start, end = burst_span(pair["ts"])
        protos = "/".join(sorted(pair["proto"].str.upper().unique()))
        unanswered = float(1.0 - pair["answered"].mean())
        score = _score(n_ports / self.min_ports)
        if hasattr(self, "baseline_max_ports_"):
            compare = f"the busiest baseline host touched {self.baseline_max_ports_} ports of one target"
        else:
            compare = f"the scan threshold is {self.min_ports} ports within {self.window_s:.0f} s"
        open_ports = [int(p) for p in sorted(pair.loc[pair["open"] > 0, "resp_p"].unique())]
        more = " ..." if len(open_ports) > MAX_OPEN_PORTS_LISTED else ""
        listed = ", ".join(map(str, open_ports[:MAX_OPEN_PORTS_LISTED])) + more
        answered = f"open ports: {listed}" if open_ports else "no port answered as open"
        explanation = (
            f"{orig_h} probed {n_ports} distinct {protos} ports of {resp_h} in {end - start:.1f} s "
            f"({len(pair)} connection attempts without payload, {unanswered:.1%} unanswered; {answered}); {compare}."
        )
        return Alert(
            kind="port_scan",
            attacker=orig_h,
            victims=[resp_h],
            start=start,
            end=end,
            score=score,
            explanation=explanation,
            evidence={
                "distinct_ports": n_ports,
                "probes": len(pair),
                "unanswered_share": round(unanswered, 3),
                "protocols": protos,
                "sample_ports": [int(p) for p in sorted(pair["resp_p"].unique())[:20]],
                "open_ports": open_ports[:MAX_OPEN_PORTS_LISTED],
                "open_port_count": len(open_ports),
            },
            detector=self.name,
        )


def _score(ratio: float) -> float:
    """SCORE_FLOOR at the threshold (``ratio`` 1), SCORE_FLOOR + SCORE_SPAN at SCORE_FULL_RATIO times it."""
    return round(SCORE_FLOOR + SCORE_SPAN * min(1.0, math.log(ratio) / math.log(SCORE_FULL_RATIO)), 1)


def _probes(flows: pd.DataFrame) -> pd.DataFrame:
    """TCP/UDP connections whose originator sent no payload: what a scanner's probes look like."""
    if flows.empty:
        return pd.DataFrame(columns=["uid", "orig_h", "resp_h", "proto", "resp_p", "ts", "answered", "open"])
    proto = flows["proto"].to_numpy(dtype=object, na_value="")
    at = np.flatnonzero(((proto == "tcp") | (proto == "udp")) & (flows["orig_bytes"].to_numpy() == 0))
    proto, replies = proto[at], flows["resp_pkts"].to_numpy()[at]
    answered = np.isin(flows["conn_state"].to_numpy(dtype=object, na_value="")[at], list(ANSWERED_STATES)) | (
        replies > 0
    )
    # Open: the target sent a SYN-ACK (history letter h; a RST to a FIN/XMAS probe is no such answer), or any UDP reply.
    syn_ack = has_syn_ack(flows["history"].iloc[at].fillna("").astype(str))
    is_open = ((proto == "tcp") & syn_ack) | ((proto == "udp") & (replies > 0))
    columns = ["uid", "orig_h", "resp_h", "proto", "resp_p", "ts"]
    return rows_of(flows, at, columns, answered=answered.astype(float), open=is_open.astype(float))


def _scanning(probes: pd.DataFrame, min_ports: int) -> np.ndarray:
    """The probes of (originator, target) pairs with at least ``min_ports`` distinct ports, as a row mask.

    A group-by's ``nunique`` in numpy (a missing address counts in no pair, a missing port is no port).
    """
    orig_h, resp_h = (pd.factorize(probes[c].to_numpy(dtype=object))[0] for c in ("orig_h", "resp_h"))
    port = pd.factorize(probes["resp_p"].to_numpy(dtype=np.int64, na_value=-1))[0]
    port[probes["resp_p"].isna().to_numpy()] = -1
    paired = (orig_h >= 0) & (resp_h >= 0)
    pair = np.where(paired, orig_h.astype(np.int64) * (int(resp_h.max(initial=0)) + 1) + resp_h, -1)
    counted = paired & (port >= 0)
    if not counted.any():
        return np.zeros(len(probes), dtype=bool)
    width = int(port.max()) + 1
    pair_ports = np.unique(pair[counted] * width + port[counted])  # each (pair, port) once
    pairs, ports = np.unique(pair_ports // width, return_counts=True)
    return np.isin(pair, pairs[ports >= min_ports])


def _lateral_scanning(probes: pd.DataFrame, min_targets: int, min_spread: int, min_closed: float) -> np.ndarray:
    """The probes of lateral scans, as a row mask: of each originator, those to hosts it probed on two ports or
    more (one port of many hosts is a sweep's, or a browser's), when they reach at least ``min_targets``
    distinct (host, port) targets on ``min_spread`` or more hosts and ports and at least ``min_closed`` of
    them found no open port."""
    orig = pd.factorize(probes["orig_h"].to_numpy(dtype=object))[0]
    host = pd.factorize(probes["resp_h"].to_numpy(dtype=object))[0]
    port = pd.factorize(probes["resp_p"].to_numpy(dtype=np.int64, na_value=-1))[0]
    port[probes["resp_p"].isna().to_numpy()] = -1
    aimed = (orig >= 0) & (host >= 0) & (port >= 0)
    if int(np.bincount(orig[aimed]).max(initial=0)) < min_targets:  # no originator has probes enough
        return np.zeros(len(probes), dtype=bool)
    pair = pd.factorize(orig.astype(np.int64) * (int(host.max()) + 1) + host)[0]
    several = aimed & (distinct_per_code(pair[aimed], port[aimed], int(pair.max()) + 1) >= 2)[pair]
    n = int(orig.max()) + 1
    o, h, p = orig[several], host[several], port[several]
    target = h.astype(np.int64) * (int(port.max()) + 1) + p
    closed = np.bincount(o, weights=1.0 - probes["open"].to_numpy(dtype=float)[several], minlength=n)
    lateral = (
        (distinct_per_code(o, target, n) >= min_targets)
        & (distinct_per_code(o, h, n) >= min_spread)
        & (distinct_per_code(o, p, n) >= min_spread)
        & (closed >= min_closed * np.bincount(o, minlength=n))
    )
    return several & lateral[np.maximum(orig, 0)]
