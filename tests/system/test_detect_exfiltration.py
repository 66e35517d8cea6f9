"""Large lopsided uploads between test namespaces: an upload is exfiltration, the same download is not."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from detection_helpers import alerts_of
from netns import host_pair  # noqa: F401 (fixture)

from traffic_analyzer.detection.exfiltration import ExfiltrationDetector

HERE = Path(__file__).resolve().parents[1]  # the tests folder: its helper scripts
MEGABYTES = 30


def record_transfer(pair, tmp_path: Path, direction: str) -> Path:
    """Host A connects to host B and uploads or downloads; dumpcap on A records headers only."""
    pcap = tmp_path / f"{direction}.pcap"
    dump = pair.popen_in(
        pair.ns_a,
        "dumpcap",
        "-q",
        "-i",
        pair.if_a,
        "-s",
        "96",
        "-f",
        "tcp port 7000",
        "-P",
        "-w",
        str(pcap),
        stderr=subprocess.PIPE,
    )
    server = pair.popen_in(
        pair.ns_b,
        sys.executable,
        str(HERE / "bulk_transfer.py"),
        "serve",
        "7000",
        direction,
        str(MEGABYTES * 10**6),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout.readline().strip() == "listening"
        deadline = time.monotonic() + 20
        while not pcap.exists() and time.monotonic() < deadline:  # dumpcap creates the file once capturing
            time.sleep(0.1)
        time.sleep(0.5)
        client = pair.run_in(
            pair.ns_a,
            sys.executable,
            str(HERE / "bulk_transfer.py"),
            "connect",
            pair.ip_b,
            "7000",
            direction,
            str(MEGABYTES * 10**6),
        )
        assert client.returncode == 0, client.stderr
        server.wait(timeout=30)
        time.sleep(0.5)
    finally:
        server.kill()
        dump.send_signal(signal.SIGINT)  # dumpcap writes what it has and exits
        dump.wait(timeout=10)
    return pcap


def test_upload_is_reported_and_download_is_not(host_pair, tmp_path):  # noqa: F811
    upload = alerts_of(record_transfer(host_pair, tmp_path, "upload"), ExfiltrationDetector())
    assert [(a.kind, a.attacker, a.victims) for a in upload] == [
        ("data_exfiltration", host_pair.ip_a, [host_pair.ip_b])
    ]
    assert upload[0].evidence["bytes_sent"] >= MEGABYTES * 10**6 and "MB" in upload[0].explanation
    download = alerts_of(record_transfer(host_pair, tmp_path, "download"), ExfiltrationDetector())
    assert download == []
