"""What every behaviour shares: a start-time process (Poisson at a rate that follows the working day, or a
period with jitter) and the ``emit`` hook the scenario calls once per time window.

A behaviour writes a whole session when the session starts, so the scenario only needs to ask each
behaviour for the sessions starting in the next window and can then flush everything before it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from .lab import Lab

Activity = Callable[[int], float]  # time (us) -> share of peak activity, 0..1
HOUR_US = 3_600_000_000
OFFICE_DAY = (  # share of peak activity for each hour of the day (UTC is the office's clock)
    0.03, 0.03, 0.03, 0.03, 0.03, 0.04, 0.08, 0.25, 0.7, 1.0, 1.0, 0.95,
    0.6, 0.85, 1.0, 1.0, 0.9, 0.6, 0.3, 0.15, 0.1, 0.08, 0.05, 0.04,
)  # fmt: skip


def always(_t_us: int) -> float:
    """Activity of a capture taken in the middle of a working morning."""
    return 1.0


def office_day(t_us: int) -> float:
    return OFFICE_DAY[(t_us // HOUR_US) % 24]


class Behaviour(ABC):
    """A source of sessions; ``emit`` writes every session that starts in ``[start_us, end_us)``.

    The schedules below (Poisson, Periodic, Once) decide when sessions start and call ``session`` for
    each; a behaviour only says what one session puts on the wire.
    """

    def __init__(self, lab: Lab, rng: np.random.Generator) -> None:
        self.lab = lab
        self.rng = rng

    @abstractmethod
    def emit(self, start_us: int, end_us: int) -> None: ...

    @abstractmethod
    def session(self, t_us: int) -> None:
        """One session starting at ``t_us``."""


class Poisson(Behaviour):
    """Sessions start at random with ``peak_per_s`` at full activity, thinned by ``activity`` at other hours."""

    def __init__(
        self, lab: Lab, rng: np.random.Generator, peak_per_s: float, first_us: int, activity: Activity = always
    ) -> None:
        super().__init__(lab, rng)
        self.mean_gap_us = 1e6 / peak_per_s
        self.activity = activity
        self.next_us = first_us + int(rng.exponential(self.mean_gap_us))

    def emit(self, start_us: int, end_us: int) -> None:
        while self.next_us < end_us:
            t = self.next_us
            self.next_us += 1 + int(self.rng.exponential(self.mean_gap_us))
            if t >= start_us and self.rng.random() < self.activity(t):
                self.session(t)


class Periodic(Behaviour):
    """Sessions every ``period_us`` with +-``jitter`` (a share of the period), from a random phase."""

    def __init__(self, lab: Lab, rng: np.random.Generator, period_us: int, jitter: float, first_us: int) -> None:
        super().__init__(lab, rng)
        self.period_us = period_us
        self.jitter = jitter
        self.next_us = first_us + int(rng.random() * period_us)

    def emit(self, start_us: int, end_us: int) -> None:
        while self.next_us < end_us:
            t = self.next_us
            self.next_us += max(1, int(self.period_us * (1 + self.jitter * (2 * self.rng.random() - 1))))
            if t >= start_us:
                self.session(t)


class Once(Behaviour):
    """A behaviour that runs one session at a fixed time."""

    def __init__(self, lab: Lab, rng: np.random.Generator, at_us: int) -> None:
        super().__init__(lab, rng)
        self.at_us = at_us

    def emit(self, start_us: int, end_us: int) -> None:
        if start_us <= self.at_us < end_us:
            self.session(self.at_us)
