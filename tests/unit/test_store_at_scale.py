"""The dashboard's questions of a long run: per-hour sums and flow indexes answer as the rows did (schema v8),
and the overview's traffic of the last hour ends at the run's newest second."""

from __future__ import annotations

import pandas as pd
import pytest
from store_windows import T0, _flow, _window, back_to_version_7

from traffic_analyzer.store.engine import open_engine, store_url
from traffic_analyzer.store.reader import ResultReader
from traffic_analyzer.store.summaries import HOUR_S, hour_start
from traffic_analyzer.store.writer import ResultWriter

pytestmark = pytest.mark.unit

HOUR0 = hour_start(T0)
HOSTS = ("10.0.0.1", "10.0.0.2", "10.0.0.3")


def _write_store(url: str, together: bool = False) -> None:
    """Two runs; windows of three hosts in two hours, a window that straddles the hour, unequal traffic; a flow
    that grows and changes service and state, flows of a host with itself. ``together``: each run's windows
    in one transaction."""
    writer = ResultWriter(url, sensor="s")
    for run_id, hosts in (("r", HOSTS), ("other", HOSTS[:1])):
        writer.start_run(run_id, "file a.pcap", {})
        starts = [HOUR0 + 10, HOUR0 + HOUR_S - 0.5, HOUR0 + HOUR_S + 20, HOUR0 + 2 * HOUR_S + 5]
        windows = []
        for i, start in enumerate(starts):
            host = hosts[i % len(hosts)]
            window = _window(start, host=host, uid=f"C{i}", qname=f"n{i}.example")
            window.hosts[["packets_out", "bytes_out"]] *= i + 1  # no two hosts tie
            window.protocols = pd.DataFrame({"protocol": ["DNS", "TLS"], "packets": [3, i], "bytes": [300, 10 * i]})
            window.flows = pd.concat([window.flows, _growing(i, start), _flow(f"S{i}", host, host, start)])
            windows.append((run_id, window))
        if together:
            writer.write_windows(windows)
        else:
            for one in windows:
                writer.write_windows([one])
        writer.finish_run(run_id, "finished")
    writer.close()


def _growing(i: int, ts: float) -> pd.DataFrame:
    """Flow G, later versions of it: no service and S0 at first, then dns and SF, more bytes each time."""
    flow = _flow("G", HOSTS[1], HOSTS[0], HOUR0 + 10)
    flow[["last_ts", "orig_ip_bytes"]] = [ts + 1, 100 * (i + 1)]
    if i == 0:
        flow[["service", "conn_state"]] = [None, "S0"]
    return flow


def _answers(url: str) -> dict[str, object]:
    """What the overview, hosts, host and flows pages ask the store, of one run and of both."""
    reader = ResultReader(url)
    answers: dict[str, object] = {}
    for runs in ("r", ["r", "other"]):
        key = str(runs)
        answers |= {
            f"{key} talkers": reader.top_talkers(runs),
            f"{key} totals": reader.host_totals(runs),
            f"{key} protocols": reader.protocols(runs),
            f"{key} windows": reader.host_windows(runs, HOSTS[0]),
            f"{key} peers": reader.host_peers(runs, HOSTS[0]),
            f"{key} ports": reader.host_ports(runs, HOSTS[0]),
            f"{key} search": reader.search_flows(runs, ip=HOSTS[1]),
            f"{key} latest of a host": reader.search_flows(runs, limit=3, ip=HOSTS[0]),
            f"{key} count": reader.count_flows(runs, ip="10.0.0.*"),
            f"{key} count of a host": reader.count_flows(runs, ip=HOSTS[0]),
            f"{key} all": reader.count_flows(runs),
            f"{key} services": reader.flow_values(runs, "service"),
            f"{key} states": reader.flow_values(runs, "conn_state"),
            f"{key} span": reader.flow_span(runs),
        }
    reader.close()
    return answers


def _assert_same(got: dict[str, object], expected: dict[str, object]) -> None:
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(got[name], value, obj=name)
        else:
            assert got[name] == value, name


def test_the_hour_sums_answer_as_the_windows_they_sum(tmp_path):
    url = store_url(tmp_path)
    _write_store(url)
    summed = _answers(url)
    engine = open_engine(url)
    with engine.begin() as conn:
        back_to_version_7(conn)  # no per-hour sums: the reader sums the windows
    engine.dispose()
    _assert_same(_answers(url), summed)
    assert summed["r totals"]["host"].tolist() == list(HOSTS)
    assert summed["['r', 'other'] talkers"]["bytes_out"].tolist() == [3000, 600, 400]
    ResultWriter(url, sensor="s").close()  # back to v8: the hours are summed from the stored windows
    _assert_same(_answers(url), summed)


def test_windows_committed_together_are_stored_as_windows_committed_one_by_one(tmp_path):
    """A file's windows go in a transaction together: flow G's later versions in the same transaction replace
    its earlier ones in the flows and in the hour sums, as across transactions."""
    (tmp_path / "one").mkdir(), (tmp_path / "together").mkdir()
    one_by_one, together = store_url(tmp_path / "one"), store_url(tmp_path / "together")
    _write_store(one_by_one)
    _write_store(together, together=True)
    _assert_same(_answers(together), _answers(one_by_one))
    for url in (one_by_one, together):
        with open_engine(url).begin() as conn:
            grown = conn.exec_driver_sql("SELECT count(*), sum(orig_ip_bytes) FROM flows WHERE uid = 'G'").one()
            assert grown == (2, 800)  # one row a run, its last version


def test_a_window_written_again_adds_nothing_to_its_hour(tmp_path):
    url = store_url(tmp_path)
    _write_store(url)
    before = _answers(url)
    writer = ResultWriter(url, sensor="s")  # a new writer: it does not know the window was stored
    writer.write_window("r", _window(HOUR0 + 10, host=HOSTS[0], uid="C0", qname="n0.example"))
    writer.close()
    _assert_same(_answers(url), before)


def test_the_traffic_of_the_last_seconds_ends_at_the_newest_second_of_the_runs(tmp_path):
    url = store_url(tmp_path)
    _write_store(url)
    reader = ResultReader(url)
    whole = reader.traffic(["r", "other"])
    assert whole["second"].tolist() == [
        int(HOUR0) + 10,
        int(HOUR0 + HOUR_S) - 1,
        int(HOUR0 + HOUR_S) + 20,
        int(HOUR0) + 7205,
    ]
    assert reader.traffic("r", last_s=HOUR_S)["second"].tolist() == whole["second"].tolist()[2:]
    assert reader.traffic("r", last_s=None).equals(reader.traffic("r"))
    reader.close()
