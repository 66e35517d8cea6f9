"""Flows against what Zeek's conn.log documents, on real captures and the tiny hand-made one."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import DATA
from detection_helpers import open_ports

from traffic_analyzer.capture.pcap_file import PcapFileSource
from traffic_analyzer.features.flow_packets import flow_packets
from traffic_analyzer.features.flows import FlowTracker
from traffic_analyzer.records.flows import FLOW_COLUMNS
from traffic_analyzer.records.packets import PACKET_SCHEMA, TCP_ACK, TCP_RST, TCP_SYN, empty_packets


def flows_of(path, chunk_packets: int = 100_000) -> pd.DataFrame:
    tracker, done = FlowTracker(), []
    for batch in PcapFileSource(path, progress=False, chunk_packets=chunk_packets).batches():
        done.append(tracker.update(batch, now=float(batch["ts"].max())).finished)
    done.append(tracker.flush())
    return pd.concat(done, ignore_index=True).sort_values(["ts", "uid"]).reset_index(drop=True)


def test_tiny_conversation_matches_zeek():
    raw = flows_of(DATA / "tiny-ethernet.pcap")
    assert list(raw.columns) == list(FLOW_COLUMNS) and len(raw) == 4
    flows = raw.set_index("resp_p")
    http = flows.loc[80]
    # Zeek: a normal established and closed connection is SF; the server never sent a pure ACK (no "a").
    assert (http["conn_state"], http["history"]) == ("SF", "ShADdFf")
    assert (http["orig_h"], http["resp_h"], http["orig_p"]) == ("10.0.0.2", "10.0.0.80", 40001)
    assert (http["orig_pkts"], http["resp_pkts"], http["orig_bytes"], http["resp_bytes"]) == (5, 3, 66, 43)
    assert http["service"] == "http"
    refused = flows.loc[81]
    assert (refused["conn_state"], refused["history"]) == ("REJ", "Sr")  # attempt rejected
    dns = flows.loc[53]
    assert (dns["proto"], dns["conn_state"], dns["history"], dns["service"]) == ("udp", "SF", "Dd", "dns")
    ping = flows[flows["proto"] == "icmp"].iloc[0]
    assert (ping.name, ping["orig_p"], ping["conn_state"], ping["orig_pkts"], ping["resp_pkts"]) == (0, 8, "OTH", 1, 1)


def scan_flows(flows: pd.DataFrame, row: pd.Series) -> pd.DataFrame:
    return flows[(flows["orig_h"] == row["attacker"]) & (flows["resp_h"] == row["victim"])]


def test_syn_scan_probes_are_s0_rej_or_half_open(pcaps, labels):
    row = labels.set_index("file").loc["nmap-syn-scan.pcapng"]
    scan = scan_flows(flows_of(pcaps / "nmap-syn-scan.pcapng"), row)
    assert scan["resp_p"].nunique() == 1000
    states = scan["conn_state"].value_counts().to_dict()
    # Closed ports answer RST (REJ); open ports answer SYN-ACK that nmap never completes: left half-open (S1
    # "Sh"), or reset by the scanner's kernel (RSTO "ShR").
    assert states.get("REJ", 0) > 0 and set(states) <= {"S0", "REJ", "S1", "RSTO"}
    half_open = scan[scan["conn_state"].isin(["S1", "RSTO"])]
    assert set(half_open["resp_p"]) == open_ports(row) and set(half_open["history"]) <= {"Sh", "ShR"}
    assert (scan.loc[scan["conn_state"] == "S0", "history"] == "S").all()


def test_made_syn_scan_probes_are_rej_or_reset_by_the_scanner(syn_scan):
    """The made nmap -sS (in every clone): closed ports answer RST-ACK, open ones SYN-ACK that the scanner resets."""
    flows = flows_of(syn_scan.path)
    scan = flows[(flows["orig_h"] == syn_scan.label["attacker"]) & (flows["resp_h"] == syn_scan.label["victim"])]
    assert len(scan) == len(flows) and scan["resp_p"].nunique() == 1000
    assert set(scan.loc[scan["conn_state"] == "REJ", "history"]) == {"Sr"}
    reset = scan[scan["conn_state"] != "REJ"]
    assert set(reset["conn_state"]) == {"RSTO"} and set(reset["history"]) == {"ShR"}
    assert set(reset["resp_p"]) == {22, 80, 139, 445}


def test_connect_scan_closed_ports_are_rej(pcaps, labels):
    row = labels.set_index("file").loc["nmap-connect-scan.pcap"]
    packets = pd.concat(list(PcapFileSource(pcaps / "nmap-connect-scan.pcap", progress=False).batches()))
    from_victim = packets[(packets["src_ip"] == row["victim"]) & (packets["dst_ip"] == row["attacker"])]
    rst_acks = (from_victim["tcp_flags"] & (TCP_RST | TCP_ACK | TCP_SYN) == TCP_RST | TCP_ACK).sum()
    scan = flows_of(pcaps / "nmap-connect-scan.pcap")
    scan = scan[scan["orig_h"] == row["attacker"]]
    assert rst_acks > 0 and (scan["conn_state"] == "REJ").sum() == rst_acks  # one REJ per closed port's RST-ACK
    assert set(scan.loc[scan["conn_state"] == "RSTO", "resp_p"]) <= open_ports(row)


def test_ftp_brute_force_connections_close_normally(pcaps, labels):
    row = labels.set_index("file").loc["ftp-bruteforce.pcap"]
    flows = flows_of(pcaps / "ftp-bruteforce.pcap")
    ftp = flows[(flows["resp_p"] == 21) & (flows["orig_h"] == row["attacker"])]
    assert len(ftp) > 0 and (ftp["conn_state"] == "SF").mean() > 0.95
    assert ftp["service"].eq("ftp").mean() > 0.95


def test_udp_scan_probes_without_reply_are_s0(pcaps, labels):
    row = labels.set_index("file").loc["nmap-udp-scan.pcap"]
    flows = flows_of(pcaps / "nmap-udp-scan.pcap")
    udp = flows[(flows["proto"] == "udp") & (flows["orig_h"] == row["attacker"])]
    assert udp["resp_p"].nunique() > 990
    assert (udp["conn_state"] == "S0").mean() > 0.95


@pytest.mark.parametrize(
    "name",
    [
        "nmap-connect-scan.pcap",
        "benign-web-browsing-small.cap",
        "c2-strrat-beacon.pcap",
        "ssh-bruteforce-sshguess.pcap",  # in the repository: runs in every clone
        "benign-android-mixed.pcap",
    ],
)
def test_batch_size_does_not_change_flows(pcaps, name):
    whole = flows_of(pcaps / name).drop(columns="uid")
    pieces = flows_of(pcaps / name, chunk_packets=333).drop(columns="uid")
    key = ["ts", "orig_h", "orig_p", "resp_h", "resp_p", "proto"]
    pd.testing.assert_frame_equal(
        whole.sort_values(key).reset_index(drop=True), pieces.sort_values(key).reset_index(drop=True)
    )


def test_long_connection_spans_windows(pcaps, labels):
    row = labels.set_index("file").loc["c2-strrat-beacon.pcap"]
    packets = pd.concat(list(PcapFileSource(pcaps / "c2-strrat-beacon.pcap", progress=False).batches()))
    span_s = packets["ts"].max() - packets["ts"].min()
    flows = flows_of(pcaps / "c2-strrat-beacon.pcap", chunk_packets=10)
    c2 = flows[flows["resp_h"] == row["attacker"]]
    assert len(c2) == 1  # one persistent connection, however the packets were batched
    assert c2.iloc[0]["orig_h"] == row["victim"] and c2.iloc[0]["duration"] > 0.9 * span_s > 60


def _udp_packets(rows: list[tuple[float, str, str, int, int]]) -> pd.DataFrame:
    """A packet table of UDP datagrams (ts, src, dst, sport, dport), every other field null."""
    table = pd.DataFrame(
        {
            "ts": [r[0] for r in rows],
            "length": 60,
            "src_ip": [r[1] for r in rows],
            "dst_ip": [r[2] for r in rows],
            "src_port": [r[3] for r in rows],
            "dst_port": [r[4] for r in rows],
            "transport": "udp",
            "ip_len": 46,
            "payload_len": 18,
        }
    )
    return pd.concat([empty_packets(), table], ignore_index=True).astype(PACKET_SCHEMA)


def _keys_of(rows: list[tuple[float, str, str, int, int]]) -> list[int]:
    return [int(k) for k in flow_packets(_udp_packets(rows))["key"]]


def test_two_open_flows_whose_keys_overflow_a_range_keep_their_state():
    """Regression (iodine-bitflips.pcap): pandas' set_index made the index of two open flows a
    RangeIndex stepping from one 64-bit key to the other (any two numbers are evenly spaced);
    after a batch that continued only the first flow, the range's end passed 2**63, the next
    selection overflowed, the state lost a row and pd.concat raised a ValueError."""
    in_int64 = range(-(2**63), 2**63)
    firsts = [(0.0, "10.0.0.1", "10.0.0.53", p, 53) for p in range(30000, 30200)]
    seconds = [(0.0, "10.0.0.2", "10.0.0.53", p, 53) for p in range(40000, 40200)]
    one, two = next(
        (a[1:], b[1:])
        for a, ka in zip(firsts, _keys_of(firsts), strict=True)
        for b, kb in zip(seconds, _keys_of(seconds), strict=True)
        if 2 * kb - ka in in_int64 and 2 * ka - kb not in in_int64
    )
    tracker = FlowTracker()
    tracker.update(_udp_packets([(1.0, *one), (1.1, *two)]), now=1.1)
    for n in range(2, 5):  # only the first flow goes on
        active = tracker.update(_udp_packets([(float(n), *one)]), now=float(n)).active
        assert tracker.open_flows == 2 and len(active) == 1
    tracker.update(_udp_packets([(5.0, *two), (5.1, "10.0.0.3", "10.0.0.53", 50000, 53)]), now=5.1)
    assert len(set(tracker._state["key"].tolist())) == tracker.open_flows == 3
    flows = tracker.flush().set_index("orig_h").sort_index()
    assert flows.index.tolist() == ["10.0.0.1", "10.0.0.2", "10.0.0.3"] and flows["uid"].is_unique
    assert flows["orig_pkts"].tolist() == [4, 2, 1]


def test_a_packet_without_a_destination_address_makes_no_flow():
    """A missing address must not take another address's place in the flow key."""
    packets = _udp_packets([(1.0, "10.0.0.1", "10.0.0.53", 40000, 53), (1.1, "10.0.0.9", None, 40000, 53)])
    flows = FlowTracker().update(packets).active
    assert flows[["orig_h", "resp_h"]].values.tolist() == [["10.0.0.1", "10.0.0.53"]]
