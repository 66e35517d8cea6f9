"""Alert evidence pcaps from --read runs of public and made captures, the display filter, the cap, the route."""

from __future__ import annotations

import inspect
import json
import logging
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from conftest import run_cli, serving_after_read, wait_until

from traffic_analyzer.alerts.evidence import EvidenceRecorder, display_filter
from traffic_analyzer.capture.pcap_extract import extract_packets
from traffic_analyzer.dashboard.app import create_app
from traffic_analyzer.dashboard.evidence_route import evidence_href
from traffic_analyzer.records.alert import ALERT_ID, Alert, evidence_path
from traffic_analyzer.store.engine import store_url

SCANNER, SCANNED = "10.20.5.10", "10.20.0.81"  # the made syn_scan capture (tests/made_captures.py)
MAX_PACKETS = 500  # below the scan's 2,004 packets, so the cap shows


def packets_of(pcap: Path, *fields: str) -> list[list[str]]:
    """Fields of every packet of ``pcap``, read back by tshark."""
    cmd = ["tshark", "-n", "-r", str(pcap), "-T", "fields", "-E", "separator=/t"]
    for field in fields:
        cmd += ["-e", field]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
    return [line.split("\t") for line in done.stdout.splitlines()]


def read_run(tmp: Path, capture: Path, *extra: str) -> dict:
    proc = run_cli(
        "--read",
        str(capture),
        "--no-dashboard",
        "--json",
        "--no-progress",
        "--data-dir",
        str(tmp / "data"),
        "--log-file",
        str(tmp / "analysis.log"),
        *extra,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def scan_run(syn_scan, tmp_path_factory) -> tuple[Path, dict]:
    assert (syn_scan.label["attacker"], syn_scan.label["victim"]) == (SCANNER, SCANNED)
    tmp = tmp_path_factory.mktemp("evidence")
    return tmp / "data", read_run(tmp, syn_scan.path, "--evidence-max-packets", str(MAX_PACKETS))


def test_the_scan_alert_has_a_capped_pcap_of_the_scanners_packets(scan_run):
    data_dir, summary = scan_run
    [alert] = [a for a in summary["alerts"] if a["kind"] == "port_scan"]
    pcap = Path(alert["evidence"]["evidence_pcap"])
    assert pcap.parent == data_dir / "evidence" and ALERT_ID.match(pcap.stem)
    rows = packets_of(pcap, "frame.time_epoch", "ip.src", "ip.dst", "tcp.flags.syn")
    assert len(rows) == MAX_PACKETS  # 2,004 matched; the first 500 are kept
    assert all({SCANNER, SCANNED} == {src, dst} for _, src, dst, _ in rows)
    times = [float(t) for t, *_ in rows]
    assert alert["start"] - 2 <= min(times) and max(times) <= alert["end"] + 2
    assert times == sorted(times)
    probes = [syn in ("1", "True") for _, src, _, syn in rows if src == SCANNER]  # the rest: the target's RST-ACKs
    assert len(probes) >= MAX_PACKETS * 0.45 and sum(probes) >= len(probes) * 0.95


def test_the_dashboard_serves_the_pcap_by_alert_id_and_nothing_else(scan_run):
    data_dir, summary = scan_run
    [alert] = [a for a in summary["alerts"] if a["kind"] == "port_scan"]
    pcap = Path(alert["evidence"]["evidence_pcap"])
    app = create_app(store_url(data_dir))
    client = app.server.test_client()
    answer = client.get(f"/evidence/{pcap.stem}.pcap")
    assert answer.status_code == 200
    assert answer.data == pcap.read_bytes()
    assert answer.mimetype == "application/vnd.tcpdump.pcap"
    assert "attachment" in answer.headers["Content-Disposition"]
    assert client.get("/evidence/0123456789abcdef.pcap").status_code == 404  # well-formed, no such alert
    for bad in ("ANALYZER", "0123456789abcdef0", "0123456789abcdeg", "analyzer.db"):
        assert client.get(f"/evidence/{bad}.pcap").status_code == 400, bad
    for traversal in ("../analyzer.db", "..%2Fanalyzer.db", "%2e%2e%2fanalyzer.db", "..%2f..%2fdata%2fanalyzer.db"):
        answer = client.get(f"/evidence/{traversal}.pcap")  # never our route: Dash's page shell at most
        assert answer.mimetype != "application/vnd.tcpdump.pcap" and b"SQLite format" not in answer.data, traversal
    with app.server.test_request_context():
        assert evidence_href(pcap.stem) == f"/evidence/{pcap.stem}.pcap"
        assert evidence_href("0123456789abcdef") is None
        assert evidence_href("../../etc/passwd") is None


def test_the_download_works_with_the_default_relative_data_dir(syn_scan, tmp_path):
    """Issue 15 item 1: run from a folder without --data-dir (data_dir 'data', relative), the download
    answered HTTP 500: flask.send_file took the relative path as relative to the package."""
    with serving_after_read(syn_scan.path, tmp_path) as (port, lines):
        [pcap] = (tmp_path / "data" / "evidence").glob("*.pcap")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/evidence/{pcap.stem}.pcap", timeout=30) as answer:
            assert answer.status == 200 and answer.headers["Content-Type"] == "application/vnd.tcpdump.pcap"
            assert answer.read() == pcap.read_bytes()
    assert "Traceback" not in "".join(lines)


def test_arp_spoof_evidence_is_the_spoofing_macs_frames(pcaps, tmp_path):
    summary = read_run(tmp_path, pcaps / "arp-spoof-mitm.pcapng")
    [alert] = [a for a in summary["alerts"] if a["kind"] == "arp_spoof"]
    mac = alert["evidence"]["mac"]
    rows = packets_of(Path(alert["evidence"]["evidence_pcap"]), "eth.src", "eth.dst", "arp.opcode")
    assert 0 < len(rows) <= 10000
    assert all(mac in (src, dst) for src, dst, _ in rows)
    assert any(op == "2" for *_, op in rows)  # the spoofed ARP replies themselves


def test_the_cap_in_bytes_holds_on_a_real_capture(syn_scan, tmp_path):
    out = tmp_path / "capped.pcap"
    kept = extract_packets([syn_scan.path], f"ip.addr == {SCANNER}", out, max_packets=10**6, max_bytes=20_000)
    assert 0 < kept == len(packets_of(out, "frame.number"))
    assert out.stat().st_size <= 20_000
    assert extract_packets([syn_scan.path], "ip.addr == 192.0.2.1", tmp_path / "none.pcap", 100, 10**6) == 0
    assert not (tmp_path / "none.pcap").exists()


def test_display_filter_names_only_real_addresses():
    alert = Alert("port_scan", "10.0.0.1", ["10.0.0.2", "fe80::1"], 100.0, 110.0, 50.0, "x")
    text = display_filter(alert)
    assert "frame.time_epoch >= 98.000000" in text and "frame.time_epoch <= 112.000000" in text
    assert "ip.addr#1 == 10.0.0.1" in text and "(ip.addr#1 == 10.0.0.2 || ipv6.addr#1 == fe80::1)" in text
    hostile = Alert("x", "1.2.3.4) || (1", ['" || frame', "many"], 1.0, 2.0, 1.0, "x")
    assert display_filter(hostile) == "frame.time_epoch >= -1.000000 && frame.time_epoch <= 4.000000"
    spoofed = Alert("syn_flood", "*", ["10.0.0.9"], 1.0, 2.0, 1.0, "x")
    assert display_filter(spoofed).endswith("&& (ip.addr#1 == 10.0.0.9)")
    assert evidence_path(Path("/x"), "../etc/passwd") is None
    assert evidence_path(Path("/x"), "0123456789abcdef") == Path("/x/0123456789abcdef.pcap")


def test_the_alert_details_offer_the_download_once_the_pcap_exists(scan_run):
    data_dir, summary = scan_run
    [alert] = [a for a in summary["alerts"] if a["kind"] == "port_scan"]
    alert_id = Path(alert["evidence"]["evidence_pcap"]).stem
    app = create_app(store_url(data_dir))
    page = sys.modules["traffic_analyzer.dashboard.pages.alert_detail"]
    arguments = dict.fromkeys(inspect.signature(page.refresh_detail).parameters)
    arguments.update(_n=0, selected=alert_id, _version=0)
    with app.server.test_request_context():
        shown = page.refresh_detail(**arguments)
        assert shown["evidence_href"] == f"/evidence/{alert_id}.pcap" and shown["evidence_style"] == {}
        hidden_pcap = data_dir / "evidence" / f"{alert_id}.pcap"
        hidden_pcap.rename(hidden_pcap.with_suffix(".bak"))
        try:
            hidden = page.refresh_detail(**arguments)
        finally:
            hidden_pcap.with_suffix(".bak").rename(hidden_pcap)
        assert hidden["evidence_href"] == "" and hidden["evidence_style"] == {"display": "none"}


class _StoppedRing:
    """Stands in for the live ring buffer: the recorder only stops it."""

    def stop(self) -> None:
        pass


def test_live_cuts_keep_what_the_ring_has_dropped_since(syn_scan, tmp_path):
    # the scan split into three files of 700 packets, as a ring rotating through them would hold them
    subprocess.run(["editcap", "-c", "700", str(syn_scan.path), str(tmp_path / "ring.pcapng")], check=True)
    ring = sorted(tmp_path.glob("ring_*.pcapng"))
    assert len(ring) == 3
    times = [float(t) for (t,) in packets_of(syn_scan.path, "frame.time_epoch")]
    alert = Alert("port_scan", SCANNER, [SCANNED], times[0], times[-1], 80.0, "x")
    held = ring[:2]
    (tmp_path / "evidence").mkdir()
    recorder = EvidenceRecorder(
        tmp_path / "evidence", "run1", lambda: list(held), 10_000, 10**7, logging.getLogger("test"), ring=_StoppedRing()
    )
    recorder.feed([alert])
    pcap = Path(alert.evidence["evidence_pcap"])
    wait_until(pcap.exists, 30, "the first live cut")  # a new alert is cut at once
    fields = ("frame.time_epoch", "ip.src", "ip.dst", "tcp.srcport", "tcp.dstport", "tcp.flags")
    assert 0 < len(packets_of(pcap, *fields)) < syn_scan.packets
    held[:] = ring[1:]  # the ring drops the oldest file and fills a new one
    recorder.finish([alert])
    expected = tmp_path / "expected.pcapng"
    subprocess.run(["tshark", "-r", str(syn_scan.path), "-Y", display_filter(alert), "-w", str(expected)], check=True)
    assert packets_of(pcap, *fields) == packets_of(expected, *fields)  # the first file's frames are still there
