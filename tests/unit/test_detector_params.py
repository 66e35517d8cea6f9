"""Detector parameters are checked once, when a detector is made, against its declared constraints."""

from __future__ import annotations

import pickle

import pytest

from traffic_analyzer.detection.base import Detector
from traffic_analyzer.detection.params import COUNT, POSITIVE, SHARE, Check, Interval, check_params

pytestmark = pytest.mark.unit


class _Rule(Detector):
    name = "rule"
    _parameter_constraints = {"min_hits": COUNT, "window_s": POSITIVE, "share": SHARE, "ports": [None, Check(
        lambda v: isinstance(v, tuple) and all(isinstance(p, int) for p in v), "a tuple of ports")]}  # fmt: skip

    def __init__(self, min_hits: int = 3, window_s: float = 60.0, share: float = 0.5, ports: tuple | None = None):
        self.min_hits, self.window_s, self.share, self.ports = min_hits, window_s, share, ports


class _Stricter(_Rule):
    _parameter_constraints = {**_Rule._parameter_constraints, "min_hits": Interval(int, 10)}


@pytest.mark.parametrize(
    "kind, value, accepted",
    [
        (COUNT, 1, True), (COUNT, 0, False), (COUNT, 2.0, False), (COUNT, True, False),
        (POSITIVE, 0.5, True), (POSITIVE, 3, True), (POSITIVE, 0, False), (POSITIVE, float("nan"), False),
        (SHARE, 0, True), (SHARE, 1, True), (SHARE, 1.01, False), (SHARE, "0.5", False),
    ],
)  # fmt: skip
def test_intervals_accept_numbers_of_their_kind_inside_their_bounds(kind, value, accepted):
    assert kind.accepts(value) is accepted


def test_intervals_say_what_they_accept():
    assert [c.describe() for c in (COUNT, POSITIVE, SHARE, Interval(float, 0, 100, "right"))] == [
        "a whole number >= 1",
        "a number > 0",
        "a number between 0 and 1",
        "a number > 0 and <= 100",
    ]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"min_hits": 0}, "min_hits must be a whole number >= 1, got 0"),
        ({"window_s": -5}, "window_s must be a number > 0, got -5"),
        ({"share": 2}, "share must be a number between 0 and 1, got 2"),
        ({"ports": [80]}, "ports must be None or a tuple of ports, got [80]"),
    ],
)
def test_a_bad_parameter_is_refused_when_the_detector_is_made_and_named(kwargs, message):
    with pytest.raises(ValueError) as raised:
        _Rule(**kwargs)
    assert str(raised.value) == message


def test_a_subclass_checks_its_own_constraints_once_and_pickles_without_checking_again():
    assert _Rule(min_hits=5).min_hits == 5 and _Rule(ports=(80, 443)).ports == (80, 443)
    with pytest.raises(ValueError, match="min_hits must be a whole number >= 10"):
        _Stricter(min_hits=5)
    made = _Stricter(min_hits=12)
    made.min_hits = 0  # state a detector changes later is not re-checked on the way to the worker
    assert pickle.loads(pickle.dumps(made)).min_hits == 0


def test_check_params_reads_attributes_of_any_object():
    class Plain:
        size = 0

    with pytest.raises(ValueError, match="size must be a whole number >= 1, got 0"):
        check_params(Plain(), {"size": COUNT})
