"""The dashboard's figure builders on small frames shaped like ResultReader's answers."""

from __future__ import annotations

import pandas as pd
import pytest

from traffic_analyzer.dashboard.figures import (
    host_traffic_figure,
    protocol_figure,
    top_talkers_figure,
    traffic_figure,
    traffic_rates,
)

pytestmark = pytest.mark.unit

T0 = 1278275056  # first second of nmap-syn-scan.pcapng


def _traffic(rows: list[tuple[int, int, int]]) -> pd.DataFrame:
    """ResultReader.traffic(): one row per epoch second that saw packets."""
    return pd.DataFrame(rows, columns=["second", "packets", "bytes"]).astype("int64")


def _protocols(rows: list[tuple[str, int, int]]) -> pd.DataFrame:
    """ResultReader.protocols(): totals per protocol, commonest first."""
    return pd.DataFrame(rows, columns=["protocol", "packets", "bytes"])


def _talkers(rows: list[tuple[str, int, int, int, int]]) -> pd.DataFrame:
    """ResultReader.top_talkers(): per-host totals, busiest first."""
    frame = pd.DataFrame(rows, columns=["host", "bytes_out", "bytes_in", "packets_out", "packets_in"])
    return frame.assign(bytes_total=frame["bytes_out"] + frame["bytes_in"])


def _annotation_text(fig) -> str:
    (annotation,) = fig.layout.annotations
    return annotation.text


def test_traffic_figure_plots_packet_and_byte_rates_with_silent_seconds_as_zero():
    fig = traffic_figure(_traffic([(T0, 100, 6000), (T0 + 1, 300, 18000), (T0 + 4, 50, 4000)]))

    packets, bytes_ = fig.data
    assert packets.name == "packets/s" and bytes_.name == "bytes/s"
    assert list(packets.y) == [100, 300, 0, 0, 50]
    assert list(bytes_.y) == [6000, 18000, 0, 0, 4000]
    # Plotly keeps the UTC wall time and drops the zone; the axis title says UTC.
    assert pd.Timestamp(packets.x[0]) == pd.Timestamp(T0, unit="s")
    assert pd.Timestamp(packets.x[-1]) == pd.Timestamp(T0 + 4, unit="s")
    assert not fig.layout.annotations


def test_traffic_rates_bins_long_runs_and_divides_by_the_bin_width():
    seconds = range(T0, T0 + 1200)  # 20 minutes at 10 packets/s, 1000 bytes/s
    traffic = _traffic([(s, 10, 1000) for s in seconds])

    rates = traffic_rates(traffic, max_points=600)

    assert len(rates) == 600  # two-second bins
    assert rates["packets_per_s"].eq(10).all()
    assert rates["bytes_per_s"].eq(1000).all()
    assert (rates["time"].iloc[1] - rates["time"].iloc[0]) == pd.Timedelta(seconds=2)


def test_protocol_figure_puts_the_commonest_protocol_on_top_and_labels_shares():
    fig = protocol_figure(_protocols([("TCP", 1900, 110000), ("DNS", 80, 6000), ("ICMP", 20, 1200)]))

    (bars,) = fig.data
    assert bars.orientation == "h"
    assert list(bars.y) == ["ICMP", "DNS", "TCP"]  # Plotly draws the last category at the top
    assert list(bars.x) == [20, 80, 1900]
    assert list(bars.text) == ["1.0%", "4.0%", "95.0%"]


def test_talkers_figure_stacks_sent_and_received_bytes_per_host_busiest_on_top():
    fig = top_talkers_figure(_talkers([("172.16.0.8", 115652, 1020, 1994, 17), ("64.13.134.52", 1020, 20000, 17, 300)]))

    sent, received = fig.data
    assert (sent.name, received.name) == ("sent", "received")
    assert fig.layout.barmode == "stack"
    assert list(sent.y) == ["64.13.134.52", "172.16.0.8"]
    assert list(sent.x) == [1020, 115652]
    assert list(received.x) == [20000, 1020]
    assert list(sent.customdata) == [17, 1994]  # packets, for the hover text


def _host_windows(anomaly: list[float | None]) -> pd.DataFrame:
    """ResultReader.host_windows(): one row per analysis window of one host."""
    n = len(anomaly)
    frame = pd.DataFrame({"window_start": [T0 + 5.0 * i for i in range(n)], "packets_out": [3] * n})
    frame = frame.assign(bytes_out=300, packets_in=1, bytes_in=100)
    return frame.assign(anomaly=pd.Series(anomaly, dtype="float64"))


def test_host_figure_shows_the_anomaly_margin_under_the_traffic_when_the_model_scored_the_host():
    fig = host_traffic_figure(_host_windows([-0.2, None, 0.15]))
    sent, received, margin = fig.data
    assert (sent.name, received.name, margin.name) == ("sent", "received", "anomaly margin")
    assert margin.yaxis == "y2" and list(margin.y[[0, 2]]) == [-0.2, 0.15] and pd.isna(margin.y[1])
    (threshold,) = fig.layout.shapes
    assert (threshold.y0, threshold.y1, threshold.yref) == (0, 0, "y2")  # the model's threshold
    assert fig.layout.yaxis2.title.text == "anomaly margin"

    unscored = host_traffic_figure(_host_windows([None, None]))  # no model: traffic alone
    assert [t.name for t in unscored.data] == ["sent", "received"] and not unscored.layout.shapes


def test_labels_from_packets_are_escaped_so_plotly_shows_them_as_text():
    fig = protocol_figure(_protocols([("<a href='x'>HTTP</a>", 5, 500)]))

    assert list(fig.data[0].y) == ["&lt;a href='x'&gt;HTTP&lt;/a&gt;"]


@pytest.mark.parametrize(
    ("builder", "columns"),
    [
        (traffic_figure, ["second", "packets", "bytes"]),
        (protocol_figure, ["protocol", "packets", "bytes"]),
        (top_talkers_figure, ["host", "bytes_out", "bytes_in", "packets_out", "packets_in", "bytes_total"]),
    ],
)
def test_an_empty_frame_gives_an_explanatory_annotation_instead_of_a_blank_plot(builder, columns):
    fig = builder(pd.DataFrame(columns=columns), empty_message="Waiting for packets on eth0.")

    assert len(fig.data) == 0
    assert _annotation_text(fig) == "Waiting for packets on eth0."
    assert fig.layout.xaxis.visible is False


def test_empty_state_messages_have_a_default_and_are_wrapped_and_escaped():
    assert "No traffic" in _annotation_text(traffic_figure(pd.DataFrame(columns=["second", "packets", "bytes"])))

    long = "Analyzer status: capturing on <eth0> since a while, no packet has matched the capture filter yet."
    text = _annotation_text(protocol_figure(pd.DataFrame(columns=["protocol", "packets", "bytes"]), long))

    assert "<br>" in text
    assert "&lt;eth0&gt;" in text and "<eth0>" not in text
