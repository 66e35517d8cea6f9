"""The packet table: one schema from every source and link type; pyshark and tshark agree."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import DATA

from traffic_analyzer.capture.pcap_file import PcapFileSource
from traffic_analyzer.capture.pyshark_fields import PysharkFileSource
from traffic_analyzer.records.packets import PACKET_SCHEMA


def read_all(source) -> pd.DataFrame:
    return pd.concat(list(source.batches()), ignore_index=True)


def test_schema_of_a_real_capture(pcaps):
    table = read_all(PcapFileSource(pcaps / "http-sqli-dvwa.pcapng", progress=False))
    assert list(table.columns) == list(PACKET_SCHEMA)
    assert dict(table.dtypes) == PACKET_SCHEMA
    assert len(table) == 35
    gets = table[table["http_method"] == "GET"]
    assert len(gets) == 3 and gets["http_uri"].str.contains("sqli").all()
    assert set(gets["src_ip"]) == {"10.2.2.101"} and set(gets["dst_port"]) == {80}


def test_dns_and_arp_fields(pcaps):
    dns = read_all(PcapFileSource(pcaps / "dns-tunnel-iodine.pcap", progress=False))
    queries = dns[dns["dns_response"] == False]  # noqa: E712
    assert (queries["dns_qtype"] == 10).all()  # iodine's NULL records
    assert queries["dns_qname"].str.endswith("pirate.sea").all()
    assert queries["dns_rcode"].isna().all()  # a query carries no response code: null, not a guess
    arp = read_all(PcapFileSource(pcaps / "arp-spoof-mitm.pcapng", progress=False))
    replies = arp[((arp["arp_op"] == 2) & (arp["arp_src_ip"] == "172.16.0.1")).fillna(False)]
    assert "00:25:b3:bf:91:ee" in set(replies["arp_src_mac"])
    assert arp.loc[arp["transport"] == "arp", "src_ip"].isna().all()


def test_icmp_error_keeps_the_outer_header(pcaps):
    udp_scan = read_all(PcapFileSource(pcaps / "nmap-udp-scan.pcap", progress=False))
    unreachable = udp_scan[udp_scan["icmp_type"] == 3]
    assert (unreachable["src_ip"] == "192.168.1.25").sum() == 991  # tshark -Y icmp.type==3 counts the same
    assert (unreachable["dst_ip"] == "192.168.1.10").sum() == 991
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
