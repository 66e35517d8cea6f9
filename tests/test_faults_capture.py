"""Capture faults with real processes: a killed capture process and an interface that goes down and
comes back are restarted and reported; after a privilege drop, a capture that cannot be reopened ends
the run with one clear line. Everything happens between namespaces the test makes."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from conftest import CLI, wait_until
from netns import HostPair, host_pair  # noqa: F401 (fixture)

from traffic_analyzer.store.engine import store_url
from traffic_analyzer.store.reader import ResultReader

HERE = Path(__file__).resolve().parent
DATAGRAMS = 30
START_TIMEOUT_S = 30


def _start(pair: HostPair, data: Path, backend: str, duration: int, env: dict | None = None) -> subprocess.Popen:
    return pair.popen_in(
        pair.ns_a, sys.executable, str(CLI), "--interface", pair.if_a, "--backend", backend,
        "--filter", "udp port 9999", "--window", "1", "--duration", str(duration), "--no-dashboard", "--json",
        "--no-progress", "--no-evidence", "--data-dir", str(data / "d"), "--log-file", str(data / "log"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env or os.environ.copy(),
    )  # fmt: skip


def _log(data: Path) -> str:
    path = data / "log"
    return path.read_text() if path.exists() else ""


def _stop(analyzer: subprocess.Popen) -> None:
    if analyzer.poll() is None:
        analyzer.kill()
        analyzer.wait(timeout=10)


def _send(pair: HostPair, count: int = DATAGRAMS) -> None:
    sent = pair.run_in(pair.ns_b, sys.executable, str(HERE / "send_traffic.py"), pair.ip_a, str(count), "0.01")
    assert sent.returncode == 0, sent.stderr


def _capture_procs(analyzer: subprocess.Popen, name: str) -> list[psutil.Process]:
    try:
        tree = psutil.Process(analyzer.pid).children(recursive=True)
    except psutil.Error:
        return []
    found = []
    for p in tree:
        try:
            if p.name() == name and "-d" not in p.cmdline():  # not the short "dumpcap -d" interface checks
                found.append(p)
        except psutil.Error:
            pass  # ended meanwhile
    return found


def _from_latest_run(data: Path, read, empty):
    """``read(reader, run_id)`` on the analyzer's store for its latest run; ``empty`` before there is one."""
    if not (data / "d" / "analyzer.db").exists():
        return empty
    reader = ResultReader(store_url(data / "d"))
    try:
        runs = reader.latest_runs()
        return read(reader, runs[0]["run_id"]) if runs else empty
    finally:
        reader.close()


def _stored_packets(data: Path) -> int:
    return _from_latest_run(data, lambda r, run: int(r.traffic(run)["packets"].sum()), 0)


def _windows_with_packets(data: Path) -> int:
    return _from_latest_run(data, lambda r, run: int((r.traffic(run)["packets"] > 0).sum()), 0)


def _stored_status(data: Path) -> str:
    """The capture status of the latest stored health sample: what the dashboard's health panel shows."""
    return _from_latest_run(data, lambda r, run: str((r.health(run) or {}).get("status", "")), "")


@pytest.mark.live
@pytest.mark.parametrize(("backend", "victim"), [("dumpcap", "dumpcap"), ("tshark", "tshark")])
def test_a_killed_capture_process_is_restarted_and_reported(host_pair, tmp_path, backend, victim):  # noqa: F811
    analyzer = _start(host_pair, tmp_path, backend, duration=40)
    try:
        wait_until(lambda: "capturing on" in _log(tmp_path), START_TIMEOUT_S, "the capture to start")
        first = wait_until(lambda: _capture_procs(analyzer, victim), START_TIMEOUT_S, f"the {victim} process")
        time.sleep(1.5)
        _send(host_pair)
        wait_until(lambda: _windows_with_packets(tmp_path), 15, "the first datagrams in the store")
        time.sleep(1.5)  # the window holding the burst is stored
        before_kill = _stored_packets(tmp_path)
        for proc in first:
            proc.kill()  # SIGKILL: the capture process dies without a word
        wait_until(lambda: "restarting it" in _log(tmp_path), 20, "the restart to be reported")
        wait_until(
            lambda: [p for p in _capture_procs(analyzer, victim) if p.pid not in {f.pid for f in first}],
            20,
            f"a new {victim} process",
        )
        _captured_again(host_pair, tmp_path)  # resends until the new capture has opened the interface
        out, err = analyzer.communicate(timeout=90)
    finally:
        _stop(analyzer)
    assert analyzer.returncode == 0, err
    summary = json.loads(out)
    assert summary["packets"] > before_kill > 0  # traffic before the kill, and more after the restart
    assert "capture on" in _log(tmp_path) and "stopped:" in _log(tmp_path)


def _captured_again(pair: HostPair, data: Path, timeout_s: float = 45) -> None:
    before = _windows_with_packets(data)
    deadline = time.monotonic() + timeout_s
    while _windows_with_packets(data) <= before:  # resend until the capture sees it
        assert time.monotonic() < deadline, "no packet was captured after the interface came back"
        _send(pair, 10)
        time.sleep(2.0)


@pytest.mark.live
def test_an_interface_that_goes_down_and_comes_back_is_reported_and_captured_again(host_pair, tmp_path):  # noqa: F811
    analyzer = _start(host_pair, tmp_path, "dumpcap", duration=40)
    try:
        wait_until(lambda: "capturing on" in _log(tmp_path), START_TIMEOUT_S, "the capture to start")
        time.sleep(2.0)
        _send(host_pair)
        wait_until(lambda: _windows_with_packets(tmp_path), 15, "the first datagrams in the store")
        subprocess.run(["ip", "-n", host_pair.ns_a, "link", "set", host_pair.if_a, "down"], check=True, timeout=10)
        wait_until(lambda: f"interface {host_pair.if_a} is down" in _log(tmp_path), 20, "the outage in the log")
        wait_until(lambda: "is down" in _stored_status(tmp_path), 20, "the outage in the stored capture health")
        subprocess.run(["ip", "-n", host_pair.ns_a, "link", "set", host_pair.if_a, "up"], check=True, timeout=10)
        wait_until(lambda: "up again" in _log(tmp_path), 20, "the recovery in the log")
        _captured_again(host_pair, tmp_path)
        out, err = analyzer.communicate(timeout=90)
    finally:
        _stop(analyzer)
    assert analyzer.returncode == 0, err
    assert json.loads(out)["packets"] > DATAGRAMS


@pytest.mark.live
def test_an_interface_that_disappears_and_returns_is_captured_again(host_pair, tmp_path):  # noqa: F811
    """A USB adapter unplugged and plugged back: the capture ends, is retried, and resumes."""
    analyzer = _start(host_pair, tmp_path, "dumpcap", duration=45)
    try:
        wait_until(lambda: "capturing on" in _log(tmp_path), START_TIMEOUT_S, "the capture to start")
        time.sleep(2.0)
        subprocess.run(["ip", "-n", host_pair.ns_a, "link", "del", host_pair.if_a], check=True, timeout=10)
        wait_until(lambda: "restarting it" in _log(tmp_path), 20, "the lost capture in the log")
        wait_until(lambda: "down:" in _stored_status(tmp_path), 20, "the outage in the stored capture health")
        time.sleep(2.0)
        _ip = ["ip", "-n", host_pair.ns_a]
        subprocess.run([*_ip, "link", "add", host_pair.if_a, "type", "veth", "peer", "name", host_pair.if_b,
                        "netns", host_pair.ns_b], check=True, timeout=10)  # fmt: skip
        subprocess.run([*_ip, "addr", "add", f"{host_pair.ip_a}/24", "dev", host_pair.if_a], check=True, timeout=10)
        subprocess.run([*_ip, "link", "set", host_pair.if_a, "up"], check=True, timeout=10)
        b = ["ip", "-n", host_pair.ns_b]
        subprocess.run([*b, "addr", "add", f"{host_pair.ip_b}/24", "dev", host_pair.if_b], check=True, timeout=10)
        subprocess.run([*b, "link", "set", host_pair.if_b, "up"], check=True, timeout=10)
        _captured_again(host_pair, tmp_path)
        out, err = analyzer.communicate(timeout=90)
    finally:
        _stop(analyzer)
    assert analyzer.returncode == 0, err
    assert json.loads(out)["packets"] >= 10


@pytest.mark.live
def test_after_dropping_root_a_lost_capture_ends_the_run_in_one_line(host_pair):  # noqa: F811
    nobody = pwd.getpwnam("nobody")
    folder = Path(tempfile.mkdtemp(prefix="nta-fault-", dir="/tmp"))
    folder.chmod(0o755)
    env = {**os.environ, "SUDO_UID": str(nobody.pw_uid), "SUDO_GID": str(nobody.pw_gid), "SUDO_USER": "nobody"}
    analyzer = _start(host_pair, folder, "dumpcap", duration=60, env=env)
    try:
        wait_until(lambda: "running as nobody" in _log(folder), START_TIMEOUT_S, "the privilege drop")
        for proc in _capture_procs(analyzer, "dumpcap"):
            proc.kill()
        out, err = analyzer.communicate(timeout=60)
    finally:
        _stop(analyzer)
        shutil.rmtree(folder, ignore_errors=True)
    assert analyzer.returncode == 1
    assert "cannot be reopened without root" in err.strip().splitlines()[-1], err


@pytest.mark.live
def test_no_capture_outlives_an_analyzer_killed_without_warning(host_pair, tmp_path):  # noqa: F811
    """SIGKILL runs no clean-up code: the kernel ends the live dumpcap and the evidence ring's dumpcap."""
    analyzer = host_pair.popen_in(
        host_pair.ns_a, sys.executable, str(CLI), "--interface", host_pair.if_a, "--duration", "60",
        "--no-dashboard", "--data-dir", str(tmp_path / "d"), "--log-file", str(tmp_path / "log"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        captures = wait_until(
            lambda: len(found := _capture_procs(analyzer, "dumpcap")) >= 2 and found, START_TIMEOUT_S, "both dumpcaps"
        )
        analyzer.kill()
        analyzer.wait(timeout=10)
        _, alive = psutil.wait_procs(captures, timeout=10)
        assert not alive, f"captures left running: {[p.cmdline() for p in alive]}"
    finally:
        _stop(analyzer)
