"""ICMP tunnels: data (often a whole IP session) hidden in the payload of echo requests and replies.

Ordinary ping repeats one fixed payload size (56 bytes on Linux, macOS and the BSDs, 32 on Windows)
and the reply mirrors the request. Tunnel tools (ptunnel, icmpsh, hans, icmptunnel, pingtunnel) put
each chunk of the carried traffic in its own echo packet, so a tunnel shows as a stream of echoes
whose payload sizes vary and sit away from the standard ones, often up to the MTU.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..records.alert import Alert
from ..records.window import WindowData
from .base import Detector
from .columns import frame
from .params import COUNT, POSITIVE, SHARE
from .sliding import SlidingTable

ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8
ICMPV6_ECHO_REQUEST = 128
ICMPV6_ECHO_REPLY = 129
# Payload bytes that standard tools send: 0 nmap/hping3 probes, 32 Windows ping and Linux traceroute -I,
# 36 mtr, 56 Linux/macOS/BSD ping and fping, 64 Windows tracert, 72 Cisco IOS (100-byte datagrams).
USUAL_PING_SIZES = (0, 32, 36, 56, 64, 72)
LARGE_PAYLOAD = 512  # bytes: more than any default ping, a full chunk of tunnelled traffic

SCORE_FLOOR = 55.0  # a pair exactly at the thresholds
SCORE_VOLUME = 20.0  # reached when 1 MB has been carried in the horizon
SCORE_VOLUME_FROM_KB = 1.0  # volume points start above this many kB
SCORE_SIZES = 15.0  # reached at 4 x min_distinct_sizes distinct sizes
SCORE_LARGE = 10.0  # scaled by the share of payloads of LARGE_PAYLOAD bytes or more

_ROW_COLUMNS = {"ts": "float64", "requester": "object", "peer": "object", "request": "bool", "size": "int64"}


def echo_packets(packets: pd.DataFrame) -> pd.DataFrame:
    """ICMP/ICMPv6 echo requests and replies: ts, requester (who sent the request), peer, request, size."""
    icmp_type = packets["icmp_type"].to_numpy(dtype=np.int64, na_value=-1)
    transport = packets["transport"].to_numpy(dtype=object, na_value="")
    v4, v6 = transport == "icmp", transport == "icmpv6"
    request = (v4 & (icmp_type == ICMP_ECHO_REQUEST)) | (v6 & (icmp_type == ICMPV6_ECHO_REQUEST))
    reply = (v4 & (icmp_type == ICMP_ECHO_REPLY)) | (v6 & (icmp_type == ICMPV6_ECHO_REPLY))
    echo = request | reply
    for column in ("payload_len", "src_ip", "dst_ip"):
        echo &= ~packets[column].isna().to_numpy()
    at = np.flatnonzero(echo)
    is_request = request[at]
    src, dst = packets["src_ip"].to_numpy(dtype=object)[at], packets["dst_ip"].to_numpy(dtype=object)[at]
    return frame(
        {
            "ts": packets["ts"].to_numpy(dtype=np.float64)[at],
            "requester": np.where(is_request, src, dst),
            "peer": np.where(is_request, dst, src),
            "request": is_request,
            "size": packets["payload_len"].to_numpy(dtype=np.int64, na_value=0)[at],
        }
    )


def _empty_rows() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in _ROW_COLUMNS.items()})


def _is_size_sweep(requests: pd.DataFrame) -> bool:
    """Request sizes that only ever grow (or only shrink): an MTU or size sweep (``ping -g/-G``), not data."""
    steps = np.diff(requests["size"].to_numpy())
    return len(steps) >= 2 and bool((steps >= 0).all() or (steps <= 0).all())


class IcmpTunnelDetector(Detector):
    """Flags a host whose echo traffic with one peer varies in size the way carried data does.

    Per (requester, peer) pair, echo requests and their replies are remembered for ``horizon_s``,
    so a slow tunnel adds up across windows. The pair is a tunnel when, in that memory, it has at
    least ``min_packets`` echo packets in at least ``min_distinct_sizes`` distinct payload sizes, and
    at least ``min_odd_share`` of them have a size no standard ping tool uses (USUAL_PING_SIZES).
    Request sizes that only grow or only shrink are a size sweep and are left alone.

    Parameters
    ----------
    min_packets : int
        Echo requests and replies of the pair needed before judging it.
    min_distinct_sizes : int
        Distinct payload sizes that make the traffic more than ping: ``ping`` keeps one size, a
        person trying a few ``-s`` values reaches two or three.
    min_odd_share : float
        Share of echo packets whose size is not a standard ping size.
    horizon_s : float
        How long echo packets are remembered.
    max_packets_per_pair : int
        Most echo packets remembered per pair; older ones are dropped first.
    max_tracked_packets : int
        Most echo packets remembered in all; the oldest are dropped first.
    """

    name = "icmp_tunnel"
    _parameter_constraints = {
        "min_packets": COUNT,
        "min_distinct_sizes": COUNT,
        "min_odd_share": SHARE,
        "horizon_s": POSITIVE,
        "max_packets_per_pair": COUNT,
        "max_tracked_packets": COUNT,
    }

    def __init__(
        self,
        min_packets: int = 20,
        min_distinct_sizes: int = 5,
        min_odd_share: float = 0.5,
        horizon_s: float = 600.0,
        max_packets_per_pair: int = 2000,
        max_tracked_packets: int = 200_000,
    ) -> None:
        self.min_packets = min_packets
        self.min_distinct_sizes = min_distinct_sizes
        self.min_odd_share = min_odd_share
        self.horizon_s = horizon_s
        self.max_packets_per_pair = max_packets_per_pair
        self.max_tracked_packets = max_tracked_packets
        self._rows = _empty_rows()
        self._memory = self._new_memory()

    def _new_memory(self) -> SlidingTable:
        return SlidingTable(
            _empty_rows(),
            self.horizon_s,
            self.max_tracked_packets,
            by_time=True,
            per_group=(["requester", "peer"], self.max_packets_per_pair),
        )

    def partial_fit(self, window: WindowData) -> IcmpTunnelDetector:
        """Learn the most distinct echo payload sizes any baseline pair used, to quote in alerts."""
        stats = self._observe(window)
        self._fold_max("baseline_max_sizes_", int(stats["sizes"].max()) if len(stats) else 0)
        return self

    def _end_fit(self) -> None:
        self._rows = _empty_rows()
        self._memory = self._new_memory()

    def detect(self, window: WindowData) -> list[Alert]:
        stats = self._observe(window, candidates_only=True)
        alerts = []
        for (requester, peer), s in stats.iterrows():
            if s["packets"] < self.min_packets or s["sizes"] < self.min_distinct_sizes:
                continue
            if s["odd_share"] < self.min_odd_share:
                continue
            pair = self._rows[(self._rows["requester"] == requester) & (self._rows["peer"] == peer)]
            if not _is_size_sweep(pair[pair["request"]]):
                alerts.append(self._alert(requester, peer, s))
        return alerts

    def _observe(self, window: WindowData, candidates_only: bool = False) -> pd.DataFrame:
        """Fold the window's echo packets into memory; figures of the pairs this window touched.

        ``candidates_only`` leaves out pairs with too few packets or sizes for an alert (all of a usual window's).
        """
        new = echo_packets(window.packets)
        self._rows = self._memory.add(new, now=window.end)
        if new.empty:
            return pd.DataFrame()
        keys = ["requester", "peer"]
        rows = self._rows[self._touched(new, candidates_only)]
        rows = rows.assign(odd=~rows["size"].isin(USUAL_PING_SIZES), large=rows["size"] >= LARGE_PAYLOAD)
        return rows.groupby(keys).agg(
            start=("ts", "min"),
            end=("ts", "max"),
            packets=("ts", "size"),
            requests=("request", "sum"),
            sizes=("size", "nunique"),
            bytes=("size", "sum"),
            max_size=("size", "max"),
            odd_share=("odd", "mean"),
            large_share=("large", "mean"),
        )

    def _touched(self, new: pd.DataFrame, candidates_only: bool) -> np.ndarray:
        """Mask of the remembered rows of the (requester, peer) pairs in ``new``; with ``candidates_only``, of those
        pairs with at least ``min_packets`` packets in ``min_distinct_sizes`` sizes. In numpy: no group-by."""
        n = len(self._rows)
        requester = pd.factorize(np.concatenate([self._rows["requester"].to_numpy(), new["requester"].to_numpy()]))[0]
        peer = pd.factorize(np.concatenate([self._rows["peer"].to_numpy(), new["peer"].to_numpy()]))[0]
        pair = requester.astype(np.int64) * (int(peer.max()) + 1) + peer
        touched = np.isin(pair[:n], pair[n:])
        if not candidates_only or not touched.any():
            return touched
        pairs, packets = np.unique(pair[:n][touched], return_counts=True)
        size = pd.factorize(self._rows["size"].to_numpy())[0]
        pair_sizes = np.unique(pair[:n][touched] * (int(size.max()) + 1) + size[touched])
        _, sizes = np.unique(pair_sizes // (int(size.max()) + 1), return_counts=True)  # same pairs, same order
        busy = pairs[(packets >= self.min_packets) & (sizes >= self.min_distinct_sizes)]
        return touched & np.isin(pair[:n], busy)

    def _alert(self, requester: str, peer: str, s: pd.Series) -> Alert:
        kbytes = float(s["bytes"]) / 1000
        requests = int(s["requests"])
        replies = int(s["packets"]) - requests
        sizes = int(s["sizes"])
        score = (
            SCORE_FLOOR
            + SCORE_VOLUME * min(1.0, max(0.0, math.log10(kbytes / SCORE_VOLUME_FROM_KB)) / 3)
            + SCORE_SIZES * min(1.0, (sizes - self.min_distinct_sizes) / (3 * self.min_distinct_sizes))
            + SCORE_LARGE * float(s["large_share"])
        )
        compare = "ordinary ping repeats one fixed size (56 bytes on Linux, 32 on Windows)"
        if hasattr(self, "baseline_max_sizes_"):
            compare += f" and the most varied baseline pair used {self.baseline_max_sizes_}"
        explanation = (
            f"{requester} sent {requests} ICMP echo requests to {peer} ({replies} replies) in "
            f"{float(s['end'] - s['start']):.1f} s carrying {kbytes:.1f} kB in {sizes} distinct payload sizes "
            f"up to {int(s['max_size'])} bytes ({float(s['odd_share']):.0%} not a standard ping size), "
            f"data hidden in ping; {compare}."
        )
        return Alert(
            kind="icmp_tunnel",
            attacker=requester,
            victims=[peer],
            start=float(s["start"]),
            end=float(s["end"]),
            score=round(min(score, 99.0), 1),
            explanation=explanation,
            evidence={
                "echo_requests": requests,
                "echo_replies": replies,
                "distinct_sizes": sizes,
                "payload_kbytes": round(kbytes, 2),
                "max_payload": int(s["max_size"]),
                "odd_size_share": round(float(s["odd_share"]), 3),
                "large_payload_share": round(float(s["large_share"]), 3),
            },
            detector=self.name,
        )
