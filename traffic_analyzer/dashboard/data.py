"""How pages reach the store and the refresh tick without importing the app.

:func:`~traffic_analyzer.dashboard.app.create_app` attaches one
:class:`~traffic_analyzer.store.reader.ResultReader` and one
:class:`~traffic_analyzer.store.annotations.AnnotationStore` to the app's Flask server; page
callbacks run inside that server's request context and fetch them with :func:`reader` and
:func:`annotations`. Keeping them on the server rather than in module globals lets two
dashboards on two stores live in one process (the browser tests start several).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

import flask

from ..store.annotations import AnnotationStore
from ..store.reader import ResultReader

REFRESH_INTERVAL_ID = "app-refresh-interval"  # the dcc.Interval in the app shell that every page listens to
REFRESH_MS = 2000  # how often pages re-read the store
SENSOR_FILTER_ID = "app-sensor-filter"  # the dropdown in the app shell: one sensor's results, or all (None)
_READER_KEY = "traffic_analyzer.result_reader"  # where the reader lives in Flask's app.extensions
_ANNOTATIONS_KEY = "traffic_analyzer.annotations"  # and the acknowledgements / allow-list store
SHARED_S = 1.0  # a refresh's answer is shared by every viewer asking the same within this long
STALE_S = 30.0  # ... and answered at once up to this old while its successor is computed
WAIT_S = 30.0  # a viewer waits this long at most for another's computation of the same answer
SHARED_MOST = 256  # answers kept (distinct pages, filters and stores)
T = TypeVar("T")


def attach_stores(server: flask.Flask, reader: ResultReader, annotations: AnnotationStore) -> None:
    """Give the pages of the app served by ``server`` their store."""
    server.extensions[_READER_KEY] = reader
    server.extensions[_ANNOTATIONS_KEY] = annotations


def detach_stores(server: flask.Flask) -> None:
    """Close the store connections of a dashboard that stopped serving."""
    for key in (_READER_KEY, _ANNOTATIONS_KEY):
        attached = server.extensions.pop(key, None)
        if attached is not None:
            attached.close()


def reader() -> ResultReader:
    """The store of the dashboard handling the current request."""
    return flask.current_app.extensions[_READER_KEY]


def annotations() -> AnnotationStore:
    """The acknowledgements and allow-list of the dashboard handling the current request."""
    return flask.current_app.extensions[_ANNOTATIONS_KEY]


class _Shared:
    """Answers of the refresh callbacks, shared between the viewers that ask the same.

    Every open tab asks every 2 s, and the store changes once a window: fifty viewers of one page asked
    for the same snapshot fifty times (``bench/dashboard_load.py``). An answer is keyed by what it was
    computed from (the function, the dashboard's store, the page's inputs) and is fresh for SHARED_S. An
    older one (up to STALE_S) is still answered at once while one background thread computes its
    successor, so no viewer waits for the store once a page was computed: the next tick shows the new
    answer. Only a page nobody asked for lately is computed while its asker waits, and then once: the
    other viewers asking the same meanwhile wait for that computation instead of repeating it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: OrderedDict[tuple, tuple[float, object]] = OrderedDict()
        self._computing: dict[tuple, threading.Event] = {}

    def __call__(self, compute: Callable[..., T], *args: Hashable) -> T:
        key = (compute.__module__, compute.__qualname__, id(reader()), args)
        now = time.monotonic()
        with self._lock:
            found = self._answers.get(key)
            age = now - found[0] if found is not None else None
            if found is not None and age < SHARED_S:
                return found[1]  # type: ignore[return-value]
            running = self._computing.get(key)
            if found is not None and age < STALE_S:
                if running is None:
                    self._computing[key] = threading.Event()
                    app = flask.current_app._get_current_object()  # noqa: SLF001 - the app, for the thread
                    threading.Thread(
                        target=self._refresh, args=(app, key, compute, args), name="dashboard-refresh", daemon=True
                    ).start()
                return found[1]  # type: ignore[return-value]
            if running is None:
                self._computing[key] = threading.Event()
        if running is not None and running.wait(WAIT_S):
            with self._lock:
                found = self._answers.get(key)
            if found is not None:
                return found[1]  # type: ignore[return-value]
        return self._compute(key, compute, args, now)

    def _refresh(self, app: flask.Flask, key: tuple, compute: Callable, args: tuple) -> None:
        with app.app_context():
            try:
                self._compute(key, compute, args, time.monotonic())
            except Exception:  # noqa: BLE001 - the viewers keep the older answer; the next ask tries again
                logging.getLogger("traffic_analyzer").exception("refreshing a dashboard page failed")

    def _compute(self, key: tuple, compute: Callable[..., T], args: tuple, started: float) -> T:
        try:
            answer = compute(*args)
            with self._lock:
                self._answers[key] = (started, answer)
                self._answers.move_to_end(key)
                while len(self._answers) > SHARED_MOST:
                    self._answers.popitem(last=False)
            return answer
        finally:
            with self._lock:
                done = self._computing.pop(key, None)
            if done is not None:
                done.set()


shared = _Shared()


def sensor_options(_n_intervals: int | None) -> list[dict]:
    """The sensor dropdown's choices: every sensor that wrote to the store (names set by their owners)."""
    return shared(_sensor_options)


def _sensor_options() -> list[dict]:
    return [{"label": name or "(unnamed)", "value": name} for name in reader().sensors()]


def fingerprint(value: object) -> str:
    """A short digest of what a callback would send, so a refresh can skip re-sending what the page shows."""
    return hashlib.blake2b(json.dumps(value, sort_keys=True, default=str).encode(), digest_size=12).hexdigest()
