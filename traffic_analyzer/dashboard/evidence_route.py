"""Serves alert evidence pcaps at /evidence/<alert_id>.pcap, from the evidence folder only.

The file is looked up by alert id, and only an id of the store's form (16 hex digits) is
ever joined to the folder, so no request reaches any other file. The dashboard's login and
host checks (:mod:`~traffic_analyzer.dashboard.auth`) guard this route like every other.
"""

from __future__ import annotations

from pathlib import Path

import flask
import sqlalchemy as sa

from ..records.alert import evidence_path

_FOLDER_KEY = "traffic_analyzer.evidence_dir"  # where the folder lives in Flask's app.extensions
PCAP_MIMETYPE = "application/vnd.tcpdump.pcap"


def evidence_dir_of(store_url: str) -> Path | None:
    """DATA_DIR/evidence beside a SQLite store; None for other stores (the runner names the folder then)."""
    try:
        url = sa.engine.make_url(store_url)
    except sa.exc.ArgumentError:
        return None
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).parent / "evidence"


def add_evidence_route(server: flask.Flask, folder: Path | None) -> None:
    """Serve the pcaps of ``folder`` (None: answer 404 to every evidence request).

    The folder is made absolute here, against the working directory: ``flask.send_file`` would
    take a relative path (the default data_dir is ``data``) as relative to the package.
    """
    server.extensions[_FOLDER_KEY] = Path(folder).resolve() if folder is not None else None
    server.add_url_rule("/evidence/<alert_id>.pcap", "evidence_pcap", _serve)


def _serve(alert_id: str) -> flask.Response:
    folder = flask.current_app.extensions.get(_FOLDER_KEY)
    path = evidence_path(folder, alert_id) if folder is not None else None
    if path is None:
        flask.abort(404 if folder is None else 400)
    if not path.is_file():
        flask.abort(404)
    return flask.send_file(path, mimetype=PCAP_MIMETYPE, as_attachment=True, download_name=path.name, max_age=0)


def evidence_href(alert_id: str) -> str | None:
    """The download link of an alert's pcap while it exists (call inside a dashboard request)."""
    folder = flask.current_app.extensions.get(_FOLDER_KEY)
    path = evidence_path(folder, alert_id) if folder is not None else None
    return f"/evidence/{alert_id}.pcap" if path is not None and path.is_file() else None
