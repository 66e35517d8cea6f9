"""The capture filter that keeps the analyzer's own dashboard traffic out (issue 15 item 2).

The live test with a polling client and a scan is tests/system/test_live_capture.py; these check the
filter text, that dumpcap compiles it, and that a bad user filter is still named as written.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from conftest import run_cli

from traffic_analyzer.capture.own_traffic import local_addresses, served_addresses, without_dashboard


def test_the_dashboards_socket_is_left_out_and_a_user_filter_kept():
    assert without_dashboard(None, "127.0.0.1", 8050) == (
        "not (tcp and ((src port 8050 and (src host 127.0.0.1)) or (dst port 8050 and (dst host 127.0.0.1))))"
    )
    combined = without_dashboard("udp or tcp port 80", "127.0.0.1", 8050)
    assert combined.startswith("(udp or tcp port 80) and not (tcp and ")  # the user's "or" stays inside its group
    assert without_dashboard("udp", "127.0.0.1", 0) == "udp"  # a port picked at start is not known yet
    assert without_dashboard(None, "no-such-host.invalid", 8050) is None


def test_a_wildcard_dashboard_is_left_out_on_every_local_address():
    addresses = local_addresses()
    assert "127.0.0.1" in addresses and served_addresses("0.0.0.0") == served_addresses("::") == addresses
    text = without_dashboard(None, "0.0.0.0", 8064)
    assert all(f"src host {a}" in text and f"dst host {a}" in text for a in addresses)
    assert not [a for a in addresses if "%" in a]  # link-local scopes are not part of BPF addresses


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("dumpcap") is None, reason="compiling on lo needs root")
def test_dumpcap_compiles_the_combined_filter():
    text = without_dashboard("tcp or udp", "0.0.0.0", 8064)
    done = subprocess.run(["dumpcap", "-i", "lo", "-d", "-f", text], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="opening lo needs root")
def test_a_bad_user_filter_is_reported_as_written_with_the_dashboard_on(tmp_path):
    proc = run_cli(
        "--interface", "lo", "--filter", "tcp port", "--duration", "1", "--port", "8064", "--no-progress",
        "--data-dir", str(tmp_path / "d"), "--log-file", str(tmp_path / "l"),
    )  # fmt: skip
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr
    assert "capture filter is not valid BPF" in errors[0] and "not (tcp" not in errors[0]
