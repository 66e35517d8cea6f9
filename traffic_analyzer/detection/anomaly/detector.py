"""A fitted anomaly model as one more detector: host windows it flags become explained alerts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ...records.alert import Alert
from ...records.window import WindowData
from ..base import Detector

if TYPE_CHECKING:  # the model's module loads scikit-learn; a run without a model never needs it
    from .base import BaselineModel


class AnomalyDetector(Detector):
    """Scores each window's host features with ``model`` and raises an ``anomaly`` alert per flagged host."""

    name = "anomaly"

    def __init__(self, model: BaselineModel) -> None:
        self.model = model

    def detect(self, window: WindowData) -> list[Alert]:
        decision = -window.anomaly.to_numpy() if window.anomaly is not None else None  # scored by the pipeline
        return anomaly_alerts(self.model, window.host_features, window.flows, window.start, window.end, decision)


def anomaly_alerts(
    model: BaselineModel,
    features: pd.DataFrame,
    flows: pd.DataFrame,
    start: float,
    end: float,
    decision: np.ndarray | None = None,
) -> list[Alert]:
    """Alerts for the host windows the model flags, each explained against the baseline.

    ``decision`` is the model's decision function of ``features`` when it was computed already.
    """
    if features.empty:
        return []
    if decision is None:
        decision = model.decision_function(features)
    flagged = np.flatnonzero(decision < 0)
    scores = model.threat_score(decision)
    alerts: list[Alert] = []
    if not len(flagged):
        return alerts
    hosts = features.index[flagged]
    theirs = flows.loc[flows["orig_h"].isin(hosts), ["orig_h", "resp_h"]].dropna() if len(flows) else flows
    peers_of = theirs.groupby("orig_h", sort=False)["resp_h"].unique() if len(theirs) else {}
    for i in flagged:
        host = features.index[i]
        row = features.iloc[i]
        standouts = model.explain(row)
        peers = sorted(peers_of[host]) if host in peers_of else []
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
