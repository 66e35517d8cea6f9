"""DNS tunnel and exfiltration detector: the labelled public captures, and dig traffic made between test namespaces
(answered by ``dns_responder.py``)."""

from __future__ import annotations

import base64
import random
import re

import pytest
from detection_helpers import WINDOW_S, analyse, labelled_span
from dns_responder import record_dns
from netns import host_pair  # noqa: F401 (fixture)

from traffic_analyzer.capture.pcap_file import PcapFileSource
from traffic_analyzer.detection.dns_names import split_name
from traffic_analyzer.detection.dns_tunnel import DnsTunnelDetector
from traffic_analyzer.pipeline import Analysis, file_windows

# Files whose DNS is ordinary browsing: no DNS alert may come from them.
NORMAL_DNS_FILES = ("c2-empire-http-beacon.pcap", "c2-quasarrat.pcap", "malware-ek-dga-infection.pcap")


def encoded_chunks(n: int, chars: int, seed: int) -> list[str]:
    """n chunks of base32 text, each ``chars`` long: what a tunnel writes into its query names."""
    data = random.Random(seed).randbytes(n * chars)
    text = base64.b32encode(data).decode().rstrip("=").lower()
    return [text[i * chars : (i + 1) * chars] for i in range(n)]


@pytest.mark.parametrize("name", ["dns-tunnel-iodine.pcap", "dns-tunnel-dnscat2.pcap", "dns-exfil-dnsexfiltrator.pcap"])
def test_labelled_dns_tunnels_are_found(pcaps, labels, name):
    alerts, analysis = analyse(pcaps / name, DnsTunnelDetector())
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


def test_exfiltration_burst_estimates_the_data_carried(pcaps, labels):
    (alert,) = analyse(pcaps / "dns-exfil-dnsexfiltrator.pcap", DnsTunnelDetector())[0]
    notes = labels.set_index("file").loc["dns-exfil-dnsexfiltrator.pcap", "notes"]
    assert alert.kind == "dns_exfiltration"
    assert alert.evidence["domain"] == re.search(r" under (\S+) \(init\.", notes)[1]
    assert alert.evidence["long_names"] >= 8
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
