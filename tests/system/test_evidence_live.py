"""Live evidence: the dumpcap ring buffer stays within its bound and the scan alert's pcap holds the scan's SYNs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CLI
from netns import host_pair  # noqa: F401 (fixture)

from traffic_analyzer.capture.ring_buffer import RING_FILES, file_size_kb

HERE = Path(__file__).resolve().parents[1]  # the tests folder: its helper scripts
RING_MB = 1.0
BULK_BYTES = 3_000_000  # three times the ring, so it must rotate
BULK_PORT = 9300
SCAN_PORTS = 200


def ring_bytes(ring: Path) -> int:
    total = 0
    for path in ring.glob("ring_*.pcapng"):
        try:
            total += path.stat().st_size
        except FileNotFoundError:
            continue  # rotated away between listing and stat
    return total


def test_ring_buffer_is_bounded_and_the_scan_pcap_holds_the_syns(host_pair, tmp_path):  # noqa: F811
    if shutil.which("nmap") is None:
        pytest.skip("nmap is not installed; ./setup.sh --dev installs it")
    data, log, ring = tmp_path / "data", tmp_path / "analysis.log", tmp_path / "data" / "ring"
    analyzer = host_pair.popen_in(
        host_pair.ns_a,
        sys.executable,
        str(CLI),
        "--interface",
        host_pair.if_a,
        "--duration",
        "16",
        "--window",
        "2",
        "--backend",
        "tshark",
        "--evidence-ring-mb",
        str(RING_MB),
        "--no-dashboard",
        "--json",
        "--no-progress",
        "--data-dir",
        str(data),
        "--log-file",
        str(log),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sizes = []
    try:
        deadline = time.monotonic() + 30
        while not (log.exists() and "capturing on" in log.read_text()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "evidence ring buffer" in log.read_text()
        time.sleep(3)  # the live capture's dumpcap opens the interface after the run is logged
        server = host_pair.popen_in(
            host_pair.ns_a,
            sys.executable,
            str(HERE / "bulk_transfer.py"),
            "serve",
            str(BULK_PORT),
            "upload",
            str(BULK_BYTES),
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout.readline().strip() == "listening"
        sent = host_pair.run_in(
            host_pair.ns_b,
            sys.executable,
            str(HERE / "bulk_transfer.py"),
            "connect",
            host_pair.ip_a,
            str(BULK_PORT),
            "upload",
            str(BULK_BYTES),
        )
        assert sent.returncode == 0, sent.stderr
        server.wait(timeout=30)
        for _ in range(10):  # the ring while it rotates
            sizes.append(ring_bytes(ring))
            time.sleep(0.1)
        time.sleep(2.5)  # the scan alert's 2 s of slack before its start holds no bulk packets
        scan = host_pair.syn_scan(f"1-{SCAN_PORTS}")
        assert scan.returncode == 0, scan.stderr
        sizes.append(ring_bytes(ring))
        out, err = analyzer.communicate(timeout=180)
    finally:
        analyzer.kill()
    assert analyzer.returncode == 0, err
    bound = RING_MB * 1_000_000
    assert max(sizes) <= bound and ring_bytes(ring) <= bound, sizes
    assert len(list(ring.glob("ring_*.pcapng"))) <= RING_FILES
    rotated = max(int(p.name.split("_")[1]) for p in ring.glob("ring_*.pcapng"))
    assert rotated > RING_FILES, "3 MB through a 1 MB ring rotates it"
    assert file_size_kb(RING_MB) * 1000 * RING_FILES < bound
    summary = json.loads(out)
    [alert] = [a for a in summary["alerts"] if a["kind"] == "port_scan"]
    assert (alert["attacker"], alert["victims"]) == (host_pair.ip_b, [host_pair.ip_a])
    pcap = Path(alert["evidence"]["evidence_pcap"])
    assert pcap.parent == data / "evidence"
    fields = ["ip.src", "ip.dst", "tcp.dstport", "tcp.flags.syn", "tcp.flags.ack"]
    cmd = ["tshark", "-n", "-r", str(pcap), "-T", "fields", "-E", "separator=/t"]
    rows = [
        line.split("\t")
        for line in subprocess.run(
            [*cmd, *[a for f in fields for a in ("-e", f)]], capture_output=True, text=True, timeout=60, check=True
        ).stdout.splitlines()
    ]
    assert all({host_pair.ip_a, host_pair.ip_b} == {src, dst} for src, dst, *_ in rows)
    syn_ports = {
        int(port)
        for src, _, port, syn, ack in rows
        if src == host_pair.ip_b and syn in ("1", "True") and ack in ("0", "False")
    }
    assert set(range(1, SCAN_PORTS + 1)) <= syn_ports  # every probe of the scan
