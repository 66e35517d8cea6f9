"""The store's per-window tables (traffic by second, protocol mix, DNS names per host) against pandas' group-by,
on a small hand-built packet table with missing keys."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from builders import packets as packet_table

from traffic_analyzer.distinct import count_by
from traffic_analyzer.records.packets import TEXT
from traffic_analyzer.records.window import dns_counts

pytestmark = pytest.mark.unit


def test_count_by_is_a_sorted_group_by_that_skips_missing_keys():
    host = pd.Series(["10.0.0.2", "10.0.0.1", None, "10.0.0.2", "10.0.0.1", "10.0.0.2"], dtype=TEXT)
    port = pd.Series([53, 80, 80, 53, pd.NA, 443], dtype="Int32")
    size = np.array([100, 200, 300, 400, 500, 600], dtype=np.float64)
    got = count_by({"host": host, "port": port}, "packets", {"bytes": size})
    frame = pd.DataFrame({"host": host, "port": port, "size": size})
    want = frame.groupby(["host", "port"], sort=True)["size"].agg(["size", "sum"]).reset_index()
    assert got["host"].tolist() == want["host"].tolist() == ["10.0.0.1", "10.0.0.2", "10.0.0.2"]
    assert got["port"].tolist() == want["port"].tolist() == [80, 53, 443]
    assert got["packets"].tolist() == want["size"].tolist() == [1, 2, 1]
    assert got["bytes"].tolist() == want["sum"].tolist() == [200, 500, 600]
    assert got["bytes"].dtype == np.int64 and str(got["host"].dtype) == str(host.dtype)


def test_count_by_of_nothing_is_an_empty_frame_with_the_columns():
    got = count_by({"second": pd.Series([], dtype="int64")}, "packets", {"bytes": np.zeros(0)})
    assert list(got.columns) == ["second", "packets", "bytes"] and got.empty


def test_dns_counts_count_questions_per_host_and_name_not_answers():
    packets = packet_table(
        [
            {"src_ip": "10.0.0.9", "dns_qname": "b.example", "dns_response": False},
            {"src_ip": "10.0.0.9", "dns_qname": "a.example", "dns_response": False},
            {"src_ip": "10.0.0.9", "dns_qname": "b.example", "dns_response": False},
            {"src_ip": "10.0.0.53", "dns_qname": "b.example", "dns_response": True},
            {"src_ip": "10.0.0.8", "dns_qname": "a.example"},  # response unknown: counted as asked
        ]
    )
    counts = dns_counts(packets)
    assert counts.values.tolist() == [
        ["10.0.0.8", "a.example", 1],
        ["10.0.0.9", "a.example", 1],
        ["10.0.0.9", "b.example", 2],
    ]
