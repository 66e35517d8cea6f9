"""Suricata EVE JSON: the live eve_file channel and ``export --format eve``, against Suricata's own schema.

A real --read of the nmap SYN scan writes eve.json; every line it and the exports write is
validated with jsonschema against OISF/suricata's published ``etc/schema.json`` (vendored in
tests/data, see suricata-eve-schema.md), and compared with what the store holds.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
from conftest import run_cli

from traffic_analyzer.alerts.log_channel import LOG_VERBS

CAPTURE = "nmap-syn-scan.pcapng"
SCHEMA = json.loads((Path(__file__).parents[1] / "data" / "suricata-eve-schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+0000$"


def eve_lines(path: Path) -> list[dict]:
    """Each line one JSON object, valid against Suricata's schema."""
    text = path.read_text()
    assert text.endswith("\n")
    events = [json.loads(line) for line in text.splitlines()]
    for event in events:
        errors = [e.message for e in VALIDATOR.iter_errors(event)]
        assert not errors, (errors, event)
    return events


@pytest.fixture(scope="module")
def run(pcaps: Path, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("eve")
    proc = run_cli(
        "--read", str(pcaps / CAPTURE), "--no-dashboard", "--no-progress", "--no-evidence",
        "--data-dir", str(tmp / "data"), "--log-file", str(tmp / "analysis.log"), "--eve-file", str(tmp / "eve.json"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return tmp


def stored(tmp: Path, table: str) -> pd.DataFrame:
    with sqlite3.connect(tmp / "data" / "analyzer.db") as conn:
        return pd.read_sql(f"SELECT * FROM {table}", conn)


def check_alert(event: dict, row: pd.Series) -> None:
    assert event["event_type"] == "alert"
    assert event["src_ip"] == row["attacker"] and event["dest_ip"] == row["victims"].split(",")[0]
    alert = event["alert"]
    assert alert["severity"] == {"critical": 1, "high": 1, "medium": 2, "low": 3}[row["severity"]]
    assert alert["category"] == "Detection of a Network Scan" and "port_scan" in alert["signature"]
    meta = alert["metadata"]
    assert all(isinstance(v, list) and all(isinstance(s, str) for s in v) for v in meta.values())
    assert meta["alert_id"] == [row["alert_id"]] and meta["kind"] == ["port_scan"]
    assert meta["detector"] == [row["detector"]] and meta["run_id"] == [row["run_id"]]
    assert meta["explanation"][0].startswith(f"{row['attacker']} probed")
    assert 0 <= float(meta["score"][0]) <= 100


def logged_events(log: Path) -> list[str]:
    """The notice events the log channel wrote, in order: every channel is sent the same ones."""
    verbs = "|".join(sorted(LOG_VERBS.values(), key=len, reverse=True))
    event_of = {verb: event for event, verb in LOG_VERBS.items()}
    return [event_of[m[1]] for m in re.finditer(rf" ({verbs}) \w+ port_scan ", log.read_text())]


def test_eve_file_has_a_valid_alert_line_per_notice(run, labels):
    events = eve_lines(run / "eve.json")
    row = stored(run, "alerts").iloc[0]
    assert row["attacker"] == labels.set_index("file").loc[CAPTURE, "attacker"]
    notices = logged_events(run / "analysis.log")
    assert notices[0] == "new" and notices[-1] == "ended" and set(notices[1:-1]) <= {"update"}
    assert [e["alert"]["metadata"]["event"][0] for e in events] == notices
    for event in events:
        check_alert(event, row)
        assert event["timestamp"] and pd.Series(event["timestamp"]).str.match(TIMESTAMP).all()
    assert events[-1]["alert"]["metadata"]["score"] == [f"{row['score']:.0f}"]  # the last line is the final alert


def test_export_eve_alerts_match_the_store(run, tmp_path):
    out = tmp_path / "alerts.json"
    proc = run_cli("export", "--data-dir", str(run / "data"), "--what", "alerts", "--format", "eve", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    events = eve_lines(out)
    alerts = stored(run, "alerts")
    assert len(events) == len(alerts) == 1
    check_alert(events[0], alerts.iloc[0])


def test_export_eve_flows_are_flow_events_of_every_stored_flow(run, tmp_path):
    out = tmp_path / "flows.json"
    proc = run_cli("export", "--data-dir", str(run / "data"), "--format", "eve", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    events = eve_lines(out)
    flows = stored(run, "flows").sort_values("ts").reset_index(drop=True)
    assert len(events) == len(flows) >= 1000  # a flow per port the scan probed, at least
    assert {e["event_type"] for e in events} == {"flow"}
    assert len({e["flow_id"] for e in events}) == len(events)
    got = pd.DataFrame(
        [(e["src_ip"], e["src_port"], e["dest_ip"], e["dest_port"], e["flow"]["pkts_toserver"]) for e in events]
    )
    want = flows[["orig_h", "orig_p", "resp_h", "resp_p", "orig_pkts"]]
    assert sorted(map(tuple, got.to_numpy().tolist())) == sorted(map(tuple, want.to_numpy().tolist()))
    assert all(e["community_id"].startswith("1:") and len(e["community_id"]) == 30 for e in events)
    assert {e["flow"]["state"] for e in events} <= {"new", "established", "closed"}
