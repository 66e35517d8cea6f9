"""SYN floods: one victim buried in bare SYNs that never become connections, often from spoofed sources."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..records.alert import Alert
from ..records.packets import TCP_ACK, TCP_SYN
from ..records.window import WindowData
from .base import Detector
from .columns import frame
from .history import completed, sent_syn
from .params import COUNT, POSITIVE, SHARE
from .sliding import SlidingTable
from .span import burst_span

RATE_FLOOR_S = 1.0  # rates are measured over at least this long, so a burst of a few ms is not "100k/s"
SCORE_FLOOR = 60.0  # score at exactly min_rate_pps: a flood is already an attack on availability
SCORE_SPAN = 38.0  # added as the rate grows to SCORE_FULL_RATIO x min_rate_pps
SCORE_FULL_RATIO = 100.0
SAMPLE_SOURCES = 10  # source addresses listed in the evidence
FLOOD_GAP_S = 300.0  # a flood that pauses for less than this and resumes is the same flood (running totals)
MAX_FLOODS = 1000  # victims whose running totals are kept (the most recently flooded)

_SYN_COLUMNS = {"ts": "float64", "src_ip": object, "dst_ip": object, "dst_port": "Int32"}
_ATTEMPT_COLUMNS = {"uid": object, "ts": "float64", "resp_h": object, "completed": "float64"}


class SynFloodDetector(Detector):
    """Flags a host that receives bare SYNs (SYN without ACK) fast, to one service, and mostly never completes them.

    Parameters
    ----------
    min_syns : int
        Bare SYNs to one victim within ``window_s`` before its rate is judged, so a handful of
        retransmissions in one short burst never counts.
    min_rate_pps : float
        Bare SYNs per second to one victim (measured over at least 1 s). Clients open a few
        connections per second; hping3/scapy floods send hundreds to hundreds of thousands.
    max_completed_share : float
        Largest share of the victim's connection attempts whose originator went on to ACK or send
        data. A busy server completes nearly every handshake (so do brute-force tools); spoofed or
        abandoned flood SYNs complete none.
    min_port_share : float
        Share of the SYNs that must go to the victim's busiest port. A flood aims at one service;
        a port scan spreads one or two SYNs over each of many ports and is left to the scan detector.
    min_spoofed_sources : int
        Distinct sources that make a flood even when destination ports are random (Mirai's default),
        provided each sends at most ``max_syns_per_source`` on average: spoofed floods use a fresh
        address per packet, while a scan with a few decoys repeats each source many times.
    max_syns_per_source : float
        Mean SYNs per source allowed for the spread-ports case above.
    dominant_share : float
        Share of the SYNs one source must send to be named the attacker; otherwise the attacker is
        ``"*"`` (many spoofed sources) and the evidence gives the number of distinct sources.
    window_s : float
        How far back SYNs are remembered; rates and shares are judged over this span.
    max_tracked : int
        Most SYN and attempt records kept (the newest), bounding memory during a flood of millions.

    The evidence of a flood adds up while it lasts (pauses shorter than FLOOD_GAP_S included):
    ``syns`` is the total, ``peak_syn_rate_pps`` and ``distinct_sources`` the highest rate and
    the most distinct sources seen within one ``window_s``; ``recent_*`` describe the latest one.
    """

    name = "syn_flood"
    _parameter_constraints = {
        "min_syns": COUNT,
        "min_rate_pps": POSITIVE,
        "max_completed_share": SHARE,
        "min_port_share": SHARE,
        "min_spoofed_sources": COUNT,
        "max_syns_per_source": POSITIVE,
        "dominant_share": SHARE,
        "window_s": POSITIVE,
        "max_tracked": COUNT,
    }

    def __init__(
        self,
        min_syns: int = 200,
        min_rate_pps: float = 50.0,
        max_completed_share: float = 0.2,
        min_port_share: float = 0.5,
        min_spoofed_sources: int = 100,
        max_syns_per_source: float = 3.0,
        dominant_share: float = 0.5,
        window_s: float = 10.0,
        max_tracked: int = 500_000,
    ) -> None:
        self.min_syns = min_syns
        self.min_rate_pps = min_rate_pps
        self.max_completed_share = max_completed_share
        self.min_port_share = min_port_share
        self.min_spoofed_sources = min_spoofed_sources
        self.max_syns_per_source = max_syns_per_source
        self.dominant_share = dominant_share
        self.window_s = window_s
        self.max_tracked = max_tracked
        self._syns = SlidingTable(_empty(_SYN_COLUMNS), window_s, max_tracked)
        last = {c: "last" for c in _ATTEMPT_COLUMNS if c != "uid"}
        self._attempts = SlidingTable(_empty(_ATTEMPT_COLUMNS), window_s, max_tracked, key="uid", merge=last)
        self._floods: dict[str, dict] = {}  # victim -> running totals and peaks of the ongoing flood

    def partial_fit(self, window: WindowData) -> SynFloodDetector:
        """Remember the highest bare-SYN rate any baseline host received in one window, to quote in alerts."""
        syns = _bare_syns(window.packets)
        span = max(window.end - window.start, RATE_FLOOR_S)
        peak = float(syns.groupby("dst_ip").size().max()) / span if len(syns) else 0.0
        self._fold_max("baseline_max_rate_pps_", round(peak, 1))
        return self

    def detect(self, window: WindowData) -> list[Alert]:
        syns_now = self._syns.add(_bare_syns(window.packets), now=window.end)
        attempts = self._attempts.add(_attempts(window.flows), now=window.end)
        self._floods = {v: f for v, f in self._floods.items() if f["end"] >= window.end - FLOOD_GAP_S}
        if len(syns_now) < self.min_syns:
            return []
        busy = self._busy_victims(syns_now)
        if not busy:
            return []
        alerts = []
        syns_of = dict(tuple(syns_now[syns_now["dst_ip"].isin(busy)].groupby("dst_ip", sort=False)))
        tried_of = dict(tuple(attempts[attempts["resp_h"].isin(busy)].groupby("resp_h", sort=False)))
        for victim in busy:
            syns = syns_of[victim]
            tried = tried_of.get(victim, attempts.iloc[:0])
            completed = float(tried["completed"].mean()) if len(tried) else 0.0
            if completed > self.max_completed_share or not self._is_flood_shaped(syns):
                continue
            alerts.append(self._alert(victim, syns, completed))
        if len(self._floods) > MAX_FLOODS:
            newest = sorted(self._floods, key=lambda v: self._floods[v]["end"])[-MAX_FLOODS:]
            self._floods = {v: self._floods[v] for v in newest}
        return alerts

    def _busy_victims(self, syns: pd.DataFrame) -> list[str]:
        """Victims (sorted) with at least ``min_syns`` remembered SYNs at ``min_rate_pps`` or more.

        A group-by's size, first and last time per victim, in numpy: most windows have none.
        """
        victim, victims = pd.factorize(syns["dst_ip"].to_numpy(dtype=object), sort=True)
        known = victim >= 0  # as a group-by, a SYN without a destination counts nowhere
        victim, ts = victim[known], syns["ts"].to_numpy(dtype=np.float64)[known]
        size = np.bincount(victim, minlength=len(victims))
        first, last = np.full(len(victims), np.inf), np.full(len(victims), -np.inf)
        np.minimum.at(first, victim, ts)
        np.maximum.at(last, victim, ts)
        rate = size / np.maximum(last - first, RATE_FLOOR_S)
        return [victims[i] for i in np.flatnonzero((size >= self.min_syns) & (rate >= self.min_rate_pps))]

    def _is_flood_shaped(self, syns: pd.DataFrame) -> bool:
        """Aimed at one service, or sprayed from a crowd of one-shot (spoofed) sources; a scan is neither."""
        port_share = syns["dst_port"].value_counts(normalize=True).iloc[0]
        sources = syns["src_ip"].nunique()
        spoofed = sources >= self.min_spoofed_sources and len(syns) / sources <= self.max_syns_per_source
        return bool(port_share >= self.min_port_share or spoofed)

    def _alert(self, victim: str, syns: pd.DataFrame, completed: float) -> Alert:
        start, end = float(syns["ts"].min()), float(syns["ts"].max())
        rate = len(syns) / max(end - start, RATE_FLOOR_S)
        sources = syns["src_ip"].value_counts()
        flood = self._floods.setdefault(
            victim, {"start": burst_span(syns["ts"])[0], "end": -math.inf, "syns": 0, "rate": 0.0, "sources": 0}
        )
        flood["syns"] += int((syns["ts"] > flood["end"]).sum())  # the SYNs not counted yet
        flood["end"] = end
        flood["rate"] = max(flood["rate"], rate)
        flood["sources"] = max(flood["sources"], len(sources))
        top_share = float(sources.iloc[0] / len(syns))
        attacker = str(sources.index[0]) if top_share >= self.dominant_share else "*"
        ports = syns["dst_port"].value_counts()
        port, port_share = int(ports.index[0]), float(ports.iloc[0] / len(syns))
        score = SCORE_FLOOR + SCORE_SPAN * min(1.0, math.log(rate / self.min_rate_pps) / math.log(SCORE_FULL_RATIO))
        if hasattr(self, "baseline_max_rate_pps_"):
            compare = f"the busiest baseline host received {self.baseline_max_rate_pps_:g} SYN/s"
        else:
            compare = f"{rate / self.min_rate_pps:.0f}x the {self.min_rate_pps:g} SYN/s flood threshold"
        aim = f"{port_share:.0%} to tcp/{port}" if port_share >= self.min_port_share else f"to {len(ports):,} ports"
        who = f"from {attacker}" if attacker != "*" else f"from {len(sources):,} distinct (spoofed) sources"
        explanation = (
            f"{victim} received {flood['syns']:,} bare SYNs in {end - flood['start']:.1f} s "
            f"({rate:,.0f}/s over the last {max(end - start, RATE_FLOOR_S):.1f} s {who}), "
            f"{aim} and {completed:.0%} completing the handshake; {compare}."
        )
        return Alert(
            kind="syn_flood",
            attacker=attacker,
            victims=[victim],
            start=flood["start"],
            end=end,
            score=round(score, 1),
            explanation=explanation,
            evidence={
                "syns": flood["syns"],
                "duration_s": round(end - flood["start"], 3),
                "peak_syn_rate_pps": round(flood["rate"], 1),
                "distinct_sources": flood["sources"],
                "recent_syn_rate_pps": round(rate, 1),
                "recent_distinct_sources": len(sources),
                "top_source_share": round(top_share, 3),
                "target_port": port,
                "target_port_share": round(port_share, 3),
                "distinct_ports": len(ports),
                "completed_share": round(completed, 3),
                "sample_sources": [str(s) for s in sources.index[:SAMPLE_SOURCES]],
            },
            detector=self.name,
        )


def _bare_syns(packets: pd.DataFrame) -> pd.DataFrame:
    """TCP packets with SYN and without ACK: connection openings (and flood packets)."""
    flags = packets["tcp_flags"].to_numpy(dtype=np.int64, na_value=0)
    bare = packets["transport"].to_numpy(dtype=object, na_value="") == "tcp"
    bare &= (flags & TCP_SYN > 0) & (flags & TCP_ACK == 0) & ~packets["dst_ip"].isna().to_numpy()
    at = np.flatnonzero(bare)
    return frame(
        {
            "ts": packets["ts"].to_numpy(dtype=np.float64)[at],
            "src_ip": packets["src_ip"].to_numpy(dtype=object)[at],
            "dst_ip": packets["dst_ip"].to_numpy(dtype=object)[at],
            "dst_port": packets["dst_port"].array[at].astype("Int32"),
        }
    )


def _attempts(flows: pd.DataFrame) -> pd.DataFrame:
    """TCP connections opened by a bare SYN, and whether the originator completed the handshake."""
    if flows.empty:
        return _empty(_ATTEMPT_COLUMNS)
    history = flows["history"].fillna("")
    opened = (flows["proto"].to_numpy(dtype=object, na_value="") == "tcp") & sent_syn(history)
    at = np.flatnonzero(opened)
    return frame(
        {
            "uid": flows["uid"].to_numpy(dtype=object)[at],
            "ts": flows["ts"].to_numpy(dtype=np.float64)[at],
            "resp_h": flows["resp_h"].to_numpy(dtype=object)[at],
            "completed": completed(history.iloc[at]).astype(np.float64),
        }
    )


# Per-history tests, each history tested once across windows.


def _empty(dtypes: dict[str, object]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})
