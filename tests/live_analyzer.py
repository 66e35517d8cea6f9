"""A live analyzer on loopback for fault tests: started as a user would, watched through its log, ended by SIGTERM.

It captures only a UDP port the test streams datagrams to (``udp_traffic`` in test_store_kill) and a
TCP port range the test may scan; the test sends nothing anywhere but 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from conftest import CLI

WINDOW_S = 1
START_TIMEOUT_S = 60
SCAN_FIRST_PORT = 47100  # the TCP ports a test scans: 47100.. (refused on loopback; nothing listens there)
SCAN_PORTS = 60  # the range the capture filter lets through
CONNECT_TIMEOUT_S = 1.0


def start_analyzer(tmp_path: Path, udp_port: int, *extra: str) -> subprocess.Popen:
    """The CLI capturing on lo (tshark backend) in windows of WINDOW_S, in its own session; stays root."""
    env = {k: v for k, v in os.environ.items() if k != "SUDO_UID"}  # no privilege drop to test here
    bpf = f"udp port {udp_port} or tcp portrange {SCAN_FIRST_PORT}-{SCAN_FIRST_PORT + SCAN_PORTS - 1}"
    cmd = [sys.executable, str(CLI), "--interface", "lo", "--backend", "tshark", "--filter", bpf]
    cmd += ["--window", str(WINDOW_S), "--no-dashboard", "--no-progress", "--no-evidence", "--json"]
    cmd += ["--sensor-name", "fault-test", "--data-dir", str(tmp_path / "data")]
    cmd += ["--log-file", str(tmp_path / "analysis.log"), *extra]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )


def log_text(tmp_path: Path) -> str:
    log = tmp_path / "analysis.log"
    return log.read_text() if log.exists() else ""


def wait_for_log(tmp_path: Path, analyzer: subprocess.Popen, text: str, timeout_s: float, after: int = 0) -> int:
    """Wait until ``text`` is in the log past offset ``after``; returns the offset just past it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        log = log_text(tmp_path)
        found = log.find(text, after)
        if found >= 0:
            return found + len(text)
        if analyzer.poll() is not None:
            _, stderr = analyzer.communicate()
            raise AssertionError(f"the analyzer ended (exit {analyzer.returncode}) before {text!r}: {stderr}")
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in the log after {timeout_s} s; the log ends: {log_text(tmp_path)[-2000:]}")


def wait_for_windows(tmp_path: Path, analyzer: subprocess.Popen, count: int, after: int = 0) -> int:
    """Wait for ``count`` window lines in the log past ``after``; returns the offset past the last."""
    for _ in range(count):
        after = wait_for_log(tmp_path, analyzer, " INFO window ", START_TIMEOUT_S, after)
    return after


def connect_scan(ports: range) -> int:
    """TCP connect() to each port of 127.0.0.1 (closed: refused at once); returns how many were refused."""
    refused = 0
    for port in ports:
        with socket.socket() as sock:
            sock.settimeout(CONNECT_TIMEOUT_S)
            try:
                sock.connect(("127.0.0.1", port))
            except ConnectionRefusedError:
                refused += 1
            except OSError:
                pass
    return refused


def stop_analyzer(analyzer: subprocess.Popen, timeout_s: float = START_TIMEOUT_S) -> tuple[str, str]:
    """SIGTERM (a clean stop: the last window is written and the run finished); returns stdout, stderr."""
    analyzer.send_signal(signal.SIGTERM)
    return analyzer.communicate(timeout=timeout_s)


def end_group(process: subprocess.Popen) -> None:
    """Kill what the analyzer left behind (tshark, dumpcap) in the session the test started it in."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if process.poll() is None:
        process.wait(timeout=10)
