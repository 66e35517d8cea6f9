"""What every anomaly model shares: the baseline guard, the calibrated threshold, and scikit-learn's outlier API.

The threshold is not a share of whatever arrives (``contamination=0.1`` flags a tenth of all traffic by
construction): it is placed in the *baseline's* score distribution so that traffic like the baseline
raises about ``alerts_per_day`` alerts a day (:mod:`.threshold`), or, when ``false_alarm_rate`` is
given, so that that share of baseline host windows falls below it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted

from ...errors import AnalyzerError
from ...features.host_windows import INBOUND_FEATURES
from ..known_patterns import KnownPatterns
from .scoring import SCORE_FLOOR, SCORE_SPAN, TOP_FEATURES, Budgeted, explain_by_range, log_scale

__all__ = ["SCORE_FLOOR", "SCORE_SPAN", "TOP_FEATURES", "BaselineModel", "log_scale"]
MIN_BASELINE_WINDOWS = 20  # fewer host windows than this say too little about "normal"


class BaselineModel(Budgeted, OutlierMixin, BaseEstimator, ABC):
    """A model of normal host windows: subclasses learn scores in ``_fit`` and give them in ``_scores``.

    ``fit`` checks the baseline, remembers its medians and maxima (quoted in explanations) and sets the
    threshold ``offset_`` at the per-window rate ``rate_`` that ``alerts_per_day`` allow, given how many
    host windows the baseline's ``seconds`` of traffic held; ``false_alarm_rate`` sets that rate itself.
    """

    name = "baseline_model"
    alerts_per_day: float
    false_alarm_rate: float | None
    # What the known-attack detectors raised on the same baseline (set when training): not raised again.
    known_patterns_: KnownPatterns = KnownPatterns()
    # The known-attack detectors' baseline figures (Detector.partial_fit while training), quoted in their alerts.
    detector_baselines_: dict[str, dict[str, float]] = {}  # noqa: RUF012 (a class-level default, never mutated)

    def fit(self, X: pd.DataFrame, y: object = None, seconds: float | None = None) -> BaselineModel:
        """Learn the baseline ``X`` (host windows by feature), which covers ``seconds`` of network time."""
        if len(X) < MIN_BASELINE_WINDOWS:
            raise AnalyzerError(
                f"the baseline has {len(X)} host windows; the anomaly model needs at least {MIN_BASELINE_WINDOWS} "
                "(train on a longer capture)"
            )
        learned = X[[c for c in X.columns if c not in INBOUND_FEATURES]]
        self.feature_names_in_ = np.asarray(learned.columns, dtype=object)
        baseline_scores = self._fit(learned)
        if self.false_alarm_rate is None and seconds is None:
            raise ValueError("fit needs the seconds of traffic the baseline covers, or a false_alarm_rate")
        self.baseline_scores_ = np.sort(np.asarray(baseline_scores, dtype=float))  # kept: a new budget needs them
        self.baseline_seconds_ = seconds
        self.baseline_median_ = X.median()  # every column: the inbound ones are judged against these
        self.baseline_max_ = X.max()
        self.n_baseline_windows_ = len(X)
        return self.set_budget(self.alerts_per_day, self.false_alarm_rate)

    @abstractmethod
    def _fit(self, X: pd.DataFrame) -> np.ndarray:
        """Learn from the baseline; returns the baseline windows' scores (higher is more normal)."""

    @abstractmethod
    def _scores(self, X: pd.DataFrame) -> np.ndarray:
        """Scores of windows with the training columns, higher is more normal."""

    def score_samples(self, X: pd.DataFrame) -> np.ndarray:
        """Higher is more normal (scikit-learn's convention)."""
        check_is_fitted(self)
        return self._scores(X[list(self.feature_names_in_)])

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Negative below the calibrated threshold."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """-1 for anomalous windows, 1 for normal ones."""
        return np.where(self.decision_function(X) < 0, -1, 1)

    @abstractmethod
    def threat_score(self, decision: np.ndarray) -> np.ndarray:
        """0-100 threat score for flagged windows from how far they fall below the threshold."""

    @abstractmethod
    def explain(self, row: pd.Series) -> list[tuple[str, float, float, float]]:
        """The features that stand out most: (name, value, baseline median, baseline max)."""

    def _explain_by_range(self, row: pd.Series) -> list[tuple[str, float, float, float]]:
        """The features furthest above the baseline median, relative to the baseline's range."""
        return explain_by_range(row, self.baseline_median_, self.baseline_max_)
