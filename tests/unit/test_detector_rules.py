"""The unit tier covers every known-attack detector: each one in the catalogue has rule tests in tests/unit.

The rule tests live one module per family (test_rules_*.py); this guard fails when a detector is added to
DETECTORS without them, or when a module of the tier forgets the ``unit`` marker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from traffic_analyzer.detection.catalogue import DETECTORS

pytestmark = pytest.mark.unit

HERE = Path(__file__).resolve().parent
MODULES = sorted(HERE.glob("test_*.py"))


@pytest.mark.parametrize("detector", DETECTORS, ids=[cls.name for cls in DETECTORS])
def test_every_detector_has_rule_tests(detector):
    using = [m.name for m in MODULES if m != Path(__file__).resolve() and f"{detector.__name__}(" in m.read_text()]
    assert using, f"no module in {HERE} builds a {detector.__name__}"


def test_every_module_is_marked_unit():
    unmarked = [m.name for m in MODULES if "pytestmark = pytest.mark.unit" not in m.read_text()]
    assert unmarked == []
