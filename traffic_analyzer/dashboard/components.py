"""Building blocks the pages share: cards, graphs, tables with one look, severity colours.

Plain functions returning Dash components; they never import the app or a page. Every table
is an AG Grid (dash-ag-grid) whose cells use AG Grid's default renderer, which sets text, never
HTML: text that came from packets is never read as HTML or markdown. No column enables an HTML
or markdown renderer, and the grids keep dash-ag-grid's default dangerously_allow_code=False.

Every column names its cell data type (text, number, date-time text). Left to infer them, AG Grid
waits for the first rows, and a grid starts empty until the refresh fills it: a filter model it is
given before then (the user's filter, restored when they come back to the page) is dropped.
"""

from __future__ import annotations

from dash import dcc, html
from dash_ag_grid import AgGrid

from .data import REFRESH_MS

SEVERITY_COLOURS: dict[str, tuple[str, str]] = {
    "critical": ("#b91c1c", "#ffffff"),
    "high": ("#ea580c", "#ffffff"),
    "medium": ("#facc15", "#1f2937"),
    "low": ("#dbeafe", "#1e3a8a"),
}  # severity -> (background, text) of its table cell
INTEGER = "d3.format(',')(params.value)"  # 1,994
SCORE = "d3.format('.1f')(params.value)"  # 85.0
SECONDS = "d3.format('.3f')(params.value)"  # 21.682
PLAIN_NUMBER = "String(params.value)"  # ports: 8080, not 8,080


def text_column(column_id: str, name: str, **col_def: object) -> dict:
    """An AG Grid column shown as text (AG Grid's default renderer sets textContent, never HTML)."""
    return {"field": column_id, "headerName": name, "cellDataType": "text", **col_def}


def time_column(column_id: str, name: str, **col_def: object) -> dict:
    """A UTC "YYYY-MM-DD HH:MM:SS[.mmm]" text column (formatting.timestamp), filtered by date and time."""
    return text_column(column_id, name, cellDataType="dateTimeString", **col_def)


def number_column(column_id: str, name: str, fmt: str = INTEGER, **col_def: object) -> dict:
    """A numeric column: sorted and filtered as numbers, shown through a d3 format; empty when null."""
    return {
        "field": column_id,
        "headerName": name,
        "cellDataType": "number",
        "type": "numericColumn",
        "filter": "agNumberColumnFilter",
        "valueFormatter": {"function": f"params.value == null ? '' : {fmt}"},
        **col_def,
    }


FLOW_TABLE_COLUMNS: list[dict] = [
    time_column("ts", "start (UTC)", minWidth=190),
    number_column("duration", "duration (s)", SECONDS),
    text_column("orig_h", "originator", minWidth=120),
    number_column("orig_p", "orig port", PLAIN_NUMBER),
    text_column("resp_h", "responder", minWidth=120),
    number_column("resp_p", "resp port", PLAIN_NUMBER),
    text_column("proto", "proto"),
    text_column("service", "service"),
    text_column("conn_state", "state"),
    text_column("history", "history"),
    number_column("orig_bytes", "orig bytes"),
    number_column("resp_bytes", "resp bytes"),
    number_column("orig_pkts", "orig pkts"),
    number_column("resp_pkts", "resp pkts"),
]  # Zeek conn.log fields, as tables.flow_rows fills them


def severity_cell_style(**style: str) -> dict:
    """The severity colours of a severity cell, as AG Grid cellStyle conditions."""
    return {
        "styleConditions": [
            {
                "condition": f"params.value === '{severity}'",
                "style": {"backgroundColor": background, "color": text, "fontWeight": 600, **style},
            }
            for severity, (background, text) in SEVERITY_COLOURS.items()
        ],
        "defaultStyle": style or None,
    }


def alert_grid_columns(*, with_end: bool = True) -> list[dict]:
    """An alert's columns from severity on, as every alerts table shows them (tables.alert_rows fills them)."""
    columns = [
        text_column("severity", "severity", width=100, cellStyle=severity_cell_style(textAlign="center")),
        number_column("score", "score", SCORE, width=90),
        text_column("kind", "kind"),
        text_column("attacker", "attacker"),
        text_column("victims", "victims"),
        time_column("start", "start (UTC)", minWidth=170),
        time_column("end", "end (UTC)", minWidth=170),
        text_column("explanation", "explanation", minWidth=320, flex=2),
    ]
    return columns if with_end else [c for c in columns if c["field"] != "end"]


def data_grid(
    grid_id: str,
    columns: list[dict],
    *,
    page_size: int = 15,
    native_filter: bool = True,
    row_id: str | None = None,
    **kwargs,
) -> AgGrid:
    """An AG Grid with the dashboard's look: sort, paging, optional filter row under the headers.

    Every row of a page is in the DOM (auto height, no column virtualisation), so a page reads and
    prints whole; ``row_id`` names the field that identifies a row in ``cellClicked``. The user's
    sort and filter stay until the browser reloads the dashboard: they are back when the user returns
    to the page, and the refresh, which replaces the rows, keeps them.
    """
    return AgGrid(
        id=grid_id,
        columnDefs=columns,
        rowData=[],
        className="data-grid",
        columnSize="responsiveSizeToFit",
        defaultColDef={
            "sortable": True,
            "filter": native_filter,
            "floatingFilter": native_filter,
            "suppressHeaderMenuButton": True,
            "resizable": True,
            "wrapText": True,
            "autoHeight": True,
            "minWidth": 80,
            "cellDataType": False,  # never inferred from the first rows (see the module docstring)
        },
        dashGridOptions={
            "pagination": True,
            "paginationPageSize": page_size,
            "paginationPageSizeSelector": False,
            "domLayout": "autoHeight",
            "animateRows": False,
            "suppressColumnVirtualisation": True,
            "enableCellTextSelection": True,
        },
        **({"getRowId": f"params.data.{row_id}"} if row_id else {}),
        persistence=True,
        persisted_props=["columnState", "filterModel"] if native_filter else ["columnState"],
        persistence_type="memory",  # a reload of the browser page starts afresh
        **kwargs,
    )


def card(title: str, body: object, card_id: str, class_name: str = "card") -> html.Section:
    return html.Section([html.H2(title, className="card-title"), body], className=class_name, id=card_id)


def graph(graph_id: str, toolbar: bool = True) -> dcc.Graph:
    """A Plotly graph; small ones go without the zoom toolbar, which would cover their legend."""
    return dcc.Graph(id=graph_id, config={"displaylogo": False, "displayModeBar": "hover" if toolbar else False})


def stat(stat_id: str, label: str, value: str = "", hint: str = "", wide: bool = False) -> html.Div:
    """A labelled number in a stat grid; ``stat_id`` is the id of the value, for callbacks and tests."""
    return html.Div(
        [html.Div(label, className="stat-label"), html.Div(value, className="stat-value", id=stat_id)],
        className="stat stat-wide" if wide else "stat",
        title=hint,
    )


def key_values(items: list[tuple[str, str]], list_id: str | None = None) -> html.Dl:
    """A definition list of (key, value) strings: evidence and facts, as text."""
    children = []
    for key, value in items:
        children += [html.Dt(key), html.Dd(value)]
    return html.Dl(children, className="key-values", **({"id": list_id} if list_id else {}))


def footnote() -> html.P:
    return html.P(f"Refreshes every {REFRESH_MS / 1000:g} s from the result store.", className="page-footnote")


def show(visible: bool) -> dict:
    """The style that shows or hides a block that must stay in the layout for its callbacks."""
    return {} if visible else {"display": "none"}
