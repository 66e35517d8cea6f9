"""The flow tracker on hand-built packets: conn records across batches, and each packet's flow and direction."""

from __future__ import annotations

import pytest
from builders import arp, packets, tcp, udp

from traffic_analyzer.features.app_events import app_events
from traffic_analyzer.features.flows import FlowTracker
from traffic_analyzer.records.packets import TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN

pytestmark = pytest.mark.unit

CLIENT, SERVER = "10.0.0.2", "10.0.0.80"


def _handshake(t: float, sport: int) -> list[dict]:
    return [
        tcp(t, CLIENT, SERVER, 80, sport, TCP_SYN),
        tcp(t + 0.01, SERVER, CLIENT, sport, 80, TCP_SYN | TCP_ACK),
        tcp(t + 0.02, CLIENT, SERVER, 80, sport, TCP_ACK),
    ]


def test_a_connection_across_two_batches_is_one_flow_with_its_packets_and_history():
    tracker = FlowTracker()
    first = tracker.update(packets(_handshake(1.0, 40000)), now=1.02)
    request = tcp(1.1, CLIENT, SERVER, 80, 40000, TCP_ACK | TCP_PSH, payload_len=100)
    close = [
        tcp(1.2, CLIENT, SERVER, 80, 40000, TCP_FIN | TCP_ACK),
        tcp(1.3, SERVER, CLIENT, 40000, 80, TCP_FIN | TCP_ACK),
    ]
    second = tracker.update(packets([request, *close]), now=1.3)
    flow = tracker.flush().iloc[0]
    assert first.active["uid"].tolist() == second.active["uid"].tolist() == [flow["uid"]]
    assert (flow["orig_h"], flow["resp_h"], flow["resp_p"], flow["orig_pkts"], flow["resp_pkts"]) == (
        CLIENT, SERVER, 80, 4, 2
    )  # fmt: skip
    assert (flow["history"], flow["conn_state"], flow["orig_bytes"]) == ("ShADFf", "SF", 100)


def test_each_packet_knows_its_flow_and_whether_the_originator_sent_it():
    rows = [*_handshake(1.0, 40000), *_handshake(1.5, 40001), arp(1.6, 1, "02:00:00:00:00:01", CLIENT, SERVER)]
    update = FlowTracker().update(packets(rows), now=1.6)
    uids = dict(zip(update.active["orig_p"], update.active["uid"], strict=True))
    assert update.packet_uids.tolist() == [uids[40000]] * 3 + [uids[40001]] * 3 + [None]
    assert update.from_orig.tolist() == [True, False, True] * 2 + [False]


def test_a_port_reused_after_the_close_is_a_new_flow_and_its_packets_say_so():
    tracker = FlowTracker()
    closed = [*_handshake(1.0, 40000), tcp(1.1, CLIENT, SERVER, 80, 40000, TCP_FIN | TCP_ACK)]
    closed.append(tcp(1.2, SERVER, CLIENT, 40000, 80, TCP_FIN | TCP_ACK))
    update = tracker.update(packets([*closed, *_handshake(2.0, 40000)]), now=2.02)
    assert len(update.finished) == 1 and len(update.active) == 1
    assert update.packet_uids.tolist() == [update.finished["uid"].iloc[0]] * 5 + [update.active["uid"].iloc[0]] * 3


def test_app_events_file_dns_messages_under_their_flow_with_its_endpoints():
    query = udp(1.0, CLIENT, "10.0.0.53", 53, 5353, dns_qname="a.example", dns_response=False, payload_len=30)
    answer = udp(1.01, "10.0.0.53", CLIENT, 5353, 53, dns_qname="a.example", dns_response=True, payload_len=46)
    table = packets([query, answer, tcp(1.1, CLIENT, SERVER, 80)])
    update = FlowTracker().update(table, now=1.1)
    events = app_events(table, update.active, update.packet_uids, update.from_orig)
    dns_uid = update.active.loc[update.active["resp_p"] == 53, "uid"].iloc[0]
    assert events[["uid", "kind", "orig_h", "resp_h", "resp_p", "from_orig", "dns_response"]].values.tolist() == [
        [dns_uid, "dns", CLIENT, "10.0.0.53", 53, True, False],
        [dns_uid, "dns", CLIENT, "10.0.0.53", 53, False, True],
    ]
