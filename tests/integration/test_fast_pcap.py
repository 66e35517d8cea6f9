"""FastPcapSource gives the packet table of PcapFileSource (tshark): same columns, dtypes, values, nulls.

Every column is compared with the tshark path on the public captures, the tiny committed ones (all
link types) and a capture of hand-made edge cases. The columns listed in DIFFERING are where the
fast reader deliberately stops short of tshark; there the share of agreeing rows is asserted.
Hostile inputs (cut, damaged, bit-flipped, absurd lengths, DNS pointer loops...) may only raise
our CaptureError family, and every case is a fixed, bounded amount of work.
"""

from __future__ import annotations

import random
import socket
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import DATA, REPO_PCAPS, SHARED_PCAPS, PublicCaptures
from frame_bytes import CLIENT, MAC_A, MAC_B, dns_query, eth, ipv4, ipv6, labels, tcp, udp, write_pcap

from traffic_analyzer.capture.fast_pcap import MAX_FRAME_BYTES, FastPcapSource, UnsupportedLinkTypeError
from traffic_analyzer.capture.pcap_file import PcapFileSource
from traffic_analyzer.errors import CaptureError, TruncatedCaptureError
from traffic_analyzer.records.packets import PACKET_SCHEMA

# Column -> share of rows (over all public captures) that must agree with tshark, and why it is not 1.
DIFFERING: dict[str, float] = {
    # tshark's highest dissected protocol. Not reproduced: what a TLS handshake's certificates turn
    # into (X509CE, PKIX1*, OCSP...), the GSS-API payloads inside SMB/LDAP/Kerberos (SPNEGO, NTLMSSP),
    # dissectors tshark attaches to a conversation from another packet (RTCP after SDP, SNMP in some
    # ICMP quotes), and HTTP continuation heuristics on streams with lost segments.
    "protocol": 0.995,
    # IPv4 fragments are not reassembled: the fragment that completes a datagram shows no UDP/TCP
    # ports or payload length (tshark shows those of the reassembled datagram). One row in 115k.
    "src_port": 0.9999,
    "dst_port": 0.9999,
    "payload_len": 0.9999,
}
EXACT = [c for c in PACKET_SCHEMA if c not in DIFFERING]
SHARED_NAMES = [
    p.name for p in PublicCaptures(REPO_PCAPS, SHARED_PCAPS).iterdir() if p.suffix in (".pcap", ".pcapng", ".cap")
]
TINY_NAMES = sorted(p.name for p in DATA.glob("tiny-*.pcap*"))
SLOW_STATE_CAPTURES = [
    "ftp-bruteforce.pcap",
    "benign-msteams-call.pcap",
    "c2-empire-http-beacon.pcap",
    "c2-quasarrat.pcap",
]


def read_all(source) -> pd.DataFrame:
    return pd.concat(list(source.batches()), ignore_index=True)


def tables(path: Path, **fast_options) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(tshark table, fast table) of one capture."""
    return read_all(PcapFileSource(path, progress=False)), read_all(
        FastPcapSource(path, progress=False, **fast_options)
    )


def agreement(ref: pd.Series, got: pd.Series) -> np.ndarray:
    return ((ref == got).fillna(False) | (ref.isna() & got.isna())).to_numpy(dtype=bool)


@pytest.fixture(scope="session")
def shared_tables(pcaps: Path) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    return {name: tables(pcaps / name) for name in SHARED_NAMES}


@pytest.mark.parametrize("name", SHARED_NAMES)
def test_public_captures_give_tshark_columns(shared_tables, name):
    ref, got = shared_tables[name]
    assert list(got.columns) == list(PACKET_SCHEMA) and dict(got.dtypes) == PACKET_SCHEMA
    pd.testing.assert_frame_equal(got[EXACT], ref[EXACT])


def test_differing_columns_still_mostly_agree(shared_tables):
    ref = pd.concat([r for r, _ in shared_tables.values()], ignore_index=True)
    got = pd.concat([g for _, g in shared_tables.values()], ignore_index=True)
    rates = {c: agreement(ref[c], got[c]).mean() for c in DIFFERING}
    assert all(rates[c] >= minimum for c, minimum in DIFFERING.items()), rates


@pytest.mark.parametrize("name", TINY_NAMES)
def test_every_link_type_gives_the_whole_tshark_table(name):
    ref, got = tables(DATA / name)
    pd.testing.assert_frame_equal(got, ref)


@pytest.mark.parametrize("name", SLOW_STATE_CAPTURES)
def test_chunk_size_does_not_change_the_table(pcaps, name):
    """TCP analysis and reassembly state carry from chunk to chunk."""
    whole = read_all(FastPcapSource(pcaps / name, progress=False))
    small = read_all(FastPcapSource(pcaps / name, progress=False, chunk_bytes=2 * MAX_FRAME_BYTES))
    pd.testing.assert_frame_equal(small, whole)


# --------------------------------------------------------------------------- hand-made edge cases


def edge_case_frames() -> list[tuple[bytes, int]]:
    """(frame, bytes on the wire) for the header rules tshark applies to odd packets."""
    long_label = b"a" * 63
    frames = [
        eth(ipv4(tcp())),
        eth(ipv4(tcp(), vihl=0x44)),  # IHL 4: no IPv4 fields
        eth(ipv4(tcp(), vihl=0x40)),  # IHL 0
        eth(ipv4(tcp(), vihl=0x55)),  # version 5
        eth(ipv4(tcp(), vihl=0x65)),  # version 6 behind ethertype 0x0800: tshark reads it as IPv6
        eth(ipv4(tcp(), total=10)),  # total length below the header length
        eth(ipv4(tcp(), total=30)),  # total length cuts the TCP header
        eth(ipv4(tcp(), total=400)),  # total length past the frame
        eth(ipv4(tcp(), total=0)),  # TSO: tshark takes the frame length
        eth(ipv4(tcp(offset=4))),  # TCP data offset below 5
        eth(ipv4(tcp(offset=15))),  # data offset past the segment
        eth(ipv4(tcp(offset=0, data=b"x" * 40))),
        eth(ipv4(tcp()[:10], total=30)),  # a TCP header cut short
        eth(ipv4(udp(b"abcd"), proto=17, frag=0x2000)),  # first fragment
        eth(ipv4(udp(b"abcd"), proto=17, frag=0x0003)),  # a later fragment
        eth(ipv4(udp(b"")[:3], proto=17)),  # 3 bytes of UDP header
        eth(ipv4(udp(b"ab", dport=9999, length=4), proto=17)),  # UDP length below 8
        eth(ipv4(udp(b"ab", dport=9999, length=400), proto=17)),  # UDP length past the datagram
        eth(ipv4(b"\x08\x00", proto=1)),  # ICMP cut after 2 bytes
        eth(ipv4(b"", proto=1)),  # empty ICMP
        eth(b"")[:13],  # Ethernet header cut short
        eth(ipv4(tcp()))[:29],  # IPv4 header cut short
        eth(ipv4(tcp(), opts=b"\x01\x01\x01\x00")),  # options: NOPs
        eth(ipv4(tcp(), opts=b"\x83\x07\x04" + socket.inet_aton("9.9.9.9") + b"\x00")),  # loose source route
        eth(ipv4(tcp(), opts=b"\x83\x07\x04\x09")),  # source route option running past the header
        eth(ipv4(b"\x03\x03\x00\x00\x00\x00\x00\x00" + ipv4(udp(dns_query(labels(b"quoted", b"example"))), 17), 1)),
        eth(ipv4(b"\x0b\x00\x00\x00\x00\x00\x00\x00" + ipv4(tcp()[:8], total=40), 1)),  # time exceeded, 8 bytes
        eth(ipv4(b"\x08\x00\x00\x00\x00\x01\x00\x01" + b"ping", 1)),  # echo with data
        eth(ipv4(udp(dns_query(labels(b"www", b"example", b"com"))), 17)),
        eth(ipv4(udp(dns_query(b"\xc0\x0c")), 17)),  # a name pointing at itself
        eth(ipv4(udp(dns_query(b"\x01a\xc0\x0e")), 17)),  # a two-step pointer loop
        eth(ipv4(udp(dns_query(labels(*[long_label] * 5))), 17)),  # longer than 255 bytes
        eth(ipv4(udp(dns_query(b"\x41\x10\xab\xcd\x03com\x00")), 17)),  # bit-string label
        eth(ipv4(udp(dns_query(b"\x80\x00")), 17)),  # reserved label type
        eth(ipv4(udp(dns_query(labels(b"a\tb", b"caf\xc3\xa9", b"\xff\x00x"))), 17)),  # escapes, UTF-8, junk
        eth(ipv4(udp(dns_query(labels(b"x"), flags=0x8183)), 17)),  # a response: NXDOMAIN
        eth(ipv4(udp(struct.pack("!HH", 1, 0x8180)), 17)),  # header cut after the flags
        eth(ipv4(tcp(b"GET /a\tb c HTTP/1.1\r\nHost: h\xc3\xa9st\r\nUser-Agent:\r\n\r\n", dport=8080))),
        eth(ipv4(tcp(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nno", sport=80))),
        eth(ipv4(tcp(b"GET / HTTP/1.0\r\nHost: odd\r\r\n\r\n", sport=41000, dport=3128))),
        eth(ipv4(tcp(b"220 ready\r\n", sport=21, dport=40001))),
        eth(ipv4(tcp(b"22", sport=21, dport=40002))),
        eth(struct.pack("!HH", 0x8100, 0x0800) + ipv4(udp(dns_query(labels(b"vlan"))), 17), 0x8100),
        eth(struct.pack("!HH", 0x8100, 0x8100) + struct.pack("!HH", 5, 0x0800) + ipv4(tcp()), 0x8100),
        eth(struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + MAC_A + socket.inet_aton(CLIENT), 0x0806),  # ARP cut
        eth(struct.pack("!HHBBH", 1, 0x0800, 6, 4, 0xFF01) + MAC_A + bytes(4) + MAC_B + bytes(4), 0x0806),
        eth(struct.pack("!HHBBH", 6, 0x0800, 8, 4, 1) + bytes(24), 0x0806),  # 8-byte hardware addresses
        eth(ipv6(tcp(), 6), 0x86DD),
        eth(ipv6(udp(dns_query(labels(b"six"))), 17), 0x86DD),
        eth(ipv6(b"\x3a\x00\x05\x02\x00\x00\x01\x00" + b"\x82\x00\x00\x00" + bytes(20), 0), 0x86DD),  # hop-by-hop + MLD
        eth(ipv6(b"\x80\x00\x00\x00\x00\x01\x00\x01abcd", 58), 0x86DD),  # ICMPv6 echo
        eth(ipv6(tcp(), 6), 0x86DD)[:40],  # IPv6 header cut short
        eth(ipv6(tcp(), 6, plen=2), 0x86DD),  # payload length shorter than the TCP header
        eth(b"\x42\x42\x03" + bytes(35), 0x0026),  # 802.3 + LLC: spanning tree
        eth(bytes(46), 0x05E0),  # invalid length/type field
        eth(bytes(46), 0x88CC),  # LLDP
        eth(bytes(46), 0x1234),  # unknown ethertype
    ]
    out = [(f, len(f)) for f in frames]
    out.append((eth(ipv4(tcp(b"x" * 100)))[:60], 154))  # snapped at 60 bytes
    out.append((eth(ipv4(tcp(b"y" * 30))), 20))  # a record claiming fewer bytes than it holds
    return out


def test_edge_cases_give_the_tshark_table(tmp_path):
    ref, got = tables(write_pcap(tmp_path / "edges.pcap", edge_case_frames()))
    assert len(got) == len(ref)
    pd.testing.assert_frame_equal(got, ref)


# --------------------------------------------------------------------------- bad files


def cut_inside_a_record(source: Path, target: Path) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) * 2 // 3])
    return target


@pytest.mark.parametrize("name", ["nmap-syn-scan.pcapng", "c2-strrat-beacon.pcap"])
def test_cut_file_is_analysed_up_to_the_cut_with_the_same_message(pcaps, tmp_path, name):
    path = cut_inside_a_record(pcaps / name, tmp_path / name)
    outcomes = []
    for source in (PcapFileSource(path, progress=False), FastPcapSource(path, progress=False)):
        chunks = []
        with pytest.raises(TruncatedCaptureError) as caught:
            for chunk in source.batches():
                chunks.append(chunk)
        outcomes.append((str(caught.value), pd.concat(chunks, ignore_index=True)))
    (ref_message, ref), (message, got) = outcomes
    assert message == ref_message and message.startswith(f"{path} is cut short: analysed the ")
    pd.testing.assert_frame_equal(got[EXACT], ref[EXACT])


def test_damaged_file_says_so_like_tshark(tmp_path):
    frames = edge_case_frames()[:12]
    path = write_pcap(tmp_path / "damaged.pcap", frames)
    data = bytearray(path.read_bytes())
    tenth = 24 + sum(16 + len(frame) for frame, _ in frames[:9])
    data[tenth + 8 : tenth + 12] = struct.pack("<I", MAX_FRAME_BYTES + 1)  # an impossible captured length
    path.write_bytes(bytes(data))
    messages = []
    for source in (PcapFileSource(path, progress=False), FastPcapSource(path, progress=False)):
        with pytest.raises(TruncatedCaptureError) as caught:
            list(source.batches())
        messages.append(str(caught.value))
    assert messages[1] == messages[0] == f"{path} is damaged: analysed the 9 packets before the damage"


@pytest.mark.parametrize("content", [b"", b"abc", b"hello, this is not a capture", b"\x0a\x0d\x0d\x0a"])
def test_not_a_capture(tmp_path, content):
    path = tmp_path / "file.pcap"
    path.write_bytes(content)
    source = FastPcapSource(path, progress=False)
    with pytest.raises(CaptureError) as caught:
        list(source.batches())
    message = str(caught.value)
    assert "\n" not in message and str(path) in message


def test_missing_file_is_one_line():
    with pytest.raises(CaptureError, match="does not exist"):
        FastPcapSource("/nonexistent/capture.pcap", progress=False).check()


def test_unknown_link_type_is_one_line_before_any_packet(tmp_path):
    path = write_pcap(tmp_path / "usb.pcap", [(bytes(40), 40)], linktype=189)
    source = FastPcapSource(path, progress=False)
    with pytest.raises(UnsupportedLinkTypeError) as caught:
        source.check()  # so a caller can fall back to PcapFileSource for this file
    assert "link type 189" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(UnsupportedLinkTypeError):
        list(source.batches())


# --------------------------------------------------------------------------- hostile bytes


def hostile_variants(seed: int, frames: list[tuple[bytes, int]]):
    """Records with absurd lengths, then frames with random bytes overwritten (seeded)."""
    rng = random.Random(seed)
    yield [(b"", 0), (b"", 1_000_000), (bytes(MAX_FRAME_BYTES), MAX_FRAME_BYTES)]  # empty and maximal records
    yield [(b"\xff" * 80, 2**32 - 1), (b"\x00" * 80, 0)]
    for _ in range(40):
        out = []
        for frame, wire in frames:
            data = bytearray(frame)
            for _ in range(rng.randint(1, 6)):
                if data:
                    data[rng.randrange(min(len(data), 96))] = rng.choice([0, 0xFF, rng.randrange(256)])
            if rng.random() < 0.2:
                data = data[: rng.randrange(len(data) + 1)]
            out.append((bytes(data), rng.choice([wire, len(data), 0, 65535])))
        yield out


def assert_reads_or_refuses(path: Path, **options) -> None:
    try:
        for chunk in FastPcapSource(path, progress=False, **options).batches():
            assert list(chunk.columns) == list(PACKET_SCHEMA)
    except CaptureError:
        pass  # CaptureError and TruncatedCaptureError are the only accepted failures


def test_hostile_frames_never_crash(tmp_path):
    frames = edge_case_frames()
    for i, variant in enumerate(hostile_variants(7, frames)):
        for linktype in (1, 0, 101, 113, 276):
            assert_reads_or_refuses(write_pcap(tmp_path / f"hostile-{i}-{linktype}.pcap", variant, linktype))


def test_hostile_file_bytes_never_crash(tmp_path):
    rng = random.Random(11)
    sources = [DATA / name for name in TINY_NAMES]
    for i in range(60):
        data = bytearray(rng.choice(sources).read_bytes())
        for _ in range(rng.randint(1, 30)):
            data[rng.randrange(4, len(data))] = rng.randrange(256)
        path = tmp_path / f"flipped-{i}.pcap"
        path.write_bytes(bytes(data[: rng.randrange(8, len(data) + 1)]))
        assert_reads_or_refuses(path, chunk_bytes=2 * MAX_FRAME_BYTES)


def test_hostile_pcapng_blocks_never_crash(tmp_path):
    good = (DATA / "tiny-ethernet.pcapng").read_bytes()
    cases = {
        "zero-length-block": good[:28] + struct.pack("<II", 6, 0) + good[36:],
        "odd-length-block": good[:28] + struct.pack("<II", 6, 13) + good[36:],
        "huge-block": good[:28] + struct.pack("<II", 6, 2**31) + good[36:],
        "packet-before-interface": good[:28] + struct.pack("<IIIIIIII", 6, 32, 5, 0, 0, 0, 0, 32),
        "swapped-byte-order-magic": good[:8] + b"\x1a\x2b\x3c\x4c" + good[12:],
    }
    for name, data in cases.items():
        path = tmp_path / f"{name}.pcapng"
        path.write_bytes(data)
        assert_reads_or_refuses(path)
