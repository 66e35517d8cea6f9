"""Overview page: the latest run at a glance, re-read from the store on every refresh tick.

Everything that came from packets (addresses, protocol names, alert text) is rendered as
plain text: Dash children strings and AG Grid's default cell renderer (textContent) never
read it as HTML, and the figure builders escape the labels Plotly would read as markup.
"""

from __future__ import annotations

from typing import NamedTuple

import dash
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, callback, dcc, html, no_update

from .. import formatting as fmt
from ..components import (
    SEVERITY_COLOURS,
    alert_grid_columns,
    card,
    data_grid,
    footnote,
    graph,
    stat,
)
from ..data import REFRESH_INTERVAL_ID, SENSOR_FILTER_ID, reader, shared
from ..figures import protocol_figure, top_talkers_figure, traffic_figure
from ..status import NO_RUN_TEXT, RunState, activity
from ..tables import alert_link, alert_rows

dash.register_page(__name__, path="/", name="Overview", title="Overview · Network Traffic Analyzer", order=0)

ALERT_COLUMNS: list[dict] = alert_grid_columns()
ALERTS_PAGE_SIZE = 15
# How much of the run the traffic graph shows, ending at its newest second: a day is 86,400 points a refresh.
TRAFFIC_SPANS = {"1h": ("Last hour", 3600.0), "6h": ("Last 6 hours", 6 * 3600.0), "all": ("Whole run", None)}
TRAFFIC_SPAN_DEFAULT = "1h"


class _Snapshot(NamedTuple):
    """One read of the latest run per refresh (a NamedTuple: Dash executes page modules before
    registering them in sys.modules, which dataclasses need)."""

    run: dict | None
    health: dict | None
    traffic: pd.DataFrame
    protocols: pd.DataFrame
    talkers: pd.DataFrame
    alerts: pd.DataFrame
    runs: tuple = ()  # the latest run of each sensor shown, newest first (``run`` is the first)


def _read_snapshot(sensor: str | None = None, span: str = TRAFFIC_SPAN_DEFAULT) -> _Snapshot:
    store = reader()
    runs = tuple(store.latest_runs(sensor or None))
    if not runs:
        empty = pd.DataFrame()
        return _Snapshot(None, None, empty, empty, empty, empty)
    run = runs[0]
    run_id = [r["run_id"] for r in runs]
    return _Snapshot(
        runs=runs,
        run=run,
        health=store.health(run["run_id"]),
        traffic=store.traffic(run_id, last_s=TRAFFIC_SPANS.get(span, TRAFFIC_SPANS[TRAFFIC_SPAN_DEFAULT])[1]),
        protocols=store.protocols(run_id),
        talkers=store.top_talkers(run_id),
        alerts=store.alerts(run_id),
    )


def _activity(snap: _Snapshot) -> str:
    return activity(RunState(snap.run, snap.health))


def _run_header(snap: _Snapshot) -> list:
    if snap.run is None:
        return [html.Span(NO_RUN_TEXT, className="overview-run-source")]
    run = snap.run
    times = f"started {fmt.timestamp(run['started_at'])} UTC"
    if not fmt.is_missing(run.get("finished_at")):
        times += f", ended {fmt.timestamp(run['finished_at'])} UTC"
    sensors = "Sensor" + ("s: " if len(snap.runs) > 1 else ": ")
    sensors += ", ".join(f"{r['sensor'] or '(unnamed)'} ({r['status']})" for r in snap.runs)
    return [
        html.Span(sensors, className="overview-run-sensors", id="overview-run-sensors"),
        html.Span(str(run["source"]), className="overview-run-source", id="overview-run-source"),
        html.Span(str(run["status"]), className=f"status-badge status-{run['status']}", id="overview-run-status"),
        html.Span(times, className="overview-run-times"),
    ]


def _stat(key: str, label: str, value: str, hint: str = "", wide: bool = False) -> html.Div:
    return stat(f"overview-health-{key}", label, value, hint, wide)


def _health_panel(snap: _Snapshot) -> list:
    model = fmt.model_status(snap.run["model"]) if snap.run else fmt.UNKNOWN
    h = snap.health
    if h is None:
        return [
            html.P(_activity(snap), className="empty-state", id="overview-health-status"),
            html.Div(_stat("model", "Anomaly model", model, wide=True), className="stat-grid"),
        ]
    dropped_hint = "" if not fmt.is_missing(h["dropped"]) else "the capture cannot tell how many packets it dropped"
    dropped, lag = fmt.count(h["dropped"]), fmt.duration(h["lag_s"])
    if fmt.is_file_run(snap.run):  # a file drops nothing and has no wall clock to lag behind
        dropped, lag, dropped_hint = fmt.NOT_FOR_A_FILE, fmt.NOT_FOR_A_FILE, "every packet of the file is read"
    stats = [
        _stat("packets", "Packets captured", fmt.count(h["packets"])),
        _stat("bytes", "Bytes captured", fmt.size(h["bytes"]), f"{fmt.count(h['bytes'])} bytes"),
        _stat("dropped", "Dropped", dropped, dropped_hint),
        _stat("sampled-out", "Sampled out", _sampled(h), "packets of flows left out of the analysis under load"),
        _stat("lag", "Analysis lag", lag, "wall clock minus the newest packet's time"),
        _stat("open-flows", "Open flows", fmt.count(h["open_flows"])),
        _stat("cpu", "Analyzer CPU", f"{h['cpu_percent']:.0f} %"),
        _stat("memory", "Analyzer memory", f"{h['rss_mb']:.0f} MB", "resident set size"),
        _stat("model", "Anomaly model", model, wide=True),
    ]
    stats += [
        _stat(f"channel-{name}", f"Alerts to {name}", state, details, wide=True)
        for name, state, details in fmt.channel_states(h.get("channels"))
    ]
    status = html.P(
        [html.Span("Status: ", className="status-label"), str(h["status"])],
        className="health-status",
        id="overview-health-status",
    )
    updated = html.Span(f"updated {fmt.timestamp(h['at'])} UTC", className="health-updated")
    return [html.Div([status, updated], className="health-header"), html.Div(stats, className="stat-grid")]


def _sampled(h: dict) -> str:
    """Sampled-out packets and their share of all captured (the status line gives the current rate)."""
    if fmt.is_missing(h["sampled_out"]) or not h["sampled_out"] or not h["packets"]:
        return fmt.count(h["sampled_out"])
    return f"{fmt.count(h['sampled_out'])} ({h['sampled_out'] / h['packets']:.0%})"


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


def _alerts_table() -> object:
    return data_grid("overview-alerts-table", ALERT_COLUMNS, page_size=ALERTS_PAGE_SIZE, row_id="id")


def layout(**_query: str) -> html.Div:
    """Placeholders only: the refresh callback fills them in on the first tick."""
    return html.Div(
        [
            dcc.Location(id="overview-location", refresh="callback-nav"),
            html.Div("Loading the latest run…", className="overview-run", id="overview-run"),
            card("Capture health", html.Div("Loading…", id="overview-health"), "overview-health-card"),
            card(
                "Traffic over time",
                html.Div(
                    [
                        dcc.RadioItems(
                            id="overview-traffic-span",
                            options=[{"label": label, "value": key} for key, (label, _) in TRAFFIC_SPANS.items()],
                            value=TRAFFIC_SPAN_DEFAULT,
                            inline=True,
                            className="traffic-span",
                        ),
                        graph("overview-traffic-graph"),
                    ]
                ),
                "overview-traffic-card",
            ),
            html.Div(
                [
                    card("Protocol mix", graph("overview-protocol-graph"), "overview-protocol-card"),
                    card("Top talkers", graph("overview-talkers-graph"), "overview-talkers-card"),
                ],
                className="card-row",
            ),
            card(
                "Alerts",
                html.Div(
                    [
                        html.P("Loading…", className="alerts-summary", id="overview-alerts-summary"),
                        _alerts_table(),
                        html.P("Click an alert for its evidence, flows and timeline.", className="table-note"),
                    ]
                ),
                "overview-alerts-card",
            ),
            footnote(),
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
    Output("overview-alerts-table", "rowData"),
    Input(REFRESH_INTERVAL_ID, "n_intervals"),
    Input(SENSOR_FILTER_ID, "value"),
    Input("overview-traffic-span", "value"),
)
def refresh(
    _n_intervals: int | None, sensor: str | None = None, span: str = TRAFFIC_SPAN_DEFAULT
) -> tuple[list, list, go.Figure, go.Figure, go.Figure, str, list[dict]]:
    """Re-read the latest run of each sensor shown and redraw every panel from that one snapshot (shared by the
    viewers asking within a second: :data:`~..data.shared`)."""
    return shared(_panels, sensor, span)


def _panels(sensor: str | None, span: str) -> tuple[list, list, go.Figure, go.Figure, go.Figure, str, list[dict]]:
    snap = _read_snapshot(sensor, span)
    waiting = _activity(snap)
    return (
        _run_header(snap),
        _health_panel(snap),
        traffic_figure(snap.traffic, empty_message=f"No packets analysed yet. {waiting}"),
        protocol_figure(snap.protocols, empty_message=f"No protocols seen yet. {waiting}"),
        top_talkers_figure(snap.talkers, empty_message=f"No hosts seen yet. {waiting}"),
        _alerts_summary(snap),
        alert_rows(snap.alerts, {}, ()),
    )


@callback(Output("overview-location", "href"), Input("overview-alerts-table", "cellClicked"), prevent_initial_call=True)
def open_alert(clicked: dict | None) -> str:
    """A click on an alert opens its details on the Alerts page."""
    if not clicked or not clicked.get("rowId"):
        return no_update
    return alert_link(str(clicked["rowId"]))
