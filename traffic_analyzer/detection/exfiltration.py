"""Data exfiltration: a host sending far more than it receives to one peer, in volume."""

from __future__ import annotations

import ipaddress
import math

import numpy as np
import pandas as pd

from ..records.alert import Alert
from ..records.window import WindowData
from .base import Detector
from .columns import columns_of
from .params import COUNT, POSITIVE

SCORE_FLOOR = 45.0
SCORE_SPAN = 40.0
SCORE_FULL_RATIO = 20.0  # at this many times min_bytes the score reaches SCORE_FLOOR + SCORE_SPAN
MAX_DESTINATIONS = 10_000  # upload destinations whose uploaders are remembered
EXTERNAL_BONUS = 10.0  # the data left the site
LOCAL_SCORE_CAP = 35.0  # an upload to a host of the site is at most a low note: a backup to the NAS, or staging
# The site's own address ranges, as Zeek's Site::local_nets defaults them: private, shared (CGNAT), link-local,
# loopback and unique-local. Everything else is outside, the documentation and benchmarking ranges included,
# which labs use for their "Internet" (Python's is_global would call those local).
LOCAL_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "127.0.0.0/8",
        "fc00::/7", "fe80::/10", "::1/128",
    )
)  # fmt: skip
_FLOW_COLUMNS = ["uid", "orig_h", "resp_h", "resp_p", "ts", "last_ts", "orig_bytes", "resp_bytes"]


class ExfiltrationDetector(Detector):
    """Flags a large, lopsided upload from one host to one peer.

    Data that leaves the site (a peer outside LOCAL_NETWORKS) scores higher; an upload to a host of the
    site is at most a low note, since nightly backups to a NAS are as large and as lopsided.

    Parameters
    ----------
    min_bytes : int
        Payload bytes sent to one peer within ``window_s`` that count as a large upload.
    min_upload_ratio : float
        Bytes sent over bytes received: backups and uploads are lopsided, browsing and streaming are not.
    window_s : float
        How long uploads add up.
    shared_min_uploaders : int
        A destination that at least this many local hosts made such uploads to within ``shared_window_s`` is a
        shared service (the site's cloud sync, its backup server): the uploads after that are not raised.
        Exfiltration goes to a server an intruder controls, from the one or two hosts it stages data on.
    shared_window_s : float
        How long a destination's uploaders are remembered (a day: cloud syncs and nightly backups come daily).
    """

    name = "exfiltration"
    _parameter_constraints = {
        "min_bytes": COUNT,
        "min_upload_ratio": POSITIVE,
        "window_s": POSITIVE,
        "shared_min_uploaders": COUNT,
        "shared_window_s": POSITIVE,
    }

    def __init__(
        self,
        min_bytes: int = 20_000_000,
        min_upload_ratio: float = 5.0,
        window_s: float = 600.0,
        shared_min_uploaders: int = 3,
        shared_window_s: float = 86_400.0,
    ) -> None:
        self.min_bytes = min_bytes
        self.min_upload_ratio = min_upload_ratio
        self.window_s = window_s
        self.shared_min_uploaders = shared_min_uploaders
        self.shared_window_s = shared_window_s
        self._uploaders: dict[str, dict[str, float]] = {}  # destination -> {uploader: its latest upload's end}
        self._flows = pd.DataFrame(columns=_FLOW_COLUMNS)
        # Each remembered row's serial number, and the serial of each uid's latest row: a flow seen again is
        # found by its uid in the window's few flows, not by looking up every remembered one.
        self._serials = np.zeros(0, dtype=np.int64)
        self._serial_of: dict = {}
        self._next_serial = 0
        self._last_seen = float("-inf")  # the latest packet seen: memory ages by traffic time, not window bounds

    def detect(self, window: WindowData) -> list[Alert]:
        seen = (window.packets["ts"].max(), window.flows["last_ts"].max())  # NaN for an empty table
        self._last_seen = max([self._last_seen, *(float(t) for t in seen if pd.notna(t))])
        self._remember(window.flows)
        if self._flows.empty or self._flows["orig_bytes"].sum() < self.min_bytes:  # no pair can reach it
            return []
        big = self._big_pairs()
        for src, dst, row in big:
            self._uploaders.setdefault(dst, {})[src] = row["end"]
        self._forget_uploaders()
        return [self._alert(src, dst, row) for src, dst, row in big if not self._shared(dst)]

    def _shared(self, dst: str) -> bool:
        """Did ``shared_min_uploaders`` local hosts make large uploads to ``dst`` lately (a shared service)?"""
        return len(self._uploaders.get(dst, ())) >= self.shared_min_uploaders

    def _forget_uploaders(self) -> None:
        """Uploads older than ``shared_window_s``, and past MAX_DESTINATIONS the destinations seen longest ago."""
        horizon = self._last_seen - self.shared_window_s
        for dst in list(self._uploaders):
            kept = {src: end for src, end in self._uploaders[dst].items() if end >= horizon}
            if kept:
                self._uploaders[dst] = kept
            else:
                del self._uploaders[dst]
        while len(self._uploaders) > MAX_DESTINATIONS:
            del self._uploaders[min(self._uploaders, key=lambda d: max(self._uploaders[d].values()))]

    def _remember(self, flows: pd.DataFrame) -> None:
        """Fold the window's flows in: each flow's latest record, if it was still sending within ``window_s``."""
        rows, serials = self._flows, self._serials
        if len(flows):
            new = columns_of(flows, _FLOW_COLUMNS)
            uids = new["uid"].to_numpy(dtype=object).tolist()
            fresh = np.arange(self._next_serial, self._next_serial + len(uids))
            self._next_serial += len(uids)
            replaced = [self._serial_of[u] for u in uids if u in self._serial_of]
            self._serial_of.update(zip(uids, fresh.tolist(), strict=True))  # the last record of a uid wins
            latest = np.concatenate(
                [~np.isin(serials, replaced), ~pd.Index(uids, dtype=object).duplicated(keep="last")]
            )
            rows = pd.concat([rows, new], ignore_index=True) if len(rows) else new
            serials = np.concatenate([serials, fresh])
        else:
            latest = np.ones(len(rows), dtype=bool)
        keep = latest & (rows["last_ts"].to_numpy(dtype=float) >= self._last_seen - self.window_s)  # still sending
        if not keep.all():
            gone = np.flatnonzero(~keep)
            for uid, serial in zip(
                rows["uid"].to_numpy(dtype=object)[gone].tolist(), serials[gone].tolist(), strict=True
            ):
                if self._serial_of.get(uid) == serial:  # no newer record of the flow is kept
                    del self._serial_of[uid]
            rows, serials = rows.take(np.flatnonzero(keep)), serials[keep]
        self._flows, self._serials = rows, serials

    def _big_pairs(self) -> list[tuple[str, str, dict]]:
        """(source, destination, totals) of the pairs past both thresholds, in sorted order: a group-by's sums,
        first and last times in numpy, as the memory holds every flow of ``window_s``. Totals are Python
        numbers, as a frame's rows give them."""
        flows = self._flows
        src, sources = pd.factorize(flows["orig_h"].to_numpy(dtype=object))  # the few big pairs are sorted below
        dst, destinations = pd.factorize(flows["resp_h"].to_numpy(dtype=object))
        known = np.flatnonzero((src >= 0) & (dst >= 0))  # as a group-by, a flow with a missing address counts nowhere
        pairs, pair = np.unique(src[known].astype(np.int64) * len(destinations) + dst[known], return_inverse=True)
        sent, received = np.zeros(len(pairs), dtype=np.int64), np.zeros(len(pairs), dtype=np.int64)
        np.add.at(sent, pair, flows["orig_bytes"].to_numpy(dtype=np.int64)[known])
        np.add.at(received, pair, flows["resp_bytes"].to_numpy(dtype=np.int64)[known])
        big = np.flatnonzero((sent >= self.min_bytes) & (sent >= self.min_upload_ratio * np.maximum(received, 1)))
        if not len(big):
            return []
        start, end = np.full(len(pairs), np.inf), np.full(len(pairs), -np.inf)
        np.minimum.at(start, pair, flows["ts"].to_numpy(dtype=float)[known])
        np.maximum.at(end, pair, flows["last_ts"].to_numpy(dtype=float)[known])
        ports = flows["resp_p"].to_numpy(dtype=object)[known]
        found = []
        for g in big.tolist():
            totals = {
                "sent": int(sent[g]),
                "received": int(received[g]),
                "start": float(start[g]),
                "end": float(end[g]),
            }
            totals["ports"] = sorted({int(x) for x in ports[pair == g]})[:5]
            found.append((sources[pairs[g] // len(destinations)], destinations[pairs[g] % len(destinations)], totals))
        return sorted(found, key=lambda f: (f[0], f[1]))

    def _alert(self, src: str, dst: str, row: dict) -> Alert:
        external = _is_external(dst)
        ratio = row["sent"] / self.min_bytes
        score = SCORE_FLOOR + SCORE_SPAN * min(1.0, math.log(ratio) / math.log(SCORE_FULL_RATIO))
        score = score + EXTERNAL_BONUS if external else min(score, LOCAL_SCORE_CAP)
        text = (
            f"{src} sent {row['sent'] / 1e6:.1f} MB to {'external host ' if external else 'local host '}{dst} "
            f"(ports {', '.join(map(str, row['ports']))}) and received {row['received'] / 1e6:.2f} MB in "
            f"{row['end'] - row['start']:.0f} s; the threshold is {self.min_bytes / 1e6:.0f} MB at "
            f"{self.min_upload_ratio:g}x more sent than received."
        )
        if not external:
            text += " The data stayed inside the site (a backup to a local server, or data staged for later?)."
        return Alert(
            kind="data_exfiltration",
            attacker=src,
            victims=[dst],
            start=float(row["start"]),
            end=float(row["end"]),
            score=round(min(score, 95.0), 1),
            explanation=text,
            evidence={
                "bytes_sent": int(row["sent"]),
                "bytes_received": int(row["received"]),
                "ports": row["ports"],
                "external": external,
            },
            detector=self.name,
        )


def _is_external(ip: str) -> bool:
    """Outside the site's LOCAL_NETWORKS (an unreadable address counts as local: nothing is claimed of it)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return not any(address in network for network in LOCAL_NETWORKS if network.version == address.version)
