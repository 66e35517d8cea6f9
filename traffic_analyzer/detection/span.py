"""When an attack happened: the burst of its evidence, not every matching packet a detector remembers.

A detector's memory also holds the attacker's earlier, ordinary packets of the same kind (a login a
minute before the guessing, a ping before the sweep); taking their first time as the alert's start
stretches it back over traffic that made no part of the attack. Such stray events sit apart from the
attack by a pause much longer than its own pace, and are few.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BREAK_MIN_S = 10.0  # a pause shorter than this never splits an attack
BREAK_FACTOR = 10.0  # nor one under this many times the evidence's median spacing (slow attacks keep their pace)
STRAY_SHARE = 0.1  # a run before or after such a pause with under this share of the evidence is stray traffic


def burst_span(times: pd.Series | np.ndarray) -> tuple[float, float]:
    """(start, end) of ``times`` without stray runs at either end, cut off by pauses long for the evidence's pace.

    An attack in several bursts keeps them all; only a few events far before or after it are left out.
    """
    t = np.sort(np.asarray(times, dtype=float))
    if len(t) < 3:
        return float(t[0]), float(t[-1])
    gaps = np.diff(t)
    breaks = np.flatnonzero(gaps > max(BREAK_MIN_S, BREAK_FACTOR * float(np.median(gaps))))
    firsts = np.concatenate([[0], breaks + 1])  # index of each run's first event
    lasts = np.concatenate([breaks, [len(t) - 1]])
    stray = (lasts - firsts + 1) < STRAY_SHARE * len(t)
    lo, hi = 0, len(firsts) - 1
    while lo < hi and stray[lo]:
        lo += 1
    while hi > lo and stray[hi]:
        hi -= 1
    return float(t[firsts[lo]]), float(t[lasts[hi]])
