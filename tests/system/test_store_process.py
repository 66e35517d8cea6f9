"""The store's writer in a process of its own (store/remote.py), on real SQLite files and a real PostgreSQL
server: the same rows as the in-process writer, its start-up errors in one line, a failed write raised at
the next call, and a --read of a large file that writes through it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT, run_cli
from postgres import postgres_server, postgres_url  # noqa: F401 (fixtures)
from store_windows import T0, _window, url  # noqa: F401

from traffic_analyzer.errors import AnalyzerError
from traffic_analyzer.pipeline import parallel_worthwhile
from traffic_analyzer.store.reader import ResultReader
from traffic_analyzer.store.remote import MAX_IN_FLIGHT, RemoteWriter
from traffic_analyzer.store.retention import Retention


def test_a_writer_process_stores_every_window_and_reports_the_store_state(url):
    writer = RemoteWriter(url, "sensor-r", Retention(), backlog_mb=16)
    assert writer.sensor == "sensor-r"
    writer.start_run("run-r", "file x.pcap", {"status": "none"})
    for i in range(3 * MAX_IN_FLIGHT):  # more than may wait at once: the writer waits for the store
        writer.write_window("run-r", _window(T0 + i, "10.0.0.1", f"C{i}", f"n{i}.example"))
    writer.set_model("run-r", {"status": "trained"})
    writer.finish_run("run-r", "finished")
    assert writer.health() == {"state": "ok", "cause": "", "waiting": 0, "written_late": 0, "lost": 0, "outages": 0}
    assert writer.status() == ""
    writer.close()
    writer.close()  # twice: a no-op

    reader = ResultReader(url)
    (run,) = reader.latest_runs()
    assert (run["run_id"], run["status"], run["model"]) == ("run-r", "finished", {"status": "trained"})
    assert reader.windows("run-r") == 3 * MAX_IN_FLIGHT and reader.count_flows("run-r") == 3 * MAX_IN_FLIGHT
    reader.close()


def test_a_store_the_process_cannot_open_is_the_same_one_line_error(tmp_path):
    with pytest.raises(AnalyzerError) as raised:
        RemoteWriter("sqlite:////nonexistent-dir/x/analyzer.db", None, Retention(), backlog_mb=16)
    assert str(raised.value).startswith("cannot open the result store sqlite:////nonexistent-dir/x/")
    assert "\n" not in str(raised.value)


def test_a_write_that_failed_in_the_process_is_raised_at_the_next_call(tmp_path):
    writer = RemoteWriter(f"sqlite:///{tmp_path / 'a.db'}", None, Retention(), backlog_mb=16)
    writer.start_run("run-r", "file x.pcap", {"status": "none"})
    broken = _window(T0)
    broken.traffic = broken.traffic.rename(columns={"bytes": "no_such_column"})  # a bug, not an outage
    writer.write_window("run-r", broken)
    with pytest.raises(Exception, match="no_such_column|bytes"):
        writer.finish_run("run-r", "finished")
    writer.close()


def test_a_large_file_is_stored_by_the_writer_process_as_by_the_analysing_one(tmp_path):
    capture = tmp_path / "lab.pcap"  # 20 s of the lab with its ten attacks: over 8 MiB, so read with both processes
    script = ROOT / "bench" / "make_mixed_capture.py"
    made = [sys.executable, str(script), "--seed", "7", "--seconds", "20", "--hosts", "10", "--out", str(capture)]
    subprocess.run(made, check=True, capture_output=True)
    assert parallel_worthwhile(capture)
    stored = {}
    for how, extra in (("apart", []), ("here", ["--no-parallel-detection"])):
        data = tmp_path / how
        proc = run_cli(
            "--read", str(capture), "--no-dashboard", "--no-progress", "--json", "--no-evidence",
            "--data-dir", str(data), "--log-file", str(tmp_path / f"{how}.log"), *extra, timeout=600,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        summary = json.loads(proc.stdout)
        assert not (data / "analyzer.db-wal").exists()  # the store was closed (checkpointed) at the end
        reader = ResultReader(f"sqlite:///{data / 'analyzer.db'}")
        (run,) = reader.latest_runs()
        stored[how] = (
            run["status"],
            reader.windows(run["run_id"]),
            reader.count_flows(run["run_id"]),
            sorted((a["kind"], a["attacker"]) for a in reader.alerts(run["run_id"]).to_dict("records")),
            summary["store_state"]["state"],
        )
        reader.close()
    assert stored["apart"] == stored["here"] and stored["apart"][0] == "finished" and stored["apart"][3]
