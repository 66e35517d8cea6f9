"""``--zeek-log-dir``: Zeek logs written during a real --read, rotated, read back with zat's ZeekLogReader.

The capture has DNS, HTTP and TLS; a rotation every 2 s of packet time cuts its logs into several
files. Together they must hold exactly the rows ``export --format zeek`` gives for the same run, and
every dns/ssl/http row's uid must be a conn.log connection.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import read_json, run_cli
from zat.zeek_log_reader import ZeekLogReader

CAPTURE = "benign-android-mixed.pcap"
LOGS = ("conn", "dns", "http", "ssl")
ROTATED = re.compile(r"^(conn|dns|http|ssl)\.\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d\.log$")  # Zeek's <path>.<open time>.log


@pytest.fixture(scope="module")
def run(pcaps: Path, tmp_path_factory) -> Path:
    """One --read with live Zeek logs rotated every 2 packet seconds, and the export of each log."""
    tmp = tmp_path_factory.mktemp("zeek_live")
    rotating = ("--zeek-log-dir", str(tmp / "zeek"), "--zeek-log-rotate", "2")
    summary = read_json(tmp, pcaps / CAPTURE, "--no-evidence", *rotating)
    assert summary["flows"] > 0
    for log in LOGS:
        out = tmp / "export" / f"{log}.log"
        out.parent.mkdir(exist_ok=True)
        proc = run_cli("export", "--data-dir", str(tmp / "data"), "--log", log, "--out", str(out))
        assert proc.returncode == 0, proc.stderr
    return tmp


def rows_of(paths: list[Path]) -> list[dict]:
    """Every row of these logs, as zat reads them, in one order (files are cut by time, rows by connection end)."""
    rows = [row for path in paths for row in ZeekLogReader(str(path)).readrows()]
    return sorted(rows, key=lambda row: [str(value) for value in row.values()])


def produced(run: Path, log: str) -> list[Path]:
    return sorted((run / "zeek").glob(f"{log}.*log"))


def test_the_logs_are_rotated_under_zeeks_names_and_each_is_closed(run):
    names = [p.name for p in (run / "zeek").iterdir()]
    assert {f"{log}.log" for log in LOGS} <= set(names)
    rotated = [name for name in names if name.count(".") > 1]
    assert rotated and all(ROTATED.match(name) for name in rotated)
    for path in (run / "zeek").iterdir():
        text = path.read_text().splitlines()
        assert text[4] == f"#path\t{path.name.split('.')[0]}" and text[-1].startswith("#close\t")


@pytest.mark.parametrize("log", LOGS)
def test_the_live_rows_are_the_exported_rows(run, log):
    live = rows_of(produced(run, log))
    assert live
    assert live == rows_of([run / "export" / f"{log}.log"])


@pytest.mark.parametrize("log", ["dns", "http", "ssl"])
def test_every_row_joins_a_conn_log_connection(run, log):
    uids = {row["uid"] for row in rows_of(produced(run, "conn"))}
    assert {row["uid"] for row in rows_of(produced(run, log))} <= uids
