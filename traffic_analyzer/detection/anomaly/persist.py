"""Making, saving and loading anomaly models (joblib files with what they were trained on).

An IsolationForest model is saved with its deployed form (``scoring.DeployedForest``) beside the fitted
model pickled: loading it to score needs no scikit-learn or SciPy (1.5 s of CPU a start in the worker).
Other models, and files saved before, are the fitted model itself.
"""

from __future__ import annotations

import time
from dataclasses import replace
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

import joblib

from ...errors import AnalyzerError
from .report import ModelReport
from .scoring import DeployedForest

if TYPE_CHECKING:
    from .base import BaselineModel

# model name -> (module, class); imported when one is made: each loads scikit-learn
MODELS: dict[str, tuple[str, str]] = {
    "isolation_forest": ("iforest", "HostAnomalyModel"),
    "autoencoder": ("autoencoder", "AutoencoderModel"),
    "local_outlier_factor": ("lof", "LocalOutlierModel"),
}


def make_model(kind: str, alerts_per_day: float, false_alarm_rate: float | None = None) -> BaselineModel:
    """A fresh anomaly model of the configured kind (``anomaly_model``: one of MODELS) and budget."""
    module, name = MODELS.get(kind, MODELS["isolation_forest"])
    model_class = getattr(import_module(f"{__package__}.{module}"), name)
    return model_class(alerts_per_day=alerts_per_day, false_alarm_rate=false_alarm_rate)


def save_model(model: BaselineModel, path: str | Path, trained_on: str) -> dict:
    """Save the model with what it was trained on; returns that metadata."""
    import sklearn

    meta = model_info(model, trained_on, sklearn_version=sklearn.__version__)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    deployed = getattr(model, "deployed", None)
    saved = {"deployed": deployed(), "meta": meta} if deployed is not None else {"model": model, "meta": meta}
    joblib.dump(saved, path)
    return meta


def model_info(
    model: BaselineModel | DeployedForest,
    trained_on: str,
    trained_at: float | None = None,
    sklearn_version: str | None = None,
) -> dict:
    return {
        "status": "trained",
        "model": model.name,
        "trained_on": trained_on,
        "trained_at": trained_at or time.time(),
        "baseline_windows": int(model.n_baseline_windows_),
        **budget_info(model),
        "features": list(model.baseline_max_.index),  # every column it was given; it learns feature_names_in_
        "known_patterns": model.known_patterns_.describe(),
        "detector_baselines": model.detector_baselines_,
        "sklearn": sklearn_version,
    }


def budget_info(model: BaselineModel) -> dict:
    """The false-alarm budget a fitted model's threshold stands for."""
    return {
        "threshold": model.offset_,
        "alerts_per_day": model.alerts_per_day,
        "false_alarm_rate": model.false_alarm_rate,
        "window_rate": model.rate_,  # the share of host windows it flags on traffic like the baseline
    }


def apply_budget(model: BaselineModel, alerts_per_day: float, false_alarm_rate: float | None) -> bool:
    """Move a fitted model's threshold to this budget; False when it has it already.

    A model saved before budgets in alerts a day keeps no baseline scores, and one fitted without its
    baseline's duration cannot place a daily budget: both are refused (AnalyzerError), to train again.
    """
    if (getattr(model, "alerts_per_day", None), model.false_alarm_rate) == (alerts_per_day, false_alarm_rate):
        return False
    if not hasattr(model, "baseline_scores_"):
        raise AnalyzerError("the saved anomaly model predates budgets in alerts a day: train it again (--train)")
    model.set_budget(alerts_per_day, false_alarm_rate)
    return True


def placed(model: BaselineModel, meta: dict, alerts_per_day: float, false_alarm_rate: float | None) -> ModelReport:
    """Move the threshold to this budget (:func:`apply_budget`); the report says what ``meta`` becomes, what to log."""
    try:
        if not apply_budget(model, alerts_per_day, false_alarm_rate):
            return ModelReport(meta)
    except AnalyzerError as exc:  # an older saved model: it keeps working at the threshold it was saved with
        return ModelReport(meta, refused=str(exc))
    return ModelReport({**meta, **budget_info(model)}, placed=budget_text(model))


def budget_text(model: BaselineModel) -> str:
    if model.false_alarm_rate is not None:
        return f"{model.false_alarm_rate:g} of host windows"
    return f"{model.alerts_per_day:g} alerts a day (1 host window in {1 / model.rate_:,.0f})"


def load_model(path: str | Path, features: tuple[str, ...]) -> tuple[BaselineModel, dict] | None:
    """The saved model, or None when there is none; an error if it cannot be used."""
    p = Path(path)
    if not p.exists():
        return None
    try:
        saved = joblib.load(p)
        model, meta = saved["deployed"] if "deployed" in saved else saved["model"], saved["meta"]
    except Exception as exc:
        raise AnalyzerError(f"the saved model {p} cannot be read ({exc}); delete it or train again") from exc
    # A model saved before a feature was added still scores its own columns and judges the counts it knows;
    # one that needs a feature this version does not compute cannot be used.
    if not set(meta.get("features", [])) <= set(features):
        raise AnalyzerError(f"the saved model {p} was trained on other features; train again with --train")
    return model, meta


def load_placed(
    path: str | Path, features: tuple[str, ...], alerts_per_day: float, false_alarm_rate: float | None
) -> tuple[BaselineModel, ModelReport]:
    """The saved model (:func:`load_model`) with its threshold placed for this budget (:func:`placed`); its
    metadata is :func:`model_info`'s, so that a file saved by an earlier version reports today's keys."""
    loaded = load_model(path, features)
    if loaded is None:
        raise AnalyzerError(f"the saved model {path} is gone")
    model, saved = loaded
    meta = model_info(model, saved["trained_on"], saved.get("trained_at"), saved.get("sklearn"))
    return model, replace(placed(model, meta, alerts_per_day, false_alarm_rate), loaded_from=str(path))
