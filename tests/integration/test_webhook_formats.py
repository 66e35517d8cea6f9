"""webhook_format: each chat service's payload, POSTed to a real receiver on 127.0.0.1 that checks its documented shape.

The checks follow each service's incoming-webhook documentation: Slack (``text`` and Block Kit
``blocks``: header text <= 150, section text <= 3000, <= 10 fields of <= 2000), Teams Workflows (a
``message`` with an Adaptive Card attachment), Discord (``content`` <= 2000, <= 10 embeds, title
<= 256, description <= 4096, <= 25 fields of <= 256/1024, 6000 over an embed) and Mattermost
(``text`` and message ``attachments`` with ``fallback``, ``color``, ``fields``). An over-long
explanation and a digest of many held alerts must still fit.
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from alert_servers import HttpReceiver, wait_for

from traffic_analyzer.alerts.notice import DIGEST, NEW, Notice
from traffic_analyzer.alerts.webhook_channel import WebhookSink
from traffic_analyzer.errors import ConfigError

ALERT = {
    "alert_id": "345a0a673368416e", "kind": "port_scan", "attacker": "172.16.0.8", "victims": ["64.13.134.52"],
    "start": 1_278_275_056.0, "end": 1_278_275_060.0, "score": 78.0, "severity": "high",
    "explanation": "172.16.0.8 probed 502 distinct TCP ports of 64.13.134.52 in 3.7 s. " * 200,  # ~13,000 chars
    "evidence": {"ports": 502}, "detector": "port_scan", "evidence_pcap": "/var/lib/nta/evidence/345a0a673368416e.pcap",
}  # fmt: skip


def notices() -> list[Notice]:
    held = [{"events": ["new"], "alert": {**ALERT, "attacker": f"10.0.0.{i}"}} for i in range(40)]
    return [Notice(NEW, "sensor-7", "run1", alert=dict(ALERT)), Notice(DIGEST, "sensor-7", "run1", held=held)]


def check_slack(p: dict) -> None:
    assert isinstance(p["text"], str) and p["text"]
    assert 1 <= len(p["blocks"]) <= 50
    for block in p["blocks"]:
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text" and 0 < len(block["text"]["text"]) <= 150
        else:
            assert block["type"] == "section"
            if "text" in block:
                assert block["text"]["type"] in ("mrkdwn", "plain_text") and 0 < len(block["text"]["text"]) <= 3000
            else:
                assert 1 <= len(block["fields"]) <= 10 and all(0 < len(f["text"]) <= 2000 for f in block["fields"])


def check_teams(p: dict) -> None:
    assert p["type"] == "message"
    (attachment,) = p["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and re.match(r"^1\.[0-6]$", card["version"])
    assert card["body"] and {e["type"] for e in card["body"]} <= {"TextBlock", "FactSet"}
    for element in card["body"]:
        if element["type"] == "TextBlock":
            assert isinstance(element["text"], str) and element["text"]
        else:
            assert all(isinstance(f["title"], str) and isinstance(f["value"], str) for f in element["facts"])


def check_discord(p: dict) -> None:
    assert p.get("content") or p.get("embeds")
    assert len(p["content"]) <= 2000 and len(p["embeds"]) <= 10
    for embed in p["embeds"]:
        assert len(embed["title"]) <= 256 and len(embed["description"]) <= 4096
        assert len(embed["fields"]) <= 25
        assert all(0 < len(f["name"]) <= 256 and 0 < len(f["value"]) <= 1024 for f in embed["fields"])
        total = len(embed["title"]) + len(embed["description"])
        total += sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
        assert total <= 6000
        assert isinstance(embed["color"], int) and 0 <= embed["color"] <= 0xFFFFFF
        datetime.fromisoformat(embed["timestamp"])


def check_mattermost(p: dict) -> None:
    assert isinstance(p["text"], str) and p["text"]
    for attachment in p["attachments"]:
        assert attachment["fallback"] and re.match(r"^#[0-9a-f]{6}$", attachment["color"])
        assert all(
            isinstance(f["short"], bool) and isinstance(f["title"], str) and isinstance(f["value"], str)
            for f in attachment["fields"]
        )
        assert len(attachment["text"]) <= 16383


CHECKS = {"slack": check_slack, "teams": check_teams, "discord": check_discord, "mattermost": check_mattermost}


@pytest.mark.parametrize("service", list(CHECKS))
def test_each_chat_payload_has_the_shape_its_service_documents(service):
    with HttpReceiver() as hook:
        sink = WebhookSink(hook.url, payload_format=service)
        for notice in notices():
            sink.deliver(notice)
        wait_for(lambda: len(hook.posts) == 2, "both POSTs")
    for post in hook.posts:
        CHECKS[service](post)
    assert hook.headers[0]["Content-Type"] == "application/json"
    text = str(hook.posts[0])
    assert "port_scan" in text and "172.16.0.8" in text and "64.13.134.52" in text and "78" in text
    assert "40" in str(hook.posts[1])  # the digest says how many alerts it holds


def test_generic_is_every_field_and_an_unknown_format_is_refused():
    with HttpReceiver() as hook:
        WebhookSink(hook.url).deliver(notices()[0])
        wait_for(lambda: hook.posts, "the POST")
    assert hook.posts[0]["alert"]["explanation"] == ALERT["explanation"]  # generic cuts nothing
    with pytest.raises(ConfigError, match="webhook_format"):
        WebhookSink("https://hooks.example.org/x", payload_format="irc")
