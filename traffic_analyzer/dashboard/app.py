"""The Dash application: a shell (title, page links, refresh tick) around the pages in ``pages/``.

Each page module registers itself with ``dash.register_page`` and owns its layout and
callbacks; this module only wires the shell and the stores, so adding a page means adding a
file to ``pages/``.
"""

from __future__ import annotations

from pathlib import Path

import dash
from dash import Input, Output, dcc, html

from ..store.annotations import AnnotationStore
from ..store.reader import ResultReader
from . import data
from .evidence_route import add_evidence_route, evidence_dir_of

APP_TITLE = "Network Traffic Analyzer"
NAV_LINK_CLASS = "app-nav-link"
ACTIVE_NAV_LINK_CLASS = "app-nav-link app-nav-link-active"


def _nav_links(pathname: str | None) -> list[dcc.Link]:
    """One link per registered page, the current one marked."""
    return [
        dcc.Link(
            page["name"],
            href=page["relative_path"],
            className=ACTIVE_NAV_LINK_CLASS if page["relative_path"] == (pathname or "/") else NAV_LINK_CLASS,
            id=f"app-nav-{page['module'].rsplit('.', 1)[-1]}",
        )
        for page in dash.page_registry.values()
    ]


def _shell() -> html.Div:
    """Header with the page links, the page container and the shared refresh tick."""
    return html.Div(
        [
            dcc.Location(id="app-location"),
            html.Header(
                [
                    html.Div(APP_TITLE, className="app-title"),
                    html.Nav(_nav_links(None), className="app-nav", id="app-nav"),
                    dcc.Dropdown(
                        id=data.SENSOR_FILTER_ID,
                        placeholder="All sensors",
                        searchable=False,
                        className="app-sensor-filter",
                        persistence=True,  # the choice stays while moving between pages
                        persistence_type="session",
                    ),
                ],
                className="app-header",
            ),
            html.Main(dash.page_container, className="app-main"),
            dcc.Interval(id=data.REFRESH_INTERVAL_ID, interval=data.REFRESH_MS),
        ],
        className="app-shell",
    )


def create_app(store_url: str, evidence_dir: Path | None = None) -> dash.Dash:
    """Build the dashboard for the results in ``store_url``.

    It reads the analysis results and writes only the analysts' notes (acknowledgements and
    the allow-list, see :mod:`traffic_analyzer.store.annotations`).

    Parameters
    ----------
    store_url : str
        SQLAlchemy URL of the result store, e.g. ``store_url(data_dir)``.
    evidence_dir : Path, optional
        Folder of the alert evidence pcaps; None means DATA_DIR/evidence beside a SQLite store.

    Returns
    -------
    dash.Dash
        The app; serve ``app.server`` (a WSGI app) with any WSGI server.
    """
    app = dash.Dash(
        __package__,  # the package, so Dash names page modules traffic_analyzer.dashboard.pages.*
        use_pages=True,
        pages_folder="pages",
        title=APP_TITLE,
        update_title=None,  # keep the tab title steady across the 2 s refreshes
        serve_locally=True,  # the machine may have no internet: no CDN scripts
    )
    data.attach_stores(app.server, ResultReader(store_url), AnnotationStore(store_url))
    add_evidence_route(app.server, evidence_dir or evidence_dir_of(store_url))
    app.layout = _shell()  # after Dash() so the page registry is filled
    app.callback(Output("app-nav", "children"), Input("app-location", "pathname"))(_nav_links)
    app.callback(Output(data.SENSOR_FILTER_ID, "options"), Input(data.REFRESH_INTERVAL_ID, "n_intervals"))(
        data.sensor_options
    )
    # Dash hands the @callback registrations of the page modules it just executed to the first
    # app that serves a request. Run that request set-up now, so this app owns them even if it
    # never serves, and a later app in the same process does not inherit them twice.
    with app.server.test_request_context():
        app.server.preprocess_request()
    return app
