"""Live Zeek logs (zeek_log_dir) on hand-built windows: rotation times and names, header and #close lines,
logrotate moving a log away, write failures, and DNS/HTTP rows paired across windows as the export pairs them."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd
import pytest
from builders import dns_answer, dns_query, flow, flows, http_request, http_response, packets

from traffic_analyzer.export.zeek_app import app_log
from traffic_analyzer.export.zeek_live import LiveLogFile, ZeekLiveLogs, next_rotation, rotated_path
from traffic_analyzer.pipeline import Analysis
from traffic_analyzer.records.window import WindowResult

pytestmark = pytest.mark.unit

T0 = 1796598000.0  # 2026-12-06 23:00:00 UTC
HOUR = 3600.0
CLIENT, RESOLVER, SERVER = "10.0.0.5", "10.0.0.1", "93.184.216.34"


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    """Zeek's stamps are local time: the tests pin the zone."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def stamp(when: float) -> str:
    return time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(when))


def conn_rows(*starts: float):
    return flows([flow(ts, CLIENT, SERVER, 443, uid=f"C{int(ts)}") for ts in starts])


def result(ended, app=None) -> WindowResult:
    """A window whose flows all ended (conn.log writes a connection when it ends)."""
    kwargs = {} if app is None else {"app": app}
    return WindowResult(0.0, 0.0, *(None,) * 3, flows=ended, flows_ended=len(ended), **kwargs)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_rotation_times_are_multiples_of_the_interval_from_midnight():
    assert next_rotation(T0 + 17 * 60, HOUR) == T0 + HOUR
    assert next_rotation(T0, HOUR) == T0 + HOUR  # at a boundary: the next one
    assert next_rotation(T0 + 17 * 60, 900) == T0 + 30 * 60
    assert next_rotation(T0 + 17 * 60, 86400) == T0 + HOUR  # the next midnight


def test_rotated_names_are_zeeks_and_never_overwrite(tmp_path):
    log = tmp_path / "conn.log"
    assert rotated_path(log, T0).name == "conn.2026-12-06-23-00-00.log"
    (tmp_path / "conn.2026-12-06-23-00-00.log").touch()
    assert rotated_path(log, T0).name == "conn.2026-12-06-23-00-00.1.log"


def test_rotation_closes_renames_and_opens_a_file_with_fresh_header_lines(tmp_path):
    logs = ZeekLiveLogs(str(tmp_path), "tsv", HOUR, logging.getLogger("test"))
    logs.start()
    logs.write_window(result(conn_rows(T0 + 10)), T0 + 20)
    logs.write_window(result(conn_rows(T0 + HOUR + 5)), T0 + HOUR + 30)
    logs.close(T0 + HOUR + 40)
    first = lines(tmp_path / "conn.2026-12-06-23-00-20.log")  # named by when it was opened
    assert first[:6] == ["#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)", "#unset_field\t-",
                         "#path\tconn", "#open\t2026-12-06-23-00-20"]  # fmt: skip
    assert first[6].startswith("#fields\tts\tuid\tid.orig_h") and first[7].startswith("#types\ttime\tstring\taddr")
    assert [line.split("\t")[1] for line in first[8:-1]] == [f"C{int(T0 + 10)}"]
    assert first[-1] == f"#close\t{stamp(T0 + HOUR)}"  # closed at the rotation time
    current = lines(tmp_path / "conn.log")
    assert current[:8] == [*first[:5], f"#open\t{stamp(T0 + HOUR)}", *first[6:8]]
    assert [line.split("\t")[1] for line in current[8:-1]] == [f"C{int(T0 + HOUR + 5)}"]
    assert current[-1] == f"#close\t{stamp(T0 + HOUR + 40)}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conn.2026-12-06-23-00-20.log", "conn.log"]


def test_json_logs_have_no_header_lines(tmp_path):
    logs = ZeekLiveLogs(str(tmp_path), "json", HOUR, logging.getLogger("test"))
    logs.start()
    logs.write_window(result(conn_rows(T0 + 10)), T0 + 20)
    logs.close(T0 + 30)
    (line,) = lines(tmp_path / "conn.log")
    assert line.startswith('{"ts": 1796598010.0, "uid": "C1796598010", "id.orig_h": "10.0.0.5"')


def test_a_log_moved_away_gets_its_close_line_and_a_new_one_is_opened(tmp_path):
    file = LiveLogFile(tmp_path, "conn", as_json=False)
    file.write(conn_rows(T0), T0 + 1)
    (tmp_path / "conn.log").rename(tmp_path / "conn.log.1")  # logrotate
    file.write(conn_rows(T0 + 5), T0 + 6)
    moved, current = lines(tmp_path / "conn.log.1"), lines(tmp_path / "conn.log")
    assert moved[-1] == f"#close\t{stamp(T0 + 6)}" and moved[-2].split("\t")[1] == f"C{int(T0)}"
    assert current[5] == f"#open\t{stamp(T0 + 6)}" and current[-1].split("\t")[1] == f"C{int(T0 + 5)}"


def test_an_earlier_runs_log_is_set_aside_under_its_open_time(tmp_path):
    logs = ZeekLiveLogs(str(tmp_path), "tsv", HOUR, logging.getLogger("test"))
    logs.start()
    logs.write_window(result(conn_rows(T0)), T0 + 1)
    logs.close(T0 + 2)
    again = ZeekLiveLogs(str(tmp_path), "tsv", HOUR, logging.getLogger("test"))
    again.start()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conn.2026-12-06-23-00-01.log"]


def test_write_failures_warn_once_and_the_logs_resume(tmp_path, caplog):
    folder = tmp_path / "zeek"
    logs = ZeekLiveLogs(str(folder), "tsv", 0, logging.getLogger("test"))
    logs.start()
    logs.write_window(result(conn_rows(T0)), T0)
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()  # the folder is removed under the running analyzer
    with caplog.at_level(logging.WARNING):
        logs.write_window(result(conn_rows(T0 + 1)), T0 + 1)
        logs.write_window(result(conn_rows(T0 + 2)), T0 + 2)
        assert [r.getMessage() for r in caplog.records] == [
            f"zeek logs in {folder} cannot be written (No such file or directory); the analysis goes on, they "
            "resume when they can be written"
        ]
        folder.mkdir()
        logs.write_window(result(conn_rows(T0 + 3)), T0 + 3)
    assert caplog.records[-1].getMessage() == f"zeek logs in {folder} are written again (2 rows were lost)"
    assert lines(folder / "conn.log")[-1].split("\t")[1] == f"C{int(T0 + 3)}"


def windows_through(analysis: Analysis, *windows: list[dict]) -> list[WindowResult]:
    results = [analysis.process(packets(rows), live=False)[0] for rows in windows]
    return [*results, analysis.finish()]


def test_rows_are_written_when_complete_or_when_their_connection_ends(tmp_path):
    """A DNS answer a window after its query is one row; an unanswered query waits for its flow's end."""
    windows = windows_through(
        Analysis(detectors=[]),
        [dns_query(T0, CLIENT, RESOLVER, "a.example"), dns_query(T0 + 1, CLIENT, RESOLVER, "b.example", qtype=28)],
        [dns_answer(T0 + 5.5, RESOLVER, CLIENT, "a.example"), http_request(T0 + 6, CLIENT, SERVER, "/x")],
        [http_response(T0 + 10.2, SERVER, CLIENT)],
    )
    logs = ZeekLiveLogs(str(tmp_path), "tsv", 0, logging.getLogger("test"))
    logs.start()
    written = []
    for window in windows:
        app_rows = logs.app.rows(window.app, set(window.ended_flows()["uid"]))
        written.append({log: list(rows["dns_qname" if log == "dns" else "uid"]) for log, rows in app_rows.items()})
    assert [w.get("dns", []) for w in written] == [[], ["a.example"], [], ["b.example"]]
    assert [len(w.get("http", [])) for w in written] == [0, 0, 1, 0]  # the request with its response
    whole = app_log(pd.concat([w.app for w in windows], ignore_index=True).assign(run_id=""), "dns")  # the export
    assert sorted(whole["dns_qname"]) == ["a.example", "b.example"] and whole["rtt"].notna().sum() == 1
