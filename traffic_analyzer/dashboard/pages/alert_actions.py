"""The Alerts page's actions: acknowledge an alert, allow-list part of it, and the allow-list with its Remove buttons.

Both are kept in the store's annotation tables (:mod:`traffic_analyzer.store.annotations`),
so they survive a restart, and the analyzer reads the allow-list to stop raising such alerts.
Changes need a login and the dashboard's own page (:mod:`..access`). Every change bumps
``alerts-version`` so the table and the detail panel re-read the store.
"""

from __future__ import annotations

from dash import ALL, Input, Output, State, callback, ctx, html, no_update

from ...errors import AnalyzerError
from ...store.annotations import AllowEntry
from .. import access
from .. import formatting as fmt
from ..components import card
from ..data import REFRESH_INTERVAL_ID, annotations, fingerprint, reader
from ..tables import UPDATED, victims_of


def allow_list_card() -> object:
    """The allow-list's card; :func:`refresh_allow_list` fills it."""
    return card(
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
    )


def _entries_for(button: str, alert: dict, victims: list[str]) -> list[AllowEntry]:
    note = f"from alert {alert['alert_id']} ({alert['kind']})"
    attacker = str(alert["attacker"])
    if button == "alerts-allow-host-button":
        return [AllowEntry("host", attacker=attacker, note=note)]
    if button == "alerts-allow-pair-button":
        return [AllowEntry("pair", attacker=attacker, victim=victim, note=note) for victim in victims]
    return [AllowEntry("kind", kind=str(alert["kind"]), note=note)]


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


def refresh_allow_list(_n: int | None, _version: int, signature: str | None) -> tuple:
    """The allow-list, re-drawn only when it changed (a redraw would swallow a click on Remove)."""
    entries = annotations().allow_entries()
    new_signature = fingerprint(entries)
    if new_signature == signature:
        return no_update, no_update
    return _allow_list_items(entries), new_signature


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


def register() -> None:
    """Register the actions' callbacks; the alerts page calls this each time Dash executes it for an app."""
    callback(
        Output("alerts-action-message", "children"),
        Output("alerts-version", "data", allow_duplicate=True),
        Input("alerts-ack-button", "n_clicks"),
        Input("alerts-allow-host-button", "n_clicks"),
        Input("alerts-allow-pair-button", "n_clicks"),
        Input("alerts-allow-kind-button", "n_clicks"),
        State("alerts-selected", "data"),
        State("alerts-version", "data"),
        prevent_initial_call=True,
    )(act)
    callback(
        Output("alerts-allow-list", "children"),
        Output("alerts-allow-signature", "data"),
        Input(REFRESH_INTERVAL_ID, "n_intervals"),
        Input("alerts-version", "data"),
        State("alerts-allow-signature", "data"),
    )(refresh_allow_list)
    callback(
        Output("alerts-allow-message", "children"),
        Output("alerts-version", "data", allow_duplicate=True),
        Input({"type": "alerts-allow-remove", "index": ALL}, "n_clicks"),
        State("alerts-version", "data"),
        prevent_initial_call=True,
    )(remove_entry)
