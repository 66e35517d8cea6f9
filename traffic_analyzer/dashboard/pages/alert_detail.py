"""The Alerts page's detail panel: one alert's header, evidence, timeline and flows, and its action buttons' state.

:mod:`.alerts` puts :func:`detail_body` in its layout and calls :func:`register`. The panel
is sent again only when the alert, its notes or its flows changed, so the buttons stay under
the mouse. Its outputs are named (:data:`DETAIL_OUTPUTS`), so a value cannot land on the
wrong element. Everything that came from packets is shown as text.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from dash import Input, Output, State, callback, dcc, html, no_update

from ...store.annotations import AllowEntry, allowed
from .. import formatting as fmt
from ..components import FLOW_TABLE_COLUMNS, data_grid, graph, key_values, show
from ..data import REFRESH_INTERVAL_ID, SENSOR_FILTER_ID, annotations, fingerprint, reader
from ..evidence_route import evidence_href
from ..figures import alert_timeline_figure
from ..status import run_state
from ..tables import flow_rows, flows_link, host_link, victims_of

ALERT_FLOWS_MAX = 5000  # flows of one alert drawn on its timeline, newest first
ALERT_FLOW_ROWS = 1000  # of which the flows table gets the newest
FLOWS_PAGE_SIZE = 10
ANY_ATTACKER, ANY_VICTIM = "*", "many"  # what detectors write for spoofed sources and too many victims to list
NO_SELECTION_TEXT = "Click an alert in the table to see its evidence, the flows involved and a timeline."
ALLOW_BUTTONS = ("host", "pair", "kind")  # alerts-allow-<scope>-button, in _allow_buttons' order


# --- layout ------------------------------------------------------------------------------------


def detail_body() -> html.Div:
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
            data_grid("alerts-flows-table", FLOW_TABLE_COLUMNS, page_size=FLOWS_PAGE_SIZE, native_filter=False),
        ],
        id="alerts-detail-body",
        style=show(False),
    )


# --- refresh -----------------------------------------------------------------------------------


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


def _button_outputs(scope: str) -> dict[str, Output]:
    button = f"alerts-allow-{scope}-button"
    return {
        f"allow_{scope}_label": Output(button, "children"),
        f"allow_{scope}_disabled": Output(button, "disabled"),
        f"allow_{scope}_title": Output(button, "title"),
    }


DETAIL_OUTPUTS: dict[str, Output] = {
    "empty_text": Output("alerts-detail-empty", "children"),
    "empty_style": Output("alerts-detail-empty", "style"),
    "body_style": Output("alerts-detail-body", "style"),
    "header": Output("alerts-detail-header", "children"),
    "explanation": Output("alerts-detail-explanation", "children"),
    "ack_disabled": Output("alerts-ack-button", "disabled"),
    "ack_label": Output("alerts-ack-button", "children"),
    "ack_status": Output("alerts-ack-status", "children"),
    **{name: output for scope in ALLOW_BUTTONS for name, output in _button_outputs(scope).items()},
    "evidence": Output("alerts-evidence", "children"),
    "evidence_href": Output("alerts-evidence-download", "href"),
    "evidence_style": Output("alerts-evidence-download", "style"),
    "timeline": Output("alerts-timeline-graph", "figure"),
    "flows_summary": Output("alerts-flows-summary", "children"),
    "flows_link": Output("alerts-flows-link", "href"),
    "flows_rows": Output("alerts-flows-table", "rowData"),
    "signature": Output("alerts-detail-signature", "data"),
}  # refresh_detail's answer, by name: Dash's dict-style outputs


def _unchanged() -> dict[str, Any]:
    return dict.fromkeys(DETAIL_OUTPUTS, no_update)


def _ack_state(alert: dict, acked_at: float | None, is_allowed: bool) -> dict[str, Any]:
    """The Acknowledge button and the status beside it."""
    if acked_at is None:
        disabled, label, status = False, "Acknowledge", ""
    else:
        note = "; new evidence since" if float(alert["updated_at"]) > acked_at else ""
        disabled, label, status = True, "Acknowledged", f"acknowledged {fmt.timestamp(acked_at)} UTC{note}"
    if is_allowed:
        status = (status + "; " if status else "") + "allow-listed"
    return {"ack_disabled": disabled, "ack_label": label, "ack_status": status}


def _allow_state(alert: dict, victims: list[str], entries: tuple[AllowEntry, ...]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for scope, (label, disabled, title) in zip(ALLOW_BUTTONS, _allow_buttons(alert, victims, entries), strict=True):
        state |= {f"allow_{scope}_label": label, f"allow_{scope}_disabled": disabled, f"allow_{scope}_title": title}
    return state


def refresh_detail(
    _n: int | None, selected: str | None, _version: int, sensor: str | None, signature: str | None
) -> dict[str, Any]:
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
            return _unchanged()
        shown = {"empty_text": text, "empty_style": show(True), "body_style": show(False), "signature": new_signature}
        return _unchanged() | shown

    victims = victims_of(alert["victims"])
    acked_at = notes.acknowledged().get(str(alert["alert_id"]))
    entries = tuple(notes.allow_entries())
    conditions = _flow_conditions(alert, victims)
    count = store.count_flows(alert["run_id"], **conditions)
    pcap_href = evidence_href(str(alert["alert_id"]))  # the pcap appears once cut, maybe after the alert's last write
    new_signature = fingerprint([alert, acked_at, entries, count, pcap_href])
    if new_signature == signature:
        return _unchanged()

    flows = store.search_flows(alert["run_id"], limit=ALERT_FLOWS_MAX, **conditions)
    anchor = str(alert["attacker"]) if alert["attacker"] != ANY_ATTACKER else victims[0]
    figure: go.Figure = alert_timeline_figure(
        flows,
        float(alert["start"]),
        float(alert["end"]),
        empty_message="No flows between the attacker and the victims in the alert's time range.",
    )
    figure.update_layout(uirevision=str(alert["alert_id"]))  # keep a zoom while the alert updates, not across alerts
    is_allowed = allowed(str(alert["kind"]), str(alert["attacker"]), victims, entries)
    return {
        "empty_text": "",
        "empty_style": show(False),
        "body_style": show(True),
        "header": _header(alert, victims),
        "explanation": str(alert["explanation"]),
        **_ack_state(alert, acked_at, is_allowed),
        **_allow_state(alert, victims, entries),
        "evidence": key_values(fmt.evidence_items(alert["evidence"]), "alerts-evidence-list"),
        "evidence_href": pcap_href or "",
        "evidence_style": show(pcap_href is not None),
        "timeline": figure,
        "flows_summary": _flows_summary(count, alert, victims),
        "flows_link": flows_link(anchor if anchor != ANY_VICTIM else None, float(alert["start"]), float(alert["end"])),
        "flows_rows": flow_rows(flows.head(ALERT_FLOW_ROWS)),
        "signature": new_signature,
    }


def register() -> None:
    """Register the panel's callback; the alerts page calls this each time Dash executes it for an app."""
    callback(
        Input(REFRESH_INTERVAL_ID, "n_intervals"),
        Input("alerts-selected", "data"),
        Input("alerts-version", "data"),
        Input(SENSOR_FILTER_ID, "value"),
        State("alerts-detail-signature", "data"),
        output=DETAIL_OUTPUTS,
    )(refresh_detail)
