"""What scoring host windows with a fitted model needs, without scikit-learn or SciPy.

The detection worker only scores: it loads a saved model, places its threshold and explains what it
flags. Importing scikit-learn (and SciPy under it) to unpickle an IsolationForest costs that process
about 1.5 s of CPU at every start, more than the model's scoring of a whole lab capture. So a saved
IsolationForest model also carries its deployed form, :class:`DeployedForest`: the forest's nodes as
flat arrays (:class:`FlatTrees`, scored as ``flat_forest.FlatForest`` scores them, bit for bit), the
threshold, the baseline's figures. The fitted scikit-learn model rides along pickled, unpickled only
for a window that holds a missing value (scikit-learn routes those its own way).
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd

from ..known_patterns import KnownPatterns

SCORE_FLOOR = 40.0  # threat score of a window just past the threshold
SCORE_SPAN = 50.0  # added as a window falls further below the threshold
TOP_FEATURES = 3  # features quoted in an explanation
FOREST_FULL_DISTANCE = 0.25  # IsolationForest scores live in about [-1, 0]: this far below the threshold scores 90


def log_scale(X: pd.DataFrame) -> np.ndarray:
    """Counts span orders of magnitude; log1p keeps one busy server from defining 'normal'."""
    return np.log1p(X.to_numpy(dtype=float).clip(min=0))


def forest_threat_score(decision: np.ndarray) -> np.ndarray:
    """0-100 threat score of an IsolationForest's flagged windows from how far they fall below the threshold."""
    return SCORE_FLOOR + SCORE_SPAN * np.clip(-decision / FOREST_FULL_DISTANCE, 0.0, 1.0)


def explain_by_range(row: pd.Series, median: pd.Series, top: pd.Series) -> list[tuple[str, float, float, float]]:
    """The features furthest above the baseline median, relative to the baseline's range."""
    excess = (row - median) / (top - median + 1.0)
    names = excess.sort_values(ascending=False).index[:TOP_FEATURES]
    return [(n, float(row[n]), float(median[n]), float(top[n])) for n in names if excess[n] > 0]


class Budgeted:
    """The threshold placed for a false-alarm budget in the baseline's own scores (``baseline_scores_``)."""

    alerts_per_day: float
    false_alarm_rate: float | None
    baseline_scores_: np.ndarray
    baseline_seconds_: float | None
    rate_: float
    offset_: float

    def set_budget(self, alerts_per_day: float, false_alarm_rate: float | None = None) -> Budgeted:
        """Place the threshold for a new false-alarm budget on the fitted baseline, without fitting again."""
        from ...errors import AnalyzerError
        from .threshold import tail_threshold, window_rate

        if not hasattr(self, "baseline_scores_"):
            raise AnalyzerError("the anomaly model is not fitted: train it (--train)")
        if false_alarm_rate is None and self.baseline_seconds_ is None:
            raise AnalyzerError(
                "the anomaly model was fitted without its baseline's duration, so it cannot place a budget of "
                "alerts a day: train it again (--train) or set false_alarm_rate"
            )
        self.alerts_per_day, self.false_alarm_rate = alerts_per_day, false_alarm_rate
        if false_alarm_rate is not None:
            self.rate_ = float(false_alarm_rate)
        else:
            self.rate_ = window_rate(alerts_per_day, len(self.baseline_scores_), self.baseline_seconds_)
        self.offset_ = tail_threshold(self.baseline_scores_, self.rate_)
        return self


class FlatTrees:
    """The nodes of every tree of a fitted IsolationForest in flat arrays (leaves point at themselves), and the
    scores of samples descending all trees at once, one numpy step per tree level."""

    def __init__(
        self,
        left: np.ndarray,
        right: np.ndarray,
        feature: np.ndarray,
        threshold: np.ndarray,
        leaf_depth: np.ndarray,
        roots: np.ndarray,
        levels: int,
        denominator: float,
    ) -> None:
        self.left, self.right, self.feature, self.threshold = left, right, feature, threshold
        self.leaf_depth, self.roots, self.levels, self.denominator = leaf_depth, roots, levels, denominator

    def score_samples(self, X32: np.ndarray) -> np.ndarray:
        """``IsolationForest.score_samples`` of float32 samples with no missing value: higher is more normal."""
        rows = np.arange(len(X32))[:, None]
        node = np.broadcast_to(self.roots, (len(X32), len(self.roots)))
        for _ in range(self.levels):
            goes_left = X32[rows, self.feature[node]] <= self.threshold[node]
            node = np.where(goes_left, self.left[node], self.right[node])
        ends = self.leaf_depth[node]
        depths = np.zeros(len(X32), order="f")
        for tree_idx in range(ends.shape[1]):  # summed in scikit-learn's order: the same float rounding
            depths += ends[:, tree_idx]
        scores = 2 ** (-np.divide(depths, self.denominator, out=np.ones_like(depths), where=self.denominator != 0))
        return -scores  # scikit-learn's sign: higher is more normal


class DeployedForest(Budgeted):
    """A fitted IsolationForest model (``iforest.HostAnomalyModel``) as the detection worker uses it.

    Scores, decision, threat scores, explanations and the budget's threshold are the fitted model's own;
    ``fitted`` is that model pickled, unpickled only when a window holds a missing value.
    """

    name = "isolation_forest"

    def __init__(self, model, trees: FlatTrees) -> None:
        for attribute in (
            "feature_names_in_",
            "alerts_per_day",
            "false_alarm_rate",
            "rate_",
            "offset_",
            "baseline_scores_",
            "baseline_seconds_",
            "baseline_median_",
            "baseline_max_",
            "n_baseline_windows_",
        ):
            setattr(self, attribute, getattr(model, attribute))
        self.known_patterns_: KnownPatterns = model.known_patterns_
        self.detector_baselines_: dict[str, dict[str, float]] = model.detector_baselines_
        self.trees = trees
        self.fitted = pickle.dumps(model)
        self._model = None  # the unpickled fitted model, once a window needed it

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_model"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _model=None)

    def score_samples(self, X: pd.DataFrame) -> np.ndarray:
        """Higher is more normal (scikit-learn's convention)."""
        values = log_scale(X[list(self.feature_names_in_)])
        X32 = np.asarray(values, dtype=np.float32)  # scikit-learn validates to float32 before it compares
        if np.isnan(X32).any():
            if self._model is None:
                self._model = pickle.loads(self.fitted)  # loads scikit-learn: only for missing values
            return self._model.forest_.score_samples(values)
        return self.trees.score_samples(X32)

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Negative below the calibrated threshold."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """-1 for anomalous windows, 1 for normal ones."""
        return np.where(self.decision_function(X) < 0, -1, 1)

    def threat_score(self, decision: np.ndarray) -> np.ndarray:
        return forest_threat_score(decision)

    def explain(self, row: pd.Series) -> list[tuple[str, float, float, float]]:
        """The features furthest above the baseline median, relative to the baseline's range."""
        return explain_by_range(row, self.baseline_median_, self.baseline_max_)
