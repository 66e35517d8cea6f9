"""A live run whose traffic passes the analysis budget: flows are sampled, the scan is still found."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest
from conftest import CLI, wait_for
from netns import host_pair  # noqa: F401 (fixture)

FLOOD_PACKETS = 200_000  # UDP datagrams, each from a new source port (a new flow); stopped after the scan
FLOOD_INTERVAL_US = 50  # at most 20,000 packets/s (hping3 reaches about a quarter of that)
MAX_PPS = 2_000  # the analysis budget given to the analyzer: about 1 in 16 flows is kept
SCAN_PORTS = 1000


def statuses(data) -> list[str]:
    """Run statuses of the health samples stored so far (the dashboard's status line)."""
    if not (data / "analyzer.db").exists():
        return []
    try:
        with sqlite3.connect(data / "analyzer.db", timeout=5) as db:
            return [row[0] for row in db.execute("SELECT status FROM health")]
    except sqlite3.OperationalError:  # the tables are not made yet
        return []


def test_sampling_under_load_keeps_the_scan(host_pair, tmp_path):  # noqa: F811
    for tool in ("nmap", "hping3"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed; ./setup.sh --dev installs it")
    log = tmp_path / "analysis.log"
    data = tmp_path / "data"
    analyzer = host_pair.popen_in(
        host_pair.ns_a,
        sys.executable,
        str(CLI),
        "--interface",
        host_pair.if_a,
        "--duration",
        "35",
        "--window",
        "2",
        "--backend",
        "dumpcap",
        "--sample-max-pps",
        str(MAX_PPS),
        "--no-dashboard",
        "--no-evidence",
        "--json",
        "--no-progress",
        "--data-dir",
        str(data),
        "--log-file",
        str(log),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    flood = None
    try:
        wait_for(lambda: log.exists() and "capturing on" in log.read_text(), 30, "the capture to start")
        time.sleep(3)  # dumpcap opens the interface after the run is logged
        flood = host_pair.popen_in(
            host_pair.ns_b,
            "hping3",
            "-2",
            "-q",
            "-p",
            "9",
            "-c",
            str(FLOOD_PACKETS),
            "-i",
            f"u{FLOOD_INTERVAL_US}",
            host_pair.ip_a,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: "analysing 1 in" in " ".join(statuses(data)), 40, "flow sampling to start")
        scan = host_pair.syn_scan(f"1-{SCAN_PORTS}")
        assert scan.returncode == 0, scan.stderr
        out, err = analyzer.communicate(timeout=90)
    finally:
        analyzer.kill()
        if flood is not None:
            flood.kill()
            flood.wait(timeout=10)
    assert analyzer.returncode == 0, err
    summary = json.loads(out)
    assert summary["source"] == f"live {host_pair.if_a} (dumpcap)"
    assert summary["sampled_out"] > summary["packets"]  # most of the flood was not analysed
    assert isinstance(summary["dropped"], int)
    scans = [a for a in summary["alerts"] if a["kind"] == "port_scan"]
    assert [(a["attacker"], a["victims"]) for a in scans] == [(host_pair.ip_b, [host_pair.ip_a])]
    with sqlite3.connect(data / "analyzer.db") as db:
        sampled = db.execute("SELECT max(sampled_out) FROM health").fetchone()[0]
    assert sampled > 0  # what the dashboard shows
