"""DNS and ICMP tunnel and DGA rules on hand-built windows: dns_tunnel, dga, icmp_tunnel."""

from __future__ import annotations

import hashlib

import pytest
from builders import dns_answer, dns_query, feed, icmp, summary, window

from traffic_analyzer.detection.dga import RCODE_NOERROR, RCODE_NXDOMAIN, DgaDetector
from traffic_analyzer.detection.dns_tunnel import DnsTunnelDetector
from traffic_analyzer.detection.icmp_tunnel import ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, IcmpTunnelDetector

pytestmark = pytest.mark.unit

CLIENT, RESOLVER, PEER = "10.0.0.66", "10.0.0.53", "198.51.100.7"
QTYPE_A, QTYPE_TXT = 1, 16


def encoded_name(i: int, chars: int = 32) -> str:
    """A name under evil.com whose subdomain is ``chars`` hex characters (labels of at most 60)."""
    data = hashlib.sha512(str(i).encode()).hexdigest()[:chars]
    return ".".join(data[j : j + 60] for j in range(0, chars, 60)) + ".evil.com"


def tunnel_queries(first_ts: float, names: range, chars: int = 32, qtype: int = QTYPE_TXT) -> list[dict]:
    return [dns_query(first_ts + 0.2 * k, CLIENT, RESOLVER, encoded_name(i, chars), qtype) for k, i in enumerate(names)]


# dns_tunnel: >= min_unique_subdomains distinct encoded names of one domain within horizon_s, or a burst of
# >= exfil_min_queries long encoded names


def test_dns_tunnel_fires_at_min_unique_subdomains():
    rows = tunnel_queries(700.0, range(30))
    alerts = DnsTunnelDetector(min_unique_subdomains=30).detect(window(rows))
    assert [summary(a) for a in alerts] == [("dns_tunnel", CLIENT, [RESOLVER], 700.0, rows[-1]["ts"])]
    assert alerts[0].evidence["distinct_names"] == 30 and alerts[0].evidence["domain"] == "evil.com"


@pytest.mark.parametrize(
    "rows",
    [
        tunnel_queries(700.0, range(29)) + tunnel_queries(710.0, range(10)),  # 39 queries, 29 distinct names
        [dns_query(700.0 + 0.2 * i, CLIENT, RESOLVER, f"img{i}.cdn.com") for i in range(40)],  # short, plain A
    ],
    ids=["29-names", "host-names"],
)
def test_dns_tunnel_near_miss(rows):
    assert DnsTunnelDetector(min_unique_subdomains=30).detect(window(rows)) == []


def test_dns_tunnel_fires_on_an_exfiltration_burst():
    rows = tunnel_queries(700.0, range(8), chars=120, qtype=QTYPE_A)
    alerts = DnsTunnelDetector(exfil_min_queries=8, exfil_min_subdomain_len=100).detect(window(rows))
    assert [summary(a) for a in alerts] == [("dns_exfiltration", CLIENT, [RESOLVER], 700.0, rows[-1]["ts"])]
    assert alerts[0].evidence["long_names"] == 8


@pytest.mark.parametrize(
    "rows",
    [
        tunnel_queries(700.0, range(7), chars=120),  # one long name short of exfil_min_queries
        tunnel_queries(700.0, range(8), chars=96),  # subdomains under exfil_min_subdomain_len
    ],
    ids=["7-names", "96-chars"],
)
def test_dns_tunnel_near_miss_exfiltration(rows):
    assert DnsTunnelDetector(exfil_min_queries=8, exfil_min_subdomain_len=100).detect(window(rows)) == []


def test_dns_tunnel_allowed_domains_are_never_reported():
    rows = [
        dns_query(700.0 + 0.2 * i, CLIENT, RESOLVER, encoded_name(i).replace("evil.com", "sophosxl.net"))
        for i in range(40)
    ]
    assert DnsTunnelDetector().detect(window(rows)) == []


@pytest.mark.parametrize("late_ts, fires", [(900.0, True), (1100.0, False)])
def test_dns_tunnel_forgets_queries_older_than_horizon_s(late_ts, fires):
    detector = DnsTunnelDetector(min_unique_subdomains=30, horizon_s=300.0)
    alerts = feed(detector, [window(tunnel_queries(700.0, range(29))), window(tunnel_queries(late_ts, range(29, 30)))])
    assert alerts[0] == [] and bool(alerts[1]) is fires


def test_dns_tunnel_the_resolver_relaying_the_queries_is_named_not_raised():
    rows = tunnel_queries(700.0, range(30))
    rows += [dns_query(r["ts"] + 0.001, RESOLVER, PEER, r["dns_qname"], QTYPE_TXT) for r in rows]  # forwarded upstream
    alerts = DnsTunnelDetector(min_unique_subdomains=30).detect(window(rows))
    assert [summary(a) for a in alerts] == [("dns_tunnel", CLIENT, [RESOLVER], 700.0, 700.0 + 0.2 * 29)]
    assert alerts[0].evidence["relays"] == {RESOLVER: [PEER]} and f"{RESOLVER} to {PEER}" in alerts[0].explanation


def test_dns_tunnel_a_resolver_asking_names_of_its_own_is_raised():
    """Near miss of the relay rule: the names the resolver asked were not asked of it."""
    rows = [dns_query(700.0 + 0.2 * i, RESOLVER, PEER, encoded_name(i), QTYPE_TXT) for i in range(30)]
    rows += [dns_query(700.1, CLIENT, RESOLVER, encoded_name(99), QTYPE_TXT)]
    alerts = DnsTunnelDetector(min_unique_subdomains=30).detect(window(rows))
    assert [summary(a)[:2] for a in alerts] == [("dns_tunnel", RESOLVER)]


# dga: NXDOMAIN for >= min_names distinct generated-looking registered domains within window_s

GENERATED = ("xqcuxrdsfdxf.com", "kjhgqwpzmv.net", "zvbxqwrtpl.org", "mnbvcxzlkq.info", "pwqzkrtvyx.com")
WORDS = ("wikipedia.org", "stackoverflow.com", "microsoftonline.com", "amazonaws.com")


def nxdomains(first_ts: float, names, rcode: int = RCODE_NXDOMAIN) -> list[dict]:
    return [dns_answer(first_ts + 0.5 * i, RESOLVER, CLIENT, name, rcode) for i, name in enumerate(names)]


def test_dga_fires_at_min_names():
    rows = nxdomains(800.0, GENERATED[:4]) + nxdomains(803.0, ["www." + GENERATED[0]])  # a subdomain adds nothing
    alerts = DgaDetector(min_names=4).detect(window(rows))
    # the evidence is each distinct domain's first NXDOMAIN: 800.0 to 801.5
    assert [summary(a) for a in alerts] == [("dga", CLIENT, [RESOLVER], 800.0, 801.5)]
    assert alerts[0].evidence["generated_nxdomains"] == 4


def test_dga_the_resolver_relaying_the_lookups_is_named_not_raised():
    upstream = [
        dns_answer(800.0 + 0.5 * i - 0.01, PEER, RESOLVER, name, RCODE_NXDOMAIN) for i, name in enumerate(GENERATED)
    ]
    alerts = DgaDetector(min_names=4).detect(window(nxdomains(800.0, GENERATED) + upstream))
    assert [summary(a) for a in alerts] == [("dga", CLIENT, [RESOLVER], 800.0, 802.0)]
    assert alerts[0].evidence["relays"] == {RESOLVER: [PEER]}


@pytest.mark.parametrize(
    "rows",
    [
        nxdomains(800.0, GENERATED[:3] + GENERATED[:3]),  # three names, asked twice
        nxdomains(800.0, GENERATED[:3] + WORDS),  # typos of word-like names are no DGA
        nxdomains(800.0, GENERATED[:3]) + nxdomains(805.0, GENERATED[3:5], RCODE_NOERROR),  # two of them resolved
        nxdomains(800.0, [n.split(".")[0] + ".corp" for n in GENERATED]),  # a search-list suffix, no registered domain
    ],
    ids=["3-names", "words", "resolved", "private-tld"],
)
def test_dga_near_miss(rows):
    assert DgaDetector(min_names=4).detect(window(rows)) == []


@pytest.mark.parametrize("late_ts, fires", [(850.0, True), (870.0, False)])
def test_dga_names_older_than_window_s_do_not_count(late_ts, fires):
    detector = DgaDetector(min_names=4, window_s=60.0)
    alerts = feed(detector, [window(nxdomains(800.0, GENERATED[:3])), window(nxdomains(late_ts, GENERATED[3:4]))])
    assert alerts[0] == [] and bool(alerts[1]) is fires


# icmp_tunnel: >= min_packets echo packets of a pair in >= min_distinct_sizes sizes, >= min_odd_share of them
# not a standard ping size, within horizon_s (request sizes that only grow are a size sweep)


def echoes(first_ts: float, sizes, replies: int | None = None) -> list[dict]:
    """An echo request of each size from CLIENT to PEER, and the first ``replies`` answered in kind."""
    rows = []
    for i, size in enumerate(sizes):
        rows.append(icmp(first_ts + i, CLIENT, PEER, ICMP_ECHO_REQUEST, size))
        if replies is None or i < replies:
            rows.append(icmp(first_ts + i + 0.05, PEER, CLIENT, ICMP_ECHO_REPLY, size))
    return rows


TUNNEL_SIZES = (300, 100, 500, 200, 400) * 2  # 10 requests, 5 sizes, none a ping size, up and down


def test_icmp_tunnel_fires_at_min_packets_and_sizes():
    rows = echoes(900.0, TUNNEL_SIZES)
    alerts = IcmpTunnelDetector(min_packets=20, min_distinct_sizes=5).detect(window(rows))
    assert [summary(a) for a in alerts] == [("icmp_tunnel", CLIENT, [PEER], 900.0, rows[-1]["ts"])]
    assert alerts[0].evidence["echo_requests"] == 10 and alerts[0].evidence["distinct_sizes"] == 5


@pytest.mark.parametrize(
    "rows",
    [
        echoes(900.0, TUNNEL_SIZES, replies=9),  # 19 echo packets
        echoes(900.0, (300, 100, 500, 200) * 3),  # 4 distinct sizes
        echoes(900.0, (56, 64, 32, 100, 200) * 2),  # 60 % standard ping sizes: odd share 0.4
        echoes(900.0, (100, 200, 300, 400, 500, 600, 700, 800, 900, 1000)),  # a size sweep (ping -g)
        echoes(900.0, [56] * 30),  # ordinary ping
    ],
    ids=["19-packets", "4-sizes", "ping-sizes", "sweep", "ping"],
)
def test_icmp_tunnel_near_miss(rows):
    detector = IcmpTunnelDetector(min_packets=20, min_distinct_sizes=5, min_odd_share=0.5)
    assert detector.detect(window(rows)) == []


@pytest.mark.parametrize("late_ts, fires", [(1000.0, True), (1600.0, False)])
def test_icmp_tunnel_forgets_echoes_older_than_horizon_s(late_ts, fires):
    detector = IcmpTunnelDetector(min_packets=20, horizon_s=600.0)
    early, late = echoes(900.0, TUNNEL_SIZES[:5]), echoes(late_ts, TUNNEL_SIZES[5:])
    alerts = feed(detector, [window(early), window(late)])
    assert alerts[0] == [] and bool(alerts[1]) is fires
