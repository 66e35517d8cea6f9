"""hydra guessing SSH passwords between test namespaces is one brute_force alert naming it and nothing
else (honest key logins are tests/integration/test_benign_traffic.py's). Real sshd and hydra, recorded by dumpcap,
read by the CLI."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import read_json
from netns import HostPair, host_pair  # noqa: F401 (fixture)

GUESSES = 200
HYDRA_S = 25  # hydra is stopped after this long; it guesses about 40 sessions in that time here


def _sshd(pair: HostPair, folder: Path) -> subprocess.Popen:
    host_key = folder / "host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True, timeout=30)
    conf = folder / "sshd_config"
    conf.write_text(
        f"Port 22\nHostKey {host_key}\nPidFile {folder}/sshd.pid\nPasswordAuthentication yes\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nUseDNS no\nMaxStartups 50\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    return pair.popen_in(pair.ns_a, shutil.which("sshd") or "/usr/sbin/sshd", "-D", "-e", "-f", str(conf),
                         stderr=subprocess.DEVNULL)  # fmt: skip


@pytest.mark.live
def test_hydra_against_ssh_is_brute_force_naming_the_guesser(host_pair, tmp_path):  # noqa: F811
    for tool in ("hydra", "ssh-keygen", "dumpcap"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed; ./setup.sh --dev installs it")
    if not (shutil.which("sshd") or Path("/usr/sbin/sshd").exists()):
        pytest.skip("sshd (openssh-server) is not installed; ./setup.sh --dev installs it")
    capture = tmp_path / "hydra.pcap"
    words = tmp_path / "words"
    words.write_text("".join(f"wrong-{i}\n" for i in range(GUESSES)))
    sshd = _sshd(host_pair, tmp_path)
    recorder = host_pair.popen_in(
        host_pair.ns_a, "dumpcap", "-i", host_pair.if_a, "-q", "-P", "-w", str(capture),
        "-a", f"duration:{HYDRA_S + 8}", stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(3)  # sshd listens, dumpcap records
        host_pair.run_in(
            host_pair.ns_b, "timeout", str(HYDRA_S), "hydra", "-l", "root", "-P", str(words), "-t", "4", "-w", "3",
            "-I", f"ssh://{host_pair.ip_a}", timeout=HYDRA_S + 30, cwd=tmp_path,
        )  # fmt: skip
        recorder.wait(timeout=60)
    finally:
        for proc in (recorder, sshd):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)
    summary = read_json(tmp_path, capture, "--no-evidence")
    brute = [a for a in summary["alerts"] if a["kind"] == "brute_force"]
    assert len(brute) == 1, summary["alerts"]
    assert brute[0]["attacker"] == host_pair.ip_b and brute[0]["victims"] == [host_pair.ip_a]
    assert brute[0]["severity"] in ("medium", "high", "critical")
    assert "SSH" in brute[0]["explanation"]
    assert {a["kind"] for a in summary["alerts"]} == {"brute_force"}, "hydra's sessions raised something else too"
