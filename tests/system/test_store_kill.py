"""kill -9 in the middle of a live run, then a restart: every committed window is still there,
the store opens cleanly and the new run goes on; on SQLite and on PostgreSQL.

The analyzer captures on loopback with a BPF filter on one UDP port; the test itself sends a
bounded stream of datagrams to that port on 127.0.0.1 and nowhere else.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CLI
from postgres import postgres_server, postgres_url  # noqa: F401 (fixtures)
from send_traffic import udp_traffic  # noqa: F401 (fixture)

from traffic_analyzer.store.engine import store_url
from traffic_analyzer.store.reader import ResultReader

SENSOR = "kill-test"
WINDOW_S = 1
MIN_WINDOWS = 3
START_TIMEOUT_S = 60
RESTART_DURATION_S = 5


def _analyzer(store: str, port: int, tmp_path: Path, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "SUDO_UID"}  # stay root: no privilege drop to test here
    cmd = [sys.executable, str(CLI), "--interface", "lo", "--backend", "tshark", "--filter", f"udp port {port}"]
    cmd += ["--window", str(WINDOW_S), "--no-dashboard", "--no-progress", "--store", store, "--sensor-name", SENSOR]
    cmd += ["--data-dir", str(tmp_path / "data"), "--log-file", str(tmp_path / "analysis.log"), *extra]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )


def _committed(store: str) -> tuple[str | None, int]:
    """The sensor's latest run and how many of its windows are committed."""
    reader = ResultReader(store)
    try:
        run = reader.latest_run(SENSOR)
        return (None, 0) if run is None else (run["run_id"], reader.windows(run["run_id"]))
    finally:
        reader.close()


def _wait_for_windows(store: str, analyzer: subprocess.Popen) -> tuple[str, int]:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert analyzer.poll() is None, f"the analyzer ended early: {analyzer.communicate()[1]}"
        run_id, windows = _committed(store) if _store_exists(store) else (None, 0)
        if windows >= MIN_WINDOWS:
            return run_id, windows
        time.sleep(0.2)
    raise AssertionError(f"fewer than {MIN_WINDOWS} windows committed after {START_TIMEOUT_S} s")


def _store_exists(store: str) -> bool:
    return not store.startswith("sqlite") or Path(store.removeprefix("sqlite:///")).exists()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> str:
    if request.param == "sqlite":
        return store_url(tmp_path / "data")
    return request.getfixturevalue("postgres_url")


def test_kill_9_mid_run_keeps_every_committed_window_and_the_next_run_goes_on(store, udp_traffic, tmp_path):  # noqa: F811
    analyzer = _analyzer(store, udp_traffic, tmp_path)
    try:
        killed_run, seen = _wait_for_windows(store, analyzer)
        os.kill(analyzer.pid, signal.SIGKILL)
        assert analyzer.wait(timeout=10) == -signal.SIGKILL
    finally:
        _end_group(analyzer)

    if store.startswith("sqlite"):
        with sqlite3.connect(store.removeprefix("sqlite:///")) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    run_id, kept = _committed(store)
    assert run_id == killed_run and kept >= seen  # windows committed after our look may be there too

    restarted = _analyzer(store, udp_traffic, tmp_path, "--duration", str(RESTART_DURATION_S))
    try:
        _, stderr = restarted.communicate(timeout=START_TIMEOUT_S + RESTART_DURATION_S)
    finally:
        _end_group(restarted)
    assert restarted.returncode == 0, stderr
    reader = ResultReader(store)
    runs = {r["run_id"]: r for r in reader._runs(SENSOR)}
    new_run = reader.latest_run(SENSOR)
    assert new_run["run_id"] != killed_run and new_run["status"] == "finished"
    assert reader.windows(new_run["run_id"]) >= 2  # the new run committed windows of its own
    assert reader.windows(killed_run) == kept  # nothing of the killed run was lost or rewritten
    assert runs[killed_run]["status"] == "interrupted"
    assert reader.traffic(killed_run)["packets"].sum() > 0
    reader.close()


def _end_group(process: subprocess.Popen) -> None:
    """Kill what the analyzer left behind (tshark, dumpcap) in the session the test started it in."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if process.poll() is None:
        process.wait(timeout=10)
