"""A --read run gives the same flows and alerts whichever reader decodes the file, and auto falls back to tshark.

The fast reader's packet table is compared column by column in test_fast_pcap.py; these tests check what
users see: the run's flows and alerts, through the real pipeline and the real command line.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pandas as pd
import pytest
from conftest import read_json, run_cli
from frame_bytes import SERVER, eth, ipv4, tcp

from traffic_analyzer.capture.fast_pcap import LINKTYPE_SCAN_BYTES, UnsupportedLinkTypeError
from traffic_analyzer.capture.file_reader import CaptureFileSource
from traffic_analyzer.errors import TruncatedCaptureError
from traffic_analyzer.pipeline import Analysis, default_detectors, file_windows

# Attacks of several kinds, small enough to read twice (tshark is the slow one).
AGREEMENT_FILES = [
    "nmap-syn-scan.pcapng",
    "dns-tunnel-iodine.pcap",
    "arp-spoof-mitm.pcapng",
    "exploitkit-cryptowall4-c2.pcapng",
    "ftp-bruteforce.pcap",
]
LINKTYPE_IEEE802_11 = 105  # a link type only tshark decodes


def run(path: Path, reader: str) -> tuple[pd.DataFrame, list[tuple]]:
    """Every flow (its last record) and every alert of one file, through the real pipeline."""
    analysis = Analysis(default_detectors(scan_min_ports=25, scan_window_s=60.0))
    records = []
    try:
        for packets in file_windows(CaptureFileSource(path, reader, progress=False).batches(), 5.0):
            records.append(analysis.process(packets, live=False)[0].flows)
    except TruncatedCaptureError:
        pass
    records.append(analysis.finish().flows)
    flows = pd.concat(records, ignore_index=True).drop_duplicates("uid", keep="last")
    alerts = sorted(
        (a.kind, a.attacker, tuple(a.victims), a.start, a.end, a.score) for a in analysis.book.alerts.values()
    )
    return flows.sort_values(["ts", "uid"]).reset_index(drop=True), alerts


@pytest.mark.parametrize("name", AGREEMENT_FILES)
def test_fast_and_tshark_readers_give_the_same_flows_and_alerts(pcaps, name):
    fast_flows, fast_alerts = run(pcaps / name, "fast")
    tshark_flows, tshark_alerts = run(pcaps / name, "tshark")
    assert fast_alerts == tshark_alerts
    assert len(fast_flows) > 0
    # service comes from tshark's last dissector name, which the fast reader matches on 99.8 % of packets.
    same = [c for c in fast_flows.columns if c != "service"]
    pd.testing.assert_frame_equal(fast_flows[same], tshark_flows[same])
    assert (fast_flows["service"].fillna("") == tshark_flows["service"].fillna("")).mean() > 0.9


def test_read_summary_says_which_reader_and_agrees(pcaps, tmp_path):
    capture = pcaps / "nmap-connect-scan.pcap"
    fast = read_json(tmp_path / "fast", capture)
    tshark = read_json(tmp_path / "tshark", capture, "--file-reader", "tshark")
    assert fast["source"] == f"file {capture} (fast)"
    assert tshark["source"] == f"file {capture} (tshark)"
    for key in ("packets", "bytes", "flows", "first_packet_ts", "last_packet_ts"):
        assert fast[key] == tshark[key], key

    def seen(summary: dict) -> list[tuple]:
        return [(a["kind"], a["attacker"], a["victims"], a["start"], a["end"], a["score"]) for a in summary["alerts"]]

    assert seen(fast) == seen(tshark) and [a[0] for a in seen(fast)] == ["port_scan"]


def wifi_frame(sport: int) -> bytes:
    """An 802.11 data frame (no FCS) carrying a TCP SYN to SERVER:80, wrapped in LLC/SNAP."""
    header = struct.pack("<HH", 0x0208, 0) + bytes.fromhex("020000000050020000000002020000000050") + b"\0\0"
    return header + bytes.fromhex("aaaa03000000") + b"\x08\x00" + ipv4(tcp(flags=0x02, sport=sport, dport=80))


def write_wifi_pcap(path: Path, frames: int) -> Path:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, LINKTYPE_IEEE802_11)]
    for i in range(frames):
        frame = wifi_frame(40000 + i)
        out.append(struct.pack("<IIII", 1_700_000_000, 1000 * i, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))
    return path


def test_auto_reads_an_unknown_link_type_with_tshark(tmp_path):
    path = write_wifi_pcap(tmp_path / "wifi.pcap", frames=30)
    source = CaptureFileSource(path, "auto", progress=False)
    flows, _ = run(path, "auto")
    list(source.batches())
    assert source.used == "tshark" and source.stats.source.endswith("(tshark)")
    assert source.stats.packets == 30
    assert len(flows) == 30 and set(flows["resp_h"]) == {SERVER} and set(flows["conn_state"]) == {"S0"}


def test_fast_reader_refuses_an_unknown_link_type_in_one_line(tmp_path):
    path = write_wifi_pcap(tmp_path / "wifi.pcap", frames=3)
    with pytest.raises(UnsupportedLinkTypeError):
        CaptureFileSource(path, "fast", progress=False).check()
    proc = run_cli("--read", str(path), "--no-dashboard", "--file-reader", "fast", "--data-dir", str(tmp_path / "d"))
    assert proc.returncode != 0
    assert "link type 105" in proc.stderr and "tshark" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def pcapng_block(block_type: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", block_type, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


def packet_block(interface: int, stamp_us: int, frame: bytes) -> bytes:
    """An enhanced packet block of the whole ``frame``."""
    header = struct.pack("<IIIII", interface, stamp_us >> 32, stamp_us & 0xFFFFFFFF, len(frame), len(frame))
    return pcapng_block(6, header + frame)


def test_auto_switches_to_tshark_when_a_late_interface_is_unknown(tmp_path):
    """pcapng may declare an interface anywhere: the packets read so far are kept, tshark reads the rest."""
    segment = bytes(1400)  # full-sized segments: past the first megabyte check() looks at in few frames
    frames = [eth(ipv4(tcp(segment, seq=1 + i * len(segment)))) for i in range(2 * LINKTYPE_SCAN_BYTES // len(segment))]
    blocks = [pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))]
    blocks.append(pcapng_block(1, struct.pack("<HHI", 1, 0, 262144)))
    sec, count = 1_700_000_000, len(frames)
    blocks += [packet_block(0, sec * 1_000_000 + 100 * i, frame) for i, frame in enumerate(frames)]
    blocks.append(pcapng_block(1, struct.pack("<HHI", LINKTYPE_IEEE802_11, 0, 262144)))
    blocks += [packet_block(1, (sec + 1) * 1_000_000 + i, wifi_frame(41000 + i)) for i in range(5)]
    path = tmp_path / "mixed.pcapng"
    path.write_bytes(b"".join(blocks))

    source = CaptureFileSource(path, "auto", progress=False)
    source.check()
    assert source.used == "fast"  # the unknown interface is past what check() reads
    table = pd.concat(list(source.batches()), ignore_index=True)
    assert source.used == "tshark" and source.stats.packets == count + 5 == len(table)
    whole = pd.concat(list(CaptureFileSource(path, "tshark", progress=False).batches()), ignore_index=True)
    columns = ["ts", "length", "src_ip", "dst_ip", "src_port", "dst_port", "tcp_flags"]
    pd.testing.assert_frame_equal(table[columns], whole[columns])
    assert table["dst_port"].iloc[-5:].tolist() == [80] * 5
