"""Bad input gets one clear line on stderr and a non-zero exit: never a traceback, never a hang."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import DATA, run_cli

from traffic_analyzer.capture.pcap_file import PcapFileSource


def one_line_error(proc) -> str:
    """The error line, after checking that it is the only thing the run complained with."""
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def base_args(tmp_path: Path) -> list[str]:
    return ["--no-dashboard", "--no-progress", "--data-dir", str(tmp_path / "d"), "--log-file", str(tmp_path / "l")]


def test_missing_file(tmp_path):
    line = one_line_error(run_cli("--read", str(tmp_path / "nope.pcap"), *base_args(tmp_path)))
    assert "does not exist" in line and "nope.pcap" in line


def test_not_a_capture_file(tmp_path):
    text = tmp_path / "notes.pcap"
    text.write_text("hello, I am not a capture\n")
    line = one_line_error(run_cli("--read", str(text), *base_args(tmp_path)))
    assert "is not a pcap or pcapng capture file" in line


def test_empty_file(tmp_path):
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    assert "empty or too short" in one_line_error(run_cli("--read", str(empty), *base_args(tmp_path)))


def test_truncated_capture_is_analysed_up_to_the_cut(pcaps, labels, tmp_path):
    row = labels.set_index("file").loc["nmap-connect-scan.pcap"]
    whole = sum(len(batch) for batch in PcapFileSource(pcaps / "nmap-connect-scan.pcap", progress=False).batches())
    cut = tmp_path / "cut.pcap"
    data = (pcaps / "nmap-connect-scan.pcap").read_bytes()
    cut.write_bytes(data[: len(data) // 2 + 7])  # stop in the middle of a record
    proc = run_cli("--read", str(cut), "--json", *base_args(tmp_path))
    line = one_line_error(proc)
    assert proc.returncode == 2
    summary = json.loads(proc.stdout)  # what was readable is still analysed and reported
    assert 0 < summary["packets"] < whole
    assert f"analysed the {summary['packets']} packets before the cut" in line
    assert [a["attacker"] for a in summary["alerts"] if a["kind"] == "port_scan"] == [row["attacker"]]


def test_missing_interface(tmp_path):
    line = one_line_error(run_cli("--interface", "nosuch0", "--duration", "1", *base_args(tmp_path)))
    assert "interface 'nosuch0' does not exist" in line


def test_invalid_bpf_filter(tmp_path):
    line = one_line_error(run_cli("--interface", "lo", "--filter", "tcp port", "--duration", "1", *base_args(tmp_path)))
    assert "capture filter is not valid BPF" in line


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged user")
def test_no_permission_to_capture():
    shared = Path(tempfile.mkdtemp(prefix="nta-nobody-"))  # pytest's tmp_path is private to root
    try:
        shared.chmod(0o777)
        proc = run_cli("--interface", "lo", "--duration", "1", *base_args(shared), user="nobody", cwd=shared)
    finally:
        shutil.rmtree(shared)
    line = one_line_error(proc)
    assert "no permission to capture on 'lo'" in line and "CAP_NET_RAW" in line


def test_tshark_not_installed(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    env = {**os.environ, "PATH": str(bin_dir)}
    assert shutil.which("tshark", path=env["PATH"]) is None
    line = one_line_error(run_cli("--read", str(DATA / "tiny-ethernet.pcap"), *base_args(tmp_path), env=env))
    assert "tshark is not installed" in line and "setup.sh" in line


def test_dashboard_port_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = ["--read", str(DATA / "tiny-ethernet.pcap"), "--port", str(port), "--no-progress",
                "--data-dir", str(tmp_path / "d"), "--log-file", str(tmp_path / "l")]  # fmt: skip
        line = one_line_error(run_cli(*args, timeout=60))
    assert f"port {port}" in line and "already in use" in line


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("CONFIG = {'window_s': 5,\n", "syntax error on line 1"),
        ("CONFIG = {'windows': 5}\n", "unknown setting 'windows'"),
        ("CONFIG = {'window_s': 'five'}\n", "window_s must be a number"),
        ("CONFIG = {'dashboard_port': 70000}\n", "dashboard_port must be between 1 and 65535"),
        ("CONFIG = {'capture_backend': 'scapy'}\n", "capture_backend must be one of pyshark, tshark"),
        ("SETTINGS = {}\n", "must define CONFIG"),
        ("import nonexistent_module\n", "ModuleNotFoundError"),
    ],
)
def test_broken_config_file(tmp_path, content, expected):
    config = tmp_path / "broken.py"
    config.write_text(content)
    line = one_line_error(run_cli("--config", str(config), *base_args(tmp_path)))
    assert expected in line and line.count("\n") == 0


def test_bad_command_line_value(tmp_path):
    line = one_line_error(run_cli("--read", str(DATA / "tiny-ethernet.pcap"), "--window", "-2", *base_args(tmp_path)))
    assert "window_s must be more than 0 seconds" in line
