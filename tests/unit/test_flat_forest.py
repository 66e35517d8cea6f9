"""The flattened forest gives scikit-learn's IsolationForest scores bit for bit, faster per window."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import IsolationForest

from traffic_analyzer.detection.anomaly.flat_forest import FlatForest
from traffic_analyzer.detection.anomaly.iforest import HostAnomalyModel

pytestmark = pytest.mark.unit


def _counts(rng: np.random.Generator, rows: int, columns: int, scale: float) -> np.ndarray:
    """Log-scaled counts: many ties and zeros, as host-window features have."""
    return np.log1p(rng.exponential(scale, (rows, columns)).round())


@pytest.mark.parametrize("max_features", [1.0, 0.5])
def test_scores_equal_scikit_learn_exactly(max_features: float):
    rng = np.random.default_rng(7)
    forest = IsolationForest(n_estimators=60, max_features=max_features, random_state=3)
    forest.fit(_counts(rng, 2000, 9, 4.0))
    unseen = _counts(rng, 300, 9, 12.0)  # outside the training range too
    assert np.array_equal(FlatForest(forest).score_samples(unseen), forest.score_samples(unseen))


def test_missing_values_are_scored_by_scikit_learn():
    rng = np.random.default_rng(1)
    forest = IsolationForest(n_estimators=20, random_state=0).fit(_counts(rng, 500, 4, 3.0))
    unseen = _counts(rng, 10, 4, 3.0)
    unseen[2, 1] = np.nan
    assert np.array_equal(FlatForest(forest).score_samples(unseen), forest.score_samples(unseen), equal_nan=True)


def test_the_model_scores_as_its_forest_and_saves_without_the_flat_copy():
    rng = np.random.default_rng(2)
    columns = [f"f{i}" for i in range(5)]
    model = HostAnomalyModel(n_estimators=30, false_alarm_rate=0.01).fit(
        pd.DataFrame(rng.poisson(3, (400, 5)), columns=columns)
    )
    windows = pd.DataFrame(rng.poisson(6, (50, 5)), columns=columns)
    expected = model.forest_.score_samples(np.log1p(windows.to_numpy(dtype=float)))
    assert np.array_equal(model.score_samples(windows), expected)
    restored = pickle.loads(pickle.dumps(model))
    assert "_flat" in model.__dict__ and "_flat" not in restored.__dict__
    assert np.array_equal(restored.score_samples(windows), expected)
