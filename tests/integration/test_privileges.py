"""Least privilege: a sudo run captures as root but analyses and serves the dashboard as the sudo user."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from conftest import CLI, DATA, ROOT, run_cli, wait_until

from traffic_analyzer.errors import ConfigError
from traffic_analyzer.privileges import readable_by, target_account

NOBODY = pwd.getpwnam("nobody")


def _sudo_env() -> dict:
    """What sudo sets when user nobody runs the analyzer with sudo."""
    return {**os.environ, "SUDO_UID": str(NOBODY.pw_uid), "SUDO_GID": str(NOBODY.pw_gid), "SUDO_USER": "nobody"}


@pytest.fixture
def shared_dir():
    """A folder nobody can reach (pytest's own tmp is private to root)."""
    if os.geteuid() != 0:
        pytest.skip("dropping privileges needs the tests to run as root")
    account = target_account("nobody")
    if not (readable_by(CLI, account) and readable_by(Path(sys.executable), account)):
        pytest.skip(f"user nobody cannot read the project at {ROOT}, so it cannot run it unprivileged")
    folder = Path(tempfile.mkdtemp(prefix="nta-priv-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_whom_root_becomes(monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("only root drops privileges")
    monkeypatch.setenv("SUDO_UID", str(NOBODY.pw_uid))
    assert target_account(None).name == "nobody"  # the user who ran sudo
    assert target_account("root") is None  # an explicit choice to keep root
    monkeypatch.delenv("SUDO_UID")
    assert target_account(None) is None  # a root login without sudo stays root (and says so in the README)
    with pytest.raises(ConfigError, match="no such user"):
        target_account("no-such-user-here")


def test_sudo_read_runs_as_the_sudo_user(shared_dir: Path):
    capture = shared_dir / "tiny.pcap"
    shutil.copy(DATA / "tiny-ethernet.pcap", capture)
    capture.chmod(0o644)
    data_dir, log = shared_dir / "data", shared_dir / "analysis.log"
    args = ["--read", str(capture), "--no-dashboard", "--json", "--no-progress"]
    proc = run_cli(*args, "--data-dir", str(data_dir), "--log-file", str(log), env=_sudo_env(), cwd=shared_dir)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["packets"] > 0
    assert "running as nobody" in log.read_text()
    for path in [data_dir, *data_dir.iterdir(), log]:
        assert path.stat().st_uid == NOBODY.pw_uid, path


def test_sudo_read_of_a_file_only_root_can_read_is_refused(shared_dir: Path):
    capture = shared_dir / "secret.pcap"
    shutil.copy(DATA / "tiny-ethernet.pcap", capture)
    capture.chmod(0o600)
    proc = run_cli(
        "--read", str(capture), "--no-dashboard", "--no-progress", "--data-dir", str(shared_dir / "data"),
        "--log-file", str(shared_dir / "a.log"), env=_sudo_env(), cwd=shared_dir,
    )  # fmt: skip
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot be read by nobody" in lines[0] and "run_as='root'" in lines[0], proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_live(shared_dir: Path, duration: str) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    cmd = [
        sys.executable, str(CLI), "--interface", "lo", "--duration", duration, "--window", "1", "--backend", "tshark",
        "--port", str(port), "--data-dir", str(shared_dir / "data"), "--log-file", str(shared_dir / "live.log"),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=_sudo_env(), cwd=shared_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc, port


def _analyzer(proc: subprocess.Popen) -> psutil.Process | None:
    """The analyzer process: the script re-executes itself into .venv, so it may be a child."""
    try:
        top = psutil.Process(proc.pid)
        found = [p for p in [top, *top.children(recursive=True)] if str(CLI) in p.cmdline()]
        return found[-1] if found else None
    except psutil.Error:
        return None


def test_sudo_live_run_analyses_and_serves_unprivileged(shared_dir: Path):
    proc, port = _start_live(shared_dir, "40")
    try:
        analyzer = wait_until(
            lambda: (a := _analyzer(proc)) and a.uids().real == NOBODY.pw_uid and a, 30, "the analyzer to drop root"
        )
        uids = analyzer.uids()
        assert (uids.real, uids.effective, uids.saved) == (NOBODY.pw_uid,) * 3
        assert NOBODY.pw_gid in {analyzer.gids().real, analyzer.gids().effective}
        # the capture itself still runs as root, started before the drop
        captures = [c for c in analyzer.children(recursive=True) if c.name() in ("tshark", "dumpcap")]
        rings = [c for c in captures if any(arg.endswith("ring.pcapng") for arg in c.cmdline())]
        assert captures and all(c.uids().effective == 0 for c in captures if c not in rings)
        # the evidence ring buffer's dumpcap runs as the user, with only the capture capabilities
        assert all(c.uids().effective == NOBODY.pw_uid for c in rings)
        # the dashboard answers, served by the analyzer's own unprivileged process apart (started after the drop)
        page = wait_until(lambda: _get(f"http://127.0.0.1:{port}/"), 30, "the dashboard")
        assert b"<html" in page.lower()
        serving = [
            p
            for p in [analyzer, *analyzer.children(recursive=True)]
            if port in {c.laddr.port for c in p.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}
        ]
        assert len(serving) == 1 and serving[0] != analyzer and serving[0].ppid() == analyzer.pid
        assert set(serving[0].uids()) == {NOBODY.pw_uid}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    # the root keeper ends them once the analyzer is gone: within seconds, never left running
    wait_until(lambda: not [c for c in captures if c.is_running()], 15, "the root capture processes to end")


def test_root_captures_end_when_the_unprivileged_analyzer_is_killed(shared_dir: Path):
    proc, _ = _start_live(shared_dir, "60")
    try:
        analyzer = wait_until(lambda: (a := _analyzer(proc)) and a.uids().real == NOBODY.pw_uid and a, 30, "the drop")
        captures = [c for c in analyzer.children(recursive=True) if c.name() in ("tshark", "dumpcap")]
        assert captures
        time.sleep(1.0)  # let the keeper see the capture processes
        analyzer.kill()  # SIGKILL: no clean-up code of the analyzer runs
        gone, alive = psutil.wait_procs(captures, timeout=15)
        assert not alive, f"root capture processes left behind: {[p.pid for p in alive]}"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read()
    except OSError:
        return None
