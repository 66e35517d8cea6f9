"""Flows page: the latest run's connections (Zeek conn.log fields), searched by IP, port, service, state and time.

The search runs in the store and the table holds the newest :data:`FLOWS_SHOWN_MAX` matches;
"Download CSV" saves exactly the rows the table holds, in its current sort order. The search
fields can be preset from the URL (/flows?ip=10.0.0.1&port=22&service=ssh&state=REJ&start=...&end=...),
which is how the alert and host pages link here.
"""

from __future__ import annotations

import dash
import pandas as pd
from dash import Input, Output, State, callback, ctx, dcc, html, no_update

from .. import formatting as fmt
from ..components import FLOW_TABLE_COLUMNS, card, data_grid, footnote
from ..data import REFRESH_INTERVAL_ID, SENSOR_FILTER_ID, fingerprint, reader
from ..status import nothing_yet, run_state
from ..tables import flow_rows, flow_search

dash.register_page(__name__, path="/flows", name="Flows", title="Flows · Network Traffic Analyzer", order=3)

FLOWS_SHOWN_MAX = 2000  # newest matching flows sent to the table (and so to the CSV)
FLOWS_PAGE_SIZE = 25
SEARCH_INPUTS = ("flows-ip", "flows-port", "flows-service", "flows-state", "flows-start", "flows-end")
TIME_PLACEHOLDER = "YYYY-MM-DD HH:MM:SS"


def _field(label: str, control: object, class_name: str = "search-field") -> html.Label:
    return html.Label([html.Span(label, className="search-label"), control], className=class_name)


def _options(values: list[str], describe: dict[str, str] | None = None) -> list[dict]:
    """Dropdown options from store values; labels are plain strings, so they show as text."""
    return [{"label": f"{v} – {describe[v]}" if describe and v in describe else v, "value": v} for v in values if v]


def layout(
    ip: str | None = None,
    port: str | None = None,
    service: str | None = None,
    state: str | None = None,
    start: str | None = None,
    end: str | None = None,
    **_query: str,
) -> html.Div:
    """The search form (preset from the URL) and the flows table, filled by the refresh callback."""
    states = [s for s in (state or "").split(",") if s]
    search = html.Div(
        [
            html.Div(
                [
                    _field(
                        "IP address",
                        dcc.Input(
                            id="flows-ip",
                            type="text",
                            value=ip or "",
                            placeholder="10.0.0.1 or 10.0.0.*",
                            debounce=True,
                            className="search-input",
                        ),
                        "search-field search-field-wide",
                    ),
                    _field(
                        "Port",
                        dcc.Input(
                            id="flows-port",
                            type="text",
                            inputMode="numeric",
                            value=port or "",
                            placeholder="either end",
                            debounce=True,
                            className="search-input",
                        ),
                    ),
                    _field(
                        "Service",
                        dcc.Dropdown(
                            id="flows-service",
                            options=_options([service] if service else []),
                            value=service,
                            placeholder="any",
                        ),
                    ),
                    _field(
                        "Connection state",
                        dcc.Dropdown(
                            id="flows-state",
                            options=_options(states, fmt.CONN_STATES),
                            value=states,
                            multi=True,
                            placeholder="any",
                        ),
                        "search-field search-field-wide",
                    ),
                    _field(
                        "From (UTC)",
                        dcc.Input(
                            id="flows-start",
                            type="text",
                            value=start or "",
                            placeholder=TIME_PLACEHOLDER,
                            debounce=True,
                            className="search-input",
                        ),
                        "search-field search-field-wide",
                    ),
                    _field(
                        "Until (UTC)",
                        dcc.Input(
                            id="flows-end",
                            type="text",
                            value=end or "",
                            placeholder=TIME_PLACEHOLDER,
                            debounce=True,
                            className="search-input",
                        ),
                        "search-field search-field-wide",
                    ),
                    html.Button("Clear", id="flows-clear", className="button search-clear"),
                ],
                className="search-form",
            ),
            html.P(id="flows-search-message", className="search-message"),
        ]
    )
    table = html.Div(
        [
            html.Div(
                [
                    html.P("Loading…", className="alerts-summary", id="flows-summary"),
                    html.Button("Download CSV", id="flows-download-button", className="button button-primary"),
                    dcc.Download(id="flows-download"),
                ],
                className="toolbar",
            ),
            data_grid(
                "flows-table",
                FLOW_TABLE_COLUMNS,
                page_size=FLOWS_PAGE_SIZE,
                native_filter=False,  # the search above runs in the store, so the CSV matches the table
            ),
        ]
    )
    return html.Div(
        [
            dcc.Store(id="flows-signature"),
            dcc.Store(id="flows-options-signature"),
            card("Search", search, "flows-search-card"),
            card("Flows", table, "flows-table-card"),
            footnote(),
        ],
        className="flows-page",
    )


@callback(
    Output("flows-summary", "children"),
    Output("flows-search-message", "children"),
    Output("flows-table", "rowData"),
    Output("flows-signature", "data"),
    Input(REFRESH_INTERVAL_ID, "n_intervals"),
    *(Input(i, "value") for i in SEARCH_INPUTS),
    Input(SENSOR_FILTER_ID, "value"),
    State("flows-signature", "data"),
)
def refresh(_n: int | None, ip, port, service, states, start, end, sensor: str | None, signature: str | None) -> tuple:
    """Run the search in the store; the table is sent again only when its rows changed."""
    store = reader()
    run = run_state(store, sensor)
    search, problems = flow_search(ip, port, service, states, start, end)
    message = "Ignored: " + "; ".join(problems) + "." if problems else ""
    rows: list[dict] = []
    if run.run_id is None:
        summary = nothing_yet("flows", run)
    else:
        total = store.count_flows(run.run_ids)
        matching = store.count_flows(run.run_ids, **search.conditions())
        rows = flow_rows(store.search_flows(run.run_ids, limit=FLOWS_SHOWN_MAX, **search.conditions()))
        criteria = search.describe()
        if total == 0:
            summary = nothing_yet("flows", run)
        elif criteria:
            summary = f"{matching:,} of {total:,} flows match ({criteria})"
        else:
            summary = f"{total:,} flows"
        if matching > len(rows):
            summary += f"; the newest {len(rows):,} are shown: narrow the search to see older ones"
        if total:
            summary += "."
    new_signature = fingerprint([summary, message, rows])
    if new_signature == signature:
        return no_update, no_update, no_update, no_update
    return summary, message, rows, new_signature


@callback(
    Output("flows-service", "options"),
    Output("flows-state", "options"),
    Output("flows-start", "placeholder"),
    Output("flows-end", "placeholder"),
    Output("flows-options-signature", "data"),
    Input(REFRESH_INTERVAL_ID, "n_intervals"),
    Input(SENSOR_FILTER_ID, "value"),
    State("flows-service", "value"),
    State("flows-state", "value"),
    State("flows-options-signature", "data"),
)
def refresh_options(
    _n: int | None, sensor: str | None, service: str | None, states: list[str] | None, signature: str | None
) -> tuple:
    """Services and states present in the runs shown, and their time span as the time fields' hint."""
    store = reader()
    state = run_state(store, sensor)
    run_id = state.run_ids if state.run_id else None
    services = store.flow_values(run_id, "service") if run_id else []
    conn_states = store.flow_values(run_id, "conn_state") if run_id else []
    first, last = store.flow_span(run_id) if run_id else (None, None)
    # a value preset from the URL stays choosable even if the run has no such flows
    services = sorted(set(services) | ({service} if service else set()))
    conn_states = sorted(set(conn_states) | set(states or []))
    hints = (
        (fmt.timestamp(first), fmt.timestamp(last + 1)) if first is not None else (TIME_PLACEHOLDER, TIME_PLACEHOLDER)
    )
    new_signature = fingerprint([services, conn_states, hints])
    if new_signature == signature:
        return (no_update,) * 5
    return _options(services), _options(conn_states, fmt.CONN_STATES), *hints, new_signature


@callback(
    *(Output(i, "value") for i in SEARCH_INPUTS),
    Input("flows-clear", "n_clicks"),
    prevent_initial_call=True,
)
def clear(n_clicks: int | None) -> tuple:
    """Empty every search field."""
    if not n_clicks:
        return (no_update,) * len(SEARCH_INPUTS)
    return "", "", None, [], "", ""


@callback(
    Output("flows-download", "data"),
    Input("flows-download-button", "n_clicks"),
    State("flows-table", "virtualRowData"),
    State("flows-table", "rowData"),
    prevent_initial_call=True,
)
def download(n_clicks: int | None, shown: list[dict] | None, data: list[dict] | None) -> dict:
    """The table's rows as CSV, in the order the table shows them, with its column titles."""
    if not n_clicks or ctx.triggered_id != "flows-download-button":
        return no_update
    rows = shown if shown is not None else (data or [])
    titles = {c["field"]: c["headerName"] for c in FLOW_TABLE_COLUMNS}
    frame = pd.DataFrame(rows, columns=list(titles)).rename(columns=titles)
    run_id = run_state(reader()).run_id or "none"
    return dcc.send_data_frame(frame.to_csv, f"flows-{run_id}.csv", index=False)
