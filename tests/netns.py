"""Two test hosts in network namespaces made for one test: a veth pair, no default route, removed after."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SUBNET_PREFIX = "10.213.0"  # exists only inside the namespaces below
PCAP_HEADER_BYTES = 24  # a capture file of this size holds no packet
CAPTURE_BUFFER_KB = 16384
HEADERS_SNAPLEN = 256  # bytes of each frame kept when the headers are all a detector reads


@dataclass(frozen=True)
class HostPair:
    """Host A (the sensor side) and host B, joined by a veth pair."""

    ns_a: str
    ns_b: str
    if_a: str
    if_b: str
    ip_a: str = f"{SUBNET_PREFIX}.1"
    ip_b: str = f"{SUBNET_PREFIX}.2"

    def run_in(self, ns: str, *cmd: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, timeout=timeout, **kw)

    def popen_in(self, ns: str, *cmd: str, **kw) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", ns, *cmd], **kw)

    def syn_scan(self, ports: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """nmap SYN-scans ``ports`` of host A from host B, once per port (no retries), fast timing."""
        cmd = ["nmap", "-n", "-Pn", "-sS", "-p", ports, "--max-retries", "0", "-T4", self.ip_a]
        return self.run_in(self.ns_b, *cmd, timeout=timeout)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@contextlib.contextmanager
def namespace_pair() -> Iterator[HostPair]:
    """Two fresh namespaces joined by a veth pair, removed on exit (for tests and bench scripts)."""
    tag = uuid.uuid4().hex[:6]
    pair = HostPair(ns_a=f"nta-{tag}-a", ns_b=f"nta-{tag}-b", if_a=f"nta{tag}a", if_b=f"nta{tag}b")
    try:
        _ip("netns", "add", pair.ns_a)
        _ip("netns", "add", pair.ns_b)
        _ip("link", "add", pair.if_a, "type", "veth", "peer", "name", pair.if_b)
        _ip("link", "set", pair.if_a, "netns", pair.ns_a)
        _ip("link", "set", pair.if_b, "netns", pair.ns_b)
        for ns, dev, ip in ((pair.ns_a, pair.if_a, pair.ip_a), (pair.ns_b, pair.if_b, pair.ip_b)):
            _ip("-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield pair
    finally:
        for ns in (pair.ns_a, pair.ns_b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


@pytest.fixture
def host_pair():
    if os.geteuid() != 0:
        pytest.skip("creating network namespaces needs root")
    if shutil.which("ip") is None:
        pytest.skip("iproute2 (ip) is not installed; ./setup.sh --dev installs it")
    with namespace_pair() as pair:
        yield pair


def need(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (./setup.sh --dev installs it)")


@contextlib.contextmanager
def recording(pair: HostPair, path: Path, bpf: str = "", snaplen: int = 0) -> Iterator[None]:
    """tcpdump on host A's interface into ``path`` while the block runs: the frames ``bpf`` selects (all without
    one), cut to ``snaplen`` bytes (whole without one). Fails if tcpdump dropped a frame or recorded none."""
    tcpdump = ["tcpdump", "-n", "-Z", "root", "--immediate-mode", "-U", "-B", str(CAPTURE_BUFFER_KB)]
    tcpdump += ["-s", str(snaplen)] if snaplen else []
    capture = [*tcpdump, "-i", pair.if_a, "-w", str(path), *([bpf] if bpf else [])]
    proc = pair.popen_in(pair.ns_a, *capture, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:  # tcpdump says "listening on" once it captures, or exits with the reason
            if "listening on" in line:
                break
        else:
            raise AssertionError(f"tcpdump did not start (exit {proc.wait(timeout=10)})")
        yield
        time.sleep(0.5)  # the last replies
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    stats = proc.stderr.read()
    assert "\n0 packets dropped by kernel" in "\n" + stats, stats
    assert path.stat().st_size > PCAP_HEADER_BYTES, "tcpdump recorded no packet"
