"""Overview page: the latest run at a glance, re-read from the store on every refresh tick.

Everything that came from packets (addresses, protocol names, alert text) is rendered as
plain text: Dash children strings and DataTable's default "input" presentation are escaped
by React, and the figure builders escape the labels Plotly would read as markup.
"""

from __future__ import annotations

from typing import NamedTuple

import dash
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, callback, dash_table, dcc, html
from dash.dash_table.Format import Format, Scheme

from .. import formatting as fmt
from ..data import REFRESH_INTERVAL_ID, REFRESH_MS, reader
from ..figures import FIGURE_FONT, protocol_figure, top_talkers_figure, traffic_figure

dash.register_page(__name__, path="/", name="Overview", title="Overview · Network Traffic Analyzer", order=0)

SEVERITY_COLOURS: dict[str, tuple[str, str]] = {
    "critical": ("#b91c1c", "#ffffff"),
    "high": ("#ea580c", "#ffffff"),
    "medium": ("#facc15", "#1f2937"),
    "low": ("#dbeafe", "#1e3a8a"),
}  # severity -> (background, text) of its table cell
ALERT_COLUMNS: list[dict] = [
    {"id": "severity", "name": "severity"},
    {"id": "score", "name": "score", "type": "numeric", "format": Format(precision=1, scheme=Scheme.fixed)},
    {"id": "kind", "name": "kind"},
    {"id": "attacker", "name": "attacker"},
    {"id": "victims", "name": "victims"},
    {"id": "start", "name": "start (UTC)"},
    {"id": "end", "name": "end (UTC)"},
    {"id": "explanation", "name": "explanation"},
]
ALERTS_PAGE_SIZE = 15
NO_RUN_TEXT = "No analysis run in this store yet: start the analyzer and this page fills in by itself."


class _Snapshot(NamedTuple):
    """One read of the latest run per refresh (a NamedTuple: Dash executes page modules before
    registering them in sys.modules, which dataclasses need)."""

    run: dict | None
    health: dict | None
    traffic: pd.DataFrame
    protocols: pd.DataFrame
    talkers: pd.DataFrame
    alerts: pd.DataFrame


def _read_snapshot() -> _Snapshot:
    store = reader()
    run = store.latest_run()
    if run is None:
        empty = pd.DataFrame()
        return _Snapshot(None, None, empty, empty, empty, empty)
    run_id = run["run_id"]
    return _Snapshot(
        run=run,
        health=store.health(run_id),
        traffic=store.traffic(run_id),
        protocols=store.protocols(run_id),
        talkers=store.top_talkers(run_id),
        alerts=store.alerts(run_id),
    )


def _activity(snap: _Snapshot) -> str:
    """What the analyzer is doing, for empty states: the health status text when there is one."""
    if snap.run is None:
        return NO_RUN_TEXT
    if snap.health is not None and snap.health.get("status"):
        return f"Analyzer status: {snap.health['status']}."
    if snap.run["status"] == "running":
        return "Waiting for the first analysis window."
    return f"The run is {snap.run['status']} and recorded nothing here."


def _run_header(snap: _Snapshot) -> list:
    if snap.run is None:
        return [html.Span(NO_RUN_TEXT, className="overview-run-source")]
    run = snap.run
    times = f"started {fmt.timestamp(run['started_at'])} UTC"
    if not fmt.is_missing(run.get("finished_at")):
        times += f", ended {fmt.timestamp(run['finished_at'])} UTC"
    return [
        html.Span(str(run["source"]), className="overview-run-source", id="overview-run-source"),
        html.Span(str(run["status"]), className=f"status-badge status-{run['status']}", id="overview-run-status"),
        html.Span(times, className="overview-run-times"),
    ]


def _stat(key: str, label: str, value: str, hint: str = "", wide: bool = False) -> html.Div:
    return html.Div(
        [html.Div(label, className="stat-label"), html.Div(value, className="stat-value", id=f"overview-health-{key}")],
        className="stat stat-wide" if wide else "stat",
        title=hint,
    )


def _health_panel(snap: _Snapshot) -> list:
    model = fmt.model_status(snap.run["model"]) if snap.run else fmt.UNKNOWN
    h = snap.health
    if h is None:
        return [
            html.P(_activity(snap), className="empty-state", id="overview-health-status"),
            html.Div(_stat("model", "Anomaly model", model, wide=True), className="stat-grid"),
        ]
    dropped_hint = "" if not fmt.is_missing(h["dropped"]) else "the capture cannot tell how many packets it dropped"
    stats = [
        _stat("packets", "Packets captured", fmt.count(h["packets"])),
        _stat("bytes", "Bytes captured", fmt.size(h["bytes"]), f"{fmt.count(h['bytes'])} bytes"),
        _stat("dropped", "Dropped", fmt.count(h["dropped"]), dropped_hint),
        _stat("sampled-out", "Sampled out", fmt.count(h["sampled_out"]), "packets skipped by sampling under load"),
        _stat("lag", "Analysis lag", fmt.duration(h["lag_s"]), "wall clock minus the newest packet's time"),
        _stat("open-flows", "Open flows", fmt.count(h["open_flows"])),
        _stat("cpu", "Analyzer CPU", f"{h['cpu_percent']:.0f} %"),
        _stat("memory", "Analyzer memory", f"{h['rss_mb']:.0f} MB", "resident set size"),
        _stat("model", "Anomaly model", model, wide=True),
    ]
    status = html.P(
        [html.Span("Status: ", className="status-label"), str(h["status"])],
        className="health-status",
        id="overview-health-status",
    )
    updated = html.Span(f"updated {fmt.timestamp(h['at'])} UTC", className="health-updated")
    return [html.Div([status, updated], className="health-header"), html.Div(stats, className="stat-grid")]


def _alert_rows(alerts: pd.DataFrame) -> list[dict]:
    return [
        {
            "id": str(row.alert_id),
            "severity": str(row.severity),
            "score": float(row.score),
            "kind": str(row.kind),
            "attacker": str(row.attacker),
            "victims": ", ".join(str(row.victims).split(",")),
            "start": fmt.timestamp(row.start),
            "end": fmt.timestamp(row.end),
            "explanation": str(row.explanation),
        }
        for row in alerts.itertuples(index=False)
    ]


def _alerts_summary(snap: _Snapshot) -> str:
    if snap.run is None:
        return "No alerts yet: " + NO_RUN_TEXT
    n = len(snap.alerts)
    if n:
        by_severity = snap.alerts["severity"].value_counts().to_dict()
        counts = ", ".join(f"{by_severity[s]} {s}" for s in SEVERITY_COLOURS if s in by_severity)
        return f"{n} alert{'s' if n != 1 else ''} ({counts}), highest score first."
    if snap.run["status"] == "running":
        return "No alerts yet: nothing suspicious so far. " + _activity(snap)
    return f"No alerts yet: the run is {snap.run['status']} and no detector fired."


def _severity_styles() -> list[dict]:
    """Zebra rows first, so the severity colours listed after them win on the severity cell."""
    return [{"if": {"row_index": "odd"}, "backgroundColor": "#f9fafb"}] + [
        {
            "if": {"filter_query": f'{{severity}} = "{severity}"', "column_id": "severity"},
            "backgroundColor": background,
            "color": text,
            "fontWeight": 600,
        }
        for severity, (background, text) in SEVERITY_COLOURS.items()
    ]


def _alerts_table() -> dash_table.DataTable:
    return dash_table.DataTable(
        id="overview-alerts-table",
        columns=ALERT_COLUMNS,
        data=[],
        sort_action="native",
        filter_action="native",
        page_action="native",
        page_size=ALERTS_PAGE_SIZE,
        filter_options={"placeholder_text": "filter", "case": "insensitive"},
        css=[{"selector": "table", "rule": "--accent: #2563eb;"}],  # DataTable's default accent is hot pink
        style_table={"overflowX": "auto"},
        style_cell={
            "textAlign": "left",
            "padding": "6px 10px",
            "fontFamily": FIGURE_FONT,
            "fontSize": "13px",
            "border": "1px solid #e5e7eb",
            "whiteSpace": "normal",
            "height": "auto",
        },
        style_header={"backgroundColor": "#f3f4f6", "fontWeight": 600, "color": "#374151"},
        style_cell_conditional=[
            {"if": {"column_id": "severity"}, "width": "80px", "textAlign": "center"},
            {"if": {"column_id": "score"}, "width": "60px", "textAlign": "right"},
            {"if": {"column_id": "start"}, "whiteSpace": "nowrap"},
            {"if": {"column_id": "end"}, "whiteSpace": "nowrap"},
            {"if": {"column_id": "explanation"}, "minWidth": "320px"},
        ],
        style_data_conditional=_severity_styles(),
    )


def _card(title: str, body: object, card_id: str) -> html.Section:
    return html.Section([html.H2(title, className="card-title"), body], className="card", id=card_id)


def _graph(graph_id: str) -> dcc.Graph:
    return dcc.Graph(id=graph_id, config={"displaylogo": False})


def layout(**_query: str) -> html.Div:
    """Placeholders only: the refresh callback fills them in on the first tick."""
    return html.Div(
        [
            html.Div("Loading the latest run…", className="overview-run", id="overview-run"),
            _card("Capture health", html.Div("Loading…", id="overview-health"), "overview-health-card"),
            _card("Traffic over time", _graph("overview-traffic-graph"), "overview-traffic-card"),
            html.Div(
                [
                    _card("Protocol mix", _graph("overview-protocol-graph"), "overview-protocol-card"),
                    _card("Top talkers", _graph("overview-talkers-graph"), "overview-talkers-card"),
                ],
                className="card-row",
            ),
            _card(
                "Alerts",
                html.Div(
                    [html.P("Loading…", className="alerts-summary", id="overview-alerts-summary"), _alerts_table()]
                ),
                "overview-alerts-card",
            ),
            html.P(f"Refreshes every {REFRESH_MS / 1000:g} s from the result store.", className="page-footnote"),
        ],
        className="overview-page",
    )


@callback(
    Output("overview-run", "children"),
    Output("overview-health", "children"),
    Output("overview-traffic-graph", "figure"),
    Output("overview-protocol-graph", "figure"),
    Output("overview-talkers-graph", "figure"),
    Output("overview-alerts-summary", "children"),
    Output("overview-alerts-table", "data"),
    Input(REFRESH_INTERVAL_ID, "n_intervals"),
)
def refresh(_n_intervals: int | None) -> tuple[list, list, go.Figure, go.Figure, go.Figure, str, list[dict]]:
    """Re-read the latest run and redraw every panel from that one snapshot."""
    snap = _read_snapshot()
    waiting = _activity(snap)
    return (
        _run_header(snap),
        _health_panel(snap),
        traffic_figure(snap.traffic, empty_message=f"No packets analysed yet. {waiting}"),
        protocol_figure(snap.protocols, empty_message=f"No protocols seen yet. {waiting}"),
        top_talkers_figure(snap.talkers, empty_message=f"No hosts seen yet. {waiting}"),
        _alerts_summary(snap),
        _alert_rows(snap.alerts),
    )
