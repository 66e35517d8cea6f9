"""Shared fixtures: the public captures, the tiny committed ones, and running the real CLI."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from made_captures import STAND_INS, MadeCapture, MadeScan, write_syn_scan

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
REPO_PCAPS = DATA / "pcaps"  # the public captures whose licenses allow redistribution (see its MANIFEST.md)
SHARED_PCAPS = ROOT.parent / "shared" / "pcaps"  # all 30, where a developer machine has them
CLI = ROOT / "network_traffic_analyzer.py"

# A suite started in the background by a non-interactive shell (`./run-tests.sh &`, CI runners) inherits
# SIGINT ignored, and so would every analyzer and dashboard the tests start: their Ctrl-C tests would
# hang. Give the suite, and through it its children, a terminal's default Ctrl-C.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


class PublicCaptures:
    """The public captures by file name: the repository's copy first, then ../shared/pcaps, then a made stand-in.

    A clone carries only the captures that may be redistributed; for each of the others the tests make
    a capture with the same property (tests/made_captures.py ``STAND_INS``), written under the public
    capture's name with its own labels rows, the first time a test asks for it.
    """

    def __init__(self, *folders: Path, made: Path | None = None) -> None:
        self.folders = [f for f in folders if (f / "labels.csv").exists()]
        self.made = made  # where stand-ins are written; None: no stand-ins
        self._stand_ins: dict[str, MadeCapture] = {}

    def _public(self, name: str) -> Path | None:
        return next((f / name for f in self.folders if (f / name).exists()), None)

    def stand_in(self, name: str) -> MadeCapture:
        """The made capture standing in for public capture ``name`` (written once per test process)."""
        if name not in self._stand_ins:
            assert self.made is not None, f"{name}: no folder to make stand-ins in"
            self._stand_ins[name] = STAND_INS[name](self.made / name)
        return self._stand_ins[name]

    def missing(self) -> list[str]:
        """The public captures that are not here and are stood in for."""
        return [name for name in STAND_INS if self._public(name) is None] if self.made is not None else []

    def __truediv__(self, name: str) -> Path:
        public = self._public(name)
        if public is not None:
            return public
        if self.made is not None and name in STAND_INS:
            return self.stand_in(name).path
        pytest.fail(f"{name} is in none of {', '.join(map(str, self.folders))} and has no stand-in")

    def iterdir(self) -> list[Path]:
        first = {}
        for folder in reversed(self.folders):
            first.update({p.name: p for p in folder.iterdir()})
        first.update({name: self.stand_in(name).path for name in self.missing()})
        return [first[name] for name in sorted(first)]

    def glob(self, pattern: str) -> list[Path]:
        return [p for p in self.iterdir() if p.match(pattern)]

    def labels(self) -> pd.DataFrame:
        """The labels.csv rows of every capture here, each file's rows from where it is read (stand-ins: their own)."""
        rows = [pd.read_csv(folder / "labels.csv") for folder in self.folders]
        rows += [self.stand_in(name).labels for name in self.missing()]
        table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
        return table.drop_duplicates().reset_index(drop=True)


@pytest.fixture(scope="session")
def pcaps(tmp_path_factory: pytest.TempPathFactory) -> PublicCaptures:
    """The public labelled captures: tests/data/pcaps, then ../shared/pcaps, then stand-ins the tests make."""
    return PublicCaptures(REPO_PCAPS, SHARED_PCAPS, made=tmp_path_factory.mktemp("stand-ins"))


@pytest.fixture(scope="session")
def labels(pcaps: PublicCaptures) -> pd.DataFrame:
    return pcaps.labels()


@pytest.fixture(scope="session")
def syn_scan(tmp_path_factory: pytest.TempPathFactory) -> MadeScan:
    """An nmap -sS capture the tests make (tests/made_captures.py): nmap-syn-scan.pcapng may not be redistributed."""
    return write_syn_scan(tmp_path_factory.mktemp("made") / "syn-scan.pcap")


def run_cli(
    *args: str, timeout: float = 300, env: dict | None = None, user: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """Run network_traffic_analyzer.py as a user would, with the project's Python."""
    cmd = [sys.executable, str(CLI), *args]
    if user is not None:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env or os.environ.copy(), cwd=cwd)


@contextlib.contextmanager
def serving_after_read(capture: Path, cwd: Path, *extra: str) -> Iterator[tuple[int, list[str]]]:
    """--read ``capture`` from ``cwd`` (so the default data_dir is ``cwd/data``) with the dashboard on a free
    port; yields (port, stderr lines) once the analysis finished and the dashboard stays up; Ctrl-C after."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "SUDO_UID"}
    cmd = [sys.executable, str(CLI), "--read", str(capture), "--no-progress", "--port", str(port), *extra]
    analyzer = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    said: list[str] = []
    threading.Thread(target=lambda: said.extend(analyzer.stderr), daemon=True).start()
    try:
        deadline = time.monotonic() + 240
        while not any("analysis finished; dashboard at" in line for line in said):
            assert analyzer.poll() is None and time.monotonic() < deadline, "".join(said)
            time.sleep(0.2)
        yield port, said
    finally:
        analyzer.send_signal(signal.SIGINT)
        analyzer.wait(timeout=60)


def read_json(tmp_path: Path, capture: Path, *extra: str) -> dict:
    """--read a capture without the dashboard and return the --json summary."""
    proc = run_cli(
        "--read",
        str(capture),
        "--no-dashboard",
        "--json",
        "--no-progress",
        "--data-dir",
        str(tmp_path / "data"),
        "--log-file",
        str(tmp_path / "analysis.log"),
        *extra,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def wait_until(predicate, timeout_s: float, what: str, every_s: float = 0.2):
    """Poll ``predicate`` until it returns something truthy (returned), or fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


# Test tiers. A test's markers follow from what it uses, so that none can be forgotten: the fixtures it
# asks for and the helpers its module imports. `pytest -m unit` is the fast tier (hand-built data only).
TIER_OF_NAME = {
    "host_pair": "netns",  # network namespaces (root, iproute2)
    "namespace_pair": "netns",
    "postgres_server": "postgres",  # a private PostgreSQL cluster
    "postgres_url": "postgres",
    "pcaps": "captures",  # the public captures in tests/data/pcaps and ../shared/pcaps
    "labels": "captures",
    "run_cli": "process",  # the real command line in a child process
    "read_json": "process",
    "start_analyzer": "process",
    "subprocess": "process",
    "webdriver": "browser",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ())) | set(vars(item.module)) if item.module else set()
        for marker in sorted({TIER_OF_NAME[n] for n in names & TIER_OF_NAME.keys()}):
            item.add_marker(marker)
        if "netns" in item.keywords:
            item.add_marker("root")
        heavy = {"netns", "postgres", "captures", "process", "browser", "live"} & set(item.keywords)
        if "unit" in item.keywords and heavy:
            raise pytest.UsageError(f"{item.nodeid} is marked unit but uses {', '.join(sorted(heavy))}")


def wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
