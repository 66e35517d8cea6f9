"""CAM-table (MAC) flooding: frames from thousands of made-up source MACs, to overflow a switch's address table.

Once the table is full the switch floods every frame to every port, which lets the attacker
sniff the LAN. macof and scapy floods draw each source MAC at random, so about half of them
have the group (multicast) bit set, which no real sender may use, and each address sends one
frame and is never seen again.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..distinct import Remembered, per_distinct
from ..records.alert import Alert
from ..records.window import WindowData
from .base import Detector
from .columns import frame
from .params import COUNT, POSITIVE, SHARE
from .sliding import SlidingTable

GROUP_BIT_DIGITS = "13579bdf"  # second hex digit of a MAC whose first octet has the group (multicast) bit
LOCAL_BIT_DIGITS = "2367abef"  # ... and of one with the locally-administered bit (also set by phones' private MACs)
RATE_FLOOR_S = 1.0  # rates are measured over at least this long, so a burst of a few ms is not "10k/s"
SCORE_FLOOR = 50.0  # score at exactly the alert threshold
RATE_SPAN = 25.0  # added as the new-MAC rate grows to SCORE_FULL_RATIO x min_new_mac_rate
INVALID_SPAN = 20.0  # added as the group-bit share grows to RANDOM_GROUP_SHARE
SCORE_FULL_RATIO = 100.0
RANDOM_GROUP_SHARE = 0.5  # share of uniformly random MACs that have the group bit
SAMPLE_MACS = 10  # MACs listed in the evidence

_NEW_COLUMNS = {"mac": object, "ts": "float64", "frames": "int64"}


class MacFloodDetector(Detector):
    """Flags a burst of never-seen source MACs: many, fast, and (for random ones) with the invalid group bit.

    Parameters
    ----------
    min_new_macs : int
        New source MACs within ``window_s`` before the burst is judged. A LAN gains a few
        addresses a minute; a flood brings thousands per second.
    min_new_mac_rate : float
        New source MACs per second (measured over at least 1 s).
    min_group_share : float
        Share of the new source MACs with the group bit set that makes the burst a flood at any
        rate above ``min_new_mac_rate``. Real senders never set it; random MACs set it half the time.
    certain_rate : float
        New source MACs per second that make a flood even without group-bit MACs (a tool drawing
        only valid unicast MACs). Even the first seconds of a capture on a big switch's mirror port
        show far fewer.
    window_s : float
        How far back new MACs are remembered; rates are judged over this span.
    memory_s : float
        How long a seen MAC stays known, like a switch's CAM aging time (300 s by default on most).
    max_known : int
        Most known MACs and new sightings kept (the most recent), bounding memory during a flood.

    The evidence of a flood adds up while it lasts: ``new_macs`` is the total, ``peak_new_macs_per_s``
    the highest rate within one ``window_s``; ``recent_*`` and the shares describe the latest one.
    """

    name = "mac_flood"
    _parameter_constraints = {
        "min_new_macs": COUNT,
        "min_new_mac_rate": POSITIVE,
        "min_group_share": SHARE,
        "certain_rate": POSITIVE,
        "window_s": POSITIVE,
        "memory_s": POSITIVE,
        "max_known": COUNT,
    }

    def __init__(
        self,
        min_new_macs: int = 50,
        min_new_mac_rate: float = 20.0,
        min_group_share: float = 0.05,
        certain_rate: float = 1000.0,
        window_s: float = 10.0,
        memory_s: float = 300.0,
        max_known: int = 200_000,
    ) -> None:
        self.min_new_macs = min_new_macs
        self.min_new_mac_rate = min_new_mac_rate
        self.min_group_share = min_group_share
        self.certain_rate = certain_rate
        self.window_s = window_s
        self.memory_s = memory_s
        self.max_known = max_known
        self._known = pd.Series(dtype="float64")  # MAC -> last time seen
        first_sightings = pd.DataFrame({c: pd.Series(dtype=t) for c, t in _NEW_COLUMNS.items()})
        self._first_sightings = SlidingTable(first_sightings, window_s, max_known)
        self._new = first_sightings  # the recent first sightings, as of the last window
        self._flood: dict | None = None  # running totals and peaks of the ongoing flood

    def partial_fit(self, window: WindowData) -> MacFloodDetector:
        """Remember the most distinct source MACs any one baseline window showed, to quote in alerts."""
        self._fold_max("baseline_max_macs_", int(window.packets["src_mac"].nunique()))
        return self

    def detect(self, window: WindowData) -> list[Alert]:
        macs, first, last, frames = _sightings(window.packets)
        known = set(self._known.index.tolist())
        first_time = np.fromiter((m not in known for m in macs.tolist()), dtype=bool, count=len(macs))
        self._learn(macs, last, window.end)
        new = frame({"mac": macs[first_time], "ts": first[first_time], "frames": frames[first_time]})
        self._new = self._first_sightings.add(new, now=window.end)
        if len(self._new) < self.min_new_macs:
            self._flood = None  # any earlier burst has left the window: the next one is a new flood
            return []
        start, end = float(self._new["ts"].min()), float(self._new["ts"].max())
        rate = len(self._new) / max(end - start, RATE_FLOOR_S)
        group = float(_has_bit(self._new["mac"], GROUP_BIT_DIGITS).mean())
        if rate < self.min_new_mac_rate or (group < self.min_group_share and rate < self.certain_rate):
            return []
        return [self._alert(start, end, rate, group, len(new))]

    def _learn(self, macs: np.ndarray, last_seen: np.ndarray, now: float) -> None:
        """Fold the window's MACs (and when each was last seen) into ``_known``, sorted by MAC, recent ones only."""
        if len(self._known):
            macs = np.concatenate([self._known.index.to_numpy(dtype=object), macs])
            last_seen = np.concatenate([self._known.to_numpy(dtype=float), last_seen])
        mac, distinct = pd.factorize(macs, sort=True)
        last = np.full(len(distinct), -np.inf)
        np.maximum.at(last, mac, last_seen)
        keep = last >= now - self.memory_s
        known = pd.Series(last[keep], index=pd.Index(distinct[keep], dtype="str", name="src_mac"), name="last")
        self._known = known.nlargest(self.max_known) if len(known) > self.max_known else known

    def _alert(self, start: float, end: float, rate: float, group: float, added: int) -> Alert:
        new = self._new
        if self._flood is None:  # the first alert counts every new MAC still remembered
            self._flood = {"start": start, "new_macs": len(new), "rate": rate}
        else:
            self._flood["new_macs"] += added
            self._flood["rate"] = max(self._flood["rate"], rate)
        local = float(_has_bit(new["mac"], LOCAL_BIT_DIGITS).mean())
        single = float((new["frames"] == 1).mean())
        ratio = max(rate / self.min_new_mac_rate, 1.0)
        score = (
            SCORE_FLOOR
            + RATE_SPAN * min(1.0, math.log(ratio) / math.log(SCORE_FULL_RATIO))
            + INVALID_SPAN * min(1.0, group / RANDOM_GROUP_SHARE)
        )
        if hasattr(self, "baseline_max_macs_"):
            compare = f"no baseline window showed more than {self.baseline_max_macs_} distinct source MACs"
        else:
            compare = f"{ratio:.0f}x the {self.min_new_mac_rate:g}/s alert threshold"
        explanation = (
            f"{len(new):,} never-seen source MACs appeared in {end - start:.2f} s ({rate:,.0f}/s), "
            f"{group:.0%} of them with the group bit no real sender uses and {single:.0%} sending a single frame; "
            f"{compare}."
        )
        return Alert(
            kind="mac_flood",
            attacker="*",
            victims=["many"],
            start=self._flood["start"],
            end=end,
            score=round(score, 1),
            explanation=explanation,
            evidence={
                "new_macs": self._flood["new_macs"],
                "duration_s": round(end - self._flood["start"], 3),
                "peak_new_macs_per_s": round(self._flood["rate"], 1),
                "recent_new_macs": len(new),
                "recent_new_macs_per_s": round(rate, 1),
                "group_bit_share": round(group, 3),
                "locally_administered_share": round(local, 3),
                "single_frame_share": round(single, 3),
                "frames": int(new["frames"].sum()),
                "sample_macs": [str(m) for m in new["mac"].iloc[:SAMPLE_MACS]],
            },
            detector=self.name,
        )


def _sightings(packets: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per source MAC (lower case) in the window, in order of first appearance: first and last time seen, frames."""
    at = np.flatnonzero(~packets["src_mac"].isna().to_numpy())
    mac, macs = pd.factorize(_lower(packets["src_mac"].iloc[at]))
    ts = packets["ts"].to_numpy(dtype=float)[at]
    first, last = np.full(len(macs), np.inf), np.full(len(macs), -np.inf)
    np.minimum.at(first, mac, ts)
    np.maximum.at(last, mac, ts)
    return np.asarray(macs, dtype=object), first, last, np.bincount(mac, minlength=len(macs)).astype(np.int64)


_lower = Remembered(lambda m: m.str.lower().to_numpy(dtype=object))  # per MAC, across windows


def _has_bit(macs: pd.Series, digits: str) -> np.ndarray:
    """Whether each MAC's first octet has the bit the second hex digit ``digits`` encode."""
    return per_distinct(
        macs.astype(str), lambda m: m.str.slice(1, 2).str.lower().isin(list(digits)).to_numpy(dtype=bool)
    )
