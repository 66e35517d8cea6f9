"""DNS tunnel and exfiltration detector: the labelled public captures, and dig traffic made between test namespaces.

This module also holds the helpers the other detector tests use for self-made traffic: a tiny DNS
responder (run as ``python test_detect_dns_tunnel.py serve IP SECONDS`` inside a namespace) and
a tcpdump recording of host A's interface.
"""

from __future__ import annotations

import base64
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from netns import HostPair, host_pair  # noqa: F401 (fixture)

from traffic_analyzer.capture.pcap_file import PcapFileSource
from traffic_analyzer.detection.base import Detector
from traffic_analyzer.detection.dns_tunnel import DnsTunnelDetector, split_name
from traffic_analyzer.pipeline import Analysis, file_windows
from traffic_analyzer.records.alert import Alert

HERE = Path(__file__).resolve()
WINDOW_S = 5.0  # the analyzer's default window
ZONES = ("example.com", "example.net", "tunnel.test", "exfil.test")  # the responder answers these, NXDOMAIN else
RESPONDER_LIFETIME_S = 60.0
PCAP_HEADER_BYTES = 24  # a capture file of this size holds no packet
# Files whose DNS is ordinary browsing: no DNS alert may come from them.
NORMAL_DNS_FILES = ("c2-empire-http-beacon.pcap", "c2-quasarrat.pcap", "malware-ek-dga-infection.pcap")


def analyse(path: Path, detector: Detector) -> tuple[list[Alert], Analysis]:
    """The merged alerts of one detector over a capture read through the real pipeline, and the analysis."""
    analysis = Analysis(detectors=[detector])
    for packets in file_windows(PcapFileSource(path, progress=False).batches(), WINDOW_S):
        analysis.process(packets, live=False)
    return list(analysis.book.alerts.values()), analysis


def labelled_span(row: pd.Series, analysis: Analysis) -> tuple[float, float]:
    """The label's time range; empty start/end mean the whole file."""
    start = analysis.first_ts if pd.isna(row["start_ts"]) else float(row["start_ts"])
    end = analysis.last_ts if pd.isna(row["end_ts"]) else float(row["end_ts"])
    return start, end


def need(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (./setup.sh --dev installs it)")


@contextmanager
def recording(pair: HostPair, path: Path, bpf: str) -> Iterator[None]:
    """tcpdump on host A's interface into ``path`` while the block runs."""
    proc = pair.popen_in(
        pair.ns_a, "tcpdump", "-n", "-Z", "root", "--immediate-mode", "-U", "-i", pair.if_a, "-w", str(path), bpf,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
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
    assert path.stat().st_size > PCAP_HEADER_BYTES, "tcpdump recorded no packet"


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


def encoded_chunks(n: int, chars: int, seed: int) -> list[str]:
    """n chunks of base32 text, each ``chars`` long: what a tunnel writes into its query names."""
    data = random.Random(seed).randbytes(n * chars)
    text = base64.b32encode(data).decode().rstrip("=").lower()
    return [text[i * chars : (i + 1) * chars] for i in range(n)]


@pytest.mark.parametrize("name", ["dns-tunnel-iodine.pcap", "dns-tunnel-dnscat2.pcap", "dns-exfil-dnsexfiltrator.pcap"])
def test_labelled_dns_tunnels_are_found(pcaps, labels, name):
    alerts, analysis = analyse(pcaps / name, DnsTunnelDetector())  # a capture not here skips first
    row = labels.set_index("file").loc[name]
    assert [(a.kind, a.attacker, a.victims) for a in alerts] == [(row["kind"], row["attacker"], [row["victim"]])]
    alert = alerts[0]
    start, end = labelled_span(row, analysis)
    assert start - 1 <= alert.start <= alert.end <= end + 1
    assert alert.severity in ("high", "critical")
    assert row["attacker"] in alert.explanation and "s;" in alert.explanation


def test_iodine_alert_explains_the_null_queries(pcaps):
    (alert,) = analyse(pcaps / "dns-tunnel-iodine.pcap", DnsTunnelDetector())[0]
    assert alert.evidence["domain"] == "pirate.sea"
    assert alert.evidence["distinct_names"] == alert.evidence["queries"] == 222
    assert alert.evidence["query_types"] == {"NULL": 222}
    assert "222 NULL queries for 222 distinct" in alert.explanation
    assert "normal clients ask under 30 distinct subdomains of one domain" in alert.explanation


def test_exfiltration_burst_estimates_the_data_carried(pcaps):
    (alert,) = analyse(pcaps / "dns-exfil-dnsexfiltrator.pcap", DnsTunnelDetector())[0]
    assert alert.kind == "dns_exfiltration"
    assert alert.evidence["domain"] == "hsc.fr" and alert.evidence["long_names"] >= 8
    assert alert.end - alert.start < 1.0
    assert 1.0 < alert.evidence["est_kbytes_out"] < 10.0


def test_no_dns_alert_on_benign_or_browsing_dns(pcaps, labels):
    names = [*labels.loc[labels["kind"] == "benign", "file"], *NORMAL_DNS_FILES]
    for name in names:
        alerts, _ = analyse(pcaps / name, DnsTunnelDetector())
        assert alerts == [], (name, [a.explanation for a in alerts])


def test_fit_quotes_the_baseline(pcaps):
    analysis = Analysis(detectors=[])
    baseline = [
        analysis.process(p, live=False)[1]
        for p in file_windows(PcapFileSource(pcaps / "benign-iphone-mixed.pcap", progress=False).batches(), WINDOW_S)
    ]
    detector = DnsTunnelDetector().fit(baseline)
    assert 0 < detector.baseline_max_subdomains_ < detector.min_unique_subdomains
    (alert,) = analyse(pcaps / "dns-tunnel-dnscat2.pcap", detector)[0]
    assert f"the busiest baseline client asked {detector.baseline_max_subdomains_} distinct" in alert.explanation


def test_state_stays_bounded(pcaps):
    detector = DnsTunnelDetector(max_queries_per_domain=50, max_tracked_queries=60)
    alerts, _ = analyse(pcaps / "dns-tunnel-iodine.pcap", detector)
    assert len(detector._rows) <= 50
    assert [a.kind for a in alerts] == ["dns_tunnel"]  # 50 remembered names are still past the threshold


def test_registered_domain_split():
    assert split_name("a.b.bbc.co.uk") == ("bbc.co.uk", "a.b")
    assert split_name("www.example.com.") == ("example.com", "www")
    assert split_name("dnscat.546b03f5.19e4d098dc8c") == ("", "dnscat.546b03f5.19e4d098dc8c")
    assert split_name("wpad") == ("", "wpad")


def test_bad_parameter_is_named():
    with pytest.raises(ValueError, match="min_unique_subdomains"):
        DnsTunnelDetector(min_unique_subdomains=0).detect(None)


def test_ordinary_dig_queries_raise_nothing(host_pair, tmp_path):  # noqa: F811
    words = "www mail api cdn static login images news shop blog support docs status portal mobile assets media"
    words += " video search accounts calendar drive maps photos play store translate weather finance sports"
    queries = [f"{w}.example.com A" for w in words.split()]  # 30 distinct subdomains of one domain, word-like
    queries += [f"{w}.example.net AAAA" for w in ("www", "mail", "vpn")]
    queries += ["example.net MX", "_dmarc.example.net TXT", "example.com TXT", "selector1._domainkey.example.com TXT"]
    pcap = record_dns(host_pair, tmp_path, queries)
    alerts, analysis = analyse(pcap, DnsTunnelDetector())
    assert analysis.packets == 2 * len(queries)  # every query and its answer
    assert alerts == [], [a.explanation for a in alerts]


def test_encoded_dig_queries_are_a_tunnel_and_an_exfiltration(host_pair, tmp_path):  # noqa: F811
    tunnel = [f"{chunk}.{i}.tunnel.test TXT" for i, chunk in enumerate(encoded_chunks(40, 48, seed=1))]
    exfil = [
        f"{i}.{a}.{b}.{c}.exfil.test TXT"
        for i, (a, b, c) in enumerate(zip(*[iter(encoded_chunks(36, 50, seed=2))] * 3, strict=True))
    ]
    normal = ["www.example.com A", "mail.example.com A"]
    pcap = record_dns(host_pair, tmp_path, normal + tunnel + exfil)
    alerts, _ = analyse(pcap, DnsTunnelDetector())
    found = sorted((a.kind, a.attacker, tuple(a.victims), a.evidence["domain"]) for a in alerts)
    assert found == [
        ("dns_exfiltration", host_pair.ip_b, (host_pair.ip_a,), "exfil.test"),
        ("dns_tunnel", host_pair.ip_b, (host_pair.ip_a,), "tunnel.test"),
    ]
    tunnel_alert = next(a for a in alerts if a.kind == "dns_tunnel")
    assert tunnel_alert.evidence["distinct_names"] == 40 and tunnel_alert.evidence["encoded_share"] == 1.0


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    serve_dns(sys.argv[2], float(sys.argv[3]))
