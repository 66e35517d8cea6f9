"""Flow hashes from raw frame bytes: the live reader samples flows with them before decoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from traffic_analyzer.capture.fast_pcap import _frames, _open_reader
from traffic_analyzer.capture.frame_hash import frame_flow_hash
from traffic_analyzer.capture.sampling import flow_hash, kept_by_hash
from traffic_analyzer.packets.decode_batch import FrameDecoder

DATA = Path(__file__).parents[1] / "data"


def hashes_and_table(path: Path) -> tuple[np.ndarray | None, pd.DataFrame]:
    with path.open("rb") as fh:
        reader = _open_reader(fh, path)
        decoder, hashes, tables = FrameDecoder(), [], []
        for chunk, records, _ in reader.chunks(64 * 2**20):
            frames = _frames(chunk, records)
            hashes.append(frame_flow_hash(frames))
            tables.append(decoder.table(frames, records.ts))
    if any(h is None for h in hashes):
        return None, pd.concat(tables, ignore_index=True)
    return np.concatenate(hashes), pd.concat(tables, ignore_index=True)


@pytest.mark.parametrize(
    "name",
    [
        "nmap-syn-scan.pcapng",  # TCP, both directions
        "ftp-bruteforce.pcap",
        "ddos-snmp-amplification.pcapng",  # UDP
        "arp-spoof-mitm.pcapng",  # ARP: by MAC pair
        "benign-msteams-call.pcap",  # UDP media, IPv6 and multicast
        "icmp-tunnel-ssh.pcap",
    ],
)
def test_a_flow_gets_one_hash_in_both_directions(pcaps, name):
    hashes, table = hashes_and_table(pcaps / name)
    assert hashes is not None and len(hashes) == len(table)
    pairs = pd.DataFrame({"flow": flow_hash(table), "frame": hashes})  # the table's flow identity
    per_flow = pairs.groupby("flow")["frame"].nunique()
    assert (per_flow == 1).all()  # never split: a kept flow keeps every packet
    per_hash = pairs.groupby("frame")["flow"].nunique()
    assert (per_hash == 1).mean() > 0.99  # and distinct flows stay apart


def test_a_sample_keeps_about_its_share_of_flows_and_nests(pcaps):
    hashes, _ = hashes_and_table(pcaps / "syn-flood-spoofed.pcap")  # 37,669 flows
    flows = np.unique(hashes)
    quarter, eighth = kept_by_hash(flows, 0.25), kept_by_hash(flows, 0.125)
    assert 0.22 < quarter.mean() < 0.28 and 0.10 < eighth.mean() < 0.15
    assert not (eighth & ~quarter).any()  # what 1/8 keeps, 1/4 keeps too


def test_frames_that_are_not_ethernet_are_left_to_the_table():
    hashes, table = hashes_and_table(DATA / "tiny-sll.pcap")
    assert hashes is None and len(table)
