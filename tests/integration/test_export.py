"""`network_traffic_analyzer.py export`: flows as Zeek conn.log (TSV, JSON lines), flows and alerts as CSV/Parquet.

The store comes from a real --read of a public capture; every export is read back with a
strict zeek-cut-style reader (Debian ships no zeek-cut), pandas and pyarrow, and compared
with the store row for row.
"""

from __future__ import annotations

import ipaddress
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from conftest import CLI, run_cli

from traffic_analyzer.dashboard.status import run_state
from traffic_analyzer.errors import AnalyzerError
from traffic_analyzer.export.runs import selected_runs
from traffic_analyzer.store.engine import store_url
from traffic_analyzer.store.reader import ResultReader
from traffic_analyzer.store.schema import metadata, runs

SCANNER = "10.20.5.10"  # the made syn_scan capture (tests/made_captures.py)
ZEEK_TYPE_PATTERNS = {
    "time": re.compile(r"^\d+\.\d{6}$"),
    "interval": re.compile(r"^\d+\.\d{6}$"),
    "count": re.compile(r"^\d+$"),
    "port": re.compile(r"^\d{1,5}$"),
    "enum": re.compile(r"^(tcp|udp|icmp|unknown_transport)$"),
    "bool": re.compile(r"^[TF]$"),
}


@pytest.fixture(scope="module")
def store(syn_scan, tmp_path_factory) -> Path:
    """The data folder of a --read of the made nmap SYN scan capture."""
    assert syn_scan.label["attacker"] == SCANNER
    tmp = tmp_path_factory.mktemp("export")
    proc = run_cli(
        "--read",
        str(syn_scan.path),
        "--no-dashboard",
        "--no-progress",
        "--no-evidence",
        "--data-dir",
        str(tmp / "data"),
        "--log-file",
        str(tmp / "analysis.log"),
    )
    assert proc.returncode == 0, proc.stderr
    return tmp / "data"


def stored(data_dir: Path, table: str) -> pd.DataFrame:
    with sqlite3.connect(data_dir / "analyzer.db") as conn:
        return pd.read_sql(f"SELECT * FROM {table}", conn)


def export(data_dir: Path, out: Path, *args: str) -> str:
    proc = run_cli("export", "--data-dir", str(data_dir), "--out", str(out), *args)
    assert proc.returncode == 0, proc.stderr
    assert out.exists()
    return proc.stderr


def zeek_cut(path: Path, wanted: list[str]) -> tuple[dict[str, str], list[list[str]]]:
    """Read a Zeek ASCII log the way zeek-cut does, checking every header line and every value's type.

    Returns the header directives and the ``wanted`` columns of each row (unset stays '-').
    """
    lines = path.read_text().split("\n")
    assert lines[-1] == "", "the log ends with a newline"
    lines = lines[:-1]
    first = re.fullmatch(r"#separator (\S+)", lines[0])
    assert first, "the first line declares the separator"
    sep = first.group(1).encode().decode("unicode_escape")
    assert sep == "\t"
    header: dict[str, str] = {}
    index = 1
    while lines[index].startswith("#") and not lines[index].startswith("#close"):
        key, _, value = lines[index][1:].partition(sep)
        header[key] = value
        index += 1
    assert list(header) == ["set_separator", "empty_field", "unset_field", "path", "open", "fields", "types"]
    assert header["set_separator"] == "," and header["empty_field"] == "(empty)" and header["unset_field"] == "-"
    assert header["path"] == "conn"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d", header["open"])
    fields, types = header["fields"].split(sep), header["types"].split(sep)
    assert len(fields) == len(types)
    assert re.fullmatch(r"#close\t\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d", lines[-1])
    positions = [fields.index(name) for name in wanted]  # zeek-cut fails on unknown names too
    rows = []
    for line in lines[index:-1]:
        values = line.split(sep)
        assert len(values) == len(fields), line
        for value, zeek_type in zip(values, types, strict=True):
            if value == header["unset_field"]:
                continue
            if zeek_type == "addr":
                ipaddress.ip_address(value)
            elif zeek_type in ZEEK_TYPE_PATTERNS:
                assert ZEEK_TYPE_PATTERNS[zeek_type].match(value), (zeek_type, value)
            else:
                assert zeek_type in ("string", "set[string]") and value, (zeek_type, value)
        rows.append([values[i] for i in positions])
    return header, rows


def test_conn_log_parses_like_zeek_cut_and_matches_the_store(store, tmp_path):
    out = tmp_path / "conn.log"
    export(store, out, "--what", "flows", "--format", "zeek")
    wanted = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "conn_state", "orig_pkts"]
    header, rows = zeek_cut(out, wanted)
    flows = stored(store, "flows")
    assert len(rows) == len(flows) == 1000  # one flow per probed port
    expected = {
        (
            f"{r.ts:.6f}",
            r.uid,
            r.orig_h,
            str(r.orig_p),
            r.resp_h,
            str(r.resp_p),
            r.proto,
            r.conn_state,
            str(r.orig_pkts),
        )
        for r in flows.itertuples()
    }
    assert {tuple(row) for row in rows} == expected
    assert [row[0] for row in rows] == sorted(row[0] for row in rows), "oldest first"
    # pandas reads it too, with the header's field names
    fields = header["fields"].split("\t")
    frame = pd.read_csv(out, sep="\t", comment="#", header=None, names=fields, na_values="-", keep_default_na=False)
    assert len(frame) == len(flows)
    assert frame["id.orig_h"].eq(SCANNER).all()
    assert frame["local_orig"].isna().all() and frame["duration"].notna().all()


def test_conn_json_lines_use_zeek_keys_and_match_the_store(store, tmp_path):
    out = tmp_path / "conn.json"
    export(store, out, "--format", "jsonl")
    frame = pd.read_json(out, lines=True, dtype=False)
    flows = stored(store, "flows").set_index("uid")
    assert len(frame) == len(flows)
    assert {"ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "conn_state"} <= set(frame.columns)
    assert "local_orig" not in frame.columns and "service" not in frame.columns  # unset fields are left out
    exported = frame.set_index("uid").loc[flows.index]  # every stored uid, once
    assert exported["ts"].dtype == float
    assert (abs(exported["ts"] - flows["ts"]) < 1e-6).all()
    assert (exported["id.orig_h"] == flows["orig_h"]).all() and (exported["id.resp_p"] == flows["resp_p"]).all()
    assert (exported["history"] == flows["history"]).all()


@pytest.mark.parametrize("what", ["flows", "alerts"])
def test_csv_and_parquet_open_in_pandas_and_pyarrow_with_every_stored_row(store, tmp_path, what):
    rows = stored(store, what)
    assert len(rows) > 0
    export(store, tmp_path / f"{what}.csv", "--what", what, "--format", "csv")
    export(store, tmp_path / f"{what}.parquet", "--what", what, "--format", "parquet")
    csv = pd.read_csv(tmp_path / f"{what}.csv")
    table = pq.read_table(tmp_path / f"{what}.parquet")
    assert len(csv) == table.num_rows == len(rows)
    assert list(csv.columns) == table.schema.names == list(rows.columns)
    key = "uid" if what == "flows" else "alert_id"
    assert set(csv[key]) == set(table.column(key).to_pylist()) == set(rows[key])
    if what == "flows":
        assert str(table.schema.field("orig_p").type) == "int64"
        assert str(table.schema.field("ts").type) == "double"


def test_time_range_keeps_records_that_started_inside_it(store, tmp_path):
    flows = stored(store, "flows")
    start, end = float(flows["ts"].quantile(0.25)), float(flows["ts"].quantile(0.75))
    inside = int(((flows["ts"] >= start) & (flows["ts"] < end)).sum())
    assert 0 < inside < len(flows)
    export(store, tmp_path / "part.csv", "--format", "csv", "--from", repr(start), "--to", repr(end))
    part = pd.read_csv(tmp_path / "part.csv")
    assert len(part) == inside
    assert part["ts"].between(start, end, inclusive="left").all()
    # the same range as ISO times (UTC), to the microsecond
    iso = [pd.Timestamp(t, unit="s", tz="UTC").isoformat() for t in (start, end)]
    export(store, tmp_path / "iso.csv", "--format", "csv", "--from", iso[0], "--to", iso[1])
    assert len(pd.read_csv(tmp_path / "iso.csv")) == inside


def test_nothing_matched_gives_headers_only_and_says_so(store, tmp_path):
    message = export(store, tmp_path / "empty.log", "--format", "zeek", "--from", "2030-01-01")
    assert "nothing matched" in message
    header, rows = zeek_cut(tmp_path / "empty.log", ["uid"])
    assert rows == [] and header["path"] == "conn"
    export(store, tmp_path / "empty.csv", "--what", "alerts", "--format", "csv", "--run", "no-such-run")
    assert list(pd.read_csv(tmp_path / "empty.csv").columns) == list(stored(store, "alerts").columns)
    export(store, tmp_path / "empty.parquet", "--format", "parquet", "--to", "1000")
    table = pq.read_table(tmp_path / "empty.parquet")
    assert table.num_rows == 0 and "uid" in table.schema.names


@pytest.mark.parametrize(("fmt", "head"), [("zeek", ["head", "-n", "3"]), ("parquet", ["head", "-c", "100"])])
def test_a_reader_that_stops_early_ends_the_export_quietly(store, fmt, head):
    """Issue 17 item 7: `export --out - | head` ended in a BrokenPipeError traceback and exit status 1."""
    cmd = [sys.executable, str(CLI), "export", "--data-dir", str(store), "--format", fmt, "--out", "-"]
    exporter = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader = subprocess.Popen(head, stdin=exporter.stdout, stdout=subprocess.PIPE)
    exporter.stdout.close()  # only head reads the pipe: when it exits, the exporter's next write fails
    shown, _ = reader.communicate(timeout=120)
    _, said = exporter.communicate(timeout=120)
    assert len(shown.splitlines()) == 3 if fmt == "zeek" else len(shown) == 100
    assert said == b"" and exporter.returncode == 128 + signal.SIGPIPE  # as a shell reports `yes | head`


def test_bad_requests_end_in_one_line_and_write_nothing(store, tmp_path):
    cases = [
        (["--what", "alerts", "--format", "zeek"], "conn.log"),
        (["--from", "yesterday"], "neither epoch seconds nor an ISO time"),
        (["--from", "2020-01-02", "--to", "2020-01-01"], "must be later"),
        (["--sensor", "edge-1"], "sensor"),
    ]
    for args, words in cases:
        out = tmp_path / "out.log"
        proc = run_cli("export", "--data-dir", str(store), "--out", str(out), *args)
        assert proc.returncode == 1, args
        assert words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert not out.exists()
    proc = run_cli("export", "--data-dir", str(tmp_path / "nowhere"))
    assert proc.returncode == 1 and "no result store" in proc.stderr
    assert not (tmp_path / "nowhere").exists()


def export_rows(data_dir: Path, out: Path, *args: str) -> pd.DataFrame:
    export(data_dir, out, "--format", "csv", *args)
    return pd.read_csv(out)


@pytest.fixture(scope="module")
def read_twice(pcaps, syn_scan, tmp_path_factory) -> tuple[Path, list[str]]:
    """A data folder holding two --read runs of the same capture and then one of another; run ids oldest first."""
    tmp = tmp_path_factory.mktemp("export-runs")
    for capture in (syn_scan.path, syn_scan.path, pcaps / "dns-tunnel-iodine.pcap"):
        proc = run_cli(
            "--read", str(capture), "--no-dashboard", "--no-progress", "--no-evidence",
            "--data-dir", str(tmp / "data"), "--log-file", str(tmp / "analysis.log"),
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    runs = stored(tmp / "data", "runs").sort_values("started_at")
    return tmp / "data", runs["run_id"].tolist()


def test_a_file_read_twice_is_exported_once_unless_every_run_is_asked_for(read_twice, tmp_path):
    """Issue 17 item 6: two --reads of one file listed every Zeek uid twice. Each run stays in the store;
    exports take the latest run of each file (and every live run) unless --run all."""
    data_dir, (first, second, other) = read_twice
    flows = stored(data_dir, "flows")
    once = flows[flows["run_id"] == second]
    exported = export_rows(data_dir, tmp_path / "default.csv")
    assert exported["uid"].is_unique and set(exported["run_id"]) == {second, other}
    assert len(exported) == len(once) + (flows["run_id"] == other).sum()
    _, rows = zeek_cut(_zeek(data_dir, tmp_path), ["uid"])
    assert len(rows) == len(exported) and len({r[0] for r in rows}) == len(rows)
    everything = export_rows(data_dir, tmp_path / "all.csv", "--run", "all")
    assert len(everything) == len(flows)
    assert (everything.loc[everything["run_id"] != other, "uid"].value_counts() == 2).all()  # each read's uids
    alerts = export_rows(data_dir, tmp_path / "alerts.csv", "--what", "alerts")
    assert (alerts.loc[alerts["kind"] == "port_scan", "run_id"] == second).all()
    assert len(export_rows(data_dir, tmp_path / "first.csv", "--run", first)) == (flows["run_id"] == first).sum()


def _zeek(data_dir: Path, tmp_path: Path) -> Path:
    export(data_dir, tmp_path / "conn.log", "--format", "zeek")
    return tmp_path / "conn.log"


def test_run_latest_is_what_the_dashboard_shows(read_twice, tmp_path):
    data_dir, (_, _, other) = read_twice
    latest = export_rows(data_dir, tmp_path / "latest.csv", "--run", "latest")
    assert set(latest["run_id"]) == {other}
    reader = ResultReader(store_url(data_dir))
    try:
        state = run_state(reader)
        assert state.run_ids == (other,) and reader.flow_count(state.run_ids) == len(latest)
    finally:
        reader.close()


def test_help_says_from_and_to_are_packet_times():
    proc = run_cli("export", "--help")
    text = " ".join(proc.stdout.split())
    assert "packet time" in text and "not when the analyzer ran" in text
    assert "--run latest|all|RUN_ID" in text


def test_default_runs_are_each_files_latest_and_every_live_run(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'runs.db'}")
    metadata.create_all(engine)
    rows = [  # run_id, started_at, source, sensor, live
        ("a1", 1, "file /c/a.pcap (fast)", "s1", False),
        ("a2", 2, "file /c/a.pcap (tshark)", "s1", False),  # the same file again, another reader
        ("b1", 3, "file /c/b.pcap (fast)", "s1", False),
        ("l1", 4, "live eth0 (dumpcap)", "s1", True),
        ("l2", 5, "live eth0 (dumpcap)", "s1", True),  # a restarted capture: new packets
        ("a3", 6, "file /c/a.pcap (fast)", "s2", False),  # another sensor's read of a file of that name
    ]
    with engine.begin() as conn:
        names = ("run_id", "started_at", "source", "sensor", "live")
        conn.execute(runs.insert(), [{**dict(zip(names, r, strict=True)), "status": "finished"} for r in rows])
    assert sorted(selected_runs(engine, None, None)) == ["a2", "a3", "b1", "l1", "l2"]
    assert sorted(selected_runs(engine, None, "s1")) == ["a2", "b1", "l1", "l2"]
    assert sorted(selected_runs(engine, "latest", None)) == ["a3", "l2"]
    assert selected_runs(engine, "latest", "s1") == ("l2",)
    assert selected_runs(engine, "all", None) is None and len(selected_runs(engine, "all", "s1")) == 5
    assert selected_runs(engine, "a1", None) == ("a1",) and selected_runs(engine, "a1", "s2") == ()
    with pytest.raises(AnalyzerError, match="no runs of sensor 'edge-1' in this store \\(its sensors: s1, s2\\)"):
        selected_runs(engine, None, "edge-1")


ZEEK_SERVICES = {"http", "dns", "ssl", "ssh", "ftp", "ftp-data", "smtp", "dhcp", "ntp", "quic", "krb", "smb"}


def test_services_are_zeeks_names_and_the_protocol_mix_says_http(pcaps: Path, tmp_path: Path):
    """Issue 15 item 8: web flows had tshark's body dissectors as service (data-text-lines, json) where
    Zeek writes http, and the overview's protocol mix listed DATA-TEXT-LINES, JSON and MEDIA."""
    data = tmp_path / "data"
    proc = run_cli(
        "--read", str(pcaps / "benign-http-browsing-espn.pcapng"), "--no-dashboard", "--no-progress",
        "--no-evidence", "--data-dir", str(data), "--log-file", str(tmp_path / "analysis.log"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    export(data, tmp_path / "conn.log", "--format", "zeek")
    _, rows = zeek_cut(tmp_path / "conn.log", ["id.resp_p", "proto", "service"])
    services = {service for _, _, service in rows if service != "-"}
    assert "http" in services and services <= ZEEK_SERVICES, services
    web = [service for port, proto, service in rows if (port, proto) == ("80", "tcp") and service != "-"]
    assert web and set(web) == {"http"}
    mix = set(stored(data, "protocols")["protocol"])
    assert "HTTP" in mix and not mix & {"DATA-TEXT-LINES", "JSON", "MEDIA", "PNG", "IMAGE-JFIF", "XML"}, mix
