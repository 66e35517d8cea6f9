"""The detectors' baseline figures learned as one more detector: where the detectors run, in the worker too.

Training (``--train``) runs the detectors over the baseline to learn what the site does, and a second
set of the same detectors learns the figures their alerts quote (``partial_fit``: the busiest baseline
host's ports, SYN rate...). :class:`BaselineFitting` carries that second set as a detector that raises
nothing, so the figures are learned in whichever process detects the windows: with a detection worker, the
main process only reads and meters, as for ``--read``. :meth:`~.engine.Detection.snapshot` brings the
learned state back.
"""

from __future__ import annotations

from ..records.alert import Alert
from ..records.window import WindowData
from .base import Detector


class BaselineFitting(Detector):
    """Fits ``fitters`` on every window it is given (``partial_fit``); raises no alert."""

    name = "baseline_fitting"

    def __init__(self, fitters: list[Detector]) -> None:
        self.fitters = fitters

    def detect(self, window: WindowData) -> list[Alert]:
        for fitter in self.fitters:
            fitter.partial_fit(window)
        return []

    def figures(self) -> dict[str, dict[str, float]]:
        """Each fitter's learned baseline figures, by detector name, as the model keeps them."""
        return {d.name: d.baseline_figures() for d in self.fitters if d.baseline_figures()}
