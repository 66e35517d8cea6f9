"""Where the anomaly threshold goes so that traffic like the baseline raises about N alerts a day.

An admin's budget is alerts per day; a model scores host windows. 50 hosts in 5 s windows make
864,000 host windows a day, so one alert a day is a per-window rate of about 1e-6, far beyond the
least normal window of any baseline shorter than weeks. Below what the baseline can show, the
threshold is extrapolated from its tail by peaks over threshold: the excesses of the least normal
baseline windows over a high quantile follow a generalised Pareto distribution
(Pickands-Balkema-de Haan), whose quantiles reach rates the sample cannot, as SPOT (Siffer et al.,
KDD 2017) does for streaming anomaly scores.
"""

from __future__ import annotations

import math

import numpy as np

DAY_S = 86_400.0
TAIL_MIN = 30  # the fewest excesses a tail is fitted to
TAIL_SHARE = 0.02  # the share of least normal baseline windows whose excesses make the fitted tail
MAX_SHAPE = 0.5  # |shape| above this is a fit to a handful of points, not a tail: clamp it


def window_rate(alerts_per_day: float, host_windows: int, seconds: float) -> float:
    """The share of host windows that may be flagged so that ``alerts_per_day`` are raised a day.

    ``host_windows`` scored over ``seconds`` of network time say how many host windows a day holds.
    """
    if seconds <= 0 or host_windows <= 0:
        raise ValueError(f"a baseline of {host_windows} host windows over {seconds} s has no rate")
    per_day = host_windows * DAY_S / seconds
    return min(1.0, alerts_per_day / per_day)


def tail_threshold(scores: np.ndarray, rate: float) -> float:
    """The score that a share ``rate`` of windows like these fall below (higher scores are more normal).

    Read from the scores when at least one of them falls below it; extrapolated from a generalised
    Pareto fit of the lowest scores' excesses when the rate is below one window of the sample.
    """
    scores = np.asarray(scores, dtype=float)
    n = len(scores)
    if rate * n >= 1 or n <= TAIL_MIN:
        return float(np.quantile(scores, rate, method="lower"))
    badness = np.sort(-scores)[::-1]  # least normal first
    k = min(n - 1, max(TAIL_MIN, math.ceil(TAIL_SHARE * n)))
    u = badness[k]  # the tail starts here; k windows exceed it
    excess = badness[:k] - u
    if np.ptp(excess) == 0:  # a flat tail (ties): nothing says how far beyond it traffic goes
        return float(-badness[0])
    from scipy.stats import genpareto  # only to place a new budget: a saved model's start needs none of SciPy

    shape, _, scale = genpareto.fit(excess, floc=0)
    if abs(shape) > MAX_SHAPE:
        shape = math.copysign(MAX_SHAPE, shape)
        _, _, scale = genpareto.fit(excess, floc=0, fc=shape)
    ratio = rate * n / k  # the tail probability of the threshold, given the tail
    if abs(shape) < 1e-9:
        z = u - scale * math.log(ratio)
    else:
        z = u + scale / shape * (ratio ** (-shape) - 1.0)
    return float(-max(z, badness[0]))  # less than one baseline window's worth: never inside the baseline
