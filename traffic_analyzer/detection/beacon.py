"""C2 beaconing: a client that talks to one server at regular intervals, with jitter, in alike sizes.

Scoring follows RITA's idea: a beacon's check-ins are evenly spaced (small dispersion of the
intervals around their median) and alike in size, and there are enough of them. Check-ins are
"bursts" of client payload packets to one server port (a gap of ``burst_gap_s`` starts a new one),
so both styles are caught: a new connection per check-in, and keep-alives inside one long connection.
"""

from __future__ import annotations

import heapq
import ipaddress
from collections import Counter, deque
from functools import lru_cache

import numpy as np
import pandas as pd

from ..distinct import per_distinct
from ..records.alert import Alert
from ..records.window import WindowData
from .base import Detector
from .params import COUNT, POSITIVE

# Periodic by design, not C2: time, name resolution, discovery, DHCP; and interactive login services,
# whose keep-alives and password-guessing runs are regular too (the brute-force detector owns those).
BENIGN_PERIODIC_PORTS = frozenset(
    {53, 67, 68, 123, 137, 138, 161, 162, 1900, 5353, 5355, 3702, 21, 22, 23, 445, 1433, 3306, 3389, 5432, 5900}
)  # 161/162: SNMP polls and traps
SAME_PERIOD = 0.1  # median intervals this close (as a share) are one schedule
PULL_RATIO = 10.0  # answers this many times the request's size, every time: a scrape or a dashboard fetching data
PULL_MIN_BYTES = 10_000  # ... and at least this large (a C2 check-in without tasking gets a few hundred bytes)
# When the answers take at least FRESH_ANSWER_SIZES distinct sizes per check-in, they carry fresh content: a
# dashboard's figures, a feed. An idle implant gets a byte-identical answer until it is tasked: Empire's 56
# check-ins got 9 sizes (mostly 257 bytes and its multiples, where check-ins merged into one burst), the other
# C2 captures at hand one or two; the office's dashboards a new size nearly every time. Counting sizes, not
# their spread or the share far from the median, keeps tasking and merged check-ins from hiding an implant.
FRESH_ANSWER_SIZES = 0.5
MAX_BURSTS_PER_PAIR = 256  # check-ins remembered per (client, server, port)
MAX_PAIRS = 20_000


class BeaconDetector(Detector):
    """Flags regular check-ins from a client to one server port.

    Parameters
    ----------
    min_beacons : int
        Check-ins needed before judging: fewer intervals say little about regularity.
    max_jitter : float
        Largest allowed median absolute deviation of the intervals, as a share of the median interval
        (C2 frameworks add jitter of 10-30 %; interactive traffic is far less regular).
    max_jitter_alike : float
        A looser jitter limit for check-ins that are all but identical in size (spread under
        ``max_size_spread``) and numerous (``3 * min_beacons``): heavily jittered agents such as
        PowerShell Empire still send the same request every time.
    max_size_spread : float
        Median absolute deviation of check-in sizes, as a share of the median size, that counts as alike.
    min_interval_s, max_interval_s : float
        Intervals outside this range are streaming or housekeeping, not check-ins.
    burst_gap_s : float
        Payload packets closer than this belong to the same check-in.
    window_s : float
        How long check-ins are remembered (slow beacons need hours).
    shared_min_clients : int
        A server port that at least this many clients talk to within ``window_s`` is a shared service
        (an update server, an intranet site, a monitoring endpoint): its regular callers are a fleet
        polling it, not implants. A C2 server sees the one or two hosts it infected.
    monitor_min_servers : int
        A client that checks in with at least this many servers on one schedule (median intervals
        within 10 %) is a monitoring system (Prometheus scrapes, health checks), not an implant,
        which calls home to one or two servers.

    Polls that fetch data are not judged either: when the median answer is ``PULL_RATIO`` times the
    median request and at least ``PULL_MIN_BYTES`` (Prometheus scrapes, dashboards refreshing their
    figures), or when the answers take a new size at most check-ins (``FRESH_ANSWER_SIZES``),
    the client is reading fresh content, while an idle implant's check-in gets the same answer each time.
    """

    name = "beacon"
    _parameter_constraints = {
        "min_beacons": COUNT,
        "max_jitter": POSITIVE,
        "max_jitter_alike": POSITIVE,
        "max_size_spread": POSITIVE,
        "min_interval_s": POSITIVE,
        "max_interval_s": POSITIVE,
        "burst_gap_s": POSITIVE,
        "window_s": POSITIVE,
        "shared_min_clients": COUNT,
        "monitor_min_servers": COUNT,
    }

    def __init__(
        self,
        min_beacons: int = 8,
        max_jitter: float = 0.2,
        max_jitter_alike: float = 0.5,
        max_size_spread: float = 0.1,
        min_interval_s: float = 2.0,
        max_interval_s: float = 3600.0,
        burst_gap_s: float = 1.0,
        window_s: float = 6 * 3600.0,
        shared_min_clients: int = 3,
        monitor_min_servers: int = 3,
    ) -> None:
        self.min_beacons = min_beacons
        self.max_jitter = max_jitter
        self.max_jitter_alike = max_jitter_alike
        self.max_size_spread = max_size_spread
        self.min_interval_s = min_interval_s
        self.max_interval_s = max_interval_s
        self.burst_gap_s = burst_gap_s
        self.window_s = window_s
        self.shared_min_clients = shared_min_clients
        self.monitor_min_servers = monitor_min_servers
        self._bursts: dict[tuple[str, str, int], deque] = {}  # pair -> deque of [start, last, sent, received]
        self._clients: Counter = Counter()  # (server, port) -> pairs in _bursts, i.e. its distinct clients
        self._of_client: dict[str, set[tuple[str, str, int]]] = {}  # client -> its pairs in _bursts
        # (end of a pair's first check-in, pair), a min-heap: _forget visits only the pairs with something to
        # drop, not all 20,000 every window once the memory is full. An entry may be stale (the pair's first
        # check-in since grew or went): it is checked when it comes up.
        self._aging: list[tuple[float, tuple[str, str, int]]] = []

    def detect(self, window: WindowData) -> list[Alert]:
        p = window.packets
        touched = set()
        for ts, src, dst, sport, dport, size in _payload_packets(p):
            if dport >= sport:  # the server's answer: counted into the client's latest check-in
                bursts = self._bursts.get((dst, src, sport))
                if bursts and ts >= bursts[-1][0]:
                    bursts[-1][3] += size
                continue
            key = (src, dst, dport)
            bursts = self._bursts.get(key)
            if bursts is None:
                if len(self._bursts) >= MAX_PAIRS:
                    continue
                bursts = self._bursts[key] = deque(maxlen=MAX_BURSTS_PER_PAIR)
                self._clients[key[1:]] += 1
                self._of_client.setdefault(src, set()).add(key)
            if bursts and ts - bursts[-1][1] <= self.burst_gap_s:
                bursts[-1][1] = ts
                bursts[-1][2] += size
            else:
                first_goes = len(bursts) == MAX_BURSTS_PER_PAIR
                bursts.append([ts, ts, size, 0])  # on a full deque this drops the first check-in
                if first_goes or len(bursts) == 1:  # a new first check-in: when it ages
                    heapq.heappush(self._aging, (bursts[0][1], key))
            touched.add(key)
        if len(p):
            self._forget(float(p["ts"].max()))  # by the last packet seen, not the window's end
        periodic = [
            a
            for a in (
                self._judge(key)
                for key in touched
                if key in self._bursts and self._clients[key[1:]] < self.shared_min_clients
            )
            if a is not None
        ]
        schedules: dict[str, list[tuple[str, float]]] = {}  # client -> (server, median interval): once a window
        return [a for a in periodic if not self._is_monitor(a, schedules)]

    def _is_monitor(self, alert: Alert, schedules: dict[str, list[tuple[str, float]]]) -> bool:
        """Does the alert's client keep the same schedule with ``monitor_min_servers`` servers (a scraper)?"""
        client, period = alert.victims[0], alert.evidence["median_interval_s"]
        if client not in schedules:
            schedules[client] = [
                (server, float(np.median(np.diff([b[0] for b in bursts]))))
                for _, server, port in self._of_client.get(client, ())
                if len(bursts := self._bursts[(client, server, port)]) >= self.min_beacons
            ]
        servers = {server for server, median in schedules[client] if abs(median - period) <= SAME_PERIOD * period}
        return len(servers) >= self.monitor_min_servers

    def _judge(self, key: tuple[str, str, int]) -> Alert | None:
        bursts = np.array(self._bursts[key], dtype=float)
        if len(bursts) < self.min_beacons:
            return None
        intervals = np.diff(bursts[:, 0])
        median = float(np.median(intervals))
        if not self.min_interval_s <= median <= self.max_interval_s:
            return None
        jitter = float(np.median(np.abs(intervals - median)) / median)
        sizes = bursts[:, 2]
        answer = float(np.median(bursts[:, 3]))
        if answer >= max(PULL_MIN_BYTES, PULL_RATIO * float(np.median(sizes))):
            return None  # a data pull: scrape or dashboard refresh
        if len(np.unique(bursts[:, 3])) >= FRESH_ANSWER_SIZES * len(bursts):
            return None  # fresh content every time: a dashboard or a feed
        size_spread = float(np.median(np.abs(sizes - np.median(sizes))) / max(np.median(sizes), 1.0))
        alike = size_spread <= self.max_size_spread and len(bursts) >= 3 * self.min_beacons
        if jitter > (self.max_jitter_alike if alike else self.max_jitter):
            return None
        regularity = max(0.0, 1.0 - jitter / self.max_jitter)  # 1 = clockwork, 0 = at the jitter limit
        count_factor = min(1.0, (len(bursts) - self.min_beacons) / (3 * self.min_beacons))
        score = 45.0 + 25.0 * regularity + 10.0 * count_factor + (10.0 if size_spread <= self.max_size_spread else 0.0)
        client, server, port = key
        text = (
            f"{client} checked in with {server}:{port} {len(bursts)} times every {median:.1f} s "
            f"(jitter {jitter:.0%}, {np.median(sizes):.0f} bytes each, size spread {size_spread:.0%}); "
            f"intervals this even over {self.min_beacons}+ check-ins are typical of C2 beacons, not of people."
        )
        return Alert(
            kind="c2_beacon",
            attacker=server,
            victims=[client],
            start=float(bursts[0, 0]),
            end=float(bursts[-1, 1]),
            score=round(min(score, 95.0), 1),
            explanation=text,
            evidence={
                "check_ins": len(bursts),
                "median_interval_s": round(median, 2),
                "jitter": round(jitter, 3),
                "median_bytes": float(np.median(sizes)),
                "size_spread": round(size_spread, 3),
                "median_response_bytes": answer,
                "port": port,
            },
            detector=self.name,
        )

    def _forget(self, now: float) -> None:
        """Drop check-ins older than ``window_s`` before ``now``, and pairs left with none."""
        horizon = now - self.window_s
        aging = self._aging
        while aging and aging[0][0] < horizon:
            _, key = heapq.heappop(aging)
            bursts = self._bursts.get(key)
            if bursts is None:
                continue  # the pair went already: a stale entry
            while bursts and bursts[0][1] < horizon:
                bursts.popleft()
            if bursts:
                heapq.heappush(aging, (bursts[0][1], key))
                continue
            del self._bursts[key]
            self._clients[key[1:]] -= 1
            if not self._clients[key[1:]]:
                del self._clients[key[1:]]
            pairs = self._of_client[key[0]]
            pairs.discard(key)
            if not pairs:
                del self._of_client[key[0]]
        if len(aging) > 2 * len(self._bursts) + 1024:  # mostly stale entries: start over from the pairs
            self._aging = [(bursts[0][1], key) for key, bursts in self._bursts.items()]
            heapq.heapify(self._aging)


def _payload_packets(p: pd.DataFrame) -> zip:
    """(ts, src, dst, src_port, dst_port, payload) of the packets with payload, in time order, as Python values.

    Client packets to periodic-by-design ports or to group addresses are left out here, in numpy,
    rather than row by row: the loop in ``detect`` would skip them without effect.
    """
    has = (p["payload_len"] > 0).fillna(False) & p["dst_port"].notna() & p["src_port"].notna()
    at = np.flatnonzero(has.to_numpy(dtype=bool))
    if not len(at):
        return zip()
    at = at[np.argsort(p["ts"].to_numpy(dtype=float)[at], kind="stable")]
    sport = p["src_port"].to_numpy(dtype=np.int64, na_value=0)[at]
    dport = p["dst_port"].to_numpy(dtype=np.int64, na_value=0)[at]
    dst = p["dst_ip"].to_numpy(dtype=object)[at]
    client = dport < sport
    skip = client & np.isin(dport, list(BENIGN_PERIODIC_PORTS))
    ask = client & ~skip
    if ask.any():
        skip[ask] = per_distinct(pd.Series(dst[ask], dtype=object), _group_addresses)
    at, sport, dport, dst = at[~skip], sport[~skip], dport[~skip], dst[~skip]
    return zip(
        p["ts"].to_numpy(dtype=float)[at].tolist(),
        p["src_ip"].to_numpy(dtype=object)[at].tolist(),
        dst.tolist(),
        sport.tolist(),
        dport.tolist(),
        p["payload_len"].to_numpy(dtype=np.int64, na_value=0)[at].tolist(),
        strict=True,
    )


def _group_addresses(addresses: pd.Series) -> np.ndarray:
    return np.array([_is_group_address(a) for a in addresses], dtype=bool)


@lru_cache(maxsize=65536)
def _is_group_address(ip) -> bool:
    try:
        addr = ipaddress.ip_address(str(ip))
    except ValueError:
        return True
    return addr.is_multicast or str(ip).endswith(".255")
