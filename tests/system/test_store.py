"""The result store on real SQLite files and a real PostgreSQL server: windows, sensors, DNS names,
the v1 -> v2 migration in place, retention, and one-line errors for stores that cannot be opened."""

from __future__ import annotations

import sqlite3
import time

import pandas as pd
import pytest
import sqlalchemy as sa
import store_v1
from conftest import DATA, run_cli
from postgres import postgres_server, postgres_url  # noqa: F401 (fixtures)
from store_windows import (  # noqa: F401
    T0,
    _dns_query,
    _flow,
    _window,
    back_to_version_3,
    back_to_version_5,
    back_to_version_6,
    back_to_version_7,
    url,
)

from traffic_analyzer.capture.file_reader import CaptureFileSource
from traffic_analyzer.capture.pcap_file import PcapFileSource
from traffic_analyzer.errors import AnalyzerError
from traffic_analyzer.pipeline import Analysis, file_windows
from traffic_analyzer.records.flows import FLOW_COLUMNS
from traffic_analyzer.records.packets import empty_packets
from traffic_analyzer.records.window import dns_counts
from traffic_analyzer.store.bulk import column_values
from traffic_analyzer.store.engine import open_engine, store_url
from traffic_analyzer.store.flow_versions import FLOW_DIGEST_ROTATE_S, StoredFlows
from traffic_analyzer.store.migrations import stored_version
from traffic_analyzer.store.reader import RecordReader, ResultReader, Selection
from traffic_analyzer.store.retention import PRUNE_BATCH_TIMES, Retention, store_mb
from traffic_analyzer.store.schema import SCHEMA_VERSION
from traffic_analyzer.store.writer import ResultWriter

DAY_S = 86400.0


def test_windows_sensors_and_dns_names_round_trip(url):
    a, b = ResultWriter(url, sensor="sensor-a"), ResultWriter(url, sensor="sensor-b")
    a.start_run("run-a", "live eth0 (tshark)", {"status": "none"})
    b.start_run("run-b", "file x.pcap", {"status": "none"})
    a.write_window("run-a", _window(T0, "10.0.0.1", "C1", "<script>alert(1)</script>.evil"))
    a.write_window("run-a", _window(T0 + 1, "10.0.0.1", "C2", "<script>alert(1)</script>.evil"))
    b.write_window("run-b", _window(T0, "10.0.0.2", "C1", "b.example"))  # same uid, other run: both kept
    b.finish_run("run-b", "finished")

    reader = ResultReader(url)
    assert reader.sensors() == ["sensor-a", "sensor-b"]
    latest = reader.latest_runs()
    assert [(r["sensor"], r["run_id"], r["live"]) for r in latest] == [
        ("sensor-b", "run-b", False),
        ("sensor-a", "run-a", True),
    ]
    assert reader.latest_run("sensor-a")["run_id"] == "run-a"
    both = [r["run_id"] for r in latest]
    assert reader.traffic(both)["bytes"].tolist() == [6_000_000_000, 3_000_000_000]  # BIGINT on PostgreSQL too
    assert reader.traffic("run-b")["bytes"].tolist() == [3_000_000_000]
    assert sorted(reader.host_totals(both)["host"]) == ["10.0.0.1", "10.0.0.2"]
    assert reader.count_flows(both) == 3 and reader.count_flows("run-a") == 2
    assert len(reader.alerts(both)) == 2
    assert reader.windows("run-a") == 2 and reader.windows(both) == 3
    dns = reader.host_dns("run-a", "10.0.0.1")
    assert dns[["qname", "queries"]].values.tolist() == [["<script>alert(1)</script>.evil", 4]]
    assert reader.host_dns(both, "10.0.0.9").empty
    for closable in (a, b, reader):
        closable.close()


def test_dns_counts_keeps_queries_not_responses():
    packets = empty_packets().reindex(range(4))
    packets["src_ip"] = pd.array(["10.0.0.1", "10.0.0.1", "10.0.0.53", "10.0.0.1"], dtype=packets["src_ip"].dtype)
    packets["dns_qname"] = pd.array(["a.example", "a.example", "a.example", None], dtype=packets["dns_qname"].dtype)
    packets["dns_response"] = pd.array([False, None, True, None], dtype="boolean")
    assert dns_counts(packets).values.tolist() == [["10.0.0.1", "a.example", 2]]
    assert dns_counts(empty_packets()).empty


def test_a_file_run_stores_the_dns_names_each_host_asked_for(tmp_path):
    analysis = Analysis(detectors=[])
    writer = ResultWriter(store_url(tmp_path), sensor="t")
    writer.start_run("r", "file tiny", {"status": "none"})
    source = PcapFileSource(str(DATA / "tiny-ethernet.pcap"), progress=False)
    asked = []
    for packets in source.batches():
        result, _ = analysis.process(packets, live=False)
        asked.append(packets[packets["dns_qname"].notna() & ~packets["dns_response"].fillna(False).astype(bool)])
        writer.write_window("r", result)
    asked = pd.concat(asked)
    reader = ResultReader(store_url(tmp_path))
    stored = pd.concat(reader.host_dns("r", h).assign(host=h) for h in asked["src_ip"].unique())
    assert len(asked) > 0 and stored["queries"].sum() == len(asked)
    assert set(stored["qname"]) == set(asked["dns_qname"])


def _plain(frame: pd.DataFrame) -> list[list]:
    return frame[list(FLOW_COLUMNS)].astype(object).where(frame.notna(), None).values.tolist()


def test_the_store_holds_the_last_version_of_every_flow_a_run_handed_over(url, pcaps):
    analysis = Analysis(detectors=[])
    source = CaptureFileSource(str(pcaps / "http-sqli-dvwa.pcapng"), progress=False)
    results = [analysis.process(packets, live=False)[0] for packets in file_windows(source.batches(), 5.0)]
    results.append(analysis.finish())
    handed = pd.concat([r.flows for r in results], ignore_index=True)
    last = handed.drop_duplicates("uid", keep="last").sort_values("uid")
    assert len(handed) > len(last) + 1  # flows come again: while they grow, once idle, at the end
    writer = ResultWriter(url, sensor="t")
    writer.start_run("r", "file http-sqli-dvwa.pcapng", {"status": "none"})
    for result in results:
        writer.write_window("r", result)
    reader = ResultReader(url)
    assert _plain(reader.search_flows("r", limit=10_000).sort_values("uid")) == _plain(last)
    reader.close()
    writer.close()


def test_a_flow_that_comes_again_unchanged_is_not_written_again():
    c1, c2 = _flow("C1", "10.0.0.1", "10.0.0.53", T0), _flow("C2", "10.0.0.1", "10.0.0.9", T0)
    grown = c1.assign(orig_pkts=2, last_ts=T0 + 3)

    def written(seen: StoredFlows, frame: pd.DataFrame, at: float | None, run: str = "r") -> list[str]:
        changes = seen.changed(run, {name: column_values(frame[name]) for name in frame.columns})
        if at is not None:  # the window was committed
            seen.committed(changes, at)
        uids = frame["uid"].to_numpy()
        return [f"new {uid}" for uid in uids[changes.new]] + [f"grown {uid}" for uid in uids[changes.grown]]

    seen = StoredFlows()
    assert written(seen, c1, T0) == ["new C1"]
    assert written(seen, pd.concat([c1, c2]), T0 + 5) == ["new C2"]  # C1 as stored: not again
    assert written(seen, c1, T0 + 10) == ["new C1"]  # a flow that repeated was forgotten: at worst written again
    assert written(seen, grown, T0 + 15) == ["grown C1"]  # a new version
    c3 = _flow("C3", "10.0.0.1", "10.0.0.7", T0)
    assert written(seen, c3, None) == ["new C3"]
    assert written(seen, c3, None) == ["new C3"]  # its window was not committed: nothing was learnt

    seen = StoredFlows()
    written(seen, c1, T0)
    written(seen, c2, T0 + FLOW_DIGEST_ROTATE_S)  # a new generation: C1 is one generation back
    assert written(seen, c1, T0 + FLOW_DIGEST_ROTATE_S) == []
    written(seen, grown, T0 + FLOW_DIGEST_ROTATE_S)
    written(seen, pd.DataFrame(columns=c1.columns), T0 + 2 * FLOW_DIGEST_ROTATE_S)
    written(seen, pd.DataFrame(columns=c1.columns), T0 + 3 * FLOW_DIGEST_ROTATE_S)
    assert written(seen, grown, None) == ["new C1"]  # two generations back: forgotten
    assert written(seen, c2, None, run="next") == ["new C2"]  # a new run starts afresh


def test_a_flow_the_writer_forgot_replaces_its_stored_version(url):
    writer = ResultWriter(url, sensor="s")
    writer.start_run("r", "live eth0 (tshark)", {})
    writer.write_window("r", _window(T0, uid="C1"))
    for generation in (1, 2):  # windows without C1 until the writer forgets it
        writer.write_window("r", _window(T0 + generation * FLOW_DIGEST_ROTATE_S, uid=f"G{generation}"))
    later = _window(T0 + 2 * FLOW_DIGEST_ROTATE_S + 5, uid="C1")
    later.flows = pd.concat([later.flows.assign(orig_pkts=7), _flow("C9", "10.0.0.1", "10.0.0.53", T0)])
    writer.write_window("r", later)  # C1 and C9 look new to the writer; C1 is stored: both are upserted
    reader = ResultReader(url)
    stored = reader.search_flows("r").set_index("uid")
    assert sorted(stored.index) == ["C1", "C9", "G1", "G2"] and stored.loc["C1", "orig_pkts"] == 7
    assert reader.windows("r") == 4
    reader.close()
    writer.close()


def _make_v1_store(path) -> None:
    engine = sa.create_engine(f"sqlite:///{path}")
    store_v1.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            store_v1.runs.insert(),
            [
                {"run_id": "old1", "started_at": T0, "source": "file a.pcap", "status": "finished", "finished_at": T0},
                {
                    "run_id": "old2",
                    "started_at": T0 + 9,
                    "source": "live eth0 (pyshark)",
                    "status": "running",
                    "finished_at": None,
                },
            ],
        )
        conn.execute(
            store_v1.traffic.insert(),
            [{"run_id": "old1", "second": T0 + i, "packets": i, "bytes": 9} for i in range(5)],
        )
        conn.execute(
            store_v1.hosts.insert(),
            [
                {
                    "run_id": "old2",
                    "window_start": T0,
                    "host": "10.0.0.1",
                    "packets_out": 1,
                    "bytes_out": 2,
                    "packets_in": 3,
                    "bytes_in": 4,
                }
            ],
        )
        flow = _flow("C1", "10.0.0.1", "10.0.0.53", T0).assign(run_id="old1")
        conn.execute(store_v1.flows.insert(), flow.astype(object).where(flow.notna(), None).to_dict("records"))
        alert = {c.name: "x" for c in store_v1.alerts.columns} | {"alert_id": "a1", "run_id": "old1"}
        conn.execute(
            store_v1.alerts.insert(), [alert | {"start": T0, "end": T0, "score": 50.0, "updates": 1, "updated_at": T0}]
        )
    engine.dispose()


def _counts(path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("runs", "traffic", "hosts", "flows", "alerts")
        }


def test_a_version_1_store_is_migrated_in_place_without_losing_rows(tmp_path):
    db = tmp_path / "analyzer.db"
    _make_v1_store(db)
    before = _counts(db)
    engine = open_engine(store_url(tmp_path))
    with engine.connect() as conn:
        assert stored_version(conn) == 1
    writer = ResultWriter(store_url(tmp_path), sensor="old-box")
    with engine.connect() as conn:
        assert stored_version(conn) == SCHEMA_VERSION
        assert sa.inspect(conn).get_pk_constraint("flows")["constrained_columns"] == ["run_id", "uid"]
    assert _counts(db) == before
    reader = ResultReader(store_url(tmp_path))
    runs = {r["run_id"]: r for r in reader.latest_runs("old-box") + [reader.latest_run()]}
    assert reader.sensors() == ["old-box"]
    assert reader.traffic("old1")["packets"].tolist() == [0, 1, 2, 3, 4]
    assert runs["old2"]["live"] and reader.host_totals("old2")["bytes_in"].tolist() == [4]
    assert reader.search_flows("old1")["uid"].tolist() == ["C1"]

    writer.start_run("new", "file b.pcap", {"status": "none"})  # old2 was cut off by the upgrade: interrupted
    writer.write_window("new", _window(T0 + 60, uid="C1"))  # uid C1 again, in another run: both stay
    assert sorted(reader.search_flows(["old1", "new"])["run_id"]) == ["new", "old1"]
    assert reader.latest_run("old-box")["run_id"] == "new"
    assert {r["run_id"]: r["status"] for r in reader._runs(None)}["old2"] == "interrupted"
    writer.close()
    reader.close()
    ResultWriter(store_url(tmp_path), sensor="old-box").close()  # opening a current store changes nothing
    assert _counts(db) == {**before, "runs": 3, "traffic": 6, "hosts": 2, "flows": 2, "alerts": 2}
    engine.dispose()


def _run_id_indexes(url: str) -> set[str]:
    engine = open_engine(url)
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        found = {
            f"{table}.{index['name']}"
            for table in inspector.get_table_names()
            for index in inspector.get_indexes(table)
            if index["column_names"] == ["run_id"]
        }
    engine.dispose()
    return found


def test_a_version_2_store_loses_its_run_id_indexes_and_nothing_else(url):
    writer = ResultWriter(url, sensor="s")
    writer.start_run("r", "file a.pcap", {})
    writer.write_window("r", _window(T0))
    writer.close()
    assert _run_id_indexes(url) == {"alerts.ix_alerts_run_id"}  # alerts have no (run_id, time) index
    engine = open_engine(url)
    with engine.begin() as conn:  # back to version 2, as the previous release made it
        back_to_version_3(conn)
        for table in ("traffic", "protocols", "hosts", "flows", "health"):
            conn.exec_driver_sql(f"CREATE INDEX ix_{table}_run_id ON {table} (run_id)")
        conn.exec_driver_sql("UPDATE store_schema SET version = 2")
    reader = ResultReader(url)
    assert reader.latest_run()["run_id"] == "r" and len(_run_id_indexes(url)) == 6  # read as it is
    ResultWriter(url, sensor="s").close()
    with engine.connect() as conn:
        assert stored_version(conn) == SCHEMA_VERSION == 8
    assert _run_id_indexes(url) == {"alerts.ix_alerts_run_id"}
    assert reader.traffic("r")["packets"].tolist() == [3] and reader.count_flows("r") == 1
    reader.close()
    engine.dispose()


def test_a_version_4_store_gains_the_app_events_table_and_keeps_its_rows(url):
    writer = ResultWriter(url, sensor="s")
    writer.start_run("r", "file a.pcap", {})
    writer.write_window("r", _window(T0))
    writer.close()
    engine = open_engine(url)
    with engine.begin() as conn:  # as the previous release made it
        back_to_version_5(conn)
        conn.exec_driver_sql("DROP TABLE app_events")
        conn.exec_driver_sql("UPDATE store_schema SET version = 4")
    ResultWriter(url, sensor="s").close()
    with engine.connect() as conn:
        assert stored_version(conn) == SCHEMA_VERSION
        assert sa.inspect(conn).has_table("app_events")
        assert conn.exec_driver_sql("SELECT count(*) FROM flows").scalar() == 1
    engine.dispose()


def test_a_version_5_store_is_read_as_it_is_then_gains_the_hosts_anomaly_margin(url):
    writer = ResultWriter(url, sensor="s")
    writer.start_run("r", "file a.pcap", {})
    scored = _window(T0)
    scored.hosts["anomaly"] = [0.25]
    writer.write_window("r", scored)
    writer.close()
    reader = ResultReader(url)
    assert reader.host_windows("r", "10.0.0.1")["anomaly"].tolist() == [0.25]
    reader.close()
    engine = open_engine(url)
    with engine.begin() as conn:
        back_to_version_5(conn)
    reader = ResultReader(url)  # the dashboard of a store the previous release wrote
    old = reader.host_windows("r", "10.0.0.1")
    assert old["packets_out"].tolist() == [2] and old["anomaly"].isna().all()
    writer = ResultWriter(url, sensor="s")  # upgrades it; a window without a model stores no margin
    writer.write_window("r", _window(T0 + 5))
    writer.close()
    with engine.connect() as conn:
        assert stored_version(conn) == SCHEMA_VERSION
    reader = ResultReader(url)
    assert reader.host_windows("r", "10.0.0.1")["anomaly"].isna().all()
    reader.close()
    engine.dispose()


def test_a_version_6_store_keeps_its_dns_messages_and_gains_their_answer_records(url):
    writer = ResultWriter(url, sensor="s")
    writer.start_run("r", "file a.pcap", {})
    writer.write_window("r", _window(T0))
    writer.close()
    engine = open_engine(url)
    with engine.begin() as conn:  # as the previous release made it
        back_to_version_6(conn)
        before = conn.exec_driver_sql("SELECT count(*) FROM app_events").scalar()
    ResultWriter(url, sensor="s").close()
    with engine.connect() as conn:
        assert stored_version(conn) == SCHEMA_VERSION == 8
        columns = {c["name"] for c in sa.inspect(conn).get_columns("app_events")}
        assert {"dns_answers", "dns_ttls"} <= columns
        assert before > 0 and conn.exec_driver_sql("SELECT count(*) FROM app_events").scalar() == before
    engine.dispose()


def test_a_version_7_store_gains_hour_sums_that_answer_as_its_rows_did(url):
    writer = ResultWriter(url, sensor="s")
    writer.start_run("r", "file a.pcap", {})
    for i, host in enumerate(("10.0.0.1", "10.0.0.2", "10.0.0.1")):
        writer.write_window("r", _window(T0 + 5 * i, host=host, uid=f"C{i}"))
    writer.close()
    engine = open_engine(url)
    with engine.begin() as conn:  # as the previous release made it
        back_to_version_7(conn)
    reader = ResultReader(url)  # reads the window and flow rows
    before = [reader.host_totals("r"), reader.protocols("r"), reader.host_peers("r", "10.0.0.53")]
    counts = [reader.count_flows("r"), reader.count_flows("r", ip="10.0.0.1"), reader.flow_values("r", "service")]
    reader.close()
    ResultWriter(url, sensor="s").close()
    with engine.connect() as conn:
        assert stored_version(conn) == SCHEMA_VERSION == 8
        assert conn.exec_driver_sql("SELECT count(*) FROM host_hours").scalar() == 2  # one hour, two hosts
    engine.dispose()
    reader = ResultReader(url)  # reads the sums
    after = [reader.host_totals("r"), reader.protocols("r"), reader.host_peers("r", "10.0.0.53")]
    assert [reader.count_flows("r"), reader.count_flows("r", ip="10.0.0.1"), reader.flow_values("r", "service")] == [
        3,
        2,
        ["dns"],
    ]
    assert counts == [3, 2, ["dns"]]
    for old, new in zip(before, after, strict=True):
        pd.testing.assert_frame_equal(new, old)
    assert after[0]["packets_out"].tolist() == [4, 2]
    reader.close()


def test_the_dashboard_reader_reads_a_version_1_store_as_it_is_and_never_creates_one(tmp_path, caplog):
    reader = ResultReader(store_url(tmp_path))
    assert reader.latest_run() is None and reader.sensors() == []
    assert not (tmp_path / "analyzer.db").exists() or _tables(tmp_path) == set()
    _make_v1_store(tmp_path / "analyzer.db")
    before, tables = _counts(tmp_path / "analyzer.db"), _tables(tmp_path)
    assert ResultReader(store_url(tmp_path)).latest_run()["run_id"] == "old2"
    # readers never write: the store stays at version 1 until the analyzer (its writer) opens it
    assert "store_schema" not in _tables(tmp_path) and _tables(tmp_path) == tables
    assert _counts(tmp_path / "analyzer.db") == before
    assert reader.sensors() == [""] and reader.traffic("old1")["packets"].tolist() == [0, 1, 2, 3, 4]
    assert reader.host_dns("old2", "10.0.0.1").empty and reader.latest_run()["live"] is None
    told = [r.getMessage() for r in caplog.records if "schema version 1, older than" in r.getMessage()]
    assert len(told) == 2 and "upgrades it when it next starts" in told[0]  # once per reader
    ResultWriter(store_url(tmp_path), sensor="old-box").close()
    assert reader.sensors() == ["old-box"] and reader.latest_run()["live"] is True  # the same reader, upgraded
    reader.close()


def test_readers_cannot_write(url):
    writer = ResultWriter(url, sensor="s")
    writer.start_run("r", "file a.pcap", {})
    writer.write_window("r", _window(T0))
    writer.close()
    reader, export = ResultReader(url), RecordReader(url, "flows")
    assert reader.sensors() == ["s"]
    assert [chunk["uid"].tolist() for chunk in export.chunks(Selection("flows", run_ids=("r",)))] == [["C1"]]
    for engine in (reader.engine, export.engine):
        with pytest.raises(sa.exc.DBAPIError, match="read-?only"):
            with engine.begin() as conn:
                conn.execute(sa.text("DELETE FROM runs"))
    reader.close()
    export.close()


def test_a_store_newer_than_the_reader_is_refused_with_one_line(tmp_path):
    ResultWriter(store_url(tmp_path)).close()
    with sqlite3.connect(tmp_path / "analyzer.db") as conn:
        conn.execute("UPDATE store_schema SET version = 99")
    with pytest.raises(AnalyzerError, match=f"schema version 99, newer than this analyzer's {SCHEMA_VERSION}"):
        ResultReader(store_url(tmp_path)).latest_run()


def _tables(tmp_path) -> set[str]:
    with sqlite3.connect(tmp_path / "analyzer.db") as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_a_newer_store_is_refused_with_one_line(tmp_path):
    ResultWriter(store_url(tmp_path)).close()
    with sqlite3.connect(tmp_path / "analyzer.db") as conn:
        conn.execute("UPDATE store_schema SET version = 99")
    with pytest.raises(AnalyzerError, match=f"schema version 99, newer than this analyzer's {SCHEMA_VERSION}"):
        ResultWriter(store_url(tmp_path))


def _rows(url: str, run_id: str) -> int:
    engine = open_engine(url)
    with engine.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM hosts WHERE run_id = :r"), {"r": run_id}).scalar()
    engine.dispose()
    return n


def test_retention_by_age_prunes_old_runs_and_old_live_rows_in_small_batches(url):
    now = time.time()
    writer = ResultWriter(url, sensor="s")
    writer.start_run("ended-long-ago", "file old.pcap", {})
    writer.write_window("ended-long-ago", _window(T0))
    writer.finish_run("ended-long-ago", "finished")
    writer.start_run("file-today", "file new.pcap", {})
    writer.write_window("file-today", _window(T0))  # packet time years ago, analysed now: kept
    writer.finish_run("file-today", "finished")
    writer.start_run("live", "live eth0 (tshark)", {})
    windows = PRUNE_BATCH_TIMES + 5
    for i in range(windows):  # 10 days ago, one window a minute, then two current ones
        writer.write_window("live", _window(now - 10 * DAY_S + 60 * i, uid=f"C{i}"))
    writer.write_window("live", _window(now - 5, uid="Cnew"))
    writer.write_window("live", _window(now, uid="Cnow"))
    engine = open_engine(url)
    with engine.begin() as conn:  # the first run ended 40 days ago
        conn.execute(
            sa.text("UPDATE runs SET finished_at = :t WHERE run_id = 'ended-long-ago'"), {"t": now - 40 * DAY_S}
        )

    writer.retention = Retention(days=7)
    pruned = [writer.prune() for _ in range(6)]
    assert pruned[0] > 0 and pruned[-1] == 0
    reader = ResultReader(url)
    assert [r["run_id"] for r in reader._runs(None)] == ["live", "file-today"]
    assert _rows(url, "file-today") == 1 and _rows(url, "ended-long-ago") == 0
    assert reader.host_windows("live", "10.0.0.1")["window_start"].tolist() == [now - 5, now]
    assert reader.windows("live") == windows + 2  # health samples are wall-clock time: all recent
    assert reader.count_flows("live") == 2
    # a batch never takes more than PRUNE_BATCH_TIMES windows of a table
    assert max(pruned) <= PRUNE_BATCH_TIMES * 7
    writer.close()
    reader.close()
    engine.dispose()


def test_retention_by_size_drops_the_oldest_ended_runs_first(tmp_path):
    url = store_url(tmp_path)
    writer = ResultWriter(url, sensor="s")
    big = "x" * 2000
    for run in ("r1", "r2", "r3"):
        writer.start_run(run, "file f.pcap", {})
        for i in range(150):
            writer.write_window(run, _window(T0 + i, qname=f"{big}{i}", uid=f"C{i}"))
        writer.finish_run(run, "finished")
    engine = open_engine(url)
    with engine.connect() as conn:
        full = store_mb(conn)
    writer.retention = Retention(max_mb=full * 0.55)
    for _ in range(100):
        if not writer.prune():
            break
    with engine.connect() as conn:
        assert store_mb(conn) <= full * 0.55
    left = [r["run_id"] for r in ResultReader(url)._runs(None)]
    assert left in (["r3"], ["r3", "r2"]) and "r1" not in left
    assert ResultReader(url).windows("r3") == 150
    writer.close()
    engine.dispose()


def test_a_killed_run_is_marked_interrupted_when_its_sensor_starts_again(url):
    writer = ResultWriter(url, sensor="s")
    writer.start_run("killed", "live lo (tshark)", {})
    writer.write_window("killed", _window(T0))
    other = ResultWriter(url, sensor="other")
    other.start_run("other-run", "live eth0 (tshark)", {})
    ResultWriter(url, sensor="s").start_run("next", "live lo (tshark)", {})
    runs = {r["run_id"]: r for r in ResultReader(url)._runs(None)}
    assert runs["killed"]["status"] == "interrupted" and runs["killed"]["finished_at"] is not None
    assert runs["other-run"]["status"] == "running"  # another sensor's run is not this one's business


@pytest.mark.parametrize(
    "store, message",
    [
        ("postgresql://nobody@127.0.0.1:1/nta", "cannot open the result store postgresql://nobody@127.0.0.1:1/nta: "),
        ("postgresql://u:secret@127.0.0.1:1/nta", "cannot open the result store postgresql://u:***@127.0.0.1:1/nta"),
        ("nosuchdb://x/y", "store URL 'nosuchdb://x/y' is not usable"),
        ("sqlite:////nonexistent-dir/x/analyzer.db", "cannot open the result store sqlite:////nonexistent-dir/x/"),
    ],
)
def test_a_store_that_cannot_be_opened_is_one_line_and_a_failed_exit(tmp_path, store, message):
    with pytest.raises(AnalyzerError) as raised:
        ResultWriter(store)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)
    assert "secret" not in str(raised.value)
    proc = run_cli(
        "--read", str(DATA / "tiny-ethernet.pcap"), "--no-dashboard", "--no-progress", "--store", store,
        "--data-dir", str(tmp_path / "data"), "--log-file", str(tmp_path / "log"), timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"error: {raised.value}"]


def test_a_store_setting_that_is_not_a_url_names_the_setting(tmp_path):
    proc = run_cli("--read", str(DATA / "tiny-ethernet.pcap"), "--no-dashboard", "--store", "data/x.db", timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: store must be a database URL like postgresql://user@host/db, not 'data/x.db'"
