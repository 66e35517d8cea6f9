"""A tiny DNS responder for tests between namespaces, and a recording of dig's queries answered by it.

The responder runs as ``python dns_responder.py serve IP SECONDS`` inside a namespace: names under ZONES
get an answer (A or TXT), everything else NXDOMAIN.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from netns import HostPair, need, recording

HERE = Path(__file__).resolve()
ZONES = ("example.com", "example.net", "tunnel.test", "exfil.test")  # the responder answers these, NXDOMAIN else
RESPONDER_LIFETIME_S = 60.0


@contextmanager
def dns_responder(pair: HostPair) -> Iterator[None]:
    """This module's DNS responder on host A, port 53, for at most RESPONDER_LIFETIME_S."""
    proc = pair.popen_in(
        pair.ns_a, sys.executable, str(HERE), "serve", pair.ip_a, str(RESPONDER_LIFETIME_S),
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(HERE.parents[1])},
    )  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def dig_batch(pair: HostPair, tmp_path: Path, queries: list[str]) -> None:
    """Send ``name TYPE`` queries from host B to the responder on host A with dig's batch mode."""
    batch = tmp_path / "queries.txt"
    batch.write_text("\n".join(queries) + "\n")
    done = pair.run_in(pair.ns_b, "dig", f"@{pair.ip_a}", "-f", str(batch), "+tries=1", "+time=2", "+short")
    assert done.returncode == 0, done.stderr
    assert "timed out" not in done.stdout, done.stdout


def record_dns(pair: HostPair, tmp_path: Path, queries: list[str]) -> Path:
    """A capture of the queries, answered by the responder, as host A's interface saw them."""
    need("dig", "tcpdump")
    pcap = tmp_path / "dns.pcap"
    with dns_responder(pair), recording(pair, pcap, "udp port 53"):
        dig_batch(pair, tmp_path, queries)
    return pcap


def _dns_reply(query: bytes) -> bytes:
    """NOERROR (an A or TXT answer) for names under ZONES, NXDOMAIN for everything else."""
    ident, flags = struct.unpack("!HH", query[:4])
    labels, i = [], 12
    while query[i]:
        labels.append(query[i + 1 : i + 1 + query[i]].decode("ascii", "replace"))
        i += 1 + query[i]
    qtype = struct.unpack("!H", query[i + 1 : i + 3])[0]
    question = query[12 : i + 5]
    name = ".".join(labels).lower()
    known = any(name == z or name.endswith("." + z) for z in ZONES)
    answers = b""
    if known and qtype == 1:
        answers = struct.pack("!HHHIH4s", 0xC00C, 1, 1, 60, 4, socket.inet_aton("192.0.2.1"))
    elif known and qtype == 16:
        answers = struct.pack("!HHHIHB2s", 0xC00C, 16, 1, 60, 3, 2, b"ok")
    rcode = 0 if known else 3
    header = struct.pack("!HHHHHH", ident, 0x8400 | (flags & 0x0100) | rcode, 1, 1 if answers else 0, 0, 0)
    return header + question + answers


def serve_dns(ip: str, lifetime_s: float) -> None:
    """Answer DNS queries on ip:53 until lifetime_s has passed."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((ip, 53))
        sock.settimeout(0.5)
        print("ready", flush=True)
        deadline = time.monotonic() + lifetime_s
        while time.monotonic() < deadline:
            try:
                query, client = sock.recvfrom(4096)
            except TimeoutError:
                continue
            sock.sendto(_dns_reply(query), client)


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    serve_dns(sys.argv[2], float(sys.argv[3]))
