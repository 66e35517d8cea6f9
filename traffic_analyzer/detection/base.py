"""The tiny interface every known-attack detector implements."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, ClassVar

from ..records.alert import Alert
from ..records.window import WindowData
from .params import Constraint, check_params


class Detector:
    """A known-attack detector: learns what normal looks like, then turns windows into alerts.

    Detectors keep their own state across windows (slow attacks span many), so
    ``detect`` is called once per window, in time order. A detector declares what each parameter
    accepts in ``_parameter_constraints``; they are checked once, when it is made (``params``).
    """

    name = "detector"
    _parameter_constraints: ClassVar[dict[str, Constraint | list[Constraint]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return

        @functools.wraps(init)
        def made_and_checked(self: Detector, *args: Any, **kw: Any) -> None:
            init(self, *args, **kw)
            if type(self).__init__ is made_and_checked:  # the class made last checks, once
                check_params(self, type(self)._parameter_constraints)

        cls.__init__ = made_and_checked  # type: ignore[method-assign]

    def fit(self, windows: Iterable[WindowData]) -> Detector:
        """Learn the baseline figures quoted in explanations, in one pass over the baseline's windows."""
        for figure in self.baseline_figures():
            delattr(self, figure)
        for window in windows:
            self.partial_fit(window)
        self._end_fit()
        return self

    def partial_fit(self, window: WindowData) -> Detector:
        """Fold one baseline window into the learned figures (training streams hours of windows); none by default."""
        return self

    def baseline_figures(self) -> dict[str, float]:
        """What fitting learned (the ``baseline_*_`` attributes), kept with the model for later runs."""
        return {k: v for k, v in vars(self).items() if k.startswith("baseline_") and k.endswith("_")}

    def _end_fit(self) -> None:
        """Forget the state the baseline's windows left, so that detection starts afresh; nothing by default."""

    def _fold_max(self, figure: str, value: float) -> None:
        """Keep the largest value of a baseline figure seen so far."""
        setattr(self, figure, max(getattr(self, figure, 0), value))

    def detect(self, window: WindowData) -> list[Alert]:
        """Alerts for evidence seen up to and including this window; none by default."""
        return []
