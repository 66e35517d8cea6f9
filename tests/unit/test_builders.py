"""The hand-built tables have exactly the schema the pipeline's tables have, so rule tests see what detectors see."""

from __future__ import annotations

import pytest
from builders import arp, dns_answer, flow, flows, packets, tcp, window

from traffic_analyzer.records.flows import empty_flows
from traffic_analyzer.records.packets import empty_packets

pytestmark = pytest.mark.unit


def test_packets_have_the_packet_schema_with_nulls_for_unnamed_columns():
    table = packets([tcp(1.0, "10.0.0.1", "10.0.0.2", 80), arp(2.0, 1, "02:00:00:00:00:01", "10.0.0.1", "10.0.0.9")])
    assert table.dtypes.to_dict() == empty_packets().dtypes.to_dict()
    assert table["dns_qname"].isna().all() and table["src_port"].isna().tolist() == [False, True]


def test_flows_have_the_flow_columns_and_derive_uid_and_last_ts():
    table = flows([flow(1.0, "10.0.0.1", "10.0.0.2", 80, duration=2.5)])
    assert table.dtypes.to_dict() == empty_flows().dtypes.to_dict()
    assert table["last_ts"].tolist() == [3.5] and table["uid"].notna().all()


def test_unknown_columns_are_refused():
    with pytest.raises(KeyError, match="dns_name"):
        packets([{"ts": 1.0, "dns_name": "example.com"}])


def test_window_spans_its_rows():
    w = window([dns_answer(5.0, "10.0.0.53", "10.0.0.1", "example.com")], [flow(1.0, "10.0.0.1", "10.0.0.2", 80)])
    assert (w.start, w.end) == (1.0, 5.0)
    assert "10.0.0.53" in w.host_features.index
