"""Every alert's evidence pcap is, frame for frame, what tshark's display filter selects, caps included.

Real ``--read`` runs of public captures, and of a capture built here of IPv4 and IPv6 port scans
behind 802.1Q and Q-in-Q tags with the cases where "any IP layer" and "the first IP layer" differ:
ICMP errors quoting the attacker's probes, IPv6-in-IPv4 and IPv4-in-IPv6 tunnels, and frames a
nanosecond either side of the time span.
"""

from __future__ import annotations

import socket
import struct
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import read_json

from traffic_analyzer.alerts.evidence import display_filter
from traffic_analyzer.capture import fast_pcap, pcap_cut
from traffic_analyzer.capture.fast_pcap import _open_reader
from traffic_analyzer.capture.file_reader import CaptureFileSource
from traffic_analyzer.capture.pcap_cut import Address, FrameCutter, Selection
from traffic_analyzer.records.alert import Alert

PCAPNG_SHB, PCAPNG_IDB = 0x0A0D0D0A, 1
PCAPNG_PACKETS = (2, 3, 6)  # packet, simple packet and enhanced packet blocks


def frames(path: Path) -> list[tuple[int, bytes]]:
    """(capture time in ns, bytes) of every frame of a capture file."""
    out = []
    with path.open("rb") as fh:
        for buf, records, _ in _open_reader(fh, path).chunks(64 * 2**20):
            where = zip(records.start.tolist(), records.caplen.tolist(), records.ns.tolist(), strict=True)
            out += [(ns, bytes(buf[start : start + caplen])) for start, caplen, ns in where]
    return out


def layout(path: Path) -> tuple[int, list[int]]:
    """(bytes of file and section headers, bytes of each frame's record or block), walked here by hand."""
    data = path.read_bytes()
    if data[:4] == struct.pack("<I", PCAPNG_SHB):
        order = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        header, sizes, off = 0, [], 0
        while off + 12 <= len(data):
            kind, total = struct.unpack_from(order + "II", data, off)
            if kind in (PCAPNG_SHB, PCAPNG_IDB):
                header += total
            elif kind in PCAPNG_PACKETS:
                sizes.append(total)
            off += total
        return header, sizes
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    sizes, off = [], 24
    while off + 16 <= len(data):
        caplen = struct.unpack_from(order + "I", data, off + 8)[0]
        sizes.append(16 + caplen)
        off += 16 + caplen
    return 24, sizes


def tshark_selects(capture: Path, display: str, tmp: Path) -> tuple[list[int], list[tuple[int, bytes]]]:
    """Frame numbers, and frames of ``tshark -r capture -Y display -w -``."""
    numbers = subprocess.run(
        ["tshark", "-n", "-r", str(capture), "-Y", display, "-T", "fields", "-e", "frame.number"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    written = subprocess.run(
        ["tshark", "-n", "-r", str(capture), "-Y", display, "-w", "-"], capture_output=True, timeout=120, check=True
    ).stdout
    out = tmp / "tshark.pcapng"
    out.write_bytes(written)
    return [int(n) for n in numbers], frames(out)


def assert_pcaps_exact(capture: Path, summary: dict, tmp: Path, max_packets: int, max_bytes: int) -> None:
    header, sizes = layout(capture)
    assert summary["alerts"]
    for found in summary["alerts"]:
        alert = Alert(**{k: v for k, v in found.items() if k != "severity"})
        pcap = Path(found["evidence"]["evidence_pcap"])
        display = display_filter(alert)
        numbers, selected = tshark_selects(capture, display, tmp)
        assert len(numbers) == len(selected)
        # the caps: the first frames, while they fit in max_packets and max_bytes of file
        kept, size = 0, header
        while kept < min(len(numbers), max_packets) and size + sizes[numbers[kept] - 1] <= max_bytes:
            size += sizes[numbers[kept] - 1]
            kept += 1
        assert frames(pcap) == selected[:kept], (found["kind"], display)
        assert pcap.stat().st_size == size, (found["kind"], display)


PUBLIC = [
    ("arp-spoof-mitm.pcapng", 10_000, 10_000_000),
    ("nmap-syn-scan.pcapng", 10_000, 50_000),  # the byte cap: 2,011 frames of the scanner do not fit
    ("c2-empire-http-beacon.pcap", 30, 10_000_000),  # the packet cap
    ("icmp-tunnel-ssh.pcap", 10_000, 10_000_000),
]


@pytest.mark.parametrize(("name", "max_packets", "max_bytes"), PUBLIC)
def test_public_captures_evidence_is_what_the_display_filter_selects(pcaps, tmp_path, name, max_packets, max_bytes):
    caps = ("--evidence-max-packets", str(max_packets), "--evidence-max-mb", str(max_bytes / 1e6))
    summary = read_json(tmp_path, pcaps / name, *caps)
    assert_pcaps_exact(pcaps / name, summary, tmp_path, max_packets, max_bytes)


# -- a capture of the awkward cases --------------------------------------------------------------------
T0 = 1_700_000_100  # the first probe (epoch seconds)
ATTACKER6, VICTIM6, ROUTER6 = "2001:db8::66", "2001:db8::1", "2001:db8::fe"
ATTACKER4, VICTIM4, ROUTER4 = "10.9.0.66", "10.9.0.1", "10.9.0.254"
TUNNEL4 = ("192.0.2.1", "192.0.2.2")
TUNNEL6 = ("2001:db8:ffff::1", "2001:db8:ffff::2")
MAC_A, MAC_B = bytes.fromhex("020000000066"), bytes.fromhex("020000000001")
SYN, RST_ACK = 0x02, 0x14
NS = 1_000_000_000


def ipv4(src: str, dst: str, proto: int, payload: bytes) -> bytes:
    total = 20 + len(payload)
    return (
        struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0, 64, proto, 0, *map(socket.inet_aton, (src, dst))) + payload
    )


def ipv6(src: str, dst: str, nxt: int, payload: bytes) -> bytes:
    addresses = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
    return struct.pack("!IHBB", 6 << 28, len(payload), nxt, 64) + addresses + payload


def tcp(sport: int, dport: int, flags: int) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1000, 0, 5 << 4, flags, 1024, 0, 0)


def ethernet(packet: bytes, ethertype: int, tags: tuple[int, ...] = (10,), to_victim: bool = True) -> bytes:
    dst, src = (MAC_B, MAC_A) if to_victim else (MAC_A, MAC_B)
    tagged = b"".join(struct.pack("!HH", 0x8100, vlan) for vlan in tags)
    return dst + src + tagged + struct.pack("!H", ethertype) + packet


def awkward_frames() -> list[tuple[int, bytes]]:
    """(time in ns, frame): two port scans in VLANs, with what tells 'first layer' from 'any layer'."""
    out = []
    for i, port in enumerate(range(1, 41)):
        at = T0 * NS + i * 50_000_000
        tags = (100, 10) if i % 5 == 0 else (10,)  # every fifth frame Q-in-Q
        probe6 = ipv6(ATTACKER6, VICTIM6, 6, tcp(40000, port, SYN))
        out.append((at, ethernet(probe6, 0x86DD, tags)))
        out.append(
            (at + 1_000_000, ethernet(ipv6(VICTIM6, ATTACKER6, 6, tcp(port, 40000, RST_ACK)), 0x86DD, tags, False))
        )
        probe4 = ipv4(ATTACKER4, VICTIM4, 6, tcp(40000, port, SYN))
        out.append((at + 2_000_000, ethernet(probe4, 0x0800, tags)))
        out.append(
            (at + 3_000_000, ethernet(ipv4(VICTIM4, ATTACKER4, 6, tcp(port, 40000, RST_ACK)), 0x0800, tags, False))
        )
        if i % 10 == 0:  # a router's errors quoting the probes: the victim is named only inside
            unreachable6 = struct.pack("!BBHI", 1, 4, 0, 0) + probe6[:48]
            out.append((at + 4_000_000, ethernet(ipv6(ROUTER6, ATTACKER6, 58, unreachable6), 0x86DD, to_victim=False)))
            unreachable4 = struct.pack("!BBHI", 3, 13, 0, 0) + probe4[:28]
            out.append((at + 5_000_000, ethernet(ipv4(ROUTER4, ATTACKER4, 1, unreachable4), 0x0800, to_victim=False)))
            # tunnels: the first IPv6 layer is inside IPv4, the first IPv4 layer inside IPv6
            out.append((at + 6_000_000, ethernet(ipv4(*TUNNEL4, 41, probe6), 0x0800)))
            out.append((at + 7_000_000, ethernet(ipv6(*TUNNEL6, 4, probe4), 0x86DD)))
    # echo requests (not port probes) a nanosecond either side of where the spans begin and end: 2 s
    # before the first probe (IPv6, then IPv4) and 2 s after the last
    echo = struct.pack("!BBHHH", 128, 0, 0, 1, 1)
    first, last = T0 * NS, T0 * NS + 39 * 50_000_000
    for edge in (first - 2 * NS, first + 2_000_000 - 2 * NS, last + 2 * NS, last + 2_000_000 + 2 * NS):
        for delta in (-1, 0, 1):
            out.append((edge + delta, ethernet(ipv6(ATTACKER6, VICTIM6, 58, echo), 0x86DD)))
            out.append((edge + delta, ethernet(ipv4(ATTACKER4, VICTIM4, 1, echo), 0x0800)))
    return sorted(out, key=lambda f: f[0])


def write_nanosecond_pcap(path: Path, frames_: list[tuple[int, bytes]]) -> Path:
    records = [struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1)]
    for at, frame in frames_:
        records.append(struct.pack("<IIII", at // NS, at % NS, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(records))
    return path


@pytest.mark.parametrize(("max_packets", "max_bytes"), [(10_000, 10_000_000), (25, 3_000)])
def test_vlan_ipv6_tunnels_and_quoted_errors_match_the_display_filter(tmp_path, max_packets, max_bytes):
    capture = write_nanosecond_pcap(tmp_path / "awkward.pcap", awkward_frames())
    caps = ("--evidence-max-packets", str(max_packets), "--evidence-max-mb", str(max_bytes / 1e6))
    summary = read_json(tmp_path, capture, "--scan-min-ports", "20", *caps)
    scans = {(a["attacker"], tuple(a["victims"])) for a in summary["alerts"] if a["kind"] == "port_scan"}
    assert {(ATTACKER6, (VICTIM6,)), (ATTACKER4, (VICTIM4,))} <= scans
    assert_pcaps_exact(capture, summary, tmp_path, max_packets, max_bytes)
    if max_packets == 10_000:  # the quoted errors are not the scan's evidence; the tunnelled probes are
        for found in summary["alerts"]:
            kept = frames(Path(found["evidence"]["evidence_pcap"]))
            if (found["kind"], found["attacker"]) == ("port_scan", ATTACKER6):
                assert not any(socket.inet_pton(socket.AF_INET6, ROUTER6) in data for _, data in kept)
                assert any(socket.inet_aton(TUNNEL4[0]) in data for _, data in kept)


LINKTYPE_IEEE802_11 = 105  # a link type only tshark decodes


def test_frames_the_fast_decoders_cannot_read_are_cut_by_tshark_to_the_same_rule(tmp_path, monkeypatch):
    records = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, LINKTYPE_IEEE802_11)]
    for i, port in enumerate(range(1, 31)):
        for sender, packet in ((ATTACKER4, tcp(40000, port, SYN)), (VICTIM4, tcp(port, 40000, RST_ACK))):
            receiver = VICTIM4 if sender == ATTACKER4 else ATTACKER4
            header = struct.pack("<HH", 0x0208, 0) + MAC_B + MAC_A + MAC_B + b"\0\0"
            frame = header + bytes.fromhex("aaaa03000000") + b"\x08\x00" + ipv4(sender, receiver, 6, packet)
            records.append(struct.pack("<IIII", T0, 1000 * i + (sender == VICTIM4), len(frame), len(frame)) + frame)
    capture = tmp_path / "wifi.pcap"
    capture.write_bytes(b"".join(records))
    monkeypatch.setattr(fast_pcap, "_check_linktypes", lambda *_: None)  # frames() only walks the records
    summary = read_json(tmp_path, capture, "--scan-min-ports", "20", "--evidence-max-packets", "50")
    assert [(a["kind"], a["attacker"]) for a in summary["alerts"]] == [("port_scan", ATTACKER4)]
    assert_pcaps_exact(capture, summary, tmp_path, 50, 10_000_000)
    assert "tshark cuts the alert pcaps instead" in (tmp_path / "analysis.log").read_text()


@pytest.mark.parametrize("name", ["icmp-tunnel-ssh.pcap", "dns-tunnel-iodine.pcap", "arp-spoof-mitm.pcapng"])
def test_frames_ruled_out_by_their_bytes_are_those_decoding_rules_out(pcaps, tmp_path, monkeypatch, name):
    """The cutter decodes only frames whose fixed-offset bytes may carry a wanted address. Each address of the
    capture wanted alone (IPv4 or MAC), with an IPv6 address beside, and with another layer's, cuts what
    decoding every frame cuts."""
    capture = pcaps / name
    packets = pd.concat(CaptureFileSource(capture, progress=False).batches(), ignore_index=True)
    ips = sorted({a for a in set(packets["src_ip"].dropna()) | set(packets["dst_ip"].dropna()) if ":" not in a})
    macs = sorted(set(packets["src_mac"].dropna()) | set(packets["dst_mac"].dropna()))
    v4, eth, v6 = [Address("ip", a) for a in ips[:12]], [Address("eth", m) for m in macs[:12]], Address("ipv6", "::1")
    wanted = [((a,),) for a in v4 + eth] + [((a, v6),) for a in v4] + [((v4[0],), (m,)) for m in eth]

    def cut(folder: Path) -> list[bytes]:  # one read per selection: what one wants does not widen another's
        folder.mkdir()
        out = []
        for i, group in enumerate(wanted):
            cutter = FrameCutter(max_packets=100_000, max_bytes=10**9)
            cutter.read(capture, [Selection(folder / f"{i}.pcap", 0, 2**62, group)])
            cutter.close()
            out.append((folder / f"{i}.pcap").read_bytes())
        return out

    prefiltered = cut(tmp_path / "prefiltered")
    assert all(frames(tmp_path / "prefiltered" / f"{i}.pcap") for i in range(len(v4)))  # each address has frames
    monkeypatch.setattr(pcap_cut, "_may_carry", lambda _buf, _records, rows, _wanted: np.ones(len(rows), bool))
    assert prefiltered == cut(tmp_path / "every frame decoded")
