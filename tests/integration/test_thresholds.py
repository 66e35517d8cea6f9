"""Detector thresholds: documented in each class, listed in the README, settable from a config file or --threshold."""

from __future__ import annotations

import json
import re

import pytest
from conftest import ROOT, read_json, run_cli

from traffic_analyzer.detection.catalogue import (
    DETECTORS,
    build_detectors,
    check_thresholds,
    detector_table,
    parse_threshold_options,
    thresholds_of,
)
from traffic_analyzer.errors import ConfigError
from traffic_analyzer.pipeline import default_detectors

TABLE = re.compile(r"<!-- detector-table:start -->\n(.*?)\n<!-- detector-table:end -->", re.S)


def test_readme_detector_table_is_generated_from_the_classes():
    match = TABLE.search((ROOT / "README.md").read_text())
    assert match and match.group(1) == detector_table(), "run python3 scripts/make_detector_table.py"


@pytest.mark.parametrize("cls", DETECTORS, ids=lambda cls: cls.name)
def test_every_threshold_is_documented(cls):
    for threshold in thresholds_of(cls).values():
        assert len(threshold.meaning) > 20, f"{cls.name}.{threshold.name} has no description in its docstring"


def test_overrides_reach_the_detectors_and_beat_scan_min_ports():
    detectors = {
        d.name: d for d in default_detectors(25, 60.0, {"port_scan": {"min_ports": 40}, "dga": {"min_names": 6}})
    }
    assert detectors["port_scan"].min_ports == 40 and detectors["port_scan"].window_s == 60.0
    assert detectors["dga"].min_names == 6
    assert [type(d) for d in build_detectors()] == list(DETECTORS)


def test_command_line_options_are_typed_by_the_default():
    parsed = parse_threshold_options(
        ["beacon.min_beacons=12", "beacon.max_jitter=0.3", "dns_tunnel.allow_domains=a.example, b.example"]
    )
    assert parsed == {
        "beacon": {"min_beacons": 12, "max_jitter": 0.3},
        "dns_tunnel": {"allow_domains": ("a.example", "b.example")},
    }


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"portscan": {"min_ports": 3}}, "'portscan'"),
        ({"port_scan": {"min_port": 3}}, "'min_port'"),
        ({"port_scan": {"min_ports": 2.5}}, "port_scan.min_ports"),
        ({"port_scan": {"min_ports": "many"}}, "port_scan.min_ports"),
        ({"port_scan": {"min_ports": 0}}, "port_scan.min_ports"),
        ({"syn_flood": {"min_port_share": 1.5}}, "syn_flood.min_port_share"),
        ({"dns_tunnel": {"allow_domains": "a.example"}}, "dns_tunnel.allow_domains"),
        ({"web_attack": {"min_hits": 2}}, "web_attack has no threshold"),
        ({"port_scan": 30}, "detector_thresholds['port_scan']"),
        (["port_scan"], "detector_thresholds must be a dict"),
    ],
)
def test_bad_thresholds_are_named(overrides, named):
    with pytest.raises(ConfigError, match=re.escape(named)):
        check_thresholds(overrides)


@pytest.mark.parametrize(
    ("option", "named"),
    [("portscan.min_ports=3", "unknown detector 'portscan'"), ("port_scan.min_ports", "DETECTOR.THRESHOLD=VALUE")],
)
def test_command_line_error_is_one_line(tmp_path, option, named):
    tiny = ROOT / "tests" / "data" / "tiny-ethernet.pcap"
    proc = run_cli("--read", str(tiny), "--no-dashboard", "--threshold", option,
                   "--data-dir", str(tmp_path / "d"), "--log-file", str(tmp_path / "l"))  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and named in proc.stderr and proc.stderr.startswith("error: ")


def test_threshold_from_config_file_and_command_line(syn_scan, tmp_path):
    scan = syn_scan.path  # nmap -sS of 1000 ports
    assert [a["kind"] for a in read_json(tmp_path, scan)["alerts"]] == ["port_scan"]
    config = tmp_path / "my_config.py"
    config.write_text(
        f"CONFIG = {{'read_file': {str(scan)!r}, 'dashboard': False, 'progress': False,"
        f" 'detector_thresholds': {{'port_scan': {{'min_ports': 2000}}}},"
        f" 'data_dir': {str(tmp_path / 'd')!r}, 'log_file': {str(tmp_path / 'l')!r}}}\n"
    )
    proc = run_cli("--config", str(config), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["alerts"] == []  # 1000 ports < min_ports=2000
    proc = run_cli("--config", str(config), "--json", "--threshold", "port_scan.min_ports=500")  # the command line wins
    assert proc.returncode == 0, proc.stderr
    assert [a["kind"] for a in json.loads(proc.stdout)["alerts"]] == ["port_scan"]
