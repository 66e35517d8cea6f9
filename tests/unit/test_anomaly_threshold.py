"""The anomaly threshold for a budget of alerts a day: read from the baseline, or extrapolated from its tail."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from traffic_analyzer.detection.anomaly.iforest import HostAnomalyModel
from traffic_analyzer.detection.anomaly.persist import apply_budget
from traffic_analyzer.detection.anomaly.threshold import DAY_S, tail_threshold, window_rate
from traffic_analyzer.errors import AnalyzerError
from traffic_analyzer.reload import plan_reload
from traffic_analyzer.settings import Config

pytestmark = pytest.mark.unit


def test_a_day_of_50_hosts_in_5_s_windows_allows_one_window_in_864000():
    hour = 50 * 720  # host windows of one hour of baseline
    assert window_rate(1.0, hour, 3600.0) == pytest.approx(1 / 864_000)
    assert window_rate(5.0, hour, 3600.0) == pytest.approx(5 / 864_000)
    assert window_rate(1e9, hour, 3600.0) == 1.0  # never more than every window
    with pytest.raises(ValueError):
        window_rate(1.0, hour, 0.0)


def test_a_rate_the_baseline_shows_is_read_from_it():
    scores = -np.random.default_rng(1).exponential(1.0, 5000)
    for rate in (0.001, 0.01, 0.2):
        assert tail_threshold(scores, rate) == np.quantile(scores, rate, method="lower")
        assert (scores < tail_threshold(scores, rate)).mean() <= rate


def test_a_rate_beyond_the_baseline_is_extrapolated_from_its_tail():
    """Exponential badness: the 1e-6 quantile is ln(1e6) = 13.8, far past the largest of 5,000 (about 8.5).

    Four orders of magnitude beyond the sample, one baseline's estimate is rough (the tail's shape is
    learnt from 100 windows); over seeds it is centred on the truth.
    """
    truth = math.log(1e6)
    found = []
    for seed in range(1, 8):
        scores = -np.random.default_rng(seed).exponential(1.0, 5000)
        threshold = tail_threshold(scores, 1e-6)
        assert threshold < scores.min()  # beyond every baseline window
        assert 0.6 * truth < -threshold < 1.5 * truth
        found.append(-threshold)
    assert np.mean(found) == pytest.approx(truth, rel=0.15)


def test_a_bounded_tail_is_not_extrapolated_past_its_bound():
    """IsolationForest scores are bounded (-1 at worst): a uniform tail's extrapolation stays near its end."""
    scores = -np.random.default_rng(4).uniform(0.3, 0.6, 5000)
    threshold = tail_threshold(scores, 1e-7)
    assert -0.65 < threshold <= scores.min()


def test_a_flat_tail_puts_the_threshold_at_the_least_normal_window():
    scores = np.r_[np.zeros(4900), -np.ones(100)]  # a hundred tied least-normal windows
    assert tail_threshold(scores, 1e-6) == -1.0


def _baseline(rows: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    return pd.DataFrame(rng.poisson(4, (rows, 6)), columns=[f"f{i}" for i in range(6)])


def test_a_model_needs_the_baseline_seconds_for_a_daily_budget():
    with pytest.raises(ValueError, match="seconds"):
        HostAnomalyModel(n_estimators=20).fit(_baseline())
    assert HostAnomalyModel(n_estimators=20, false_alarm_rate=0.01).fit(_baseline()).rate_ == 0.01


def test_a_new_budget_moves_the_threshold_as_fitting_with_it_would():
    X = _baseline()
    seconds = 600 * 5.0 / 10  # ten hosts in 5 s windows
    strict = HostAnomalyModel(n_estimators=20, alerts_per_day=1).fit(X, seconds=seconds)
    loose = HostAnomalyModel(n_estimators=20, alerts_per_day=100).fit(X, seconds=seconds)
    assert loose.offset_ > strict.offset_  # more alerts a day: a threshold nearer the baseline
    assert strict.rate_ == pytest.approx(1 / (600 * DAY_S / seconds))
    strict.set_budget(100)
    assert strict.offset_ == loose.offset_ and strict.rate_ == loose.rate_
    strict.set_budget(1, false_alarm_rate=0.05)
    assert (strict.predict(X) == -1).mean() <= 0.05


def test_a_reload_applies_a_new_budget_to_the_running_model():
    plan = plan_reload(Config(), Config(anomaly_alerts_per_day=24.0))
    assert plan.applied == ["anomaly_alerts_per_day"] and not plan.restart
    model = HostAnomalyModel(n_estimators=20).fit(_baseline(), seconds=300.0)
    before = model.offset_
    assert apply_budget(model, plan.config.anomaly_alerts_per_day, plan.config.false_alarm_rate)
    assert model.alerts_per_day == 24.0 and model.offset_ > before
    assert not apply_budget(model, 24.0, None)  # the budget it has: nothing to do


def test_a_model_saved_without_its_baseline_scores_cannot_take_a_new_budget():
    model = HostAnomalyModel(n_estimators=20, false_alarm_rate=0.01).fit(_baseline())
    del model.baseline_scores_  # as a model saved before budgets in alerts a day
    with pytest.raises(AnalyzerError, match="train it again"):
        apply_budget(model, 1.0, None)


def test_a_model_fitted_without_its_baseline_duration_cannot_take_a_daily_budget():
    model = HostAnomalyModel(n_estimators=20, false_alarm_rate=0.01).fit(_baseline())
    with pytest.raises(AnalyzerError, match="duration"):
        apply_budget(model, 1.0, None)
    assert apply_budget(model, 1.0, 0.05) and model.rate_ == 0.05  # a per-window share needs no duration
