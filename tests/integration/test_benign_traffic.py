"""False alarms: the analyzer on benign traffic of real services and clients, made in the test's own namespaces.

bench/make_benign_traffic.py builds the lab (web, DNS, ssh/scp, iperf3, ping, SNTP, update checks on a
server with several addresses; three clients on randomised schedules), records it, and removes it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, read_json

from traffic_analyzer.capture.pcap_file import PcapFileSource

GENERATOR = ROOT / "bench" / "make_benign_traffic.py"
RECORD_S = 150  # long enough for every kind of client activity, short enough for the suite
THINK_S = 8.0  # busier people than the one-hour recording (median 25 s), to pack more activity in
TOOLS = ("ip", "ethtool", "tcpdump", "dnsmasq", "sshd", "ssh", "scp", "ssh-keygen", "curl", "dig", "iperf3", "ping")


@pytest.fixture(scope="module")
def benign_capture(tmp_path_factory) -> Path:
    if os.geteuid() != 0:
        pytest.skip("the benign lab needs root (network namespaces, tcpdump)")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (sudo ./setup.sh --dev installs them)")
    out = tmp_path_factory.mktemp("benign") / "benign-lab.pcap"
    cmd = [sys.executable, str(GENERATOR), "--seconds", str(RECORD_S), "--clients", "3", "--seed", "1"]
    proc = subprocess.run(
        [*cmd, "--think-s", str(THINK_S), "--out", str(out)], capture_output=True, text=True, timeout=RECORD_S + 120
    )
    assert proc.returncode == 0, proc.stderr
    assert "0 packets dropped by kernel" in proc.stdout, proc.stdout
    return out


def test_lab_traffic_is_the_mix_it_claims(benign_capture):
    packets = pd.concat(PcapFileSource(benign_capture, progress=False).batches(), ignore_index=True)
    server_ports = set(packets["dst_port"].dropna().astype(int))
    assert {22, 53, 80, 123} <= server_ports  # ssh, DNS, web, time
    assert packets["http_method"].eq("GET").sum() >= 20  # page loads with their assets
    assert packets["dns_qname"].notna().sum() >= 20
    assert packets["src_ip"].nunique() >= 7  # three clients and the server's addresses
    labels = pd.read_csv(benign_capture.with_name(benign_capture.name + ".labels.csv"))
    assert list(labels["kind"]) == ["benign"] and list(labels["file"]) == [benign_capture.name]


def test_no_false_alarm_on_benign_lab_traffic(benign_capture, tmp_path):
    summary = read_json(tmp_path, benign_capture)
    alerts = [f"{a['severity']} {a['kind']} {a['attacker']}: {a['explanation']}" for a in summary["alerts"]]
    assert summary["packets"] > 2000
    assert not [a for a in summary["alerts"] if a["severity"] != "low"], alerts
    assert len(alerts) <= 1, alerts
