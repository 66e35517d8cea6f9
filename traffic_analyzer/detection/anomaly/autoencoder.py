"""A second anomaly model: an autoencoder ensemble in the spirit of Kitsune (Mirsky et al., NDSS 2018).

Each small autoencoder learns to reconstruct one group of related host-window features from the
baseline; a window whose features it cannot reconstruct is anomalous. The score is the mean
reconstruction error (RMSE) over the ensemble, and the threshold is calibrated on the baseline the
same way as the IsolationForest's, so the two are compared on equal terms.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler

from .base import SCORE_FLOOR, SCORE_SPAN, TOP_FEATURES, BaselineModel, log_scale

# Feature groups, one autoencoder each (Kitsune clusters correlated features; these are the natural ones).
FEATURE_GROUPS: tuple[tuple[str, ...], ...] = (
    ("packets_out", "bytes_out", "packets_in", "bytes_in"),
    ("flows", "distinct_dst_hosts", "distinct_dst_ports", "failed_flows", "failed_ratio"),
    ("max_conns_one_service", "icmp_requests_out"),
    ("dns_queries", "distinct_dns_names", "mean_dns_name_len", "max_dns_label_len", "nxdomain_replies"),
)
HIDDEN_RATIO = 0.75  # each autoencoder's bottleneck has this share of its group's features (Kitsune's beta)
SCORE_FULL_FACTOR = 10.0  # an error this many times the threshold gets the full score span


class AutoencoderModel(BaselineModel):
    """Ensemble of per-feature-group autoencoders with a baseline-calibrated threshold.

    Parameters
    ----------
    alerts_per_day : float
        Alerts a day that traffic like the baseline may raise (the false-alarm budget).
    false_alarm_rate : float or None
        If given, the share of baseline host windows allowed below the threshold instead.
    max_iter : int
        Training epochs of each autoencoder.
    random_state : int
        Seed.
    """

    name = "autoencoder"

    def __init__(
        self,
        alerts_per_day: float = 1.0,
        false_alarm_rate: float | None = None,
        max_iter: int = 500,
        random_state: int = 0,
    ) -> None:
        self.alerts_per_day = alerts_per_day
        self.false_alarm_rate = false_alarm_rate
        self.max_iter = max_iter
        self.random_state = random_state

    def _fit(self, X: pd.DataFrame) -> np.ndarray:
        self.groups_ = [[list(X.columns).index(f) for f in group if f in X.columns] for group in FEATURE_GROUPS]
        self.scaler_ = StandardScaler().fit(log_scale(X))
        Z = self.scaler_.transform(log_scale(X))
        self.autoencoders_ = []
        for i, cols in enumerate(self.groups_):
            hidden = max(1, round(HIDDEN_RATIO * len(cols)))
            ae = MLPRegressor(
                hidden_layer_sizes=(hidden,),
                activation="tanh",
                max_iter=self.max_iter,
                random_state=self.random_state + i,
                tol=1e-5,
            )
            with warnings.catch_warnings():  # a small net stopping short of tol still reconstructs well
                warnings.simplefilter("ignore", ConvergenceWarning)
                ae.fit(Z[:, cols], Z[:, cols])
            self.autoencoders_.append(ae)
        return -self._errors(Z).mean(axis=1)

    def _errors(self, Z: np.ndarray) -> np.ndarray:
        """Per-feature squared reconstruction error, shape (windows, features)."""
        out = np.zeros_like(Z)
        for cols, ae in zip(self.groups_, self.autoencoders_, strict=True):
            out[:, cols] = (ae.predict(Z[:, cols]).reshape(len(Z), -1) - Z[:, cols]) ** 2
        return out

    def _scores(self, X: pd.DataFrame) -> np.ndarray:
        """Minus the mean reconstruction error."""
        return -self._errors(self.scaler_.transform(log_scale(X))).mean(axis=1)

    def threat_score(self, decision: np.ndarray) -> np.ndarray:
        excess = -decision / max(-self.offset_, 1e-9)  # how many thresholds beyond the threshold
        return SCORE_FLOOR + SCORE_SPAN * np.clip(excess / SCORE_FULL_FACTOR, 0.0, 1.0)

    def explain(self, row: pd.Series) -> list[tuple[str, float, float, float]]:
        """The features reconstructed worst: (name, value, baseline median, baseline max)."""
        Z = self.scaler_.transform(log_scale(row[list(self.feature_names_in_)].to_frame().T))
        errors = self._errors(Z)[0]
        order = np.argsort(errors)[::-1][:TOP_FEATURES]
        med, top = self.baseline_median_, self.baseline_max_
        names = [self.feature_names_in_[i] for i in order]
        return [(n, float(row[n]), float(med[n]), float(top[n])) for n in names if row[n] != med[n]]
