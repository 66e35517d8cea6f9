"""Alerts page: every alert of the latest run; one alert's evidence, flows and timeline; acknowledge, allow-list.

A click on a row (or /alerts?alert=ID) shows that alert's details. Its buttons acknowledge
it, or allow-list its attacker, its attacker-victim pair or its kind; both are kept in the
store's annotation tables (:mod:`traffic_analyzer.store.annotations`), so they survive a
restart, and the analyzer reads the allow-list to stop raising such alerts. The refresh
callbacks send a part of the page again only when it changed, so buttons stay under the
mouse. Everything that came from packets is shown as text.
"""

from __future__ import annotations

import re

import dash
import plotly.graph_objects as go
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update

from ...errors import AnalyzerError
from ...store.annotations import AllowEntry, allowed
from .. import access
from .. import formatting as fmt
from ..components import (
    FLOW_TABLE_COLUMNS,
    MUTED_TEXT_COLOUR,
    SCORE,
    SELECTED_ROW_COLOUR,
    SEVERITY_COLOURS,
    card,
    data_table,
    footnote,
    graph,
    key_values,
    number_column,
    severity_styles,
    show,
    text_column,
)
from ..data import REFRESH_INTERVAL_ID, SENSOR_FILTER_ID, annotations, fingerprint, reader
from ..evidence_route import evidence_href
from ..figures import alert_timeline_figure
from ..status import nothing_yet, run_state
from ..tables import (
    ACKNOWLEDGED,
    ALLOW_LISTED,
    NEW,
    UPDATED,
    alert_rows,
    flow_rows,
    flows_link,
    host_link,
    victims_of,
)

dash.register_page(__name__, path="/alerts", name="Alerts", title="Alerts · Network Traffic Analyzer", order=1)

ALERT_COLUMNS: list[dict] = [
    text_column("status", "status"),
    text_column("severity", "severity"),
    number_column("score", "score", SCORE),
    text_column("kind", "kind"),
    text_column("attacker", "attacker"),
    text_column("victims", "victims"),
    text_column("start", "start (UTC)"),
    text_column("end", "end (UTC)"),
    text_column("explanation", "explanation"),
]
ALERTS_PAGE_SIZE = 15
ALERT_FLOWS_MAX = 5000  # flows of one alert drawn on its timeline, newest first
ALERT_FLOW_ROWS = 1000  # of which the flows table gets the newest
FLOWS_PAGE_SIZE = 10
ALERT_ID = re.compile(r"^[0-9a-f]{1,64}$")  # the store's alert ids; anything else is never put in a table query
ANY_ATTACKER, ANY_VICTIM = "*", "many"  # what detectors write for spoofed sources and too many victims to list
HIDE_OPTIONS = [
    {"label": "acknowledged", "value": ACKNOWLEDGED},
    {"label": "allow-listed", "value": ALLOW_LISTED},
]
STATUS_STYLES: list[dict] = [
    {"if": {"filter_query": f'{{status}} = "{ALLOW_LISTED}"'}, "color": MUTED_TEXT_COLOUR},
    {"if": {"filter_query": f'{{status}} = "{NEW}"', "column_id": "status"}, "fontWeight": 600},
    {"if": {"filter_query": f'{{status}} = "{ACKNOWLEDGED}"', "column_id": "status"}, "color": "#166534"},
    {"if": {"filter_query": f'{{status}} = "{UPDATED}"', "column_id": "status"}, "color": "#b45309", "fontWeight": 600},
]
NO_SELECTION_TEXT = "Click an alert in the table to see its evidence, the flows involved and a timeline."


# --- layout -----------------------------------------------------------------------------------


def _alerts_table() -> object:
    return data_table(
        "alerts-table",
        ALERT_COLUMNS,
        page_size=ALERTS_PAGE_SIZE,
        style_cell_conditional=[
            {"if": {"column_id": "status"}, "width": "110px"},
            {"if": {"column_id": "severity"}, "width": "80px", "textAlign": "center"},
            {"if": {"column_id": "score"}, "width": "60px", "textAlign": "right"},
            {"if": {"column_id": "start"}, "whiteSpace": "nowrap"},
            {"if": {"column_id": "end"}, "whiteSpace": "nowrap"},
            {"if": {"column_id": "explanation"}, "minWidth": "320px"},
        ],
        persistence=True,  # keep the user's filter and sort across page visits
        persisted_props=["filter_query", "sort_by"],
        persistence_type="memory",
    )


def _detail_body() -> html.Div:
    """The selected alert; every element is always in the layout so its callbacks stay valid."""
    return html.Div(
        [
            html.Div(id="alerts-detail-header", className="detail-header"),
            html.P(id="alerts-detail-explanation", className="detail-explanation"),
            html.Div(
                [
                    html.Button("Acknowledge", id="alerts-ack-button", className="button button-primary"),
                    html.Span(id="alerts-ack-status", className="ack-status"),
                    html.Span("Allow-list:", className="allow-label"),
                    html.Button("host", id="alerts-allow-host-button", className="button"),
                    html.Button("pair", id="alerts-allow-pair-button", className="button"),
                    html.Button("kind", id="alerts-allow-kind-button", className="button"),
                ],
                className="detail-actions",
            ),
            html.P(id="alerts-action-message", className="action-message"),
            html.Div(
                [
                    html.Div(
                        [
                            html.H3("Evidence"),
                            html.A(
                                "Download evidence (pcap)",
                                id="alerts-evidence-download",
                                className="button",
                                download="",
                                style=show(False),
                            ),
                            html.Div(id="alerts-evidence"),
                        ],
                        className="detail-evidence",
                    ),
                    html.Div(
                        [html.H3("Timeline"), graph("alerts-timeline-graph", toolbar=False)],
                        className="detail-timeline",
                    ),
                ],
                className="detail-columns",
            ),
            html.H3("Flows involved"),
            html.Div(
                [
                    html.Span(id="alerts-flows-summary"),
                    dcc.Link("Search them on the Flows page", id="alerts-flows-link", href="/flows"),
                ],
                className="detail-flows-summary",
            ),
            data_table(
                "alerts-flows-table",
                FLOW_TABLE_COLUMNS,
                page_size=FLOWS_PAGE_SIZE,
                native_filter=False,
                style_data_conditional=[{"if": {"row_index": "odd"}, "backgroundColor": "#f9fafb"}],
                style_cell_conditional=[{"if": {"column_id": "ts"}, "whiteSpace": "nowrap"}],
            ),
        ],
        id="alerts-detail-body",
        style=show(False),
    )


def layout(alert: str | None = None, **_query: str) -> html.Div:
    """Placeholders; ``?alert=ID`` selects an alert. The refresh callbacks fill in the rest."""
    return html.Div(
        [
            dcc.Store(id="alerts-selected", data=alert),
            dcc.Store(id="alerts-version", data=0),  # bumped by every acknowledgement or allow-list change
            dcc.Store(id="alerts-table-signature"),
            dcc.Store(id="alerts-detail-signature"),
            dcc.Store(id="alerts-allow-signature"),
            card(
                "Alerts",
                html.Div(
                    [
                        html.Div(
                            [
                                html.P("Loading…", className="alerts-summary", id="alerts-summary"),
                                html.Div(
                                    [
                                        html.Span("Hide", className="toolbar-label"),
                                        dcc.Checklist(
                                            id="alerts-hide",
                                            options=HIDE_OPTIONS,
                                            value=[],
                                            inline=True,
                                            className="alerts-hide",
                                        ),
                                    ],
                                    className="toolbar-group",
                                ),
                            ],
                            className="toolbar",
                        ),
                        _alerts_table(),
                    ]
                ),
                "alerts-table-card",
            ),
            html.Section(
                [
                    html.H2("Alert details", className="card-title"),
                    html.P(NO_SELECTION_TEXT, className="empty-state", id="alerts-detail-empty"),
                    _detail_body(),
                ],
                className="card",
                id="alerts-detail-card",
            ),
            card(
                "Allow-list",
                html.Div(
                    [
                        html.P(
                            "Alerts an entry covers are no longer raised by the analyzer; those already stored stay "
                            "in the table, marked allow-listed. Add entries from an alert's details.",
                            className="card-intro",
                        ),
                        html.P(id="alerts-allow-message", className="action-message"),
                        html.Div("Loading…", id="alerts-allow-list"),
                    ]
                ),
                "alerts-allow-card",
            ),
            footnote(),
        ],
        className="alerts-page",
    )


# --- refresh ----------------------------------------------------------------------------------


def _summary(rows: list[dict], shown: int, empty_text: str) -> str:
    if not rows:
        return empty_text
    by_severity: dict[str, int] = {}
    by_status: dict[str, int] = {}
    for row in rows:
        by_severity[row["severity"]] = by_severity.get(row["severity"], 0) + 1
        by_status[row["status"]] = by_status.get(row["status"], 0) + 1
    counts = ", ".join(f"{by_severity[s]} {s}" for s in SEVERITY_COLOURS if s in by_severity)
    text = f"{len(rows)} alert{'s' if len(rows) != 1 else ''} ({counts}), highest score first"
    statuses = [f"{by_status[s]} {s}" for s in (NEW, UPDATED, ACKNOWLEDGED, ALLOW_LISTED) if s in by_status]
    text += f"; {', '.join(statuses)}"
    if shown < len(rows):
        text += f"; {len(rows) - shown} hidden"
    return text + "."


def _table_styles(selected: str | None) -> list[dict]:
    styles = severity_styles() + STATUS_STYLES
    if selected and ALERT_ID.match(selected):
        styles.insert(1, {"if": {"filter_query": f'{{id}} = "{selected}"'}, "backgroundColor": SELECTED_ROW_COLOUR})
    return styles


@callback(
    Output("alerts-summary", "children"),
    Output("alerts-table", "data"),
    Output("alerts-table", "style_data_conditional"),
    Output("alerts-table-signature", "data"),
    Input(REFRESH_INTERVAL_ID, "n_intervals"),
    Input("alerts-hide", "value"),
    Input("alerts-selected", "data"),
    Input("alerts-version", "data"),
    Input(SENSOR_FILTER_ID, "value"),
    State("alerts-table-signature", "data"),
)
def refresh_table(
    _n: int | None,
    hide: list[str] | None,
    selected: str | None,
    _version: int,
    sensor: str | None,
    signature: str | None,
) -> tuple:
    """The alerts of the latest run of each sensor shown, with their status; unchanged tables are not sent again."""
    store, notes = reader(), annotations()
    state = run_state(store, sensor)
    if state.run_id is None:
        rows = []
    else:
        rows = alert_rows(store.alerts(state.run_ids), notes.acknowledged(), notes.allow_entries())
    shown = [row for row in rows if row["status"] not in (hide or [])]
    summary = _summary(rows, len(shown), nothing_yet("alerts", state))
    if rows and not shown:
        summary += " Untick Hide to see them."
    styles = _table_styles(selected)
    new_signature = fingerprint([summary, shown, styles])
    if new_signature == signature:
        return no_update, no_update, no_update, no_update
    return summary, shown, styles, new_signature


@callback(
    Output("alerts-selected", "data"),
    Output("alerts-action-message", "children", allow_duplicate=True),
    Input("alerts-table", "active_cell"),
    prevent_initial_call=True,
)
def select(active_cell: dict | None) -> tuple:
    """A click on any cell of a row selects its alert."""
    if not active_cell or not active_cell.get("row_id"):
        return no_update, no_update
    return str(active_cell["row_id"]), ""


def _victim_links(victims: list[str]) -> list:
    links: list = []
    for victim in victims:
        if links:
            links.append(", ")
        links.append(victim if victim == ANY_VICTIM else dcc.Link(victim, href=host_link(victim)))
    return links


def _header(alert: dict, victims: list[str]) -> list:
    severity = str(alert["severity"])
    attacker = str(alert["attacker"])
    span = f"{fmt.timestamp(alert['start'])} – {fmt.timestamp(alert['end'])} UTC"
    span += f" ({fmt.duration(float(alert['end']) - float(alert['start']))})"
    return [
        html.Span(severity, className=f"severity-badge severity-{severity}", id="alerts-detail-severity"),
        html.Span(str(alert["kind"]), className="detail-kind", id="alerts-detail-kind"),
        html.Span("from", className="detail-muted"),
        html.Span(attacker if attacker == ANY_ATTACKER else dcc.Link(attacker, href=host_link(attacker))),
        html.Span("against", className="detail-muted"),
        html.Span(_victim_links(victims), id="alerts-detail-victims"),
        html.Span(span, className="detail-muted", id="alerts-detail-span"),
        html.Span(f"score {float(alert['score']):.1f}", className="detail-score", id="alerts-detail-score"),
        html.Span(f"{alert['detector'] or 'detector'}, {alert['updates']} update(s)", className="detail-muted"),
    ]


def _allow_buttons(alert: dict, victims: list[str], entries: tuple[AllowEntry, ...]) -> list[tuple[str, bool, str]]:
    """(label, disabled, tooltip) of the host, pair and kind buttons."""
    attacker, kind = str(alert["attacker"]), str(alert["kind"])
    spoofed = attacker == ANY_ATTACKER
    host_done = any(e.scope == "host" and e.attacker == attacker for e in entries)
    pair_done = allowed("", attacker, victims, entries)  # a host entry covers the pair too
    kind_done = any(e.scope == "kind" and e.kind == kind for e in entries)
    pair_target = victims[0] if len(victims) == 1 else f"{len(victims)} victims"
    return [
        (
            "host (spoofed sources)" if spoofed else f"host {attacker}",
            spoofed or host_done,
            "already allow-listed" if host_done else f"silence every alert from {attacker}",
        ),
        (
            f"pair {attacker} → {pair_target}",
            spoofed or ANY_VICTIM in victims or pair_done,
            "already allow-listed" if pair_done else f"silence alerts from {attacker} against {', '.join(victims)}",
        ),
        (
            f"kind {kind}",
            kind_done,
            "already allow-listed" if kind_done else f"silence every {kind} alert, whoever raises it",
        ),
    ]


def _flow_conditions(alert: dict, victims: list[str]) -> dict:
    attacker = str(alert["attacker"])
    between = (None if attacker == ANY_ATTACKER else attacker, None if ANY_VICTIM in victims else victims)
    return {"between": between, "start": float(alert["start"]), "end": float(alert["end"])}


def _flows_summary(count: int, alert: dict, victims: list[str]) -> str:
    who = f"between {alert['attacker']} and {', '.join(victims)}"
    if count == 0:
        return (
            f"No stored flow {who} overlaps the alert's time range: the detector saw packets that form no "
            "connection (ARP, for example), or the flows were not written yet."
        )
    shown = ""
    if count > ALERT_FLOW_ROWS:
        shown = f"; the table lists the newest {ALERT_FLOW_ROWS:,}"
    if count > ALERT_FLOWS_MAX:
        shown += f", the timeline the newest {ALERT_FLOWS_MAX:,}"
    return f"{count:,} flow{'s' if count != 1 else ''} {who} overlap the alert's time range{shown}."


DETAIL_OUTPUTS = [
    Output("alerts-detail-empty", "children"),
    Output("alerts-detail-empty", "style"),
    Output("alerts-detail-body", "style"),
    Output("alerts-detail-header", "children"),
    Output("alerts-detail-explanation", "children"),
    Output("alerts-ack-button", "disabled"),
    Output("alerts-ack-button", "children"),
    Output("alerts-ack-status", "children"),
    Output("alerts-allow-host-button", "children"),
    Output("alerts-allow-host-button", "disabled"),
    Output("alerts-allow-host-button", "title"),
    Output("alerts-allow-pair-button", "children"),
    Output("alerts-allow-pair-button", "disabled"),
    Output("alerts-allow-pair-button", "title"),
    Output("alerts-allow-kind-button", "children"),
    Output("alerts-allow-kind-button", "disabled"),
    Output("alerts-allow-kind-button", "title"),
    Output("alerts-evidence", "children"),
    Output("alerts-evidence-download", "href"),
    Output("alerts-evidence-download", "style"),
    Output("alerts-timeline-graph", "figure"),
    Output("alerts-flows-summary", "children"),
    Output("alerts-flows-link", "href"),
    Output("alerts-flows-table", "data"),
    Output("alerts-detail-signature", "data"),
]


@callback(
    *DETAIL_OUTPUTS,
    Input(REFRESH_INTERVAL_ID, "n_intervals"),
    Input("alerts-selected", "data"),
    Input("alerts-version", "data"),
    Input(SENSOR_FILTER_ID, "value"),
    State("alerts-detail-signature", "data"),
)
def refresh_detail(
    _n: int | None, selected: str | None, _version: int, sensor: str | None, signature: str | None
) -> tuple:
    """The selected alert's details, re-read when the alert, its notes or its flows change."""
    store, notes = reader(), annotations()
    state = run_state(store, sensor)
    alert = store.alert(selected) if selected else None
    if alert is not None and alert["run_id"] not in state.run_ids:
        alert = None
    if alert is None:
        text = NO_SELECTION_TEXT if not selected else f"Alert {selected} is not in the latest run. {NO_SELECTION_TEXT}"
        new_signature = fingerprint(["none", text])
        if new_signature == signature:
            return (no_update,) * len(DETAIL_OUTPUTS)
        blank = (no_update,) * (len(DETAIL_OUTPUTS) - 4)
        return (text, show(True), show(False), *blank, new_signature)

    victims = victims_of(alert["victims"])
    acked_at = notes.acknowledged().get(str(alert["alert_id"]))
    entries = tuple(notes.allow_entries())
    conditions = _flow_conditions(alert, victims)
    count = store.count_flows(alert["run_id"], **conditions)
    pcap_href = evidence_href(str(alert["alert_id"]))  # the pcap appears once cut, maybe after the alert's last write
    new_signature = fingerprint([alert, acked_at, entries, count, pcap_href])
    if new_signature == signature:
        return (no_update,) * len(DETAIL_OUTPUTS)

    flows = store.search_flows(alert["run_id"], limit=ALERT_FLOWS_MAX, **conditions)
    if acked_at is None:
        ack = (False, "Acknowledge", "")
    else:
        updated = float(alert["updated_at"]) > acked_at
        note = "; new evidence since" if updated else ""
        ack = (True, "Acknowledged", f"acknowledged {fmt.timestamp(acked_at)} UTC{note}")
    buttons = [value for button in _allow_buttons(alert, victims, entries) for value in button]
    if allowed(str(alert["kind"]), str(alert["attacker"]), victims, entries):
        ack = (ack[0], ack[1], (ack[2] + "; " if ack[2] else "") + "allow-listed")
    anchor = str(alert["attacker"]) if alert["attacker"] != ANY_ATTACKER else victims[0]
    figure: go.Figure = alert_timeline_figure(
        flows,
        float(alert["start"]),
        float(alert["end"]),
        empty_message="No flows between the attacker and the victims in the alert's time range.",
    )
    figure.update_layout(uirevision=str(alert["alert_id"]))  # keep a zoom while the alert updates, not across alerts
    return (
        "",
        show(False),
        show(True),
        _header(alert, victims),
        str(alert["explanation"]),
        *ack,
        *buttons,
        key_values(fmt.evidence_items(alert["evidence"]), "alerts-evidence-list"),
        pcap_href or "",
        show(pcap_href is not None),
        figure,
        _flows_summary(count, alert, victims),
        flows_link(anchor if anchor != ANY_VICTIM else None, float(alert["start"]), float(alert["end"])),
        flow_rows(flows.head(ALERT_FLOW_ROWS)),
        new_signature,
    )


# --- acknowledge and allow-list ---------------------------------------------------------------


def _entries_for(button: str, alert: dict, victims: list[str]) -> list[AllowEntry]:
    note = f"from alert {alert['alert_id']} ({alert['kind']})"
    attacker = str(alert["attacker"])
    if button == "alerts-allow-host-button":
        return [AllowEntry("host", attacker=attacker, note=note)]
    if button == "alerts-allow-pair-button":
        return [AllowEntry("pair", attacker=attacker, victim=victim, note=note) for victim in victims]
    return [AllowEntry("kind", kind=str(alert["kind"]), note=note)]


@callback(
    Output("alerts-action-message", "children"),
    Output("alerts-version", "data", allow_duplicate=True),
    Input("alerts-ack-button", "n_clicks"),
    Input("alerts-allow-host-button", "n_clicks"),
    Input("alerts-allow-pair-button", "n_clicks"),
    Input("alerts-allow-kind-button", "n_clicks"),
    State("alerts-selected", "data"),
    State("alerts-version", "data"),
    prevent_initial_call=True,
)
def act(_ack: int, _host: int, _pair: int, _kind: int, selected: str | None, version: int) -> tuple[str, object]:
    """Acknowledge the selected alert or allow-list part of it, in the store."""
    button = ctx.triggered_id
    if not button or not ctx.triggered[0]["value"]:
        return no_update, no_update
    alert = reader().alert(selected) if selected else None
    if alert is None:
        return "That alert is no longer in the store.", no_update
    who = access.changer()
    if who is None:
        return access.LOGIN_NEEDED, no_update
    victims = victims_of(alert["victims"])
    notes = annotations()
    try:
        if button == "alerts-ack-button":
            notes.acknowledge(str(alert["alert_id"]))
            access.log_change(who, f"acknowledged alert {alert['alert_id']}")
            message = f"Acknowledged. It stays in the table; new evidence on it will show as {UPDATED!r}."
        else:
            entries = _entries_for(button, alert, victims)
            for entry in entries:
                notes.add(entry)
                access.log_change(who, f"allow-listed {entry.describe()} ({entry.note})")
            what = entries[0].describe()
            if len(entries) > 1:
                what = f"alerts from {entries[0].attacker} against {', '.join(e.victim for e in entries)}"
            message = (
                f"Allow-listed {what}: the analyzer no longer raises them; the stored ones stay, marked allow-listed."
            )
    except AnalyzerError as exc:
        return f"Not saved: {exc}", no_update
    return message, (version or 0) + 1


def _allow_list_items(entries: list[AllowEntry]) -> object:
    if not entries:
        return html.P("Nothing is allow-listed: every alert is raised.", className="empty-state")
    return html.Ul(
        [
            html.Li(
                [
                    html.Span(entry.describe(), className="allow-entry-what"),
                    html.Span(
                        f"added {fmt.timestamp(entry.created_at)} UTC" + (f", {entry.note}" if entry.note else ""),
                        className="allow-entry-when",
                    ),
                    html.Button(
                        "Remove",
                        id={"type": "alerts-allow-remove", "index": entry.entry_id},
                        className="button button-small",
                    ),
                ],
                className="allow-entry",
            )
            for entry in entries
        ],
        className="allow-entries",
        id="alerts-allow-entries",
    )


@callback(
    Output("alerts-allow-list", "children"),
    Output("alerts-allow-signature", "data"),
    Input(REFRESH_INTERVAL_ID, "n_intervals"),
    Input("alerts-version", "data"),
    State("alerts-allow-signature", "data"),
)
def refresh_allow_list(_n: int | None, _version: int, signature: str | None) -> tuple:
    """The allow-list, re-drawn only when it changed (a redraw would swallow a click on Remove)."""
    entries = annotations().allow_entries()
    new_signature = fingerprint(entries)
    if new_signature == signature:
        return no_update, no_update
    return _allow_list_items(entries), new_signature


@callback(
    Output("alerts-allow-message", "children"),
    Output("alerts-version", "data", allow_duplicate=True),
    Input({"type": "alerts-allow-remove", "index": ALL}, "n_clicks"),
    State("alerts-version", "data"),
    prevent_initial_call=True,
)
def remove_entry(clicks: list[int | None], version: int) -> tuple:
    """Take the clicked entry off the allow-list."""
    button = ctx.triggered_id
    if not isinstance(button, dict) or not ctx.triggered[0]["value"]:
        return no_update, no_update
    who = access.changer()
    if who is None:
        return access.LOGIN_NEEDED, no_update
    try:
        annotations().remove(int(button["index"]))
        access.log_change(who, f"removed allow-list entry {int(button['index'])}")
    except AnalyzerError as exc:
        return f"Not saved: {exc}", no_update
    return "Removed from the allow-list: such alerts are raised again from the analyzer's next window.", (
        version or 0
    ) + 1
