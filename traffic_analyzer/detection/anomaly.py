"""IsolationForest over per-host windows, trained on a baseline, with a calibrated alert threshold.

The threshold is not a share of whatever arrives (``contamination=0.1`` flags a
tenth of all traffic by construction): it is the score below which only
``false_alarm_rate`` of the *baseline* windows fell, so on traffic like the
baseline the model raises about that many alerts and no more.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.ensemble import IsolationForest
from sklearn.utils.validation import check_is_fitted

from ..errors import AnalyzerError
from ..records.alert import Alert

if TYPE_CHECKING:
    from .autoencoder import AutoencoderModel

MIN_BASELINE_WINDOWS = 20  # fewer host windows than this say too little about "normal"
SCORE_FLOOR = 40.0  # threat score of a window just past the threshold
SCORE_SPAN = 50.0  # added as the window's score falls SCORE_FULL_DISTANCE below the threshold
SCORE_FULL_DISTANCE = 0.25  # IsolationForest scores live in about [-1, 0]
TOP_FEATURES = 3  # features quoted in an explanation


class HostAnomalyModel(OutlierMixin, BaseEstimator):
    """Isolation forest on log-scaled host-window features with a baseline-calibrated threshold.

    Parameters
    ----------
    n_estimators : int
        Trees in the forest.
    false_alarm_rate : float
        Share of baseline windows allowed above the threshold (the false-alarm budget).
    random_state : int
        Seed, so the same baseline gives the same model.
    """

    name = "isolation_forest"

    def __init__(self, n_estimators: int = 200, false_alarm_rate: float = 0.001, random_state: int = 0) -> None:
        self.n_estimators = n_estimators
        self.false_alarm_rate = false_alarm_rate
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y=None) -> HostAnomalyModel:
        if len(X) < MIN_BASELINE_WINDOWS:
            raise AnalyzerError(
                f"the baseline has {len(X)} host windows; the anomaly model needs at least {MIN_BASELINE_WINDOWS} "
                "(train on a longer capture)"
            )
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        values = _log_scale(X)
        self.forest_ = IsolationForest(n_estimators=self.n_estimators, random_state=self.random_state)
        self.forest_.fit(values)
        baseline_scores = self.forest_.score_samples(values)
        self.offset_ = float(np.quantile(baseline_scores, self.false_alarm_rate, method="lower"))
        self.baseline_median_ = X.median()
        self.baseline_max_ = X.max()
        self.n_baseline_windows_ = len(X)
        return self

    def score_samples(self, X: pd.DataFrame) -> np.ndarray:
        """Higher is more normal (scikit-learn's convention)."""
        check_is_fitted(self)
        return self.forest_.score_samples(_log_scale(X[list(self.feature_names_in_)]))

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Negative below the calibrated threshold."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """-1 for anomalous windows, 1 for normal ones."""
        return np.where(self.decision_function(X) < 0, -1, 1)

    def threat_score(self, decision: np.ndarray) -> np.ndarray:
        """0-100 threat score for flagged windows from how far they fall below the threshold."""
        return SCORE_FLOOR + SCORE_SPAN * np.clip(-decision / SCORE_FULL_DISTANCE, 0.0, 1.0)

    def explain(self, row: pd.Series) -> list[tuple[str, float, float, float]]:
        """The features that stand out most: (name, value, baseline median, baseline max)."""
        med, top = self.baseline_median_, self.baseline_max_
        excess = (row - med) / (top - med + 1.0)
        names = excess.sort_values(ascending=False).index[:TOP_FEATURES]
        return [(n, float(row[n]), float(med[n]), float(top[n])) for n in names if excess[n] > 0]


def _log_scale(X: pd.DataFrame) -> np.ndarray:
    """Counts span orders of magnitude; log1p keeps one busy server from defining 'normal'."""
    return np.log1p(X.to_numpy(dtype=float).clip(min=0))


def anomaly_alerts(
    model: HostAnomalyModel, features: pd.DataFrame, flows: pd.DataFrame, start: float, end: float
) -> list[Alert]:
    """Alerts for the host windows the model flags, each explained against the baseline."""
    if features.empty:
        return []
    decision = model.decision_function(features)
    flagged = np.flatnonzero(decision < 0)
    scores = model.threat_score(decision)
    alerts = []
    for i in flagged:
        host = features.index[i]
        row = features.iloc[i]
        standouts = model.explain(row)
        peers = sorted(flows.loc[flows["orig_h"] == host, "resp_h"].dropna().unique()) if len(flows) else []
        said = "; ".join(
            f"{name} {value:g} (baseline median {median:g}, max {most:g})" for name, value, median, most in standouts
        )
        alerts.append(
            Alert(
                kind="anomaly",
                attacker=host,
                victims=peers if len(peers) == 1 else ["many"] if peers else [],
                start=start,
                end=end,
                score=round(float(scores[i]), 1),
                explanation=f"{host} behaved unlike the baseline of {model.n_baseline_windows_} host windows: "
                + (said or "an unusual combination of otherwise ordinary counts")
                + ".",
                evidence={
                    "features": {n: float(row[n]) for n in features.columns},
                    "decision": float(decision[i]),
                    "peers": peers[:20],
                },
                detector=model.name,
            )
        )
    return alerts


def make_model(kind: str, false_alarm_rate: float) -> HostAnomalyModel | AutoencoderModel:
    """A fresh anomaly model of the configured kind."""
    from .autoencoder import AutoencoderModel

    if kind == "autoencoder":
        return AutoencoderModel(false_alarm_rate=false_alarm_rate)
    return HostAnomalyModel(false_alarm_rate=false_alarm_rate)


def save_model(model: HostAnomalyModel | AutoencoderModel, path: str | Path, trained_on: str) -> dict:
    """Save the model with what it was trained on; returns that metadata."""
    meta = model_info(model, trained_on)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    joblib.dump({"model": model, "meta": meta}, path)
    return meta


def model_info(model: HostAnomalyModel | AutoencoderModel, trained_on: str, trained_at: float | None = None) -> dict:
    return {
        "status": "trained",
        "model": model.name,
        "trained_on": trained_on,
        "trained_at": trained_at or time.time(),
        "baseline_windows": int(model.n_baseline_windows_),
        "threshold": model.offset_,
        "false_alarm_rate": model.false_alarm_rate,
        "features": list(model.feature_names_in_),
        "sklearn": sklearn.__version__,
    }


def load_model(path: str | Path, features: tuple[str, ...]) -> tuple[HostAnomalyModel, dict] | None:
    """The saved model, or None when there is none; an error if it cannot be used."""
    p = Path(path)
    if not p.exists():
        return None
    try:
        saved = joblib.load(p)
        model, meta = saved["model"], saved["meta"]
    except Exception as exc:
        raise AnalyzerError(f"the saved model {p} cannot be read ({exc}); delete it or train again") from exc
    if list(meta.get("features", [])) != list(features):
        raise AnalyzerError(f"the saved model {p} was trained on other features; train again with --train")
    return model, meta
