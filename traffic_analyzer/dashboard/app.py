"""The Dash application: a shell (title, page links, refresh tick) around the pages in ``pages/``.

Each page module registers itself with ``dash.register_page`` and owns its layout and
callbacks; this module only wires the shell and the store, so adding a page means adding a
file to ``pages/``.
"""

from __future__ import annotations

import dash
from dash import dcc, html

from ..store.database import ResultReader
from . import data

APP_TITLE = "Network Traffic Analyzer"


def _shell() -> html.Div:
    """Header with one link per registered page, the page container and the shared refresh tick."""
    links = [
        dcc.Link(page["name"], href=page["relative_path"], className="app-nav-link")
        for page in dash.page_registry.values()
    ]
    return html.Div(
        [
            html.Header(
                [html.Div(APP_TITLE, className="app-title"), html.Nav(links, className="app-nav")],
                className="app-header",
            ),
            html.Main(dash.page_container, className="app-main"),
            dcc.Interval(id=data.REFRESH_INTERVAL_ID, interval=data.REFRESH_MS),
        ],
        className="app-shell",
    )


def create_app(store_url: str) -> dash.Dash:
    """Build the dashboard for the results in ``store_url``; it only ever reads the store.

    Parameters
    ----------
    store_url : str
        SQLAlchemy URL of the result store, e.g. ``store_url(data_dir)``.

    Returns
    -------
    dash.Dash
        The app; serve ``app.server`` (a WSGI app) with any WSGI server.
    """
    reader = ResultReader(store_url)
    app = dash.Dash(
        __package__,  # the package, so Dash names page modules traffic_analyzer.dashboard.pages.*
        use_pages=True,
        pages_folder="pages",
        title=APP_TITLE,
        update_title=None,  # keep the tab title steady across the 2 s refreshes
        serve_locally=True,  # the machine may have no internet: no CDN scripts
    )
    data.attach_reader(app.server, reader)
    app.layout = _shell()  # after Dash() so the page registry is filled
    # Dash hands the @callback registrations of the page modules it just executed to the first
    # app that serves a request. Run that request set-up now, so this app owns them even if it
    # never serves, and a later app in the same process does not inherit them twice.
    with app.server.test_request_context():
        app.server.preprocess_request()
    return app
