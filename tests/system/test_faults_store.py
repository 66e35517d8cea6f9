"""Result store faults in the middle of a live run: a full disk, a locked database, a stopped PostgreSQL.

Each is a real fault: a 2 MB tmpfs the test fills with a ballast file, another process holding
SQLite's write lock for twice the busy timeout, the PostgreSQL server stopped and started again.
Each time the outage is reported once (log and stderr), the analysis and the log alert channel go
on, and once the cause is gone the held windows are written: every packet the run counted is in
the store, nothing committed before is lost, and the database opens cleanly.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shlex
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
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
from postgres import _as_owner, _bin_dir, postgres_server  # noqa: F401 (fixture)
from send_traffic import udp_traffic  # noqa: F401 (fixture)
from store_windows import _window

from traffic_analyzer.errors import AnalyzerError
from traffic_analyzer.store import engine, resilient
from traffic_analyzer.store.engine import SQLITE_BUSY_TIMEOUT_MS, store_url
from traffic_analyzer.store.reader import ResultReader
from traffic_analyzer.store.resilient import BYTES_PER_MB, ResilientWriter, window_bytes
from traffic_analyzer.store.writer import ResultWriter

TMPFS_SIZE = "2m"
BALLAST_CHUNK = 64 * 1024
BALLAST_MAX_CHUNKS = 64  # 4 MB: more than the tmpfs holds, so the loop always ends on ENOSPC
LOCK_S = 2 * SQLITE_BUSY_TIMEOUT_MS / 1000
OUTAGE_TIMEOUT_S = 30
SCAN_PORTS = 20
SCAN_MIN_PORTS = 10
LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def _stored_in_full(store: str, summary: dict) -> None:
    """Every packet the run counted is in the store, its alerts too, and the run finished."""
    reader = ResultReader(store)
    try:
        run = reader.latest_run("fault-test")
        assert run["run_id"] == summary["run_id"] and run["status"] == "finished"
        traffic = reader.traffic(run["run_id"])
        assert int(traffic["packets"].sum()) == summary["packets"]
        seconds = traffic["second"].astype(int)
        missing = set(range(seconds.min(), seconds.max() + 1)) - set(seconds)
        assert not missing, f"no traffic stored for seconds {sorted(missing)} (datagrams went out every 50 ms)"
        stored_alerts = set(reader.alerts(run["run_id"])["kind"])
        assert {a["kind"] for a in summary["alerts"]} <= stored_alerts
    finally:
        reader.close()


def _integrity_ok(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def _fill(directory: Path) -> Path:
    """Write a ballast file until the file system is full (ENOSPC); returns it."""
    ballast = directory / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in [BALLAST_CHUNK] * BALLAST_MAX_CHUNKS + [4096] * 32:
            try:
                os.write(fd, b"\0" * chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if chunk == 4096:
                    return ballast
    finally:
        os.close(fd)
    raise AssertionError(f"{directory} never filled up")


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs mounted for the test alone, unmounted after."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (sudo ./run-tests.sh)")
    mount_point = tmp_path / "store"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], check=True)


def test_a_full_disk_is_reported_once_alerts_go_on_and_held_windows_are_written_when_space_is_back(
    small_tmpfs,
    udp_traffic,  # noqa: F811
    tmp_path,
):
    db = small_tmpfs / "analyzer.db"
    store = f"sqlite:///{db}"
    analyzer = start_analyzer(tmp_path, udp_traffic, "--store", store, "--scan-min-ports", str(SCAN_MIN_PORTS))
    try:
        after = wait_for_windows(tmp_path, analyzer, 2)
        ballast = _fill(small_tmpfs)
        after = wait_for_log(tmp_path, analyzer, "is full (No space left on device)", OUTAGE_TIMEOUT_S, after)
        assert connect_scan(range(SCAN_FIRST_PORT, SCAN_FIRST_PORT + SCAN_PORTS)) >= SCAN_MIN_PORTS
        wait_for_log(tmp_path, analyzer, "port_scan attacker=127.0.0.1", OUTAGE_TIMEOUT_S, after)
        assert "recovered after" not in log_text(tmp_path)  # the alert reached the log during the outage
        ballast.unlink()
        after = wait_for_log(tmp_path, analyzer, "recovered after", OUTAGE_TIMEOUT_S, after)
        wait_for_windows(tmp_path, analyzer, 2, after)
        stdout, stderr = stop_analyzer(analyzer)
    finally:
        end_group(analyzer)
    assert analyzer.returncode == 0, stderr
    assert stderr.count("is full (No space left on device)") == 1, stderr
    summary = json.loads(stdout)
    assert summary["store_state"]["state"] == "ok" and summary["store_state"]["lost"] == 0
    assert summary["store_state"]["written_late"] >= 1 and summary["store_state"]["outages"] == 1
    assert "port_scan" in {a["kind"] for a in summary["alerts"]}
    _integrity_ok(db)
    _stored_in_full(store, summary)


def test_a_database_locked_for_twice_the_busy_timeout_holds_windows_and_writes_them_after(udp_traffic, tmp_path):  # noqa: F811
    store = store_url(tmp_path / "data")
    db = Path(store.removeprefix("sqlite:///"))
    analyzer = start_analyzer(tmp_path, udp_traffic)
    try:
        after = wait_for_windows(tmp_path, analyzer, 2)
        locker = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(db), str(LOCK_S)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert locker.stdout.readline().strip() == "locked"
            after = wait_for_log(tmp_path, analyzer, "is locked by another process", OUTAGE_TIMEOUT_S, after)
            assert locker.wait(timeout=LOCK_S + OUTAGE_TIMEOUT_S) == 0
        finally:
            if locker.poll() is None:
                locker.kill()
            locker.stdout.close()
        after = wait_for_log(tmp_path, analyzer, "recovered after", OUTAGE_TIMEOUT_S, after)
        wait_for_windows(tmp_path, analyzer, 2, after)
        stdout, stderr = stop_analyzer(analyzer)
    finally:
        end_group(analyzer)
    assert analyzer.returncode == 0, stderr
    assert stderr.count("is locked by another process") == 1, stderr
    summary = json.loads(stdout)
    assert summary["store_state"]["lost"] == 0 and summary["store_state"]["written_late"] >= 1
    _integrity_ok(db)
    _stored_in_full(store, summary)


@pytest.fixture
def pg_store(postgres_server) -> Iterator[str]:  # noqa: F811
    """A new database on the shared test server, made and dropped over fresh connections (the server restarts)."""
    name = f"nta_fault_{os.getpid()}"
    admin_url = postgres_server.url().replace("postgresql://", "postgresql+psycopg://")

    def admin(sql: str) -> None:
        engine = sa.create_engine(admin_url, poolclass=sa.pool.NullPool)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(sql)
        engine.dispose()

    admin(f"CREATE DATABASE {name}")
    try:
        yield postgres_server.url(name)
    finally:
        admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _pg_ctl(server, *args: str) -> None:
    """pg_ctl on the test cluster, as its owner; start reuses the options the server was started with."""
    pg_ctl = str(_bin_dir() / "pg_ctl")
    subprocess.run(_as_owner(pg_ctl, "-D", str(server.data_dir), *args), check=True, capture_output=True, timeout=60)


def test_postgresql_stopped_mid_run_then_started_again_loses_no_window(
    postgres_server,  # noqa: F811
    pg_store,
    udp_traffic,  # noqa: F811
    tmp_path,
):
    opts = (postgres_server.data_dir / "postmaster.opts").read_text()
    options = shlex.join(shlex.split(opts)[1:])  # what the server was started with, without the binary
    analyzer = start_analyzer(tmp_path, udp_traffic, "--store", pg_store)
    stopped = False
    try:
        after = wait_for_windows(tmp_path, analyzer, 2)
        _pg_ctl(postgres_server, "-m", "fast", "-w", "stop")
        stopped = True
        after = wait_for_log(tmp_path, analyzer, "is unreachable", OUTAGE_TIMEOUT_S, after)
        wait_for_windows(tmp_path, analyzer, 2, after)  # the analysis goes on while the server is down
        _pg_ctl(postgres_server, "-o", options, "-l", str(postgres_server.data_dir.parent / "log"), "-w", "start")
        stopped = False
        after = wait_for_log(tmp_path, analyzer, "recovered after", OUTAGE_TIMEOUT_S, after)
        wait_for_windows(tmp_path, analyzer, 2, after)
        stdout, stderr = stop_analyzer(analyzer)
    finally:
        end_group(analyzer)
        if stopped:  # other tests share this server
            _pg_ctl(postgres_server, "-o", options, "-l", str(postgres_server.data_dir.parent / "log"), "-w", "start")
    assert analyzer.returncode == 0, stderr
    assert stderr.count("is unreachable") == 1, stderr
    summary = json.loads(stdout)
    assert summary["store_state"]["lost"] == 0 and summary["store_state"]["written_late"] >= 2
    _stored_in_full(pg_store, summary)


def test_a_store_still_locked_when_the_run_ends_gives_one_error_line_a_non_zero_exit_and_keeps_what_was_committed(
    udp_traffic,  # noqa: F811
    tmp_path,
):
    store = store_url(tmp_path / "data")
    db = Path(store.removeprefix("sqlite:///"))
    analyzer = start_analyzer(tmp_path, udp_traffic)
    locker = None
    try:
        after = wait_for_windows(tmp_path, analyzer, 2)
        locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(db), "120"], stdout=subprocess.PIPE, text=True)
        assert locker.stdout.readline().strip() == "locked"
        committed = _committed_windows(db)
        wait_for_log(tmp_path, analyzer, "is locked by another process", OUTAGE_TIMEOUT_S, after)
        _, stderr = stop_analyzer(analyzer)
    finally:
        end_group(analyzer)
        if locker is not None:
            locker.kill()
            locker.wait(timeout=10)
            locker.stdout.close()
    assert analyzer.returncode == 1, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: result store {store} is locked by another process: "), last
    assert last.endswith("were not stored; the windows committed before are intact"), last
    _integrity_ok(db)
    assert _committed_windows(db) == committed >= 2


def _committed_windows(db: Path) -> int:
    """Windows (health samples) of the latest run, read as SQLite readers do while another holds the write lock."""
    with sqlite3.connect(db) as conn:
        latest = "SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1"
        return conn.execute(f"SELECT count(*) FROM health WHERE run_id = ({latest})").fetchone()[0]


@pytest.fixture
def quick_retries(monkeypatch) -> None:
    """A short busy timeout, no pause between retries and every window committed as it comes: each locked
    write fails in 50 ms."""
    monkeypatch.setattr(engine, "SQLITE_BUSY_TIMEOUT_MS", 50)
    monkeypatch.setattr(resilient, "RETRY_INTERVAL_S", 0.0)
    monkeypatch.setattr(ResilientWriter, "commit_every_s", 0.0)


def _locked(db: Path) -> sqlite3.Connection:
    """Another connection holding the write lock until it is closed."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    return conn


def test_a_full_backlog_drops_the_oldest_windows_counts_them_and_writes_the_rest_on_recovery(
    tmp_path, quick_retries, caplog
):
    url = store_url(tmp_path)
    room = 3 * window_bytes(_window(1.0)) / BYTES_PER_MB  # three windows
    writer = ResilientWriter(ResultWriter(url, "unit"), room, logging.getLogger("fault-test"))
    writer.start_run("r1", "file x.pcap", {})
    writer.write_window("r1", _window(0.0, uid="C0"))
    lock = _locked(tmp_path / "analyzer.db")
    for second in range(1, 7):
        writer.write_window("r1", _window(float(second), uid=f"C{second}"))
    assert writer.health() == {
        "state": "failing",
        "cause": "is locked by another process",
        "waiting": 3,
        "written_late": 0,
        "lost": 3,
        "outages": 1,
    }
    assert writer.status() == "result store is locked by another process: 3 windows waiting, 3 lost"
    lock.close()
    writer.write_window("r1", _window(7.0, uid="C7"))
    writer.finish_run("r1", "finished")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3, warnings  # the outage, the first window dropped, the recovery: once each
    assert "is locked by another process" in warnings[0] and "the oldest windows are dropped" in warnings[1]
    assert warnings[2].endswith("4 windows written late in all, 3 lost")
    assert writer.status() == "result store ok (4 windows written late, 3 lost)"
    reader = ResultReader(url)
    assert sorted(reader.traffic("r1")["second"]) == [0, 4, 5, 6, 7]
    assert reader.latest_run("unit")["status"] == "finished"
    reader.close()
    writer.close()
    _integrity_ok(tmp_path / "analyzer.db")


def test_a_store_that_never_recovers_fails_the_end_of_the_run_in_one_line_and_keeps_the_committed_windows(
    tmp_path, quick_retries
):
    url = store_url(tmp_path)
    writer = ResilientWriter(ResultWriter(url, "unit"), 10.0, logging.getLogger("fault-test"))
    writer.start_run("r1", "file x.pcap", {})
    writer.write_window("r1", _window(0.0, uid="C0"))
    lock = _locked(tmp_path / "analyzer.db")
    writer.write_window("r1", _window(1.0, uid="C1"))
    expected = (
        f"result store {url} is locked by another process: 1 windows of run r1 were not stored; "
        "the windows committed before are intact"
    )
    with pytest.raises(AnalyzerError) as failed:
        writer.finish_run("r1", "finished")
    assert str(failed.value) == expected
    lock.close()
    writer.close()
    _integrity_ok(tmp_path / "analyzer.db")
    reader = ResultReader(url)
    assert list(reader.traffic("r1")["second"]) == [0] and reader.latest_run("unit")["status"] == "running"
    reader.close()
