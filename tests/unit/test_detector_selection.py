"""The ``detectors`` setting: which known-attack detectors run, at start and after a reload."""

from __future__ import annotations

import pytest

from traffic_analyzer.detection.catalogue import BY_NAME, check_names, parse_names
from traffic_analyzer.errors import ConfigError
from traffic_analyzer.pipeline import default_detectors
from traffic_analyzer.reload import swapped_detectors
from traffic_analyzer.settings import Config, validate

pytestmark = pytest.mark.unit


def test_command_line_text_becomes_names():
    assert parse_names("all") is None
    assert parse_names("none") == []
    assert parse_names(" port_scan, brute_force ,") == ["port_scan", "brute_force"]


@pytest.mark.parametrize("value", [["port_scan", "portscan"], "port_scan", [3]])
def test_unknown_or_malformed_names_are_one_clear_error(value):
    with pytest.raises(ConfigError, match="detectors") as info:
        validate({"detectors": value})
    assert "\n" not in str(info.value)


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown detector 'portscan'; known: port_scan, brute_force"):
        check_names(["portscan"])


def test_only_the_named_detectors_are_built():
    assert [d.name for d in default_detectors(25, 60.0)] == list(BY_NAME)
    assert [d.name for d in default_detectors(25, 60.0, None, ["dga", "port_scan"])] == ["port_scan", "dga"]
    assert default_detectors(25, 60.0, None, []) == []


def test_a_reload_keeps_running_detectors_and_starts_those_turned_on():
    old = Config(detectors=["port_scan", "beacon"])
    running = default_detectors(25, 60.0, None, old.detectors)
    new = Config(detectors=["port_scan", "dga"])
    swapped = swapped_detectors(running, old, new)
    assert [d.name for d in swapped] == ["port_scan", "dga"]
    assert swapped[0] is running[0]  # its state (probes seen so far) carries on
    assert swapped_detectors(running, old, Config(detectors=["port_scan", "beacon"])) is running


def test_a_reload_that_changes_thresholds_and_selection_rebuilds_only_the_changed():
    old = Config(detectors=None)
    running = default_detectors(25, 60.0)
    new = Config(detectors=["port_scan", "dga"], detector_thresholds={"dga": {"min_names": 6}})
    swapped = swapped_detectors(running, old, new)
    by_name = {d.name: d for d in running}
    assert [d.name for d in swapped] == ["port_scan", "dga"]
    assert swapped[0] is by_name["port_scan"] and swapped[1] is not by_name["dga"]
    assert swapped[1].min_names == 6
