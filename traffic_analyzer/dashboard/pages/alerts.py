"""Alerts page: every alert of the latest run of each sensor, filtered and sorted; a click on one opens its details.

The page owns the layout and the table. The detail panel (:mod:`.alert_detail`) and the
acknowledge and allow-list actions (:mod:`.alert_actions`) are their own modules; this page
registers their callbacks each time Dash executes it for an app. A click on a row (or
/alerts?alert=ID) selects that alert. The table is sent again only when it changed.
Everything that came from packets is shown as text.
"""

from __future__ import annotations

import dash
from dash import Input, Output, State, callback, dcc, html, no_update

from ..components import (
    SEVERITY_COLOURS,
    alert_grid_columns,
    card,
    data_grid,
    footnote,
    text_column,
)
from ..data import REFRESH_INTERVAL_ID, SENSOR_FILTER_ID, annotations, fingerprint, reader, shared
from ..status import nothing_yet, run_state
from ..tables import ACKNOWLEDGED, ALLOW_LISTED, NEW, UPDATED, alert_rows
from . import alert_actions, alert_detail

dash.register_page(__name__, path="/alerts", name="Alerts", title="Alerts · Network Traffic Analyzer", order=1)

STATUS_STYLE = {
    "styleConditions": [
        {"condition": f"params.value === '{NEW}'", "style": {"fontWeight": 600}},
        {"condition": f"params.value === '{ACKNOWLEDGED}'", "style": {"color": "#166534"}},
        {"condition": f"params.value === '{UPDATED}'", "style": {"color": "#b45309", "fontWeight": 600}},
    ]
}  # the status cell; allow-listed rows are muted whole (ROW_CLASSES)
ROW_CLASSES = {
    "grid-row-selected": "params.data.selected",  # the alert whose details are shown
    "grid-row-muted": f"params.data.status === '{ALLOW_LISTED}'",
}  # classes in assets/style.css
ALERT_COLUMNS: list[dict] = [
    text_column("status", "status", width=120, cellStyle=STATUS_STYLE),
    *alert_grid_columns(),
]
ALERTS_PAGE_SIZE = 15
HIDE_OPTIONS = [
    {"label": "acknowledged", "value": ACKNOWLEDGED},
    {"label": "allow-listed", "value": ALLOW_LISTED},
]

# --- layout -----------------------------------------------------------------------------------


def _alerts_table() -> object:
    return data_grid(
        "alerts-table",
        ALERT_COLUMNS,
        page_size=ALERTS_PAGE_SIZE,
        row_id="id",
        rowClassRules=ROW_CLASSES,
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
                    html.P(alert_detail.NO_SELECTION_TEXT, className="empty-state", id="alerts-detail-empty"),
                    alert_detail.detail_body(),
                ],
                className="card",
                id="alerts-detail-card",
            ),
            alert_actions.allow_list_card(),
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


@callback(
    Output("alerts-summary", "children"),
    Output("alerts-table", "rowData"),
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
    summary, shown, new_signature = shared(_table, tuple(hide or ()), selected, _version, sensor)
    if new_signature == signature:
        return no_update, no_update, no_update
    return summary, shown, new_signature


def _table(hide: tuple[str, ...], selected: str | None, _version: int, sensor: str | None) -> tuple[str, list, str]:
    """The table's summary, rows and their fingerprint (shared by the viewers asking within a second)."""
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
    shown = [{**row, "selected": row["id"] == selected} for row in shown]
    return summary, shown, fingerprint([summary, shown])


@callback(
    Output("alerts-selected", "data"),
    Output("alerts-action-message", "children", allow_duplicate=True),
    Input("alerts-table", "cellClicked"),
    prevent_initial_call=True,
)
def select(clicked: dict | None) -> tuple:
    """A click on any cell of a row selects its alert."""
    if not clicked or not clicked.get("rowId"):
        return no_update, no_update
    return str(clicked["rowId"]), ""


alert_detail.register()
alert_actions.register()
