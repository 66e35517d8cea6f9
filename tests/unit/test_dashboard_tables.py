"""The alert, host and flow pages' pure helpers: rows, threat scores, the flow search, evidence, figures."""

from __future__ import annotations

import json

import dash
import pandas as pd
import pytest
from dash_ag_grid import AgGrid

from traffic_analyzer.dashboard import formatting as fmt
from traffic_analyzer.dashboard.app import create_app
from traffic_analyzer.dashboard.figures import alert_timeline_figure, host_traffic_figure
from traffic_analyzer.dashboard.tables import (
    ACKNOWLEDGED,
    ALLOW_LISTED,
    NEW,
    UPDATED,
    FlowSearch,
    alert_rows,
    flow_rows,
    flow_search,
    flows_link,
    host_rows,
    parse_time,
)
from traffic_analyzer.records.flows import empty_flows
from traffic_analyzer.store.annotations import AllowEntry
from traffic_analyzer.store.engine import store_url

pytestmark = pytest.mark.unit

T0 = 1278275056.27487  # first packet of nmap-syn-scan.pcapng
SCANNER, TARGET, CLIENT = "172.16.0.8", "64.13.134.52", "10.0.0.9"


def _alerts(rows: list[tuple]) -> pd.DataFrame:
    """ResultReader.alerts(): one row per alert, highest score first."""
    columns = ["alert_id", "kind", "attacker", "victims", "start", "end", "score", "severity", "explanation"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.assign(evidence="{}", detector="d", updates=1, updated_at=T0 + 100)


def _totals(rows: list[tuple]) -> pd.DataFrame:
    """ResultReader.host_totals()."""
    columns = ["host", "packets_out", "bytes_out", "packets_in", "bytes_in", "first_window", "last_window"]
    return pd.DataFrame(rows, columns=columns)


def _flows(rows: list[tuple]) -> pd.DataFrame:
    """ResultReader.search_flows(): conn.log records with the flow schema's dtypes."""
    frame = empty_flows()
    base = {c: None for c in frame.columns}
    records = []
    for i, (ts, orig, resp, port, state) in enumerate(rows):
        records.append(
            {
                **base,
                "ts": ts,
                "uid": f"C{i}",
                "orig_h": orig,
                "orig_p": 40000 + i,
                "resp_h": resp,
                "resp_p": port,
                "proto": "tcp",
                "duration": 0.5,
                "orig_bytes": 0,
                "resp_bytes": 0,
                "conn_state": state,
                "history": "S",
                "orig_pkts": 1,
                "orig_ip_bytes": 44,
                "resp_pkts": 0,
                "resp_ip_bytes": 0,
                "last_ts": ts + 0.5,
            }
        )
    return pd.DataFrame(records).astype(frame.dtypes.to_dict())


ALERTS = _alerts(
    [
        ("a1", "port_scan", SCANNER, TARGET, T0, T0 + 5, 85.0, "high", "scan"),
        ("a2", "brute_force", CLIENT, f"{TARGET},{SCANNER}", T0, T0 + 9, 95.0, "critical", "ftp"),
        ("a3", "anomaly", SCANNER, TARGET, T0, T0 + 9, 45.0, "medium", "odd"),
    ]
)


def test_alert_rows_carry_the_status_from_acknowledgements_and_the_allow_list():
    acknowledged = {"a1": T0 + 200, "a2": T0 + 50}  # a2 was updated (T0 + 100) after its acknowledgement
    rows = alert_rows(ALERTS, acknowledged, [AllowEntry("kind", kind="anomaly")])

    assert [(r["id"], r["status"]) for r in rows] == [("a1", ACKNOWLEDGED), ("a2", UPDATED), ("a3", ALLOW_LISTED)]
    assert rows[1]["victims"] == f"{TARGET}, {SCANNER}"
    assert rows[0]["start"] == "2010-07-04 20:24:16"
    assert alert_rows(ALERTS, {}, [])[0]["status"] == NEW


def test_alert_rows_of_one_host_say_its_role():
    rows = alert_rows(ALERTS, {}, [], host=SCANNER)

    assert [(r["id"], r["role"]) for r in rows] == [("a1", "attacker"), ("a2", "victim"), ("a3", "attacker")]
    assert alert_rows(ALERTS, {}, [], host="10.1.1.1") == []


def test_the_threat_score_is_the_highest_attacker_score_without_allow_listed_alerts():
    totals = _totals(
        [
            (SCANNER, 1994, 115652, 17, 1020, T0, T0 + 20),
            (TARGET, 17, 1020, 1994, 115652, T0, T0 + 20),
            (CLIENT, 5, 300, 5, 300, T0, T0),
        ]
    )

    rows = host_rows(totals, ALERTS, [])
    assert [(r["host"], r["threat"], r["severity"], r["alerts"], r["targeted"]) for r in rows] == [
        (CLIENT, 95.0, "critical", 1, 0),
        (SCANNER, 85.0, "high", 2, 1),
        (TARGET, 0.0, "", 0, 3),  # a victim only: no threat of its own
    ]
    assert rows[1]["bytes_out"] == 115652 and rows[1]["first_seen"] == "2010-07-04 20:24:16"

    allow_scan = [AllowEntry("pair", attacker=SCANNER, victim=TARGET)]
    rows = {r["host"]: r["threat"] for r in host_rows(totals, ALERTS, allow_scan)}
    assert rows[SCANNER] == 0.0  # both of its alerts are against the allow-listed pair


def test_flow_rows_show_times_in_utc_and_nulls_as_empty_cells():
    (row,) = flow_rows(_flows([(T0, SCANNER, TARGET, 22, "S0")]))

    assert row["ts"] == "2010-07-04 20:24:16.274"
    assert (row["orig_h"], row["resp_h"], row["resp_p"], row["conn_state"]) == (SCANNER, TARGET, 22, "S0")
    assert row["service"] == ""
    json.dumps(row)  # only plain values reach the browser


@pytest.mark.parametrize(
    ("inputs", "search", "problems"),
    [
        ((None, None, None, None, None, None), FlowSearch(), []),
        (
            (" 10.0.0.1 ", "22", "ssh", ["REJ", "S0"], "2010-07-04 20:24:16", "1278275079"),
            FlowSearch("10.0.0.1", 22, "ssh", ("REJ", "S0"), 1278275056.0, 1278275079.0),
            [],
        ),
        (("10.0.0.*", "", "", [], "", ""), FlowSearch(ip="10.0.0.*"), []),
        (
            ("10.0.0", "70000", None, None, "yesterday-ish", None),
            FlowSearch(),
            [
                "'10.0.0' is not an IP address (end it with * to match a prefix)",
                "port '70000' is not a number from 0 to 65535",
                "from: 'yesterday-ish' is not a time: use YYYY-MM-DD HH:MM:SS (UTC)",
            ],
        ),
    ],
)
def test_the_flow_search_reads_the_inputs_and_names_what_it_ignored(inputs, search, problems):
    assert flow_search(*inputs) == (search, problems)


def test_times_are_utc_unless_they_say_otherwise():
    assert parse_time("2010-07-04 20:24:16") == 1278275056.0
    assert parse_time("2010-07-04T22:24:16+02:00") == 1278275056.0
    assert parse_time("1278275056.5") == 1278275056.5


def test_a_search_describes_itself_and_links_to_the_flows_page():
    search = FlowSearch("10.0.0.1", 22, None, ("REJ",), 1278275056.0, None)
    assert search.describe() == "with 10.0.0.1, port 22, state REJ, from 2010-07-04 20:24:16"
    assert search.conditions()["conn_states"] == ["REJ"]
    assert (
        flows_link(SCANNER, T0, T0 + 5)
        == "/flows?ip=172.16.0.8&start=2010-07-04+20%3A24%3A16&end=2010-07-04+20%3A24%3A22"
    )


def test_evidence_becomes_readable_key_value_text():
    evidence = json.dumps(
        {
            "distinct_ports": 1000,
            "unanswered_share": 0.996,
            "sample_ports": [1, 3, 4],
            "peer": {"host": "<b>x</b>", "seen": True},
            "examples": [{"uri": "/a"}, {"uri": "/b"}],
            "uris": ["/x?a=1,2", "/y"],
            "nothing": None,
        }
    )

    assert fmt.evidence_items(evidence) == [
        ("distinct ports", "1000"),
        ("unanswered share", "0.996"),
        ("sample ports", "1, 3, 4"),
        ("peer.host", "<b>x</b>"),  # stays text: the page shows it with React's escaping
        ("peer.seen", "yes"),
        ("examples[0].uri", "/a"),
        ("examples[1].uri", "/b"),
        ("uris", "/x?a=1,2\n/y"),  # text one per line: it may hold commas itself
        ("nothing", "none"),
    ]
    assert fmt.evidence_items("not json") == [("evidence", "not json")]
    assert fmt.evidence_items("") == []


def test_the_alert_timeline_draws_flows_per_state_over_the_alert_span():
    flows = _flows(
        [(T0, SCANNER, TARGET, 21, "SF"), (T0 + 1, SCANNER, TARGET, 21, "SF"), (T0 + 2, SCANNER, TARGET, 22, "REJ")]
    )

    fig = alert_timeline_figure(flows, T0, T0 + 5)

    assert sorted(t.name for t in fig.data) == ["REJ", "SF"]
    sf = next(t for t in fig.data if t.name == "SF")
    assert list(sf.y) == ["21", "21"]  # few ports: one category row each
    assert fig.layout.yaxis.type == "category"
    (span,) = fig.layout.shapes
    assert pd.Timestamp(span.x0) == pd.Timestamp(T0, unit="s", tz="UTC")


def test_the_alert_timeline_of_a_scan_uses_a_numeric_port_axis_and_escapes_hover_text():
    flows = _flows([(T0 + i / 100, "<img src=x>", TARGET, port, "S0") for i, port in enumerate(range(1, 200))])

    fig = alert_timeline_figure(flows, T0, T0 + 2)

    (trace,) = fig.data
    assert fig.layout.yaxis.type is None
    assert trace.customdata[0][0] == "&lt;img src=x&gt;"


def test_host_traffic_has_a_bar_pair_per_window_and_an_empty_state():
    windows = pd.DataFrame(
        {
            "window_start": [T0, T0 + 5],
            "packets_out": [973, 1021],
            "bytes_out": [56434, 59218],
            "packets_in": [9, 2],
            "bytes_in": [540, 120],
        }
    )
    sent, received = host_traffic_figure(windows).data
    assert list(sent.y) == [56434, 59218] and list(received.customdata) == [9, 2]

    empty = host_traffic_figure(windows.iloc[0:0], empty_message="Waiting for packets.")
    assert empty.layout.annotations[0].text == "Waiting for packets."
    assert "No flows" in alert_timeline_figure(empty_flows(), T0, T0 + 1).layout.annotations[0].text


def _grids(component: object) -> list[AgGrid]:
    if isinstance(component, AgGrid):
        return [component]
    children = getattr(component, "children", None)
    children = children if isinstance(children, list) else [children]
    return [grid for child in children if child is not None for grid in _grids(child)]


def test_every_grid_keeps_the_users_sort_and_filter_and_names_its_column_types(tmp_path):
    """The grids start empty; a column type left to AG Grid to infer waits for the first rows and a filter
    restored before them is dropped (the filter lost on coming back to a page)."""
    create_app(store_url(tmp_path))  # registers the pages
    grids = [grid for page in dash.page_registry.values() for grid in _grids(page["layout"]())]
    assert len(grids) == 9  # overview 1, alerts 2, hosts 5, flows 1
    for grid in grids:
        filtering = grid.defaultColDef["filter"]
        assert grid.persistence and grid.persistence_type == "memory", grid.id
        assert set(grid.persisted_props) == ({"columnState", "filterModel"} if filtering else {"columnState"}), grid.id
        assert grid.defaultColDef["cellDataType"] is False, grid.id
        types = {column["cellDataType"] for column in grid.columnDefs}
        assert types <= {"text", "number", "dateTimeString"}, grid.id
