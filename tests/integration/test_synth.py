"""The traffic synthesizer (bench/synth): deterministic by seed, well-formed for tshark, labels that match the packets.

Small runs only (20 s of a 10-host office, six minutes of a 5-host benign day); the full-size figures
are measured by hand and recorded in the commit that changes them.
"""

from __future__ import annotations

import csv
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from synth import packets as pk  # noqa: E402

MIXED = ROOT / "bench" / "make_mixed_capture.py"
CORPUS = ROOT / "bench" / "make_benign_corpus.py"
COLUMNS = ["file", "attacker", "victim", "kind", "start_ts", "end_ts", "notes"]
ATTACK_KINDS = {
    "port_scan",
    "host_sweep",
    "brute_force",
    "syn_flood",
    "c2_beacon",
    "dns_tunnel",
    "data_exfiltration",
    "arp_spoof",
}
SMALL = ["--seconds", "20", "--hosts", "10"]
TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt-get install tshark)")


def _run(script: Path, *args: str) -> None:
    subprocess.run([sys.executable, str(script), *args], check=True, capture_output=True, text=True, timeout=120)


def _labels(path: Path) -> list[dict[str, str]]:
    with Path(str(path) + ".labels.csv").open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == COLUMNS
        return list(reader)


def _tshark_fields(path: Path, *fields: str, display_filter: str = "") -> list[list[str]]:
    cmd = [TSHARK, "-n", "-r", str(path), "-T", "fields", *(x for f in fields for x in ("-e", f))]
    if display_filter:
        cmd += ["-Y", display_filter]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120).stdout
    return [line.split("\t") for line in out.splitlines()]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20-second, 10-workstation lab capture with all ten attacks (seed 7)."""
    out = tmp_path_factory.mktemp("mixed") / "mixed-7.pcap"
    _run(MIXED, "--seed", "7", "--out", str(out), *SMALL)
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six minutes of a 5-host benign office day (seed 3)."""
    out = tmp_path_factory.mktemp("corpus") / "benign-3.pcap"
    _run(CORPUS, "--seed", "3", "--hours", "0.1", "--hosts", "5", "--out", str(out))
    return out


def test_same_seed_same_bytes_other_seed_other_bytes(mixed: Path, tmp_path: Path) -> None:
    again, other = tmp_path / "again.pcap", tmp_path / "other.pcap"
    _run(MIXED, "--seed", "7", "--out", str(again), *SMALL)
    _run(MIXED, "--seed", "8", "--out", str(other), *SMALL)
    assert again.read_bytes() == mixed.read_bytes()
    assert other.read_bytes() != mixed.read_bytes()


def test_classic_pcap_ethernet_microseconds(mixed: Path) -> None:
    magic, major, minor, _, _, _, linktype = struct.unpack("<IHHiIII", mixed.read_bytes()[:24])
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)


def test_checksums_verify() -> None:
    """IPv4 header and TCP checksums of a built frame sum to 0xFFFF, the way a receiver checks them."""
    src, dst = pk.ip4("10.1.0.2"), pk.ip4("198.18.0.9")
    frame, _ = pk.tcp_frame(b"\x02" * 6, b"\x04" * 6, src, dst, 40000, 443, 1, 2, pk.TCP_ACK, 500, b"hello, odd")
    ip = frame[14:34]
    assert _ones_complement(ip) == 0xFFFF
    segment = frame[34 : 34 + 20 + 10]
    pseudo = src + dst + struct.pack("!BBH", 0, pk.PROTO_TCP, len(segment))
    assert _ones_complement(pseudo + segment) == 0xFFFF


def _ones_complement(data: bytes) -> int:
    """The textbook 16-bit one's-complement sum with end-around carry (independent of packets.ones_sum)."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for (word,) in struct.iter_unpack("!H", data):
        total += word
        total = (total & 0xFFFF) + (total >> 16)
    return total


@needs_tshark
def test_tshark_finds_nothing_malformed(mixed: Path) -> None:
    assert _tshark_fields(mixed, "frame.number", display_filter="_ws.malformed") == []
    assert len(_tshark_fields(mixed, "frame.number")) > 10_000


def test_labels_name_every_attack_inside_the_capture(mixed: Path) -> None:
    rows = _labels(mixed)
    assert {r["file"] for r in rows} == {mixed.name}
    assert {r["kind"] for r in rows} == ATTACK_KINDS
    assert len(rows) == 10
    for row in rows:
        assert float(row["start_ts"]) <= float(row["end_ts"])
        assert row["attacker"] and row["victim"] and row["notes"]


@needs_tshark
def test_each_attack_range_holds_packets_from_its_attacker(mixed: Path) -> None:
    frames = _tshark_fields(mixed, "frame.time_epoch", "ip.src", "ip.dst", "arp.src.proto_ipv4")
    for row in _labels(mixed):
        start, end = float(row["start_ts"]), float(row["end_ts"])
        inside = [f for f in frames if start <= float(f[0]) <= end]
        if row["attacker"] == "*":  # spoofed sources: the flood must at least reach the victim
            assert any(f[2] == row["victim"] for f in inside), row
        else:
            assert any(row["attacker"] in (f[1], f[3]) for f in inside), row


@needs_tshark
def test_tunnel_goes_through_the_local_resolver(mixed: Path) -> None:
    """The tunnel client only talks to the local resolver, which relays each TXT query to the upstream server."""
    (row,) = [r for r in _labels(mixed) if r["kind"] == "dns_tunnel"]
    queries = _tshark_fields(mixed, "ip.src", "ip.dst", display_filter="dns.qry.type == 16 && dns.flags.response == 0")
    client = {dst for src, dst in queries if src == row["attacker"]}
    relayed = {dst for src, dst in queries if src in client}
    assert len(client) == 1 and row["victim"] in relayed


def test_benign_corpus_same_seed_same_bytes(corpus: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.pcap"
    _run(CORPUS, "--seed", "3", "--hours", "0.1", "--hosts", "5", "--out", str(again))
    assert again.read_bytes() == corpus.read_bytes()


def test_benign_corpus_writes_a_benign_label(corpus: Path) -> None:
    (row,) = _labels(corpus)
    assert row["file"] == corpus.name and row["kind"] == "benign" and row["attacker"] == ""
    assert float(row["end_ts"]) - float(row["start_ts"]) >= 0.09 * 3600


@needs_tshark
def test_benign_corpus_is_well_formed(corpus: Path) -> None:
    assert _tshark_fields(corpus, "frame.number", display_filter="_ws.malformed") == []
    assert len(_tshark_fields(corpus, "frame.number")) > 1_000


@needs_tshark
def test_the_benign_lab_is_the_same_office_without_an_attacker(mixed: Path, tmp_path: Path) -> None:
    """``--benign``: a baseline to train on for the lab captures, from the same generator with no attack in it."""
    out = tmp_path / "benign-7.pcap"
    _run(MIXED, "--seed", "7", "--out", str(out), "--benign", *SMALL)
    (row,) = _labels(out)
    assert row["file"] == out.name and row["kind"] == "benign" and row["attacker"] == ""
    assert float(row["end_ts"]) - float(row["start_ts"]) == pytest.approx(20.0)
    spare = {r["attacker"] for r in _labels(mixed) if r["attacker"].startswith("10.20.5.")}  # the attack machines
    sources = {f[0] for f in _tshark_fields(out, "ip.src")}
    assert len(spare) >= 5 and len(sources) > 10 and not sources & spare
