"""A live capture on loopback shows its packets on the dashboard within seconds, in real Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser_session import _rows, _text, _wait, browser  # noqa: F401 (fixture)
from conftest import CLI
from netns import host_pair  # noqa: F401 (fixture)

from traffic_analyzer.dashboard.server import DashboardServer
from traffic_analyzer.store.engine import store_url

DATAGRAMS = 40
HERE = Path(__file__).resolve().parents[1]  # the tests folder: its helper scripts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def packets_shown(driver) -> int:
    text = _text(driver, "overview-health-packets").replace(",", "")
    return int(text) if text.isdigit() else 0


def wait_http(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout_s} s")


@pytest.mark.skipif(os.geteuid() != 0, reason="capturing on loopback needs root")
def test_live_loopback_capture_reaches_the_dashboard(browser, tmp_path):  # noqa: F811
    traffic_port, web_port = free_port(), free_port()
    analyzer = subprocess.Popen(
        [
            sys.executable,
            str(CLI),
            "--interface",
            "lo",
            "--filter",
            f"udp port {traffic_port}",
            "--backend",
            "tshark",
            "--window",
            "1",
            "--duration",
            "40",
            "--port",
            str(web_port),
            "--data-dir",
            str(tmp_path / "d"),
            "--log-file",
            str(tmp_path / "log"),
            "--no-progress",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{web_port}/"
        wait_http(url, 30)
        browser.get(url)
        _wait(browser, lambda d: "capturing on lo" in _text(d, "overview-health"), "the live capture status")
        time.sleep(2)  # tshark opens loopback after the run starts
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for i in range(DATAGRAMS):
                sock.sendto(f"dashboard test {i}".encode(), ("127.0.0.1", traffic_port))
                time.sleep(0.01)
        sent_at = time.monotonic()

        _wait(browser, lambda d: packets_shown(d) >= DATAGRAMS, f"{DATAGRAMS} captured packets")
        assert time.monotonic() - sent_at < 10  # a 1 s window plus a 2 s refresh, with room for a slow machine
    finally:
        analyzer.terminate()
        analyzer.wait(timeout=30)


def test_capture_on_a_test_made_interface_reaches_the_dashboard(browser, host_pair, tmp_path):  # noqa: F811
    """The analyzer captures inside a test namespace; the dashboard, outside it, reads the same store."""
    data_dir = tmp_path / "d"
    analyzer = host_pair.popen_in(
        host_pair.ns_a,
        sys.executable,
        str(CLI),
        "--interface",
        host_pair.if_a,
        "--backend",
        "tshark",
        "--window",
        "1",
        "--duration",
        "40",
        "--no-dashboard",
        "--data-dir",
        str(data_dir),
        "--log-file",
        str(tmp_path / "log"),
        "--no-progress",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server = None
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "log").exists() or "capturing on" not in (tmp_path / "log").read_text():
            assert time.monotonic() < deadline, "the capture did not start"
            time.sleep(0.2)
        server = DashboardServer(store_url(data_dir), "127.0.0.1", free_port())
        server.start()
        browser.get(server.url)
        _wait(browser, lambda d: f"capturing on {host_pair.if_a}" in _text(d, "overview-health"), "the capture")
        time.sleep(2)  # tshark opens the interface after the run starts
        sent = host_pair.run_in(
            host_pair.ns_b, sys.executable, str(HERE / "send_traffic.py"), host_pair.ip_a, str(DATAGRAMS), "0.01"
        )
        assert sent.returncode == 0, sent.stderr
        _wait(browser, lambda d: packets_shown(d) >= DATAGRAMS, f"{DATAGRAMS} captured packets")
    finally:
        if server is not None:
            server.stop()
        analyzer.terminate()
        analyzer.wait(timeout=30)


def test_a_live_scan_fills_the_alerts_hosts_and_flows_pages(browser, host_pair, tmp_path):  # noqa: F811
    """nmap scans inside test namespaces; each page shows it while the capture still runs, without a reload."""
    if shutil.which("nmap") is None:
        pytest.skip("nmap is not installed; ./setup.sh --dev installs it")
    data_dir, log = tmp_path / "d", tmp_path / "log"
    analyzer = host_pair.popen_in(
        host_pair.ns_a, sys.executable, str(CLI), "--interface", host_pair.if_a, "--backend", "tshark",
        "--window", "1", "--duration", "60", "--no-dashboard", "--data-dir", str(data_dir),
        "--log-file", str(log), "--no-progress", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    server = None
    try:
        deadline = time.monotonic() + 30
        while not log.exists() or "capturing on" not in log.read_text():
            assert time.monotonic() < deadline, "the capture did not start"
            time.sleep(0.2)
        server = DashboardServer(store_url(data_dir), "127.0.0.1", free_port())
        server.start()
        pages = {name: server.url + name for name in ("alerts", "hosts", "flows")}
        browser.get(pages["alerts"])
        _wait(browser, lambda d: _text(d, "alerts-summary") not in ("", "Loading…"), "the alerts page")
        time.sleep(2)  # tshark opens the interface after the run starts
        scan = host_pair.syn_scan("1-300")
        assert scan.returncode == 0, scan.stderr

        def scan_row(d):
            rows = [r for r in _rows(d, "alerts-table") if r.get("kind") == "port_scan"]
            return rows[0] if rows else None

        row = _wait(browser, scan_row, "the port-scan alert, without a reload")
        assert (row["attacker"], row["victims"]) == (host_pair.ip_b, host_pair.ip_a)

        browser.get(pages["hosts"])
        hosts = _wait(browser, lambda d: [r for r in _rows(d, "hosts-table") if r["host"] == host_pair.ip_b], "scanner")
        assert float(hosts[0]["threat"]) > 0 and hosts[0]["severity"] != ""

        browser.get(pages["flows"] + f"?ip={host_pair.ip_b}")

        def flows_shown(d) -> int:
            words = _text(d, "flows-summary").replace(",", "").split()
            return int(words[0]) if words and words[0].isdigit() else 0

        _wait(browser, lambda d: flows_shown(d) >= 300, "the scan's 300 flows")
        assert all(host_pair.ip_b in (r["orig_h"], r["resp_h"]) for r in _rows(browser, "flows-table"))
    finally:
        if server is not None:
            server.stop()
        analyzer.terminate()
        analyzer.wait(timeout=30)
