"""One catalogue of settings: the constructor, the command line, config.example.py and the README agree."""

from __future__ import annotations

import inspect

import pytest
from conftest import ROOT

from network_traffic_analyzer import NetworkTrafficAnalyzer
from traffic_analyzer.cli import build_parser
from traffic_analyzer.errors import ConfigError
from traffic_analyzer.settings import SETTINGS, config_example_text, readme_table

pytestmark = pytest.mark.unit


def test_constructor_parameters_are_the_catalogue():
    params = inspect.signature(NetworkTrafficAnalyzer.__init__).parameters
    assert [p for p in params if p != "self"] == [s.name for s in SETTINGS]
    assert {name: p.default for name, p in params.items() if name != "self"} == {s.name: s.default for s in SETTINGS}


def test_constructor_stores_parameters_and_does_no_io(tmp_path):
    analyzer = NetworkTrafficAnalyzer(interface="eth9", data_dir=str(tmp_path / "never"), capture_duration=60)
    assert analyzer.get_params()["interface"] == "eth9" and analyzer.capture_duration == 60
    assert not (tmp_path / "never").exists()


def test_every_flag_maps_to_its_setting():
    parser = build_parser()
    dests = {a.dest: a for a in parser._actions}
    for s in SETTINGS:
        if s.flag:
            assert dests[s.name].option_strings == [s.flag]
    args = vars(parser.parse_args(["--interface", "eth1", "--duration", "30", "--no-dashboard", "--port", "9000"]))
    assert args == {
        "list_interfaces": False,
        "config": None,
        "json": False,
        "interface": "eth1",
        "capture_duration": 30.0,
        "dashboard": False,
        "dashboard_port": 9000,
    }


def test_config_example_is_generated_from_the_catalogue():
    assert (ROOT / "config.example.py").read_text() == config_example_text(), (
        "run python3 scripts/make_config_example.py"
    )


def test_readme_table_is_generated_from_the_catalogue():
    assert readme_table() in (ROOT / "README.md").read_text(), "run python3 scripts/make_config_example.py"


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"window_s": 0}, "window_s"),
        ({"capture_duration": -1}, "capture_duration"),
        ({"dashboard_host": "not an address"}, "dashboard_host"),
        ({"false_alarm_rate": 2}, "false_alarm_rate"),
        ({"anomaly_alerts_per_day": 0}, "anomaly_alerts_per_day"),
        ({"scan_min_ports": 2.5}, "scan_min_ports"),
        ({"dashboard": "yes"}, "dashboard"),
    ],
)
def test_validation_at_start_names_the_parameter(kwargs, named):
    analyzer = NetworkTrafficAnalyzer(**kwargs)  # the constructor accepts anything...
    with pytest.raises(ConfigError, match=named):
        analyzer.analyze()  # ...and the run refuses, naming the setting
