"""Detector parameters, checked once when a detector is made, against the constraints its class declares.

Modelled on scikit-learn's ``_parameter_constraints``: a class maps each parameter to what it accepts
(an ``Interval``, ``None``, a ``Check``, or a list of these), and ``check_params`` names the first parameter
that fits none. Written here rather than imported from scikit-learn's private ``_param_validation``: that
module is not a public API, and importing it would add scikit-learn's second of imports to every process
that builds detectors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

Constraint = Any  # an Interval, a Check, or None (the value may be None)


@dataclass(frozen=True)
class Interval:
    """Numbers of a type (``int`` or ``float``; an int is a float too) between ``low`` and ``high``."""

    kind: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"  # the ends that belong: "both", "left", "right" or "neither"

    def accepts(self, value: object) -> bool:
        wanted = Integral if self.kind is int else Real
        if isinstance(value, bool) or not isinstance(value, wanted) or math.isnan(value):
            return False
        above = self.low is None or (value >= self.low if self.closed in ("both", "left") else value > self.low)
        below = self.high is None or (value <= self.high if self.closed in ("both", "right") else value < self.high)
        return above and below

    def describe(self) -> str:
        what = "a whole number" if self.kind is int else "a number"
        low = None if self.low is None else (">=" if self.closed in ("both", "left") else ">", self.low)
        high = None if self.high is None else ("<=" if self.closed in ("both", "right") else "<", self.high)
        if low and high and self.closed == "both":
            return f"{what} between {self.low:g} and {self.high:g}"
        bounds = " and ".join(f"{op} {bound:g}" for op, bound in (b for b in (low, high) if b))
        return f"{what} {bounds}" if bounds else what


@dataclass(frozen=True)
class Check:
    """Any other rule: a predicate and the words that say what it accepts."""

    accepts: Callable[[object], bool]
    description: str

    def describe(self) -> str:
        return self.description


COUNT = Interval(int, 1)  # how many of something: at least one
POSITIVE = Interval(float, 0, closed="neither")  # seconds, rates, sizes
SHARE = Interval(float, 0, 1)  # a fraction of a whole
NAMES = Check(lambda v: isinstance(v, tuple) and all(isinstance(n, str) for n in v), "a tuple of names")


def check_params(owner: object, constraints: dict[str, Constraint | list[Constraint]]) -> None:
    """Raise ValueError naming the first parameter of ``owner`` that none of its constraints accepts."""
    for name, allowed in constraints.items():
        value = getattr(owner, name)
        options = allowed if isinstance(allowed, list) else [allowed]
        if any(value is None if option is None else option.accepts(value) for option in options):
            continue
        words = " or ".join("None" if option is None else option.describe() for option in options)
        raise ValueError(f"{name} must be {words}, got {value!r}")
