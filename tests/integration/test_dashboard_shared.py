"""Refresh answers shared between viewers: one computation a second per store and inputs, never across stores;
an older answer is given at once while its successor is computed, and a first computation is done once."""

from __future__ import annotations

import threading
import time

import flask

from traffic_analyzer.dashboard import data
from traffic_analyzer.store.annotations import AnnotationStore
from traffic_analyzer.store.engine import store_url
from traffic_analyzer.store.reader import ResultReader
from traffic_analyzer.store.writer import ResultWriter


def _dashboard(folder) -> flask.Flask:
    folder.mkdir()
    url = store_url(folder)
    writer = ResultWriter(url, sensor="s")
    writer.start_run("r", "file a.pcap", {"status": "none"})
    writer.close()
    server = flask.Flask(str(folder))
    data.attach_stores(server, ResultReader(url), AnnotationStore(url))
    return server


def test_viewers_asking_the_same_share_an_answer_for_a_second_and_stores_never_share(tmp_path, monkeypatch):
    computed: list[tuple] = []

    def panels(page: str) -> list:
        computed.append((flask.current_app.name, page))
        return [page, len(computed)]

    first, second = _dashboard(tmp_path / "a"), _dashboard(tmp_path / "b")
    with first.app_context():
        answers = [data.shared(panels, "/") for _ in range(50)]  # fifty viewers of one page
        assert answers == [["/", 1]] * 50
        assert data.shared(panels, "/alerts") == ["/alerts", 2]  # other inputs: computed for them
    with second.app_context():
        assert data.shared(panels, "/") == ["/", 3]  # another dashboard's store: its own answer
    monkeypatch.setattr(data, "SHARED_S", 0.0)  # a second later
    with first.app_context():
        assert data.shared(panels, "/") == ["/", 1]  # at once, the older answer; the next one is computed
        _settled()
        monkeypatch.setattr(data, "SHARED_S", 60.0)
        assert data.shared(panels, "/") == ["/", 4]  # the next tick
    assert [page for _, page in computed] == ["/", "/alerts", "/", "/"]
    monkeypatch.setattr(data, "SHARED_S", 0.0)
    monkeypatch.setattr(data, "STALE_S", 0.0)  # nobody asked for a long time: computed while the asker waits
    with first.app_context():
        assert data.shared(panels, "/") == ["/", 5]
    for server in (first, second):
        data.detach_stores(server)


def test_viewers_asking_for_a_page_being_computed_wait_for_that_computation(tmp_path):
    started, release, computed = threading.Event(), threading.Event(), []

    def slow(page: str) -> str:
        computed.append(page)
        started.set()
        release.wait(10)
        return f"{page} #{len(computed)}"

    server = _dashboard(tmp_path / "a")
    answers: list[str] = []

    def viewer() -> None:
        with server.app_context():
            answers.append(data.shared(slow, "/hosts"))

    first = threading.Thread(target=viewer)
    first.start()
    assert started.wait(10)
    others = [threading.Thread(target=viewer) for _ in range(5)]
    for t in others:
        t.start()
    time.sleep(0.2)  # the five are waiting, not computing
    release.set()
    for t in [first, *others]:
        t.join(10)
    assert computed == ["/hosts"] and answers == ["/hosts #1"] * 6
    data.detach_stores(server)


def _settled() -> None:
    """Wait for the background refreshes started so far."""
    for thread in threading.enumerate():
        if thread.name == "dashboard-refresh":
            thread.join(10)
