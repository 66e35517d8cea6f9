"""The alert book's merge of one attack's versions: the span widens, the strongest version speaks."""

from __future__ import annotations

import pytest

from traffic_analyzer.detection.alert_book import AlertBook
from traffic_analyzer.records.alert import Alert

pytestmark = pytest.mark.unit


def _scan(start: float, end: float, score: float, targets: int, **extra) -> Alert:
    return Alert(
        kind="port_scan",
        attacker="10.0.0.9",
        victims=["many"],
        start=start,
        end=end,
        score=score,
        explanation=f"10.0.0.9 probed {targets} host:port targets",
        evidence={"targets": targets, **extra},
    )


def test_a_weaker_restatement_widens_nothing_and_does_not_speak_for_the_alert():
    book = AlertBook()
    book.add([_scan(100.0, 110.0, 60.0, 30)])
    book.add([_scan(105.0, 140.0, 75.0, 45)])
    (merged,) = book.add([_scan(120.0, 140.0, 62.0, 20, ports=[22, 80])])  # no new probe; old ones aged out
    assert (merged.start, merged.end, merged.score, merged.updates) == (100.0, 140.0, 75.0, 3)
    assert merged.explanation == "10.0.0.9 probed 45 host:port targets"
    assert merged.evidence == {"targets": 45, "ports": [22, 80]}  # the quoted count; what it lacked is added


def test_the_latest_version_speaks_when_it_scores_as_high_or_saw_more():
    book = AlertBook()
    book.add([_scan(100.0, 110.0, 60.0, 30, pcap="a.pcap")])
    (stronger,) = book.add([_scan(100.0, 120.0, 80.0, 90)])
    assert stronger.explanation == "10.0.0.9 probed 90 host:port targets"
    assert stronger.evidence == {"targets": 90, "pcap": "a.pcap"}
    (later,) = book.add([_scan(100.0, 130.0, 55.0, 95)])  # the attack's tail: a lower rate, more in all
    assert (later.score, later.end, later.evidence["targets"]) == (80.0, 130.0, 95)
    assert later.explanation == "10.0.0.9 probed 95 host:port targets"
