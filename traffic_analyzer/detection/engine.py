"""The detectors of a run over consecutive windows, their findings merged in one AlertBook.

:class:`Detection` runs them in this process. :class:`~.remote.RemoteDetection` has the same
interface and runs them in a second process, so that a file's next window is read and metered while
this one is being analysed. Both are driven by ``submit(window)`` then ``collect()``, which gives the
window's :class:`Findings`; ``lag`` says how many windows may be submitted before the first must be
collected.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import pandas as pd

from ..features.host_windows import host_features_of
from ..records.alert import Alert
from ..records.window import WindowData
from .alert_book import AlertBook
from .anomaly.detector import AnomalyDetector
from .base import Detector

if TYPE_CHECKING:
    from .anomaly.base import BaselineModel


@dataclass(frozen=True)
class Findings:
    """What detection made of one window."""

    alerts: list[Alert]  # the alerts the window created or changed
    anomaly: pd.Series | None = None  # per host: the anomaly model's margin (AnomalyDetector.margins); None: unscored


class Detection:
    """Known-attack detectors, then the anomaly model as the last detector, in this process."""

    lag = 0  # collect() right after submit(): the alerts of a window come with the window

    def __init__(self, detectors: list[Detector], model: BaselineModel | None = None) -> None:
        self._anomaly: AnomalyDetector | None = None
        self.detectors = detectors
        self.model = model
        self.book = AlertBook()
        self._pending: list[Findings] = []

    @property
    def detectors(self) -> list[Detector]:
        """The known-attack detectors (swapped on reload), with the baseline figures the model keeps."""
        return self._detectors

    @detectors.setter
    def detectors(self, detectors: list[Detector]) -> None:
        self._detectors = detectors
        with_baselines(detectors, self.model)

    @property
    def model(self) -> BaselineModel | None:
        """The fitted anomaly model, run as the last detector; None until there is one."""
        return self._anomaly.model if self._anomaly is not None else None

    @model.setter
    def model(self, model: BaselineModel | None) -> None:
        self._anomaly = AnomalyDetector(model) if model is not None else None
        with_baselines(self.detectors, model)

    def findings(self, window: WindowData) -> Findings:
        """The window's host windows scored by the anomaly model once, then its alerts."""
        if self._anomaly is not None and window.host_features is None:  # computed once, here, for the model
            window = replace(window, host_features=host_features_of(window))
        anomaly = self._anomaly.margins(window) if self._anomaly is not None else None
        alerts = self.detect(window if anomaly is None else replace(window, anomaly=anomaly))
        return Findings(alerts, anomaly)

    def detect(self, window: WindowData) -> list[Alert]:
        """The alerts this window created or changed."""
        found: list[Alert] = []
        for detector in [*self.detectors, *([self._anomaly] if self._anomaly is not None else [])]:
            found += detector.detect(window)
        model = self.model
        if model is not None and len(model.known_patterns_):  # what the site's baseline does is no alert
            found = [a for a in found if not model.known_patterns_.covers(a)]
        return self.book.add(found)

    def snapshot(self) -> list[Detector]:
        """The detectors as they are now, with what they learned (the worker's version sends copies)."""
        return list(self.detectors)

    def submit(self, window: WindowData) -> None:
        self._pending.append(self.findings(window))

    def collect(self) -> Findings:
        """The findings of the oldest submitted window not yet collected."""
        return self._pending.pop(0)

    def close(self) -> None:
        """Nothing to end in this process."""


def with_baselines(detectors: list[Detector], model: BaselineModel | None) -> list[Detector]:
    """Give each detector the baseline figures its kind learned when the model was trained (quoted in alerts)."""
    figures = getattr(model, "detector_baselines_", {}) if model is not None else {}
    for detector in detectors:
        for figure, value in figures.get(detector.name, {}).items():
            setattr(detector, figure, value)
    return detectors
