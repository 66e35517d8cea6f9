"""DGA detector: the labelled infection capture, benign captures, name randomness, dig traffic in namespaces."""

from __future__ import annotations

import random
import re

import pandas as pd
import pytest
from detection_helpers import analyse, labelled_span
from dns_responder import record_dns
from netns import host_pair  # noqa: F401 (fixture)

from traffic_analyzer.capture.pcap_file import PcapFileSource
from traffic_analyzer.detection.dga import DgaDetector, generated_label

DNS_PORT = 53
# Registered labels of popular sites, CDNs, ad and tracking services (blocked ones come back NXDOMAIN).
POPULAR_LABELS = """google youtube facebook baidu wikipedia amazon twitter instagram linkedin netflix microsoft apple
yahoo whatsapp tiktok reddit office pinterest twitch github stackoverflow paypal adobe dropbox spotify wordpress
tumblr imgur cloudflare akamaiedge akamaized cloudfront amazonaws googleapis gstatic googleusercontent
googlesyndication googletagmanager doubleclick googleadservices googlevideo msftconnecttest windowsupdate
trafficmanager azureedge xboxlive outlook hotmail icloud mzstatic nflxvideo nflximg scorecardresearch criteo pubmatic
rubiconproject taboola outbrain moatads quantserve bidswitch casalemedia mathtag yieldmo appnexus smartadserver
everesttech bluekai exelator contextweb sharethrough zemanta triplelift alibaba aliexpress rakuten booking
tripadvisor expedia nytimes washingtonpost theguardian bloomberg chrissanders wireshark expoactive decolefacil
bloginky aseaofblue blogspot sydneygroup homealldaylong stackexchange salesforce newrelic optimizely mixpanel
amplitude datadoghq cloudinary shopify squarespace wixstatic jsdelivr bootstrapcdn fontawesome gravatar livechatinc
zendesk intercom hubspot marketo qualtrics surveymonkey typeform docusign deviantart bunnycdn edgecastcdn footprint
microsoftstream googlezip steampowered steamcommunity playstation nintendo discordapp atlassian bitbucket
letsencrypt duckduckgo""".split()


def test_dga_bursts_are_found_in_the_infection_capture(pcaps, labels):
    capture = pcaps / "malware-ek-dga-infection.pcap"
    alerts, analysis = analyse(capture, DgaDetector())
    row = labels[(labels["file"] == capture.name) & (labels["kind"] == "dga")].iloc[0]
    sample, resolved = re.search(r"e\.g\. (\S+\.com)\).* look up (\S+\.biz)", row["notes"]).groups()
    # The label names the infected host as the victim of the malware; the detector reports it as
    # the attacker, the host doing the lookups, and the resolver it asked as the victim.
    assert [(a.kind, a.attacker) for a in alerts] == [("dga", row["victim"])]
    alert = alerts[0]
    packets = pd.concat(list(PcapFileSource(capture, progress=False).batches()), ignore_index=True)
    asked = packets[(packets["src_ip"] == row["victim"]) & (packets["dst_port"] == DNS_PORT)]["dst_ip"].unique()
    assert alert.victims == list(asked)  # the one resolver the infected host asks
    start, end = labelled_span(row, analysis)
    assert start - 1 <= alert.start <= alert.end <= end + 1
    assert alert.updates == 2  # one alert, updated by the second burst
    assert alert.evidence["generated_nxdomains"] == 8 and sample in alert.evidence["sample_domains"]
    assert resolved in alert.evidence["resolved_generated_domains"]  # the one the malware reached
    assert alert.severity in ("high", "critical")
    assert "NXDOMAIN" in alert.explanation
    assert "normal clients get under 4 such answers within 60 s" in alert.explanation


def test_first_burst_alone_is_enough(pcaps):
    alerts, _ = analyse(pcaps / "malware-ek-dga-infection.pcap", DgaDetector(window_s=30.0))
    (alert,) = alerts
    assert alert.evidence["generated_nxdomains"] == 4  # each burst on its own
    assert alert.evidence["generated_nxdomains_remembered"] == 8  # both bursts count towards the score
    assert "8 in the last 58 s" in alert.explanation


def test_no_dga_alert_on_benign_captures(pcaps, labels):
    for name in labels.loc[labels["kind"] == "benign", "file"]:
        alerts, _ = analyse(pcaps / name, DgaDetector())
        assert alerts == [], (name, [a.explanation for a in alerts])


def test_generated_labels_are_told_from_real_ones():
    rng = random.Random(5)
    letters = "abcdefghijklmnopqrstuvwxyz"
    random_labels = ["".join(rng.choice(letters) for _ in range(rng.randint(8, 20))) for _ in range(300)]
    alnum = ["".join(rng.choice(letters + "0123456789") for _ in range(rng.randint(8, 24))) for _ in range(200)]
    flagged = [label for label in POPULAR_LABELS if generated_label(label, 8, 0.35)[0]]
    assert len(flagged) / len(POPULAR_LABELS) < 0.03, flagged
    assert sum(generated_label(label, 8, 0.35)[0] for label in random_labels) / len(random_labels) > 0.85
    assert sum(generated_label(label, 8, 0.35)[0] for label in alnum) / len(alnum) > 0.95
    assert not generated_label("aaaaaaaaaaaa", 8, 0.35)[0]  # random-looking pairs but no entropy


def test_bad_parameter_is_named():
    with pytest.raises(ValueError, match="min_randomness"):
        DgaDetector(min_randomness=2.0).detect(None)


def test_typos_and_browser_probes_raise_nothing(host_pair, tmp_path):  # noqa: F811
    typos = ["gooogle.com", "wikipedai.org", "facebok.com", "amazoon.com", "microsfot.com", "netflx.com", "yahooo.com"]
    probes = ["qwhjdkfue", "lkjsdfoiwe", "zxmnvbqwer"]  # Chrome's random single-label NXDOMAIN-hijack probes
    suffixed = ["xkqzvbnmrtp.lan", "qpwoeirutyz.home"]  # random labels under a home network's search suffix
    pcap = record_dns(host_pair, tmp_path, [f"{name} A" for name in typos + probes + suffixed])
    alerts, analysis = analyse(pcap, DgaDetector())
    assert analysis.packets == 2 * len(typos + probes + suffixed)  # every query and its NXDOMAIN answer
    assert alerts == [], [a.explanation for a in alerts]


def test_random_nxdomain_lookups_are_a_dga(host_pair, tmp_path):  # noqa: F811
    rng = random.Random(11)
    names = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(10, 16))) for _ in range(6)]
    tlds = ["com", "net", "org"] * 2
    queries = ["www.example.com A"] + [f"{name}.{tld} A" for name, tld in zip(names, tlds, strict=True)]
    pcap = record_dns(host_pair, tmp_path, queries)
    alerts, _ = analyse(pcap, DgaDetector())
    assert [(a.kind, a.attacker, a.victims) for a in alerts] == [("dga", host_pair.ip_b, [host_pair.ip_a])]
    assert alerts[0].evidence["generated_nxdomains"] == 6
