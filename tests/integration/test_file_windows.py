"""file_windows: a file's chunks regrouped into analysis windows, whatever the chunk size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from traffic_analyzer.capture.fast_pcap import MAX_FRAME_BYTES, PCAP_HEADER_BYTES, FastPcapSource
from traffic_analyzer.pipeline import file_windows

SMALL_CHUNK = 2 * MAX_FRAME_BYTES  # the smallest chunk the reader takes: several chunks per capture


def windows(path, chunk_bytes: int, window_s: float = 5.0) -> list[pd.DataFrame]:
    return list(file_windows(FastPcapSource(path, progress=False, chunk_bytes=chunk_bytes).batches(), window_s))


def test_in_order_capture_gives_the_same_windows_in_small_chunks(pcaps):
    path = pcaps / "syn-flood-spoofed.pcap"  # 2.9 MB in time order: six chunks of 512 KiB
    whole, chunked = windows(path, 64 * 2**20), windows(path, SMALL_CHUNK)
    assert len(whole) == len(chunked) > 1
    for a, b in zip(whole, chunked, strict=True):
        assert_frame_equal(a, b)
    for w in whole:  # each window holds one 5 s slot of packet time
        assert len(np.unique(np.floor(w["ts"].to_numpy() / 5.0))) == 1


def twice(capture: Path, out: Path) -> Path:
    """A classic pcap followed by its own records again, as ``mergecap -a`` of two sensors' copies writes it (the
    public ftp-bruteforce.pcap is one such): the second copy is late by the capture's whole span."""
    data = capture.read_bytes()
    out.write_bytes(data + data[PCAP_HEADER_BYTES:])
    return out


@pytest.mark.parametrize("chunk_bytes", [SMALL_CHUNK, 64 * 2**20])
def test_every_packet_of_an_out_of_order_capture_is_analysed_once(pcaps, tmp_path, chunk_bytes):
    """Packets late by more than a window go into a window, never lost or doubled."""
    path = twice(pcaps / "ftp-bruteforce.pcap", tmp_path / "twice.pcap")
    every = pd.concat(list(FastPcapSource(path, progress=False).batches()), ignore_index=True)
    late = np.maximum.accumulate(every["ts"].to_numpy()) - every["ts"].to_numpy()
    assert late.max() > 5.0  # the premise: late by more than a window
    got = pd.concat(windows(path, chunk_bytes), ignore_index=True)
    key = ["ts", "length", "src_ip", "dst_ip", "src_port", "dst_port"]
    assert_frame_equal(
        got[key].sort_values(key).reset_index(drop=True), every[key].sort_values(key).reset_index(drop=True)
    )
