"""Figure builders: pure functions from a store query result to a Plotly figure.

They take the frames :class:`~traffic_analyzer.store.reader.ResultReader` returns and
nothing else, so they are unit-tested without a browser or a store. An empty frame gives a
figure that says why it is empty instead of a blank plot.
"""

from __future__ import annotations

import html
import math
import textwrap

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

MAX_TRAFFIC_POINTS = 600  # per series; longer runs are binned so the browser gets a bounded payload
EMPTY_TEXT_WIDTH = 60  # characters per line of an empty-state message
MARKERS_UP_TO_POINTS = 60  # below this a line alone can be invisible (one point draws nothing)
FIGURE_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
PACKETS_COLOUR = "#2563eb"
BYTES_COLOUR = "#0d9488"
OUT_COLOUR = "#7c3aed"
IN_COLOUR = "#f59e0b"
ANOMALY_COLOUR = "#dc2626"


def plain_text(value: object) -> str:
    """Escape a packet-derived label: Plotly renders tags such as <a> and <b> inside text."""
    return html.escape(str(value), quote=False)


def _base_layout(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(
        height=height,
        margin={"l": 60, "r": 20, "t": 30, "b": 40},
        paper_bgcolor="white",
        plot_bgcolor="white",
        font={"family": FIGURE_FONT, "size": 12, "color": "#1f2937"},
        uirevision="keep",  # a refresh must not reset the user's zoom
        legend={"orientation": "h", "y": 1.12, "x": 0},
    )
    fig.update_xaxes(gridcolor="#eef0f3", zeroline=False)
    fig.update_yaxes(gridcolor="#eef0f3", zeroline=False)
    return fig


def empty_figure(message: str, height: int = 300) -> go.Figure:
    """A figure with no data and a centred sentence saying why (wrapped: annotations do not wrap)."""
    fig = go.Figure()
    fig.add_annotation(
        text="<br>".join(plain_text(line) for line in textwrap.wrap(message, EMPTY_TEXT_WIDTH)),
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font={"size": 14, "color": "#6b7280"},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _base_layout(fig, height)


def traffic_rates(traffic: pd.DataFrame, max_points: int = MAX_TRAFFIC_POINTS) -> pd.DataFrame:
    """Packets/s and bytes/s per time bin, with silent seconds as zero rather than interpolated.

    ``traffic`` has one row per epoch second that saw packets (columns second, packets,
    bytes). Bins are one second wide unless the run spans more than ``max_points`` seconds.
    """
    if traffic.empty:
        return pd.DataFrame(
            {
                "time": pd.Series(dtype="datetime64[ns, UTC]"),
                "packets_per_s": pd.Series(dtype=float),
                "bytes_per_s": pd.Series(dtype=float),
            }
        )
    seconds = traffic["second"].astype("int64")
    first = int(seconds.min())
    span = int(seconds.max()) - first + 1
    width = math.ceil(span / max_points)  # bin width in seconds
    bins = (seconds - first) // width
    sums = traffic[["packets", "bytes"]].groupby(bins.to_numpy()).sum()
    sums = sums.reindex(range(math.ceil(span / width)), fill_value=0)
    start = first + sums.index.to_numpy() * width
    return pd.DataFrame(
        {
            "time": pd.to_datetime(start, unit="s", utc=True),
            "packets_per_s": sums["packets"].to_numpy() / width,
            "bytes_per_s": sums["bytes"].to_numpy() / width,
        }
    )


def traffic_figure(traffic: pd.DataFrame, empty_message: str = "No traffic recorded yet.") -> go.Figure:
    """Packets per second above bytes per second, sharing one time axis (UTC)."""
    if traffic.empty:
        return empty_figure(empty_message, height=380)
    rates = traffic_rates(traffic)
    mode = "lines+markers" if len(rates) <= MARKERS_UP_TO_POINTS else "lines"
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    fig.add_trace(
        go.Scatter(
            x=rates["time"],
            y=rates["packets_per_s"],
            name="packets/s",
            mode=mode,
            line={"color": PACKETS_COLOUR, "width": 2, "shape": "hv"},
            hovertemplate="%{x|%H:%M:%S} UTC<br>%{y:,.1f} packets/s<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=rates["time"],
            y=rates["bytes_per_s"],
            name="bytes/s",
            mode=mode,
            line={"color": BYTES_COLOUR, "width": 2, "shape": "hv"},
            hovertemplate="%{x|%H:%M:%S} UTC<br>%{y:,.0f} bytes/s<extra></extra>",
        ),
        row=2,
        col=1,
    )
    fig.update_yaxes(title_text="packets/s", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="bytes/s", rangemode="tozero", row=2, col=1)
    fig.update_xaxes(title_text="time (UTC)", row=2, col=1)
    return _base_layout(fig, height=380)


def protocol_figure(protocols: pd.DataFrame, empty_message: str = "No protocols seen yet.") -> go.Figure:
    """Packets per protocol as horizontal bars, the commonest on top."""
    if protocols.empty:
        return empty_figure(empty_message)
    mix = protocols.sort_values("packets", ascending=True)
    share = mix["packets"] / mix["packets"].sum() * 100
    fig = go.Figure(
        go.Bar(
            x=mix["packets"],
            y=[plain_text(p) for p in mix["protocol"]],
            orientation="h",
            marker_color=PACKETS_COLOUR,
            customdata=list(zip(mix["bytes"], share, strict=True)),
            text=[f"{s:.1f}%" for s in share],
            textposition="auto",
            hovertemplate="%{y}<br>%{x:,} packets (%{customdata[1]:.1f}%)<br>%{customdata[0]:,} bytes<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="packets")
    fig.update_yaxes(type="category")
    return _base_layout(fig, height=max(300, 60 + 28 * len(mix)))


def top_talkers_figure(talkers: pd.DataFrame, empty_message: str = "No hosts seen yet.") -> go.Figure:
    """Bytes sent and received per host as stacked horizontal bars, the busiest on top."""
    if talkers.empty:
        return empty_figure(empty_message)
    ranked = talkers.sort_values("bytes_total", ascending=True)
    hosts = [plain_text(h) for h in ranked["host"]]
    fig = go.Figure(
        [
            go.Bar(
                x=ranked["bytes_out"],
                y=hosts,
                orientation="h",
                name="sent",
                marker_color=OUT_COLOUR,
                customdata=ranked["packets_out"],
                hovertemplate="%{y} sent %{x:,} bytes in %{customdata:,} packets<extra></extra>",
            ),
            go.Bar(
                x=ranked["bytes_in"],
                y=hosts,
                orientation="h",
                name="received",
                marker_color=IN_COLOUR,
                customdata=ranked["packets_in"],
                hovertemplate="%{y} received %{x:,} bytes in %{customdata:,} packets<extra></extra>",
            ),
        ]
    )
    fig.update_layout(barmode="stack", legend_traceorder="normal")
    fig.update_xaxes(title_text="bytes")
    fig.update_yaxes(type="category")
    return _base_layout(fig, height=max(300, 60 + 28 * len(ranked)))


STATE_COLOURS = {
    "SF": "#16a34a",
    "S0": "#9ca3af",
    "REJ": "#dc2626",
    "S1": "#2563eb",
}  # conn_state -> marker colour on the alert timeline; other states share OTHER_STATE_COLOUR
OTHER_STATE_COLOUR = "#7c3aed"
CATEGORY_PORTS_UP_TO = 20  # fewer distinct ports than this get one row each instead of a numeric axis
ALERT_SPAN_COLOUR = "rgba(234, 88, 12, 0.12)"  # the alert's start..end behind its flows


def alert_timeline_figure(
    flows: pd.DataFrame, start: float, end: float, empty_message: str = "No flows in the alert's time range."
) -> go.Figure:
    """The alert's flows as dots (start time x responder port), one colour per conn_state, over its time span.

    A few distinct ports (a brute force) get a row each; many (a scan) share a numeric axis.
    """
    if flows.empty:
        return empty_figure(empty_message, height=260)
    ports = flows["resp_p"].astype("float64")
    few_ports = ports.nunique() < CATEGORY_PORTS_UP_TO
    fig = go.Figure()
    for state, group in flows.groupby(flows["conn_state"].fillna("?").astype(str), sort=True):
        fig.add_trace(
            go.Scatter(
                x=pd.to_datetime(group["ts"], unit="s", utc=True),
                y=[_port_label(p) for p in group["resp_p"]] if few_ports else group["resp_p"].astype("float64"),
                mode="markers",
                name=plain_text(state),
                marker={"color": STATE_COLOURS.get(state, OTHER_STATE_COLOUR), "size": 6, "opacity": 0.75},
                customdata=_flow_hover(group),
                hovertemplate="%{x|%H:%M:%S.%L} UTC<br>%{customdata[0]} → %{customdata[1]} port %{customdata[2]}"
                " %{customdata[3]}<br>" + plain_text(state) + "<extra></extra>",
            )
        )
    fig.add_vrect(
        x0=pd.Timestamp(start, unit="s", tz="UTC"),
        x1=pd.Timestamp(end, unit="s", tz="UTC"),
        fillcolor=ALERT_SPAN_COLOUR,
        line_width=0,
        layer="below",
    )
    fig.update_xaxes(title_text="flow start (UTC)")
    if few_ports:
        order = [_port_label(p) for p in sorted(ports.dropna().unique())]
        fig.update_yaxes(title_text="responder port", type="category", categoryorder="array", categoryarray=order)
    else:
        fig.update_yaxes(title_text="responder port", rangemode="tozero")
    return _base_layout(fig, height=260)


def _flow_hover(flows: pd.DataFrame) -> list[list]:
    """Per flow: originator, responder, port and service, escaped for the hover text."""
    return [
        [plain_text(orig), plain_text(resp), "?" if pd.isna(port) else int(port), plain_text(service or "")]
        for orig, resp, port, service in zip(
            flows["orig_h"], flows["resp_h"], flows["resp_p"], flows["service"].fillna(""), strict=True
        )
    ]


def _port_label(port: object) -> str:
    """A port as a category label: "21" (the axis is set to category, so it is not read as a position)."""
    return "?" if pd.isna(port) else str(int(port))


def host_traffic_figure(windows: pd.DataFrame, empty_message: str = "No traffic of this host yet.") -> go.Figure:
    """Bytes the host sent and received per analysis window, as grouped bars (packets in the hover); below
    them the anomaly model's margin per window, when the model scored the host."""
    if windows.empty:
        return empty_figure(empty_message)
    times = pd.to_datetime(windows["window_start"].astype("float64").round(), unit="s", utc=True)  # whole-second ticks
    scored = "anomaly" in windows and windows["anomaly"].notna().any()
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.62, 0.38]) if scored else None
    bars = [
        go.Bar(
            x=times,
            y=windows["bytes_out"],
            name="sent",
            marker_color=OUT_COLOUR,
            customdata=windows["packets_out"],
            hovertemplate="window from %{x|%H:%M:%S} UTC<br>sent %{y:,} bytes in %{customdata:,} packets"
            "<extra></extra>",
        ),
        go.Bar(
            x=times,
            y=windows["bytes_in"],
            name="received",
            marker_color=IN_COLOUR,
            customdata=windows["packets_in"],
            hovertemplate="window from %{x|%H:%M:%S} UTC<br>received %{y:,} bytes in %{customdata:,} packets"
            "<extra></extra>",
        ),
    ]
    if fig is None:
        fig = go.Figure(bars)
        fig.update_layout(barmode="group")
        fig.update_xaxes(title_text="analysis window start (UTC)")
        fig.update_yaxes(title_text="bytes per window", rangemode="tozero")
        return _base_layout(fig, height=300)
    for bar in bars:
        fig.add_trace(bar, row=1, col=1)
    fig.add_trace(_anomaly_trace(times, windows["anomaly"].astype("float64")), row=2, col=1)
    fig.add_hline(y=0, line={"color": ANOMALY_COLOUR, "dash": "dash", "width": 1}, row=2, col=1)
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="bytes per window", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="anomaly margin", row=2, col=1)
    fig.update_xaxes(title_text="analysis window start (UTC)", row=2, col=1)
    return _base_layout(fig, height=440)


def _anomaly_trace(times: pd.Series, margin: pd.Series) -> go.Scatter:
    """The model's margin per window: above the dashed line at 0, past the threshold (an anomaly alert)."""
    return go.Scatter(
        x=times,
        y=margin,
        name="anomaly margin",
        mode="lines+markers" if len(margin) <= MARKERS_UP_TO_POINTS else "lines",
        line={"color": ANOMALY_COLOUR, "width": 1.5},
        connectgaps=False,
        hovertemplate="window from %{x|%H:%M:%S} UTC<br>anomaly margin %{y:.3f} (above 0: past the model's threshold)"
        "<extra></extra>",
    )
