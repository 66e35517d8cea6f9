"""How pages reach the store and the refresh tick without importing the app.

:func:`~traffic_analyzer.dashboard.app.create_app` attaches one
:class:`~traffic_analyzer.store.database.ResultReader` to the app's Flask server; page
callbacks run inside that server's request context and fetch it with :func:`reader`.
Keeping it on the server rather than in a module global lets two dashboards on two stores
live in one process (the browser tests start several).
"""

from __future__ import annotations

import flask

from ..store.database import ResultReader

REFRESH_INTERVAL_ID = "app-refresh-interval"  # the dcc.Interval in the app shell that every page listens to
REFRESH_MS = 2000  # how often pages re-read the store
_EXTENSION_KEY = "traffic_analyzer.result_reader"  # where the reader lives in Flask's app.extensions


def attach_reader(server: flask.Flask, reader: ResultReader) -> None:
    """Give the pages of the app served by ``server`` their store."""
    server.extensions[_EXTENSION_KEY] = reader


def detach_reader(server: flask.Flask) -> None:
    """Close the store connection of a dashboard that stopped serving."""
    attached = server.extensions.pop(_EXTENSION_KEY, None)
    if attached is not None:
        attached.close()


def reader() -> ResultReader:
    """The store of the dashboard handling the current request."""
    return flask.current_app.extensions[_EXTENSION_KEY]
