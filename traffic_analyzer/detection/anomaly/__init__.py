"""Anomaly models of host windows, trained on the site's own baseline: what no known-attack rule describes.

``base`` holds what every model shares (the fit guard, the calibrated threshold, decision_function and
predict), ``iforest`` and ``autoencoder`` the two models, ``detector`` the wrapper that makes a fitted model
one more detector, ``persist`` making, saving and loading them. Importing this package loads no scikit-learn.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_MOVED = {"HostAnomalyModel": "iforest", "AutoencoderModel": "autoencoder"}  # where models saved before live now


def __getattr__(name: str) -> Any:
    """Models saved by earlier versions name ``traffic_analyzer.detection.anomaly.HostAnomalyModel``: still load."""
    if name in _MOVED:
        return getattr(import_module(f"{__name__}.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
