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

import flask

from ..store.annotations import AnnotationStore
from ..store.reader import ResultReader

REFRESH_INTERVAL_ID = "app-refresh-interval"  # the dcc.Interval in the app shell that every page listens to
REFRESH_MS = 2000  # how often pages re-read the store
SENSOR_FILTER_ID = "app-sensor-filter"  # the dropdown in the app shell: one sensor's results, or all (None)
_READER_KEY = "traffic_analyzer.result_reader"  # where the reader lives in Flask's app.extensions
_ANNOTATIONS_KEY = "traffic_analyzer.annotations"  # and the acknowledgements / allow-list store


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


def sensor_options(_n_intervals: int | None) -> list[dict]:
    """The sensor dropdown's choices: every sensor that wrote to the store (names set by their owners)."""
    return [{"label": name or "(unnamed)", "value": name} for name in reader().sensors()]


def fingerprint(value: object) -> str:
    """A short digest of what a callback would send, so a refresh can skip re-sending what the page shows."""
    return hashlib.blake2b(json.dumps(value, sort_keys=True, default=str).encode(), digest_size=12).hexdigest()
