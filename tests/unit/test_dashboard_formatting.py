"""How the dashboard turns store values (NULLs included) into the strings it shows."""

from __future__ import annotations

import math

import pytest

from traffic_analyzer.dashboard import formatting as fmt

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("missing", [None, math.nan, float("nan")])
def test_nulls_read_through_pandas_show_as_unknown(missing):
    assert fmt.count(missing) == "unknown"
    assert fmt.size(missing) == "unknown"
    assert fmt.duration(missing) == "unknown"
    assert fmt.timestamp(missing) == "unknown"


def test_counts_sizes_and_durations():
    assert fmt.count(2011) == "2,011"
    assert fmt.count(0) == "0"
    assert fmt.size(999) == "999 B"
    assert fmt.size(116672) == "116.7 kB"
    assert fmt.size(3_500_000_000) == "3.5 GB"
    assert fmt.duration(0.42) == "0.4 s"
    assert fmt.duration(90) == "1.5 min"
    assert fmt.duration(5400) == "1.5 h"
    assert fmt.duration(3 * 86400) == "3 days"


def test_timestamps_are_utc_and_sort_as_text():
    assert fmt.timestamp(1278275056.27487) == "2010-07-04 20:24:16"
    assert fmt.timestamp(9.5) < fmt.timestamp(10.5)


@pytest.mark.parametrize(
    ("model", "shown"),
    [
        ({"status": "none"}, "no anomaly model"),
        ({}, "no anomaly model"),
        ({"status": "training"}, "training"),
        (
            {"status": "trained", "trained_on": "benign.pcap", "trained_at": 1278275056.0, "threshold": 0.61234},
            "trained on benign.pcap at 2010-07-04 20:24:16 UTC (threshold 0.612)",
        ),
        (
            {"status": "trained", "trained_on": "baseline 600 s", "trained_at": "2024-05-01"},
            "trained on baseline 600 s at 2024-05-01",
        ),
    ],
)
def test_model_status(model, shown):
    assert fmt.model_status(model) == shown
