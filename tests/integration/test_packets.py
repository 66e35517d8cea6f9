"""The packet table: one schema from every source and link type; pyshark and tshark agree."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from conftest import DATA
from detection_helpers import spoofer

from traffic_analyzer.capture.pcap_file import PcapFileSource
from traffic_analyzer.capture.pyshark_fields import PysharkFileSource
from traffic_analyzer.records.packets import PACKET_SCHEMA


def read_all(source) -> pd.DataFrame:
    return pd.concat(list(source.batches()), ignore_index=True)


def test_schema_of_a_real_capture(pcaps, labels):
    row = labels.set_index("file").loc["http-sqli-dvwa.pcapng"]
    table = read_all(PcapFileSource(pcaps / "http-sqli-dvwa.pcapng", progress=False))
    assert list(table.columns) == list(PACKET_SCHEMA)
    assert dict(table.dtypes) == PACKET_SCHEMA
    assert len(table) == len(read_all(PysharkFileSource(pcaps / "http-sqli-dvwa.pcapng")))  # every frame tshark sees
    gets = table[table["http_method"] == "GET"]
    requests = int(re.search(r"(\d+) GET requests", row["notes"])[1])
    assert len(gets) == requests and gets["http_uri"].str.contains("sqli").all()
    assert set(gets["src_ip"]) == {row["attacker"]} and set(gets["dst_port"]) == {80}


def test_dns_and_arp_fields(pcaps, labels):
    dns = read_all(PcapFileSource(pcaps / "dns-tunnel-iodine.pcap", progress=False))
    queries = dns[dns["dns_response"] == False]  # noqa: E712
    assert (queries["dns_qtype"] == 10).all()  # iodine's NULL records
    assert queries["dns_qname"].str.endswith("pirate.sea").all()
    assert queries["dns_rcode"].isna().all()  # a query carries no response code: null, not a guess
    mac, gateway = spoofer(labels.set_index("file").loc["arp-spoof-mitm.pcapng"])
    arp = read_all(PcapFileSource(pcaps / "arp-spoof-mitm.pcapng", progress=False))
    replies = arp[((arp["arp_op"] == 2) & (arp["arp_src_ip"] == gateway)).fillna(False)]
    assert mac in set(replies["arp_src_mac"])
    assert arp.loc[arp["transport"] == "arp", "src_ip"].isna().all()


def test_icmp_error_keeps_the_outer_header(pcaps, labels):
    row = labels.set_index("file").loc["nmap-udp-scan.pcap"]
    udp_scan = read_all(PcapFileSource(pcaps / "nmap-udp-scan.pcap", progress=False))
    probes = (udp_scan["transport"] == "udp") & (udp_scan["src_ip"] == row["attacker"])
    unreachable = udp_scan[udp_scan["icmp_type"] == 3]
    # From the scanned host to the scanner, as tshark's ip.src/ip.dst say: not the quoted datagram's addresses.
    answers = unreachable[unreachable["src_ip"] == row["victim"]]
    assert len(answers) > 0.9 * probes.sum()  # nearly every probed port is closed
    assert (answers["dst_ip"] == row["attacker"]).all()
    assert unreachable["src_port"].isna().all()  # the quoted UDP header is not this packet's port


@pytest.mark.parametrize(
    "name",
    [
        "tiny-ethernet.pcap",
        "tiny-ethernet.pcapng",
        "tiny-sll.pcap",
        "tiny-sll2.pcap",
        "tiny-rawip.pcap",
        "tiny-null.pcap",
    ],
)
def test_link_types_give_the_same_ip_table(name):
    reference = read_all(PcapFileSource(DATA / "tiny-ethernet.pcap", progress=False))
    table = read_all(PcapFileSource(DATA / name, progress=False))
    ip_cols = [
        "ts",
        "src_ip",
        "dst_ip",
        "ip_proto",
        "ttl",
        "ip_len",
        "src_port",
        "dst_port",
        "tcp_flags",
        "payload_len",
        "icmp_type",
        "dns_qname",
        "http_method",
        "http_host",
        "http_uri",
    ]
    ref_ip = reference[reference["src_ip"].notna()].reset_index(drop=True)
    got_ip = table[table["src_ip"].notna()].reset_index(drop=True)
    pd.testing.assert_frame_equal(got_ip[ip_cols], ref_ip[ip_cols])
    assert got_ip["http_host"].dropna().tolist() == ["tiny.example"]
    if name in ("tiny-rawip.pcap", "tiny-null.pcap"):
        assert table["src_mac"].isna().all()  # no link-layer addresses to report
    else:
        assert (table["src_mac"].dropna().isin(["02:00:00:00:00:02", "02:00:00:00:00:50"])).all()
        assert (table["transport"] == "arp").sum() == 2


@pytest.mark.parametrize(
    "name",
    [
        "nmap-syn-scan.pcapng",
        "dns-tunnel-dnscat2.pcap",
        "arp-spoof-mitm.pcapng",
        "http-sqli-dvwa.pcapng",
        "icmp-tunnel-ssh.pcap",
        "benign-msteams-call.pcap",
        "benign-tls-firefox.pcap",
    ],
)
def test_pyshark_and_tshark_backends_agree(pcaps, name):
    fast = read_all(PcapFileSource(pcaps / name, progress=False))
    reference = read_all(PysharkFileSource(pcaps / name))
    pd.testing.assert_frame_equal(fast, reference)
    assert len(fast) > 0


def test_tls_sni_is_read(pcaps):
    table = read_all(PcapFileSource(pcaps / "benign-tls-firefox.pcap", progress=False))
    assert table["tls_sni"].notna().any()
