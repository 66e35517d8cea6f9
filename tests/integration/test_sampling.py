"""Flow sampling: whole flows kept, nested rates, counts scaled back, and the rate controller."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from traffic_analyzer.capture.fast_pcap import FastPcapSource
from traffic_analyzer.capture.sampling import (
    MIN_KEEP_RATE,
    SamplingController,
    keep_mask,
    sampling_status,
    scale_counts,
)
from traffic_analyzer.capture.source import CaptureStats
from traffic_analyzer.pipeline import Analysis


def read(path) -> pd.DataFrame:
    return pd.concat(list(FastPcapSource(path, progress=False).batches()), ignore_index=True)


def flow_keys(p: pd.DataFrame) -> pd.Series:
    """Each packet's flow, direction-free, written out as text (independent of the sampler's hash)."""
    a = p["src_ip"].fillna(p["src_mac"]).astype(str) + ":" + p["src_port"].astype("string").fillna("-")
    b = p["dst_ip"].fillna(p["dst_mac"]).astype(str) + ":" + p["dst_port"].astype("string").fillna("-")
    lo, hi = np.minimum(a.to_numpy(dtype=object), b.to_numpy(dtype=object)), np.maximum(a, b)
    return p["ip_proto"].astype("string").fillna("-") + "|" + pd.Series(lo, index=p.index) + "|" + hi


def test_a_sample_keeps_whole_flows_and_rates_nest(pcaps):
    packets = read(pcaps / "benign-android-mixed.pcap")
    keys = flow_keys(packets)
    quarter, half = keep_mask(packets, 0.25), keep_mask(packets, 0.5)
    per_flow = pd.DataFrame({"key": keys, "kept": quarter}).groupby("key")["kept"].agg(["all", "any"])
    assert len(per_flow) > 50
    assert (per_flow["all"] == per_flow["any"]).all()  # no flow is cut: all its packets, both ways, or none
    assert 0 < per_flow["all"].sum() < len(per_flow)
    assert not (quarter & ~half).any()  # a flow kept at 1/4 is kept at 1/2 too
    assert keep_mask(packets, 1.0).all()
    again = keep_mask(packets.iloc[::-1].reset_index(drop=True), 0.25)[::-1]
    assert (again == quarter).all()  # the choice depends on the flow only, not on the batch


def test_scaled_counts_of_a_sample_estimate_the_true_ones(pcaps):
    """37,669 spoofed flows at one victim: a 1/8 flow sample, scaled by 8, gives its packets within 3 %."""
    packets = read(pcaps / "syn-flood-spoofed.pcap")
    full, _ = Analysis(detectors=[]).process(packets, live=False)
    kept = packets[keep_mask(packets, 0.125)].reset_index(drop=True)
    sample, _ = Analysis(detectors=[]).process(kept, live=False)
    assert len(kept) < len(packets) / 6
    scale_counts(sample, 0.125)
    victim = full.hosts.sort_values("packets_in").iloc[-1]["host"]
    estimate = sample.hosts.set_index("host").loc[victim]
    truth = full.hosts.set_index("host").loc[victim]
    for column in ("packets_in", "bytes_in"):
        assert estimate[column] == pytest.approx(truth[column], rel=0.03)
    assert sample.traffic["packets"].sum() == pytest.approx(full.traffic["packets"].sum(), rel=0.03)
    assert sample.protocols["bytes"].sum() == pytest.approx(full.protocols["bytes"].sum(), rel=0.03)


def test_controller_samples_under_load_and_recovers():
    c = SamplingController()
    assert c.update(busy_s=1.0, window_s=5.0, captured_pps=1000) == 1.0  # 20 % busy: keep everything
    assert c.update(busy_s=20.0, window_s=5.0, captured_pps=100_000) == 0.125  # 4x over: aim for half a window
    assert c.update(busy_s=3.0, window_s=5.0, captured_pps=100_000) == 0.125  # 60 %: hold
    for _ in range(2):
        assert c.update(busy_s=0.5, window_s=5.0, captured_pps=10_000) == 0.125  # calm, but not for long yet
    assert c.update(busy_s=0.5, window_s=5.0, captured_pps=10_000) == 0.25  # calm three windows: twice the flows
    assert c.update(busy_s=500.0, window_s=5.0, captured_pps=10**7) == MIN_KEEP_RATE  # never below the floor
    quiet = SamplingController()
    assert quiet.update(busy_s=9.0, window_s=5.0, captured_pps=100) == 1.0  # a slow but nearly empty window


def test_controller_budget_follows_the_measured_analysis_speed():
    c = SamplingController()
    c.update(busy_s=2.0, window_s=5.0, captured_pps=2_000, analysed=10_000)  # 5,000 packets/s analysed
    assert c.budget(5.0) == pytest.approx(12_500)  # half a window's worth
    assert c.tighten() == 0.5 and c.tighten() == 0.25  # a flood within the window halves it at once
    assert SamplingController(enabled=False).budget(5.0) is None


def test_controller_caps_the_packet_rate_and_can_be_off():
    capped = SamplingController(max_pps=20_000)
    assert capped.update(busy_s=0.1, window_s=5.0, captured_pps=10_000) == 1.0
    assert capped.update(busy_s=0.1, window_s=5.0, captured_pps=150_000) == 0.125  # 150k / 8 < 20k
    off = SamplingController(enabled=False)
    assert off.update(busy_s=50.0, window_s=5.0, captured_pps=10**6) == 1.0


def test_sampling_shows_in_the_status():
    assert sampling_status(CaptureStats()) == ""
    assert "1 in 8 flows" in sampling_status(CaptureStats(sample_rate=0.125, sampled_out=10))
