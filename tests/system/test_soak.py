"""The soak script, shortened: a minute of live capture with flows churning keeps memory and files flat."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from soak import soak, trend  # noqa: E402


@pytest.mark.live
@pytest.mark.skipif(os.geteuid() != 0, reason="namespaces and live capture need root")
@pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 (ip) is not installed; ./setup.sh --dev installs it")
def test_a_minute_of_churning_flows_keeps_memory_and_open_files_flat():
    samples, summary = soak(minutes=1, interval_s=5, pps=500, backend=None)
    figures = trend(samples)
    assert figures["samples"] >= 8
    assert figures["open_files_max"] - figures["open_files_min"] <= 2, figures  # nothing leaks a file
    assert figures["analyzer_rss_max_mb"] - samples[2].analyzer_rss_mb < 100, figures
    assert figures["windows"] >= 8 and summary["packets"] > 10_000 and summary["flows"] > 500, (figures, summary)
    assert summary["alerts"] == [], "benign soak traffic raised an alert"
