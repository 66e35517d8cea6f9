"""Capture faults with real processes: a killed capture process and an interface that goes down and
comes back are restarted and reported, before and after the privilege drop (the root keeper starts
dumpcap again for the unprivileged analyzer); a tshark capture that cannot be reopened after the drop
ends the run with one clear line. Everything happens between namespaces the test makes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from conftest import CLI, wait_until
from netns import HostPair, host_pair  # noqa: F401 (fixture)

from traffic_analyzer.store.engine import store_url
from traffic_analyzer.store.reader import ResultReader

HERE = Path(__file__).resolve().parents[1]  # the tests folder: its helper scripts
DATAGRAMS = 30
START_TIMEOUT_S = 30


def _start(pair: HostPair, data: Path, backend: str, duration: int, run_as: str = "root") -> subprocess.Popen:
    return pair.popen_in(
        pair.ns_a, sys.executable, str(CLI), "--interface", pair.if_a, "--backend", backend,
        "--filter", "udp port 9999", "--window", "1", "--duration", str(duration), "--no-dashboard", "--json",
        "--no-progress", "--no-evidence", "--data-dir", str(data / "d"), "--log-file", str(data / "log"),
        "--run-as", run_as, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.fixture
def data(run_as: str, tmp_path: Path) -> Iterator[Path]:
    """Where the analyzer writes: pytest's own tmp as root; a folder the account can reach after a drop."""
    if run_as == "root":
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="nta-fault-", dir="/tmp"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _wait_started(data: Path, run_as: str) -> None:
    """The capture runs, and when a drop was asked for, the analyzer no longer is root."""
    wait_until(lambda: "capturing on" in _log(data), START_TIMEOUT_S, "the capture to start")
    if run_as != "root":
        wait_until(lambda: f"running as {run_as}" in _log(data), START_TIMEOUT_S, "the privilege drop")


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
@pytest.mark.parametrize(
    ("backend", "victim", "run_as"),
    [("dumpcap", "dumpcap", "root"), ("tshark", "tshark", "root"), ("dumpcap", "dumpcap", "nobody")],
)
def test_a_killed_capture_process_is_restarted_and_reported(host_pair, data, backend, victim, run_as):  # noqa: F811
    analyzer = _start(host_pair, data, backend, duration=40, run_as=run_as)
    try:
        _wait_started(data, run_as)
        first = wait_until(lambda: _capture_procs(analyzer, victim), START_TIMEOUT_S, f"the {victim} process")
        time.sleep(1.5)
        _send(host_pair)
        wait_until(lambda: _windows_with_packets(data), 15, "the first datagrams in the store")
        time.sleep(1.5)  # the window holding the burst is stored
        before_kill = _stored_packets(data)
        for proc in first:
            proc.kill()  # SIGKILL: the capture process dies without a word
        wait_until(lambda: "restarting it" in _log(data), 20, "the restart to be reported")
        again = wait_until(
            lambda: [p for p in _capture_procs(analyzer, victim) if p.pid not in {f.pid for f in first}],
            20,
            f"a new {victim} process",
        )
        assert all(p.uids().effective == 0 for p in again)  # root's capture, also when the analyzer is not
        _captured_again(host_pair, data)  # resends until the new capture has opened the interface
        out, err = analyzer.communicate(timeout=90)
    finally:
        _stop(analyzer)
    assert analyzer.returncode == 0, err
    summary = json.loads(out)
    assert summary["packets"] > before_kill > 0  # traffic before the kill, and more after the restart
    assert "capture on" in _log(data) and "stopped:" in _log(data)


def _captured_again(pair: HostPair, data: Path, timeout_s: float = 45) -> None:
    before = _windows_with_packets(data)
    deadline = time.monotonic() + timeout_s
    while _windows_with_packets(data) <= before:  # resend until the capture sees it
        assert time.monotonic() < deadline, "no packet was captured after the interface came back"
        _send(pair, 10)
        time.sleep(2.0)


@pytest.mark.live
@pytest.mark.parametrize("run_as", ["root", "nobody"])
def test_an_interface_that_goes_down_and_comes_back_is_reported_and_captured_again(host_pair, data, run_as):  # noqa: F811
    analyzer = _start(host_pair, data, "dumpcap", duration=40, run_as=run_as)
    try:
        _wait_started(data, run_as)
        time.sleep(2.0)
        _send(host_pair)
        wait_until(lambda: _windows_with_packets(data), 15, "the first datagrams in the store")
        subprocess.run(["ip", "-n", host_pair.ns_a, "link", "set", host_pair.if_a, "down"], check=True, timeout=10)
        wait_until(lambda: f"interface {host_pair.if_a} is down" in _log(data), 20, "the outage in the log")
        wait_until(lambda: "is down" in _stored_status(data), 20, "the outage in the stored capture health")
        subprocess.run(["ip", "-n", host_pair.ns_a, "link", "set", host_pair.if_a, "up"], check=True, timeout=10)
        wait_until(lambda: "up again" in _log(data), 20, "the recovery in the log")
        _captured_again(host_pair, data)
        out, err = analyzer.communicate(timeout=90)
    finally:
        _stop(analyzer)
    assert analyzer.returncode == 0, err
    assert json.loads(out)["packets"] > DATAGRAMS


@pytest.mark.live
@pytest.mark.parametrize("run_as", ["root", "nobody"])
def test_an_interface_that_disappears_and_returns_is_captured_again(host_pair, data, run_as):  # noqa: F811
    """A USB adapter unplugged and plugged back: the capture ends, is retried, and resumes."""
    analyzer = _start(host_pair, data, "dumpcap", duration=45, run_as=run_as)
    try:
        _wait_started(data, run_as)
        time.sleep(2.0)
        subprocess.run(["ip", "-n", host_pair.ns_a, "link", "del", host_pair.if_a], check=True, timeout=10)
        wait_until(lambda: "restarting it" in _log(data), 20, "the lost capture in the log")
        wait_until(lambda: "down:" in _stored_status(data), 20, "the outage in the stored capture health")
        time.sleep(2.0)
        _ip = ["ip", "-n", host_pair.ns_a]
        subprocess.run([*_ip, "link", "add", host_pair.if_a, "type", "veth", "peer", "name", host_pair.if_b,
                        "netns", host_pair.ns_b], check=True, timeout=10)  # fmt: skip
        subprocess.run([*_ip, "addr", "add", f"{host_pair.ip_a}/24", "dev", host_pair.if_a], check=True, timeout=10)
        subprocess.run([*_ip, "link", "set", host_pair.if_a, "up"], check=True, timeout=10)
        b = ["ip", "-n", host_pair.ns_b]
        subprocess.run([*b, "addr", "add", f"{host_pair.ip_b}/24", "dev", host_pair.if_b], check=True, timeout=10)
        subprocess.run([*b, "link", "set", host_pair.if_b, "up"], check=True, timeout=10)
        _captured_again(host_pair, data)
        out, err = analyzer.communicate(timeout=90)
    finally:
        _stop(analyzer)
    assert analyzer.returncode == 0, err
    assert json.loads(out)["packets"] >= 10


@pytest.mark.live
@pytest.mark.parametrize("run_as", ["nobody"])
def test_after_dropping_root_a_lost_tshark_capture_ends_the_run_in_one_line(host_pair, data, run_as):  # noqa: F811
    """tshark starts its own dumpcap, which the keeper could not hand over: no restart without root."""
    analyzer = _start(host_pair, data, "tshark", duration=60, run_as=run_as)
    try:
        _wait_started(data, run_as)
        for proc in _capture_procs(analyzer, "tshark"):
            proc.kill()
        out, err = analyzer.communicate(timeout=60)
    finally:
        _stop(analyzer)
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
