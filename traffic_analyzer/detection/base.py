"""The tiny interface every known-attack detector implements."""

from __future__ import annotations

from ..records.alert import Alert
from ..records.window import WindowData


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
