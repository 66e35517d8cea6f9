"""Layer-2 rules on hand-built windows: arp_spoof, mac_flood."""

from __future__ import annotations

import pytest
from builders import arp, dns_query, feed, summary, tcp, window

from traffic_analyzer.detection.arp_spoof import ARP_REPLY, ARP_REQUEST, ArpSpoofDetector
from traffic_analyzer.detection.mac_flood import MacFloodDetector
from traffic_analyzer.records.packets import TCP_ACK, TCP_PSH

pytestmark = pytest.mark.unit

GATEWAY, VICTIM, ATTACKER = "10.0.0.1", "10.0.0.5", "10.0.0.66"
GATEWAY_MAC, VICTIM_MAC, ATTACKER_MAC = "00:00:5e:00:01:01", "00:16:3e:00:00:05", "00:16:3e:00:00:66"


# arp_spoof: a MAC claiming an address another MAC holds (the first seen, while it answers), or a second address in
# unsolicited replies aimed at a victim; VRRP virtual MACs and gratuitous fail-overs are hand-overs; bindings
# remembered for window_s; the alert spans the spoofed claims only


def neighbours(t: float) -> list[dict]:
    """The victim resolves its gateway, which answers; the attacker resolves the victim (claiming its own address)."""
    return [
        arp(t, ARP_REQUEST, VICTIM_MAC, VICTIM, GATEWAY),
        arp(t + 0.001, ARP_REPLY, GATEWAY_MAC, GATEWAY, VICTIM, dst_mac=VICTIM_MAC),
        arp(t + 1.0, ARP_REQUEST, ATTACKER_MAC, ATTACKER, VICTIM),
    ]


def poison(t: float) -> dict:
    """The attacker tells the victim, unasked, that the gateway's address is at the attacker's MAC."""
    return arp(t, ARP_REPLY, ATTACKER_MAC, GATEWAY, VICTIM, dst_mac=VICTIM_MAC)


def test_arp_spoof_fires_on_a_changed_binding():
    relayed = tcp(2010.5, VICTIM, "93.184.216.34", 443, flags=TCP_PSH | TCP_ACK, src_mac=ATTACKER_MAC)  # forwarding
    alerts = feed(ArpSpoofDetector(), [window(neighbours(2000.0)), window([poison(2010.0), relayed])])
    assert alerts[0] == []
    assert [summary(a) for a in alerts[1]] == [("arp_spoof", ATTACKER, [VICTIM], 2010.0, 2010.0)]
    evidence = alerts[1][0].evidence
    assert evidence["previous_owners"] == {GATEWAY: GATEWAY_MAC} and evidence["relayed_hosts"] == [VICTIM]


def test_arp_spoof_fires_on_a_second_address_pushed_at_a_victim():
    rows = [arp(2000.0, ARP_REQUEST, ATTACKER_MAC, ATTACKER, VICTIM), poison(2010.0)]  # the gateway was never seen
    alerts = ArpSpoofDetector().detect(window(rows))
    assert [summary(a) for a in alerts] == [("arp_spoof", ATTACKER, [VICTIM], 2010.0, 2010.0)]
    assert alerts[0].evidence["spoofed_ips"] == [GATEWAY]


def test_arp_spoof_the_owner_reclaiming_its_address_is_not_raised():
    """The gateway and the victim answer for their own addresses all through the attack: only the spoofer is raised."""
    rows = neighbours(2000.0) + [poison(2010.0 + 2 * i) for i in range(5)]
    rows += [
        arp(2012.5, ARP_REQUEST, VICTIM_MAC, VICTIM, GATEWAY),
        arp(2012.501, ARP_REPLY, GATEWAY_MAC, GATEWAY, VICTIM, dst_mac=VICTIM_MAC),
        arp(2013.0, ARP_REPLY, VICTIM_MAC, VICTIM, GATEWAY, dst_mac=GATEWAY_MAC),
    ]
    later = [arp(2030.0, ARP_REPLY, GATEWAY_MAC, GATEWAY, VICTIM, dst_mac=VICTIM_MAC)]  # after the attack
    alerts = feed(ArpSpoofDetector(), [window(sorted(rows, key=lambda r: r["ts"])), window(later)])
    assert [summary(a) for a in alerts[0]] == [("arp_spoof", ATTACKER, [VICTIM], 2010.0, 2018.0)]
    assert alerts[1] == []


def test_arp_spoof_answering_for_several_addresses_never_owned_is_the_spoofer():
    """The capture starts mid-attack: the spoofer is seen first, pushing two addresses; the owners answer for them."""
    second, second_mac = "10.0.0.6", "00:16:3e:00:00:06"
    rows = [
        arp(2000.0, ARP_REQUEST, ATTACKER_MAC, ATTACKER, VICTIM),
        poison(2001.0),
        arp(2001.5, ARP_REPLY, ATTACKER_MAC, second, GATEWAY, dst_mac=GATEWAY_MAC),
        arp(2002.0, ARP_REQUEST, VICTIM_MAC, VICTIM, GATEWAY),
        arp(2002.001, ARP_REPLY, GATEWAY_MAC, GATEWAY, VICTIM, dst_mac=VICTIM_MAC),
        arp(2003.0, ARP_REQUEST, GATEWAY_MAC, GATEWAY, second),
        arp(2003.001, ARP_REPLY, second_mac, second, GATEWAY, dst_mac=GATEWAY_MAC),
        poison(2005.0),
    ]
    alerts = ArpSpoofDetector().detect(window(rows))
    assert [summary(a) for a in alerts] == [("arp_spoof", ATTACKER, [GATEWAY, VICTIM], 2001.0, 2005.0)]
    assert alerts[0].evidence["previous_owners"] == {GATEWAY: GATEWAY_MAC, second: second_mac}


def test_arp_spoof_vrrp_and_clean_fail_over_are_not_raised():
    """keepalived's virtual MAC takes the address over; a standby host announces itself when the primary dies."""
    vip, primary_mac, standby_mac = "10.0.0.10", "00:16:3e:00:00:0a", "00:16:3e:00:00:0b"
    vrrp = [
        arp(2000.0, ARP_REPLY, primary_mac, vip, VICTIM, dst_mac=VICTIM_MAC),
        arp(2010.0, ARP_REQUEST, "00:00:5e:00:01:33", vip, vip),
        arp(2012.0, ARP_REPLY, "00:00:5e:00:01:33", vip, VICTIM, dst_mac=VICTIM_MAC),
    ]
    fail_over = [
        arp(2000.0, ARP_REPLY, primary_mac, "10.0.0.11", VICTIM, dst_mac=VICTIM_MAC),
        arp(2010.0, ARP_REQUEST, standby_mac, "10.0.0.11", "10.0.0.11"),
        arp(2015.0, ARP_REPLY, standby_mac, "10.0.0.11", VICTIM, dst_mac=VICTIM_MAC),
    ]
    assert ArpSpoofDetector().detect(window(vrrp)) == []
    assert ArpSpoofDetector().detect(window(fail_over)) == []


def test_arp_spoof_a_gratuitous_take_over_whose_owner_answers_again_is_raised():
    rows = neighbours(2000.0) + [
        arp(2010.0, ARP_REQUEST, ATTACKER_MAC, GATEWAY, GATEWAY),
        arp(2012.0, ARP_REQUEST, ATTACKER_MAC, GATEWAY, GATEWAY),
        arp(2013.0, ARP_REPLY, GATEWAY_MAC, GATEWAY, VICTIM, dst_mac=VICTIM_MAC),
    ]
    alerts = ArpSpoofDetector().detect(window(rows))
    assert [summary(a)[:2] + summary(a)[3:] for a in alerts] == [("arp_spoof", ATTACKER, 2010.0, 2012.0)]


@pytest.mark.parametrize("delay_s, fires", [(4.0, False), (6.0, True)])
def test_arp_spoof_a_reply_to_a_request_is_no_spoofing(delay_s, fires):
    """A server with two addresses answers the victim's who-has for its second one (within SOLICITED_S, 5 s)."""
    rows = [
        arp(2000.0, ARP_REQUEST, ATTACKER_MAC, ATTACKER, VICTIM),
        arp(2001.0, ARP_REQUEST, VICTIM_MAC, VICTIM, "10.0.0.67"),
        arp(2001.0 + delay_s, ARP_REPLY, ATTACKER_MAC, "10.0.0.67", VICTIM, dst_mac=VICTIM_MAC),
    ]
    assert bool(ArpSpoofDetector().detect(window(rows))) is fires


def test_arp_spoof_near_miss_hosts_answering_for_themselves():
    rows = neighbours(2000.0) + [arp(2002.0, ARP_REPLY, VICTIM_MAC, VICTIM, ATTACKER, dst_mac=ATTACKER_MAC)]
    assert feed(ArpSpoofDetector(), [window(rows), window(neighbours(2010.0))]) == [[], []]


@pytest.mark.parametrize("late_ts, fires", [(2100.0, True), (5700.0, False)])
def test_arp_spoof_forgets_bindings_older_than_window_s(late_ts, fires):
    """A new MAC taking over the gateway's address long after the old one was last heard is a replacement."""
    detector = ArpSpoofDetector(window_s=3600.0)
    gateway = [arp(2000.0, ARP_REPLY, GATEWAY_MAC, GATEWAY, VICTIM, dst_mac=VICTIM_MAC)]
    quiet = [dns_query(late_ts - 50.0, "10.0.0.2", "10.0.0.53", "example.com")]  # the window before the takeover
    alerts = feed(detector, [window(gateway), window(quiet), window([poison(late_ts)])])
    assert bool(alerts[-1]) is fires


# mac_flood: >= min_new_macs never-seen source MACs within window_s at >= min_new_mac_rate, with >= min_group_share
# of them group-bit MACs (or at >= certain_rate); a MAC stays known for memory_s


def macs(count: int, group: int = 0, first: int = 0) -> list[str]:
    """``count`` distinct source MACs, the first ``group`` of them with the group bit (01 in the first octet)."""
    return [
        f"{'03' if i < group else '02'}:aa:00:00:{(first + i) // 256:02x}:{(first + i) % 256:02x}" for i in range(count)
    ]


def frames(first_ts: float, sources: list[str], step_s: float = 0.02) -> list[dict]:
    return [
        {"ts": first_ts + step_s * i, "src_mac": mac, "dst_mac": "ff:ff:ff:ff:ff:ff"} for i, mac in enumerate(sources)
    ]


def test_mac_flood_fires_at_min_new_macs_and_rate():
    rows = frames(2500.0, macs(50, group=3))  # 50 new MACs in 0.98 s, 6 % with the group bit
    alerts = MacFloodDetector(min_new_macs=50, min_new_mac_rate=20.0, min_group_share=0.05).detect(window(rows))
    assert [summary(a) for a in alerts] == [("mac_flood", "*", ["many"], 2500.0, rows[-1]["ts"])]
    assert alerts[0].evidence["new_macs"] == 50


def test_mac_flood_fires_on_unicast_macs_at_certain_rate():
    rows = frames(2500.0, macs(1000), step_s=0.0009)  # 1000 valid unicast MACs in 0.9 s
    alerts = MacFloodDetector(certain_rate=1000.0).detect(window(rows))
    assert [summary(a) for a in alerts] == [("mac_flood", "*", ["many"], 2500.0, rows[-1]["ts"])]


@pytest.mark.parametrize(
    "rows",
    [
        frames(2500.0, macs(49, group=3)),  # one MAC short of min_new_macs
        frames(2500.0, macs(50, group=3), step_s=2.6 / 49),  # 50 MACs in 2.6 s: 19.2/s, under 20/s
        frames(2500.0, macs(50, group=2)),  # 4 % group-bit MACs, under min_group_share (5 %)
        frames(2500.0, macs(50)),  # valid unicast MACs far under certain_rate
    ],
    ids=["49-macs", "rate", "group-share", "unicast"],
)
def test_mac_flood_near_miss(rows):
    detector = MacFloodDetector(min_new_macs=50, min_new_mac_rate=20.0, min_group_share=0.05, certain_rate=1000.0)
    assert detector.detect(window(rows)) == []


def test_mac_flood_known_macs_are_not_new():
    sources = macs(50, group=3)
    slowly, again = frames(2400.0, sources, step_s=1.2), frames(2500.0, sources)  # first seen 1.2 s apart
    assert feed(MacFloodDetector(memory_s=300.0), [window(slowly), window(again)]) == [[], []]


@pytest.mark.parametrize("late_ts, fires", [(2501.0, True), (2511.0, False)])
def test_mac_flood_forgets_new_macs_older_than_window_s(late_ts, fires):
    detector = MacFloodDetector(min_new_macs=50, window_s=10.0)
    early, late = frames(2500.0, macs(40, group=3)), frames(late_ts, macs(10, first=40))
    alerts = feed(detector, [window(early), window(late)])
    assert alerts[0] == [] and bool(alerts[1]) is fires
