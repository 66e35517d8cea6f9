"""IsolationForest over log-scaled host-window features, with the baseline-calibrated threshold of ``base``."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

from .base import BaselineModel, log_scale
from .flat_forest import FlatForest
from .scoring import DeployedForest, forest_threat_score


class HostAnomalyModel(BaselineModel):
    """Isolation forest on log-scaled host-window features with a baseline-calibrated threshold.

    Parameters
    ----------
    n_estimators : int
        Trees in the forest.
    alerts_per_day : float
        Alerts a day that traffic like the baseline may raise (the false-alarm budget).
    false_alarm_rate : float or None
        If given, the share of baseline host windows allowed below the threshold instead.
    random_state : int
        Seed, so the same baseline gives the same model.
    """

    name = "isolation_forest"

    def __init__(
        self,
        n_estimators: int = 200,
        alerts_per_day: float = 1.0,
        false_alarm_rate: float | None = None,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.alerts_per_day = alerts_per_day
        self.false_alarm_rate = false_alarm_rate
        self.random_state = random_state

    def _fit(self, X: pd.DataFrame) -> np.ndarray:
        values = log_scale(X)
        self.forest_ = IsolationForest(n_estimators=self.n_estimators, random_state=self.random_state)
        self.forest_.fit(values)
        return self.forest_.score_samples(values)

    def _scores(self, X: pd.DataFrame) -> np.ndarray:
        flat = self.__dict__.get("_flat")
        if flat is None or flat.forest is not self.forest_:
            flat = self._flat = FlatForest(self.forest_)  # scikit-learn's scores, a window's worth at once
        return flat.score_samples(log_scale(X))

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())  # a copy: object.__getstate__ gives the live __dict__
        state.pop("_flat", None)  # rebuilt from forest_ where it is needed: not saved with the model
        return state

    def threat_score(self, decision: np.ndarray) -> np.ndarray:
        return forest_threat_score(decision)

    def deployed(self) -> DeployedForest:
        """This fitted model as the detection worker scores with it, without scikit-learn (``scoring``)."""
        return DeployedForest(self, FlatForest(self.forest_).trees)

    def explain(self, row: pd.Series) -> list[tuple[str, float, float, float]]:
        """The features furthest above the baseline median, relative to the baseline's range."""
        return self._explain_by_range(row)
