"""--read runs of the real CLI on the public captures and a made scan: the summary, the alerts, the log."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest
from conftest import CLI, read_json, run_cli


def test_syn_scan_summary_names_the_scanner(syn_scan, tmp_path):
    summary = read_json(tmp_path, syn_scan.path)
    assert summary["packets"] == syn_scan.packets
    assert summary["flows"] == syn_scan.ports
    scans = [a for a in summary["alerts"] if a["kind"] == "port_scan"]
    assert len(scans) == 1  # one alert per attack, updated as evidence grows, not one per window
    scan, label = scans[0], syn_scan.label
    assert scan["attacker"] == label["attacker"]
    assert scan["victims"] == [label["victim"]]
    assert label["start_ts"] - 1 <= scan["start"] <= scan["end"] <= label["end_ts"] + 1
    assert scan["evidence"]["distinct_ports"] == 1000
    assert f"1000 distinct TCP ports of {label['victim']}" in scan["explanation"]
    assert scan["severity"] in ("high", "critical") and 0 <= scan["score"] <= 100
    log = (tmp_path / "analysis.log").read_text()
    assert "window " in log and f"ALERT high port_scan attacker={label['attacker']}" in log


@pytest.mark.parametrize("name", ["nmap-connect-scan.pcap", "nmap-udp-scan.pcap", "nmap-xmas-scan.pcap"])
def test_other_scan_kinds_are_found(pcaps, labels, tmp_path, name):
    row = labels.set_index("file").loc[name]
    summary = read_json(tmp_path, pcaps / name)
    scans = [a for a in summary["alerts"] if a["kind"] == "port_scan"]
    assert [(a["attacker"], a["victims"]) for a in scans] == [(row["attacker"], [row["victim"]])]


def test_benign_captures_raise_no_scan_alert(pcaps, labels, tmp_path):
    benign = labels.loc[labels["kind"] == "benign", "file"]
    for name in benign:
        summary = read_json(tmp_path / name, pcaps / name)
        assert summary["packets"] > 0
        assert summary["alerts"] == [], (name, summary["alerts"])


def test_human_summary_and_store(syn_scan, tmp_path):
    proc = run_cli("--read", str(syn_scan.path), "--no-dashboard", "--no-progress",
                   "--data-dir", str(tmp_path / "d"), "--log-file", str(tmp_path / "log"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # without --json nothing goes to stdout
    label = syn_scan.label
    assert f"{syn_scan.packets} packets" in proc.stderr
    assert f"port_scan {label['attacker']} -> {label['victim']}" in proc.stderr
    assert (tmp_path / "d" / "analyzer.db").exists()


def test_a_json_reader_that_stops_early_is_no_error(syn_scan, tmp_path):
    """``--json | head -c 20`` with head gone before the summary is written: the run stays a success, with no
    traceback, and its results are in the store."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone: writing the summary meets a closed pipe
    cmd = [sys.executable, str(CLI), "--read", str(syn_scan.path), "--no-dashboard", "--json", "--no-progress",
           "--data-dir", str(tmp_path / "d"), "--log-file", str(tmp_path / "log")]  # fmt: skip
    try:
        proc = subprocess.run(cmd, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=300)
    finally:
        os.close(write_end)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
    with sqlite3.connect(tmp_path / "d" / "analyzer.db") as db:
        assert db.execute("SELECT status FROM runs").fetchall() == [("finished",)]


def test_config_file_sets_constructor_parameters(syn_scan, tmp_path):
    config = tmp_path / "my_config.py"
    config.write_text(
        f"CONFIG = {{'read_file': {str(syn_scan.path)!r}, 'dashboard': False,"
        f" 'scan_min_ports': 2000, 'data_dir': {str(tmp_path / 'd')!r}, 'log_file': {str(tmp_path / 'l')!r},"
        " 'progress': False}\n"
    )
    proc = run_cli("--config", str(config), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["packets"] == syn_scan.packets and summary["alerts"] == []  # 1000 ports < scan_min_ports=2000
    proc = run_cli("--config", str(config), "--json", "--scan-min-ports", "100")  # the command line wins
    assert [a["kind"] for a in json.loads(proc.stdout)["alerts"]] == ["port_scan"]


def test_allow_listed_attacker_stops_alerting(syn_scan, tmp_path):
    from traffic_analyzer.store.annotations import AllowEntry, AnnotationStore
    from traffic_analyzer.store.engine import store_url
    from traffic_analyzer.store.writer import ResultWriter

    url = store_url(tmp_path / "data")
    (tmp_path / "data").mkdir()
    ResultWriter(url).close()
    store = AnnotationStore(url)
    store.add(AllowEntry(scope="host", attacker=syn_scan.label["attacker"], note="our own scanner"))
    store.close()
    summary = read_json(tmp_path, syn_scan.path)
    assert summary["packets"] == syn_scan.packets and summary["alerts"] == []
    assert "ALERT" not in (tmp_path / "analysis.log").read_text()
