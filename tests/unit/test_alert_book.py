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


def test_a_weaker_version_widens_the_span_but_the_explanation_and_its_evidence_stay_the_strongest():
    book = AlertBook()
    book.add([_scan(100.0, 110.0, 60.0, 30)])
    book.add([_scan(105.0, 140.0, 75.0, 45)])
    (merged,) = book.add([_scan(120.0, 170.0, 62.0, 20, ports=[22, 80])])  # probes ageing out: fewer targets
    assert (merged.start, merged.end, merged.score, merged.updates) == (100.0, 170.0, 75.0, 3)
    assert merged.explanation == "10.0.0.9 probed 45 host:port targets"
    assert merged.evidence == {"targets": 45, "ports": [22, 80]}  # the quoted count; what it lacked is added


def test_a_stronger_version_replaces_the_explanation_and_the_evidence_it_quotes():
    book = AlertBook()
    book.add([_scan(100.0, 110.0, 60.0, 30, pcap="a.pcap")])
    (merged,) = book.add([_scan(100.0, 120.0, 80.0, 90)])
    assert merged.explanation == "10.0.0.9 probed 90 host:port targets"
    assert merged.evidence == {"targets": 90, "pcap": "a.pcap"}
