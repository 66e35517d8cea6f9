"""The eve_file channel survives log rotation: a moved or removed eve.json is opened anew, one object a line."""

from __future__ import annotations

import json
import os

import pytest

from traffic_analyzer.alerts.eve_channel import EveFileSink
from traffic_analyzer.alerts.notice import DIGEST, NEW, UPDATE, Notice

pytestmark = pytest.mark.unit

ALERT = {
    "alert_id": "00112233aabbccdd", "kind": "arp_spoof", "attacker": "02:00:00:00:00:01", "victims": ["10.0.0.1"],
    "start": 100.0, "end": 160.5, "score": 55.0, "severity": "medium", "explanation": "two MACs claim 10.0.0.1",
    "evidence": {}, "detector": "arp_spoof",
}  # fmt: skip


def notice(event: str = NEW) -> Notice:
    return Notice(event, "sensor1", "run1", alert=dict(ALERT))


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_moved_or_removed_file_is_reopened_and_no_line_is_lost(tmp_path):
    path = tmp_path / "eve.json"
    sink = EveFileSink(str(path), "sensor1")
    sink.deliver(notice())
    os.rename(path, tmp_path / "eve.json.1")  # logrotate's default: move, then the writer must reopen
    sink.deliver(notice(UPDATE))
    assert [e["alert"]["metadata"]["event"] for e in lines(tmp_path / "eve.json.1")] == [["new"]]
    assert [e["alert"]["metadata"]["event"] for e in lines(path)] == [["update"]]
    path.unlink()  # removed outright
    sink.deliver(notice())
    sink.deliver(Notice(DIGEST, "sensor1", "run1", held=[]))  # no EVE form: nothing written
    sink.close()
    assert [e["alert"]["metadata"]["event"] for e in lines(path)] == [["new"]]


def test_a_mac_attacker_is_no_src_ip_and_the_timestamp_is_the_latest_evidence_for_an_update(tmp_path):
    sink = EveFileSink(str(tmp_path / "eve.json"), "sensor1")
    sink.deliver(notice(UPDATE))
    sink.close()
    (event,) = lines(tmp_path / "eve.json")
    assert "src_ip" not in event and event["dest_ip"] == "10.0.0.1" and event["host"] == "sensor1"
    assert event["alert"]["metadata"]["attacker"] == ["02:00:00:00:00:01"]
    assert event["timestamp"] == "1970-01-01T00:02:40.500000+0000" and event["alert"]["severity"] == 2
