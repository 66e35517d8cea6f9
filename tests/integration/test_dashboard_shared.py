"""Refresh answers shared between viewers: one computation a second per store and inputs, never across stores."""

from __future__ import annotations

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
        assert data.shared(panels, "/") == ["/", 4]
    assert [page for _, page in computed] == ["/", "/alerts", "/", "/"]
    for server in (first, second):
        data.detach_stores(server)
