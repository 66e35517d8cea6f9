"""Hosts page: every host of the latest run with its threat score and traffic; /hosts?host=IP drills into one.

The drill-down shows the host's traffic per analysis window (hosts table), its peers, ports
and services (flows table) and the alerts naming it. A click on a host, a peer or an alert
navigates there. Addresses come from packets and are shown as text.
"""

from __future__ import annotations

import dash
from dash import Input, Output, State, callback, ctx, dcc, html, no_update

from .. import formatting as fmt
from ..components import (
    PLAIN_NUMBER,
    SCORE,
    alert_grid_columns,
    card,
    data_grid,
    footnote,
    graph,
    number_column,
    severity_cell_style,
    show,
    stat,
    text_column,
    time_column,
)
from ..data import REFRESH_INTERVAL_ID, SENSOR_FILTER_ID, annotations, fingerprint, reader
from ..figures import host_traffic_figure
from ..status import RunState, activity, nothing_yet, run_state
from ..tables import alert_link, alert_rows, dns_rows, flows_link, host_link, host_rows, peer_rows, port_rows

dash.register_page(__name__, path="/hosts", name="Hosts", title="Hosts · Network Traffic Analyzer", order=2)

# Two byte counts, each labelled: a host's totals count whole frames as captured (link headers included),
# its peers and ports come from flows, which count IP bytes as Zeek's orig_ip_bytes do (issue 15 item 9).
FRAME_BYTES_HINT = "whole frames as captured, link-layer headers included; the peer and port tables count IP bytes"
HOST_COLUMNS: list[dict] = [
    text_column("host", "host"),
    number_column("threat", "threat score", SCORE, width=110),
    text_column("severity", "severity", width=100, cellStyle=severity_cell_style(textAlign="center")),
    number_column("alerts", "alerts as attacker"),
    number_column("targeted", "alerts as victim"),
    number_column("packets_out", "packets sent"),
    number_column("bytes_out", "frame bytes sent"),
    number_column("packets_in", "packets received"),
    number_column("bytes_in", "frame bytes received"),
    time_column("first_seen", "first window (UTC)"),
    time_column("last_seen", "last window (UTC)"),
]
PEER_COLUMNS: list[dict] = [
    text_column("peer", "peer"),
    number_column("flows", "flows"),
    number_column("bytes_sent", "IP bytes sent to it"),
    number_column("bytes_received", "IP bytes received from it"),
    time_column("first", "first (UTC)"),
    time_column("last", "last (UTC)"),
]
PORT_COLUMNS: list[dict] = [
    text_column("role", "as"),
    text_column("proto", "proto"),
    number_column("port", "port", PLAIN_NUMBER),
    text_column("service", "service"),
    number_column("flows", "flows"),
    number_column("peers", "peers"),
    number_column("bytes", "IP bytes"),
]
DNS_COLUMNS: list[dict] = [
    text_column("qname", "name asked for"),
    number_column("queries", "queries"),
    time_column("first", "first window (UTC)"),
    time_column("last", "last window (UTC)"),
]
HOST_ALERT_COLUMNS: list[dict] = [
    text_column("role", "its role", width=110),
    text_column("status", "status", width=120),
    *alert_grid_columns(with_end=False),
]
HOSTS_PAGE_SIZE = 20
DETAIL_ROWS = 50  # peers and ports listed per host, busiest first
DETAIL_PAGE_SIZE = 10
HINT = "Click a host to see its traffic over time, peers, ports and alerts."


def _detail() -> html.Section:
    """The drill-down; always in the layout (hidden without a host) so its callbacks stay valid."""
    return html.Section(
        [
            html.Div(
                [
                    html.H2(["Host ", html.Span(id="hosts-detail-name")], className="card-title"),
                    html.Div(
                        [
                            dcc.Link("Its flows", id="hosts-flows-link", href="/flows"),
                            dcc.Link("All hosts", href="/hosts", id="hosts-all-link"),
                        ],
                        className="detail-links",
                    ),
                ],
                className="detail-title-row",
            ),
            html.P(id="hosts-detail-empty", className="empty-state"),
            html.Div(
                [
                    html.Div(
                        [
                            stat("hosts-detail-threat", "Threat score", hint="highest score of its alerts as attacker"),
                            stat("hosts-detail-alerts", "Alerts"),
                            stat("hosts-detail-sent", "Sent (frame bytes)", hint=FRAME_BYTES_HINT),
                            stat("hosts-detail-received", "Received (frame bytes)", hint=FRAME_BYTES_HINT),
                            stat("hosts-detail-seen", "Analysis windows", wide=True),
                        ],
                        className="stat-grid",
                    ),
                    html.H3("Traffic over time"),
                    graph("hosts-traffic-graph", toolbar=False),
                    html.Div(
                        [
                            html.Div(
                                [
                                    html.H3("Peers"),
                                    html.P(id="hosts-peers-summary", className="table-note"),
                                    data_grid(
                                        "hosts-peers-table",
                                        PEER_COLUMNS,
                                        page_size=DETAIL_PAGE_SIZE,
                                        native_filter=False,
                                        row_id="id",
                                    ),
                                ]
                            ),
                            html.Div(
                                [
                                    html.H3("Ports and services"),
                                    html.P(id="hosts-ports-summary", className="table-note"),
                                    data_grid(
                                        "hosts-ports-table",
                                        PORT_COLUMNS,
                                        page_size=DETAIL_PAGE_SIZE,
                                        native_filter=False,
                                    ),
                                ]
                            ),
                        ],
                        className="detail-columns",
                    ),
                    html.H3("DNS names it asked for"),
                    html.P(id="hosts-dns", className="table-note"),
                    data_grid("hosts-dns-table", DNS_COLUMNS, page_size=DETAIL_PAGE_SIZE, native_filter=False),
                    html.H3("Alerts naming it"),
                    html.P(id="hosts-alerts-summary", className="table-note"),
                    data_grid(
                        "hosts-alerts-table",
                        HOST_ALERT_COLUMNS,
                        page_size=DETAIL_PAGE_SIZE,
                        native_filter=False,
                        row_id="id",
                    ),
                ],
                id="hosts-detail-body",
            ),
        ],
        className="card",
        id="hosts-detail-card",
    )


def layout(host: str | None = None, **_query: str) -> html.Div:
    """The host list, and with ``?host=IP`` that host's details above it."""
    return html.Div(
        [
            dcc.Location(id="hosts-location", refresh="callback-nav"),
            dcc.Store(id="hosts-selected", data=host),
            dcc.Store(id="hosts-list-signature"),
            dcc.Store(id="hosts-detail-signature"),
            html.Div(_detail(), id="hosts-detail-wrapper", style=show(bool(host))),
            card(
                "Hosts",
                html.Div(
                    [
                        html.P("Loading…", className="alerts-summary", id="hosts-summary"),
                        data_grid(
                            "hosts-table",
                            HOST_COLUMNS,
                            page_size=HOSTS_PAGE_SIZE,
                            row_id="id",
                        ),
                        html.P(HINT, className="table-note"),
                    ]
                ),
                "hosts-list-card",
            ),
            footnote(),
        ],
        className="hosts-page",
    )


@callback(
    Output("hosts-summary", "children"),
    Output("hosts-table", "rowData"),
    Output("hosts-list-signature", "data"),
    Input(REFRESH_INTERVAL_ID, "n_intervals"),
    Input(SENSOR_FILTER_ID, "value"),
    State("hosts-list-signature", "data"),
)
def refresh_list(_n: int | None, sensor: str | None, signature: str | None) -> tuple:
    """Every host with its threat score; unchanged tables are not sent again."""
    store = reader()
    state = run_state(store, sensor)
    rows: list[dict] = []
    if state.run_id is not None:
        runs = state.run_ids
        rows = host_rows(store.host_totals(runs), store.alerts(runs), annotations().allow_entries())
    if rows:
        threats = sum(1 for r in rows if r["threat"] > 0)
        summary = (
            f"{len(rows)} host{'s' if len(rows) != 1 else ''}, {threats} with a threat score "
            "(the highest score of its alerts as attacker, allow-listed ones left out); most threatening first."
        )
    else:
        summary = nothing_yet("hosts", state)
    for row in rows:
        row["id"] = row["host"]
    new_signature = fingerprint([summary, rows])
    if new_signature == signature:
        return no_update, no_update, no_update
    return summary, rows, new_signature


@callback(
    Output("hosts-location", "href"),
    Input("hosts-table", "cellClicked"),
    Input("hosts-peers-table", "cellClicked"),
    Input("hosts-alerts-table", "cellClicked"),
    prevent_initial_call=True,
)
def open_clicked(host_cell: dict | None, peer_cell: dict | None, alert_cell: dict | None) -> str:
    """A click on a host or a peer drills into it; a click on an alert opens it on the Alerts page."""
    cell = {"hosts-table": host_cell, "hosts-peers-table": peer_cell, "hosts-alerts-table": alert_cell}.get(
        ctx.triggered_id
    )
    if not cell or not cell.get("rowId"):
        return no_update
    row_id = str(cell["rowId"])
    return alert_link(row_id) if ctx.triggered_id == "hosts-alerts-table" else host_link(row_id)


DETAIL_OUTPUTS = [
    Output("hosts-detail-name", "children"),
    Output("hosts-detail-empty", "children"),
    Output("hosts-detail-empty", "style"),
    Output("hosts-detail-body", "style"),
    Output("hosts-flows-link", "href"),
    Output("hosts-detail-threat", "children"),
    Output("hosts-detail-alerts", "children"),
    Output("hosts-detail-sent", "children"),
    Output("hosts-detail-received", "children"),
    Output("hosts-detail-seen", "children"),
    Output("hosts-traffic-graph", "figure"),
    Output("hosts-peers-summary", "children"),
    Output("hosts-peers-table", "rowData"),
    Output("hosts-ports-summary", "children"),
    Output("hosts-ports-table", "rowData"),
    Output("hosts-alerts-summary", "children"),
    Output("hosts-alerts-table", "rowData"),
    Output("hosts-dns", "children"),
    Output("hosts-dns-table", "rowData"),
    Output("hosts-detail-signature", "data"),
]


def _busiest(rows: list[dict], what: str, hint: str = "") -> str:
    if not rows:
        return f"No stored flows, so no {what}."
    more = f" (the {DETAIL_ROWS} busiest)" if len(rows) >= DETAIL_ROWS else ""
    return f"{len(rows)} {what if len(rows) != 1 else what[:-1]}{more}, most flows first{hint}."


def _dns_summary(names: list[dict]) -> str:
    if not names:
        return "No DNS queries from this host in the stored windows."
    more = f" (the {DETAIL_ROWS} most asked)" if len(names) >= DETAIL_ROWS else ""
    return f"{len(names)} name{'s' if len(names) != 1 else ''}{more}, most asked first; shown as plain text."


def _missing(host: str, state: RunState) -> str:
    if state.run_id is None:
        return nothing_yet("hosts", state)
    if state.run["status"] == "running":
        return f"{host} is not among the hosts of the latest run yet. {activity(state)}"
    return f"{host} is not among the hosts of the latest run."


@callback(
    *DETAIL_OUTPUTS,
    Input(REFRESH_INTERVAL_ID, "n_intervals"),
    Input("hosts-selected", "data"),
    Input(SENSOR_FILTER_ID, "value"),
    State("hosts-detail-signature", "data"),
)
def refresh_detail(_n: int | None, host: str | None, sensor: str | None, signature: str | None) -> tuple:
    """The selected host's traffic, peers, ports, DNS names and alerts, re-sent only when they changed."""
    if not host:
        return (no_update,) * len(DETAIL_OUTPUTS)
    store, notes = reader(), annotations()
    state = run_state(store, sensor)
    run_id = state.run_ids if state.run_id else None
    totals = store.host_totals(run_id) if run_id else None
    found = totals is not None and bool((totals["host"] == host).any())
    if not found:
        text = _missing(host, state)
        new_signature = fingerprint(["missing", host, text])
        if new_signature == signature:
            return (no_update,) * len(DETAIL_OUTPUTS)
        return (host, text, show(True), show(False), *((no_update,) * (len(DETAIL_OUTPUTS) - 5)), new_signature)

    alerts = store.alerts(run_id)
    entries = notes.allow_entries()
    (row,) = host_rows(totals[totals["host"] == host], alerts, entries)
    windows = store.host_windows(run_id, host)
    peers = peer_rows(store.host_peers(run_id, host, limit=DETAIL_ROWS))
    ports = port_rows(store.host_ports(run_id, host, limit=DETAIL_ROWS))
    host_alerts = alert_rows(alerts, notes.acknowledged(), entries, host=host)
    names = dns_rows(store.host_dns(run_id, host, limit=DETAIL_ROWS))
    new_signature = fingerprint([host, row, windows.to_dict("list"), peers, ports, host_alerts, names])
    if new_signature == signature:
        return (no_update,) * len(DETAIL_OUTPUTS)

    threat = f"{row['threat']:.1f} {row['severity']}" if row["threat"] > 0 else "0"
    for a in peers:
        a["id"] = a["peer"]
    alerts_summary = (
        f"{len(host_alerts)} alert{'s' if len(host_alerts) != 1 else ''}; click one to open it on the Alerts page."
        if host_alerts
        else "No alert names this host."
    )
    return (
        host,
        "",
        show(False),
        show(True),
        flows_link(host),
        threat,
        f"{row['alerts']} as attacker, {row['targeted']} as victim",
        f"{fmt.size(row['bytes_out'])}, {fmt.count(row['packets_out'])} packets",
        f"{fmt.size(row['bytes_in'])}, {fmt.count(row['packets_in'])} packets",
        f"{row['first_seen']} – {row['last_seen']} UTC",
        host_traffic_figure(windows).update_layout(uirevision=host),
        _busiest(peers, "peers", "; click a peer to open it"),
        peers,
        _busiest(ports, "ports"),
        ports,
        alerts_summary,
        host_alerts,
        _dns_summary(names),
        names,
        new_signature,
    )
