"""A third anomaly model: Local Outlier Factor in novelty mode, for comparison with the other two.

LOF asks whether a window lies in a region of feature space as dense as its nearest baseline windows;
it needs no assumption about the shape of "normal". Host windows repeat exactly (most hosts are idle
most of the time), and a point with more identical twins than neighbours has an undefined density, so
the baseline is deduplicated before fitting: the model learns which behaviours occur, not how often.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.neighbors import LocalOutlierFactor
from sklearn.preprocessing import StandardScaler

from .base import SCORE_FLOOR, SCORE_SPAN, BaselineModel, log_scale

SCORE_FULL_FACTOR = 2.0  # an outlier factor this many times the threshold's gets the full score span


class LocalOutlierModel(BaselineModel):
    """Local Outlier Factor (``novelty=True``) on standardised log-scaled host-window features.

    Parameters
    ----------
    alerts_per_day : float
        Alerts a day that traffic like the baseline may raise (the false-alarm budget).
    false_alarm_rate : float or None
        If given, the share of baseline host windows allowed below the threshold instead.
    n_neighbors : int
        Neighbours that define a window's local density.
    max_baseline : int
        Distinct baseline windows kept (a random sample beyond this), bounding fit time and memory.
    random_state : int
        Seed of that sample.
    """

    name = "local_outlier_factor"

    def __init__(
        self,
        alerts_per_day: float = 1.0,
        false_alarm_rate: float | None = None,
        n_neighbors: int = 20,
        max_baseline: int = 20_000,
        random_state: int = 0,
    ) -> None:
        self.alerts_per_day = alerts_per_day
        self.false_alarm_rate = false_alarm_rate
        self.n_neighbors = n_neighbors
        self.max_baseline = max_baseline
        self.random_state = random_state

    def _fit(self, X: pd.DataFrame) -> np.ndarray:
        values = log_scale(X)
        self.scaler_ = StandardScaler().fit(values)
        Z = self.scaler_.transform(values)
        distinct, row_of = np.unique(Z, axis=0, return_inverse=True)
        sampled = len(distinct) > self.max_baseline
        if sampled:
            keep = np.random.default_rng(self.random_state).choice(len(distinct), self.max_baseline, replace=False)
            distinct = distinct[np.sort(keep)]
        neighbours = max(1, min(self.n_neighbors, len(distinct) - 1))
        self.lof_ = LocalOutlierFactor(n_neighbors=neighbours, novelty=True).fit(distinct)
        if sampled:
            return self.lof_.score_samples(Z)
        # Each baseline window's own factor, its twin not counted as its neighbour (score_samples on the
        # training points would count it, and calibrate the threshold too leniently).
        return self.lof_.negative_outlier_factor_[np.ravel(row_of)]

    def _scores(self, X: pd.DataFrame) -> np.ndarray:
        """Minus the local outlier factor (about -1 inside the baseline, lower outside)."""
        return self.lof_.score_samples(self.scaler_.transform(log_scale(X)))

    def threat_score(self, decision: np.ndarray) -> np.ndarray:
        excess = -decision / max(-self.offset_, 1e-9)  # how many thresholds beyond the threshold
        return SCORE_FLOOR + SCORE_SPAN * np.clip(excess / SCORE_FULL_FACTOR, 0.0, 1.0)

    def explain(self, row: pd.Series) -> list[tuple[str, float, float, float]]:
        """The features furthest above the baseline median, relative to the baseline's range."""
        return self._explain_by_range(row)
