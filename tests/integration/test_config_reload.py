"""SIGHUP re-reads --config in a live run: a broken file changes nothing, a valid one applies at once.

The analyzer captures on loopback; the test streams UDP datagrams and connect()-scans closed TCP
ports of 127.0.0.1, nothing else.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
from dataclasses import replace
from pathlib import Path

import pytest
from live_analyzer import (
    SCAN_FIRST_PORT,
    connect_scan,
    end_group,
    log_text,
    start_analyzer,
    stop_analyzer,
    wait_for_log,
    wait_for_windows,
)
from send_traffic import udp_traffic  # noqa: F401 (fixture)

from traffic_analyzer.alerts.dispatcher import dispatcher_from_config
from traffic_analyzer.errors import ConfigError
from traffic_analyzer.pipeline import default_detectors
from traffic_analyzer.records.alert import Alert
from traffic_analyzer.reload import plan_reload, swapped_detectors
from traffic_analyzer.settings import Config

RELOAD_TIMEOUT_S = 20
SYSLOG_TIMEOUT_S = 10
SCAN_PORTS = 15  # per scan: below the starting threshold even twice over, above the reloaded one
START_MIN_PORTS = 40
RELOADED_MIN_PORTS = 10
FAILED = "config reload failed: "
BROKEN_CONFIGS = {
    "syntax error": "CONFIG = {'scan_min_ports': 10,\n",
    "unknown setting": "CONFIG = {'scan_min_ports': 10, 'scan_min_portz': 10}\n",
    "bad value": "CONFIG = {'scan_min_ports': 'ten'}\n",
}


def _write_config(path: Path, settings: str) -> None:
    path.write_text(settings)
    path.chmod(0o644)  # a config file others may change is refused when running as root


def _no_scan_alert(tmp_path: Path) -> bool:
    return "port_scan attacker=127.0.0.1" not in log_text(tmp_path)


def test_sighup_with_a_broken_config_reports_one_line_each_time_and_the_run_goes_on(
    udp_traffic,  # noqa: F811
    tmp_path,
):
    config = tmp_path / "config.py"
    _write_config(config, f"CONFIG = {{'scan_min_ports': {START_MIN_PORTS}}}\n")
    analyzer = start_analyzer(tmp_path, udp_traffic, "--config", str(config))
    try:
        after = wait_for_windows(tmp_path, analyzer, 2)
        for what, text in BROKEN_CONFIGS.items():
            _write_config(config, text)
            analyzer.send_signal(signal.SIGHUP)
            after = wait_for_log(tmp_path, analyzer, FAILED, RELOAD_TIMEOUT_S, after)
            line = log_text(tmp_path)[after:].split("\n", 1)[0]
            assert line.endswith("; the running configuration stays"), (what, line)
            after = wait_for_windows(tmp_path, analyzer, 2, after)  # the run goes on
        assert connect_scan(range(SCAN_FIRST_PORT, SCAN_FIRST_PORT + SCAN_PORTS)) >= RELOADED_MIN_PORTS
        wait_for_windows(tmp_path, analyzer, 3, after)
        stdout, stderr = stop_analyzer(analyzer)
    finally:
        end_group(analyzer)
    assert analyzer.returncode == 0, stderr
    failures = [line for line in stderr.splitlines() if FAILED in line]
    assert len(failures) == len(BROKEN_CONFIGS), stderr
    assert "syntax error on line" in failures[0]
    assert "unknown setting 'scan_min_portz'" in failures[1]
    assert "scan_min_ports must be a number" in failures[2]
    assert _no_scan_alert(tmp_path)  # the running threshold (40) stayed: 15 ports are no scan
    summary = json.loads(stdout)
    assert summary["packets"] > 0 and not [a for a in summary["alerts"] if a["kind"] == "port_scan"]


def test_sighup_with_a_valid_config_applies_the_new_scan_threshold_and_names_what_needs_a_restart(
    udp_traffic,  # noqa: F811
    tmp_path,
):
    config = tmp_path / "config.py"
    _write_config(config, f"CONFIG = {{'scan_min_ports': {START_MIN_PORTS}}}\n")
    analyzer = start_analyzer(tmp_path, udp_traffic, "--config", str(config))
    try:
        after = wait_for_windows(tmp_path, analyzer, 2)
        assert connect_scan(range(SCAN_FIRST_PORT, SCAN_FIRST_PORT + SCAN_PORTS)) >= RELOADED_MIN_PORTS
        after = wait_for_windows(tmp_path, analyzer, 3, after)
        assert _no_scan_alert(tmp_path)  # 15 ports under the starting threshold of 40
        _write_config(config, f"CONFIG = {{'scan_min_ports': {RELOADED_MIN_PORTS}, 'baseline_s': 30.0}}\n")
        analyzer.send_signal(signal.SIGHUP)
        expected = f"config reloaded: applied scan_min_ports {START_MIN_PORTS} -> {RELOADED_MIN_PORTS}; "
        after = wait_for_log(tmp_path, analyzer, expected, RELOAD_TIMEOUT_S, after)
        line = log_text(tmp_path)[after:].split("\n", 1)[0]
        assert line.startswith("need a restart to apply") and line.endswith(": baseline_s"), line
        second = range(SCAN_FIRST_PORT + SCAN_PORTS, SCAN_FIRST_PORT + 2 * SCAN_PORTS)
        assert connect_scan(second) >= RELOADED_MIN_PORTS  # 30 ports in all: no scan at 40, one at 10
        wait_for_log(tmp_path, analyzer, "port_scan attacker=127.0.0.1", RELOAD_TIMEOUT_S, after)
        stdout, stderr = stop_analyzer(analyzer)
    finally:
        end_group(analyzer)
    assert analyzer.returncode == 0, stderr
    assert "need a restart to apply" in stderr  # a reload that leaves settings unapplied is said on stderr too
    summary = json.loads(stdout)
    assert "port_scan" in {a["kind"] for a in summary["alerts"]}
    assert summary["model"]["baseline_s"] == 600.0  # the baseline kept its running value


def test_a_reload_rebuilds_only_the_changed_channels_and_detectors_and_a_bad_one_changes_nothing():
    old = Config()
    logger = logging.getLogger("reload-test")
    dispatcher = dispatcher_from_config(old, logger, "r1")
    log_channel = dispatcher.channels[0]
    detectors = default_detectors(old.scan_min_ports, old.scan_window_s, old.detector_thresholds)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as syslog_server:
        syslog_server.bind(("127.0.0.1", 0))
        syslog_server.settimeout(SYSLOG_TIMEOUT_S)
        target = f"udp://127.0.0.1:{syslog_server.getsockname()[1]}"
        plan = plan_reload(old, replace(old, syslog_target=target, scan_min_ports=10, sensor_name="elsewhere"))
        assert plan.applied == ["scan_min_ports", "syslog_target"] and plan.restart == ["sensor_name"]
        assert plan.config.sensor_name is None  # a restart setting keeps its running value
        swapped = swapped_detectors(detectors, old, plan.config)
        assert [d.name for d in swapped] == [d.name for d in detectors]
        assert [d is before for d, before in zip(swapped, detectors, strict=True)] == [
            d.name != "port_scan" for d in detectors
        ]
        assert next(d for d in swapped if d.name == "port_scan").min_ports == 10
        assert dispatcher.reconfigure(plan.config, set(plan.applied)) == ["syslog"]
        assert [c.name for c in dispatcher.channels] == ["log", "syslog"] and dispatcher.channels[0] is log_channel

        with pytest.raises(ConfigError, match="webhook_url must be an http"):
            dispatcher.reconfigure(replace(plan.config, webhook_url="ftp://x"), {"webhook_url"})
        assert [c.name for c in dispatcher.channels] == ["log", "syslog"]

        alert = Alert("dga", "10.0.0.1", ["10.0.0.53"], 1.0, 2.0, 55.0, "10.0.0.1 looked up random names")
        dispatcher.send([alert], now=2.0)
        message = syslog_server.recv(65536).decode()
        assert "dga" in message and "10.0.0.1" in message
    dispatcher.close(timeout_s=1.0)
