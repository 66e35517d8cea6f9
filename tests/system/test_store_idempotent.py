"""A window written again adds nothing: its rows' keys are unique in the store, conflicts ignored.

The PostgreSQL test puts a small TCP proxy (127.0.0.1) between the writer and the server and cuts
the connection at the reply to a window's COMMIT: the server has committed, the writer cannot know,
holds the window and writes it again when the store answers. Every table then holds what a run
without the fault holds.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from postgres import postgres_server, postgres_url  # noqa: F401 (fixtures)
from store_windows import T0, _window, back_to_version_3, url  # noqa: F401 (fixture)

from traffic_analyzer.store import resilient
from traffic_analyzer.store.engine import open_engine
from traffic_analyzer.store.migrations import stored_version
from traffic_analyzer.store.reader import ResultReader
from traffic_analyzer.store.resilient import ResilientWriter
from traffic_analyzer.store.schema import HOUR_TABLES, RESULT_TABLES, SCHEMA_VERSION, WINDOW_TABLES
from traffic_analyzer.store.writer import ResultWriter

COMMIT_REPLY = b"C\x00\x00\x00\x0bCOMMIT\x00"  # CommandComplete 'COMMIT' in the PostgreSQL wire protocol
CHUNK_BYTES = 65536
BACKLOG_MB = 64.0
WINDOWS = 4


def _counts(store: str, run_id: str) -> dict[str, int]:
    """Rows of ``run_id`` in every result table (0 in a table an older store does not have)."""
    engine = open_engine(store)
    with engine.connect() as conn:
        present = set(sa.inspect(conn).get_table_names())
        counts = {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t).where(t.c.run_id == run_id)).scalar()
            if t.name in present
            else 0
            for t in RESULT_TABLES
        }
    engine.dispose()
    return counts


def _write_run(writer: ResultWriter | ResilientWriter, run_id: str) -> None:
    writer.start_run(run_id, "file a.pcap", {"status": "none"})
    for i in range(WINDOWS):
        writer.write_window(run_id, _window(T0 + i, uid=f"C{i}"))
    writer.finish_run(run_id, "finished")


def test_a_window_written_twice_adds_nothing_and_a_second_in_two_windows_stays_twice(url):  # noqa: F811
    writer = ResultWriter(url, sensor="s")
    writer.start_run("r", "file a.pcap", {"status": "none"})
    first, straddling = _window(T0), _window(T0 + 0.5, host="10.0.0.2", uid="C2")  # both count second T0
    writer.write_window("r", first)
    once = _counts(url, "r")
    writer.write_window("r", first)
    unaware = ResultWriter(url, sensor="s")  # knows nothing of what was stored, as after a lost answer
    unaware.write_window("r", first)
    unaware.close()
    assert _counts(url, "r") == once
    writer.write_window("r", straddling)
    assert _counts(url, "r") == {**once, "traffic": 2, "protocols": 2, "hosts": 2, "flows": 2, "health": 2,
                                 "dns_queries": 2, "alerts": 2, "app_events": 2,
                                 "host_hours": 2, "peer_hours": 4}  # fmt: skip
    # one hour: a second host, and its flow at both ends; the protocol and the kind of flow were counted
    reader = ResultReader(url)
    assert reader.host_totals("r")["packets_out"].tolist() == [2, 2] and reader.count_flows("r") == 2
    reader.close()
    writer.close()


def test_a_version_3_store_keeps_one_of_each_duplicated_row_and_then_refuses_duplicates(url):  # noqa: F811
    writer = ResultWriter(url, sensor="s")
    writer.start_run("r", "file a.pcap", {"status": "none"})
    writer.write_window("r", _window(T0))
    writer.close()
    once = _counts(url, "r")
    engine = open_engine(url)
    with engine.begin() as conn:  # version 3, where a retried window wrote its rows twice
        back_to_version_3(conn)
        for table in WINDOW_TABLES:
            conn.exec_driver_sql(f"INSERT INTO {table.name} SELECT * FROM {table.name}")
    assert _counts(url, "r") == {
        **once,
        "app_events": 0,
        **{t.name: 2 * once[t.name] for t in WINDOW_TABLES},
        **{t.name: 0 for t in HOUR_TABLES},
    }

    writer = ResultWriter(url, sensor="s")
    with engine.connect() as conn:
        assert stored_version(conn) == SCHEMA_VERSION == 8
        unique = {i["name"] for t in WINDOW_TABLES for i in sa.inspect(conn).get_indexes(t.name) if i["unique"]}
    assert unique == {i.name for t in WINDOW_TABLES for i in t.indexes if i.unique}
    assert _counts(url, "r") == {**once, "traffic": 2, "app_events": 0}  # v3 had no app_events; traffic rows
    # before v4 name no window: kept as they are
    second = _window(T0 + 1)
    writer.write_window("r", second)
    written = _counts(url, "r")
    writer.close()
    writer = ResultWriter(url, sensor="s")
    writer.write_window("r", second)
    assert _counts(url, "r") == written
    writer.close()
    engine.dispose()


class CommitCutter:
    """A TCP proxy to PostgreSQL that, once armed, cuts the connection at the server's reply to COMMIT.

    What the server sent before that reply is forwarded; the reply itself is not, so the server has
    committed and the client only sees its connection end.
    """

    def __init__(self, server_port: int) -> None:
        self.server_port = server_port
        self.armed = threading.Event()
        self.cuts = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.server_port))
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, from_server: bool) -> None:
        try:
            while data := source.recv(CHUNK_BYTES):
                at = data.find(COMMIT_REPLY) if from_server and self.armed.is_set() else -1
                if at >= 0:
                    self.armed.clear()
                    self.cuts += 1
                    target.sendall(data[:at])
                    break
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            sock.close()


@pytest.fixture
def commit_cutter(postgres_server) -> Iterator[CommitCutter]:  # noqa: F811
    proxy = CommitCutter(postgres_server.port)
    yield proxy
    proxy.close()


class _CutWindowWriter(ResultWriter):
    """The writer, arming the proxy just before the transaction holding window ``cut_at``."""

    def __init__(self, store: str, proxy: CommitCutter, cut_at: float) -> None:
        super().__init__(store, sensor="s")
        self.proxy, self.cut_at = proxy, cut_at

    def write_windows(self, windows) -> None:  # noqa: ANN001 (as the base class)
        if any(result.window_start == self.cut_at for _, result in windows) and not self.proxy.cuts:
            self.proxy.armed.set()
        super().write_windows(windows)


def test_a_window_whose_commit_answer_was_lost_is_written_again_without_duplicates(
    postgres_url,  # noqa: F811
    commit_cutter,
    monkeypatch,
):
    clean = ResultWriter(postgres_url, sensor="s")
    _write_run(clean, "clean")
    clean.close()

    monkeypatch.setattr(resilient, "RETRY_INTERVAL_S", 0.0)  # retry with the next window
    monkeypatch.setattr(ResilientWriter, "commit_every_s", 0.0)  # each window its own transaction
    proxied = postgres_url.replace(f":{commit_cutter.server_port}/", f":{commit_cutter.port}/")
    writer = ResilientWriter(_CutWindowWriter(proxied, commit_cutter, T0 + 1), BACKLOG_MB, logging.getLogger("t"))
    _write_run(writer, "cut")
    writer.close()

    assert commit_cutter.cuts == 1
    health = writer.health()
    assert health["outages"] == 1 and health["written_late"] >= 1 and health["lost"] == 0, health
    assert _counts(postgres_url, "cut") == _counts(postgres_url, "clean")
