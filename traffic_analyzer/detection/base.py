"""The tiny interface every known-attack detector implements."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .alert import Alert


@dataclass(frozen=True)
class WindowData:
    """What detectors see of one analysis window."""

    start: float  # epoch seconds of the window's first packet
    end: float  # epoch seconds of its last packet
    packets: pd.DataFrame  # the window's packet table
    flows: pd.DataFrame  # conn records the window touched (current state)
    host_features: pd.DataFrame  # per-host features (features.host_windows)


class Detector:
    """A known-attack detector: learns what normal looks like, then turns windows into alerts.

    Detectors keep their own state across windows (slow attacks span many), so
    ``detect`` is called once per window, in time order.
    """

    name = "detector"

    def fit(self, windows: list[WindowData]) -> Detector:
        """Learn baseline figures quoted in explanations; does nothing by default."""
        return self

    def detect(self, window: WindowData) -> list[Alert]:
        """Alerts for evidence seen up to and including this window; none by default."""
        return []
