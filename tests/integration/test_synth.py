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


QUIET = ["--quiet", "--seconds", "240", "--hosts", "10"]  # the quiet plan shrunk to 240 s: its attacks still fit
QUIET_KINDS = ["brute_force", "c2_beacon", "dns_exfiltration", "icmp_tunnel", "port_scan", "port_scan"]
LATERAL_PORTS = {22, 80, 445, 3389, 5900}
QUIET_FIELDS = (
    "frame.time_epoch",
    "ip.src",
    "ip.dst",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.flags",
    "tcp.window_size_value",
    "icmp.type",
    "data.len",
    "dns.qry.name",
    "dns.qry.type",
    "dns.flags.response",
    "http.request.uri",
    "frame.len",
)


@pytest.fixture(scope="module")
def quiet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 240-second, 10-workstation lab capture with the six quiet attacks (seed 5)."""
    out = tmp_path_factory.mktemp("quiet") / "quiet-5.pcap"
    _run(MIXED, "--seed", "5", "--out", str(out), *QUIET)
    return out


@pytest.fixture(scope="module")
def quiet_frames(quiet: Path) -> list[dict[str, str]]:
    """Every frame of the quiet capture as {field: value} (empty when the frame has no such field)."""
    return [dict(zip(QUIET_FIELDS, f, strict=True)) for f in _tshark_fields(quiet, *QUIET_FIELDS)] if TSHARK else []


def test_quiet_same_seed_same_bytes(quiet: Path, tmp_path: Path) -> None:
    again = tmp_path / quiet.name
    _run(MIXED, "--seed", "5", "--out", str(again), *QUIET)
    assert again.read_bytes() == quiet.read_bytes()
    assert Path(f"{again}.labels.csv").read_bytes() == Path(f"{quiet}.labels.csv").read_bytes()


def test_quiet_and_benign_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(subprocess.CalledProcessError):
        _run(MIXED, "--seed", "5", "--out", str(tmp_path / "x.pcap"), "--benign", *QUIET)


def test_quiet_labels_six_quiet_attacks_one_after_another(quiet: Path) -> None:
    rows = _labels(quiet)
    assert {r["file"] for r in rows} == {quiet.name}
    assert sorted(r["kind"] for r in rows) == QUIET_KINDS
    spans = sorted((float(r["start_ts"]), float(r["end_ts"])) for r in rows)
    for row in rows:
        assert row["attacker"] and row["victim"] and row["notes"] and "\n" not in row["notes"]
        assert 1_717_408_800 <= float(row["start_ts"]) <= float(row["end_ts"]) <= 1_717_408_800 + 240
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end <= start  # at the plan's full length, and at this one, no two attacks overlap
    (lateral,) = [r for r in rows if r["kind"] == "port_scan" and ";" in r["victim"]]
    assert lateral["attacker"].startswith("10.20.1.")  # a workstation, not one of the spare attack machines
    assert len(lateral["victim"].split(";")) == 9 and lateral["attacker"] not in lateral["victim"].split(";")


def _attack_frames(row: dict[str, str], frames: list[dict[str, str]]) -> list[dict[str, str]]:
    """The frames of the attack a label describes, picked by what only that attack sends."""
    attacker, victims = row["attacker"], set(row["victim"].split(";"))
    if row["kind"] == "dns_exfiltration":  # long leftmost labels, on every hop: client, resolver, upstream
        return [f for f in frames if len(f["dns.qry.name"].split(".")[0]) >= 30]
    if len(victims) > 1:  # the lateral scan: everything to or from the scanner's one probing source port
        probes = [f for f in frames if f["ip.src"] == attacker and f["tcp.window_size_value"] == "1024"]
        (sport,) = {f["tcp.srcport"] for f in probes}
        return [
            f
            for f in frames
            if (f["ip.src"] == attacker and f["tcp.srcport"] == sport)
            or (f["ip.dst"] == attacker and f["tcp.dstport"] == sport)
        ]
    (victim,) = victims
    return [f for f in frames if {f["ip.src"], f["ip.dst"]} == {attacker, victim}]


@needs_tshark
def test_quiet_label_ranges_are_their_attacks_first_and_last_packets(
    quiet: Path, quiet_frames: list[dict[str, str]]
) -> None:
    for row in _labels(quiet):
        times = [float(f["frame.time_epoch"]) for f in _attack_frames(row, quiet_frames)]
        assert len(times) >= 10, row
        assert min(times) == pytest.approx(float(row["start_ts"]), abs=1e-6), row
        assert max(times) == pytest.approx(float(row["end_ts"]), abs=1e-6), row


@needs_tshark
def test_quiet_lateral_scan_probes_nine_hosts_on_five_ports(quiet: Path, quiet_frames: list[dict[str, str]]) -> None:
    (row,) = [r for r in _labels(quiet) if r["kind"] == "port_scan" and ";" in r["victim"]]
    frames = _attack_frames(row, quiet_frames)
    syn, synack, rst, rstack = 0x002, 0x012, 0x004, 0x014
    probes = {(f["ip.dst"], int(f["tcp.dstport"])) for f in frames if int(f["tcp.flags"], 16) == syn}
    assert {host for host, _ in probes} == set(row["victim"].split(";"))
    assert {port for _, port in probes} == LATERAL_PORTS and len(probes) == 45
    answers = [int(f["tcp.flags"], 16) for f in frames if f["ip.dst"] == row["attacker"]]
    resets = [f for f in frames if f["ip.src"] == row["attacker"] and int(f["tcp.flags"], 16) == rst]
    assert answers.count(synack) == len(resets) > 0 and answers.count(rstack) == 45 - len(resets) > 0
    times = [float(f["frame.time_epoch"]) for f in frames]
    assert 5 <= max(times) - min(times) <= 20


@needs_tshark
def test_quiet_attacks_are_slow(quiet: Path, quiet_frames: list[dict[str, str]]) -> None:
    """The rates that make them quiet: seconds between scan probes, SSH sessions, beacons and DNS queries."""
    rows = {(r["kind"], ";" in r["victim"]): r for r in _labels(quiet)}

    def gaps(times: list[float]) -> list[float]:
        return [b - a for a, b in zip(times, times[1:], strict=False)]

    scan = _attack_frames(rows["port_scan", False], quiet_frames)
    probes = [float(f["frame.time_epoch"]) for f in scan if int(f["tcp.flags"], 16) == 0x002]
    assert len(probes) >= 10 and all(2.0 <= g <= 4.0 for g in gaps(probes))
    ssh = _attack_frames(rows["brute_force", False], quiet_frames)
    sessions = [float(f["frame.time_epoch"]) for f in ssh if int(f["tcp.flags"], 16) == 0x002]
    assert len(sessions) >= 3 and all(8.0 <= g <= 15.0 for g in gaps(sessions))
    assert {f["ip.src"] for f in ssh if int(f["tcp.flags"], 16) & 0x001} >= {rows["brute_force", False]["victim"]}
    c2 = [f for f in _attack_frames(rows["c2_beacon", False], quiet_frames) if f["http.request.uri"]]
    assert len(c2) >= 3 and len({(f["http.request.uri"], f["frame.len"]) for f in c2}) == 1
    assert all(7.0 <= g <= 13.0 for g in gaps([float(f["frame.time_epoch"]) for f in c2]))
    exfil = rows["dns_exfiltration", False]
    queries = [f for f in _attack_frames(exfil, quiet_frames) if f["ip.src"] == exfil["attacker"]]
    assert queries and {f["dns.qry.type"] for f in queries} == {"1"}  # A records, not TXT
    assert all(30 <= len(f["dns.qry.name"].split(".")[0]) <= 60 for f in queries)
    assert all(1.0 <= g <= 3.0 for g in gaps([float(f["frame.time_epoch"]) for f in queries]))
    resolver = {f["ip.dst"] for f in queries}
    relayed = {f["ip.dst"] for f in _attack_frames(exfil, quiet_frames) if f["ip.src"] in resolver}
    assert len(resolver) == 1 and exfil["victim"] in relayed
    tunnel = _attack_frames(rows["icmp_tunnel", False], quiet_frames)
    assert {f["icmp.type"] for f in tunnel} == {"0", "8"}
    sizes = {int(f["data.len"]) for f in tunnel}
    assert len(sizes) > 20 and min(sizes) >= 64 and max(sizes) <= 1000
    span = float(tunnel[-1]["frame.time_epoch"]) - float(tunnel[0]["frame.time_epoch"])
    assert 4.0 <= len(tunnel) / span <= 11.0  # packets a second, both ways
