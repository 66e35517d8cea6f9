"""Webhook payloads in the shapes chat services take (``webhook_format``): Slack, Teams, Discord, Mattermost.

Each service's incoming webhook documents its own JSON; a payload in another shape is refused
(Slack answers ``400 invalid_payload``) or shows nothing. The texts are cut to each service's
documented limits, so a long explanation or digest never turns an alert into a refused post.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from .notice import DIGEST, Notice, victims_text

WEBHOOK_FORMATS = ("generic", "slack", "teams", "discord", "mattermost")
COLORS: dict[str, int] = {"critical": 0x8B0000, "high": 0xD32F2F, "medium": 0xF57C00, "low": 0x1976D2}
ENDED_COLOR = 0x757575  # grey: the attack is over

# Slack Block Kit: a section's text and a field at most 3000 / 2000 characters, a header 150, 10 fields.
SLACK_SECTION_CHARS, SLACK_FIELD_CHARS, SLACK_HEADER_CHARS, SLACK_FIELDS = 3000, 2000, 150, 10
# Discord: content 2000; an embed's title 256, description 4096, field name 256 / value 1024, 25 fields,
# and 6000 characters over the whole embed.
DISCORD_CONTENT, DISCORD_TITLE, DISCORD_DESCRIPTION, DISCORD_FIELD_VALUE = 2000, 256, 4096, 1024
MATTERMOST_TEXT_CHARS = 16383  # a post's message limit
TEAMS_TEXT_CHARS = 20000  # well inside the 28 KB a Teams card may take


def cut(text: str, limit: int) -> str:
    """At most ``limit`` characters, with an ellipsis when something was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _facts(notice: Notice) -> list[tuple[str, str]]:
    """The fields a responder scans first, as (name, value)."""
    if notice.event == DIGEST:
        return [("Held alerts", str(len(notice.held))), ("Sensor", notice.sensor), ("Run", notice.run_id)]
    a = notice.alert
    assert a is not None
    when = datetime.fromtimestamp(a["start"], tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    facts = [
        ("Severity", f"{a['severity']} (score {a['score']:.0f})"),
        ("Kind", a["kind"]),
        ("Attacker", a["attacker"]),
        ("Victims", victims_text(a)),
        ("Start", when),
        ("Sensor", notice.sensor),
    ]
    if a.get("evidence_pcap"):
        facts.append(("Evidence pcap", str(a["evidence_pcap"])))
    return facts


def _text(notice: Notice) -> str:
    """The explanation (or, for a digest, its list of alerts), and why an update was sent."""
    if notice.event == DIGEST:
        return notice.body()
    assert notice.alert is not None
    text = notice.alert["explanation"]
    return f"{text}\nWhy this message: {notice.reason}" if notice.reason else text


def _color(notice: Notice) -> int:
    return ENDED_COLOR if notice.event == "ended" else COLORS[notice.severity]


def slack(notice: Notice) -> dict:
    """Slack incoming webhook: ``text`` (the notification and fallback) and Block Kit ``blocks``."""
    fields = [
        {"type": "mrkdwn", "text": cut(f"*{name}*\n{value}", SLACK_FIELD_CHARS)}
        for name, value in _facts(notice)[:SLACK_FIELDS]
    ]
    return {
        "text": cut(notice.subject(), SLACK_SECTION_CHARS),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": cut(notice.subject(), SLACK_HEADER_CHARS)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": cut(_text(notice), SLACK_SECTION_CHARS)}},
            {"type": "section", "fields": fields},
        ],
    }


def teams(notice: Notice) -> dict:
    """Microsoft Teams (Workflows "post to a channel when a webhook request is received"): an Adaptive Card message."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": notice.subject(), "weight": "Bolder", "size": "Medium", "wrap": True},
            {"type": "TextBlock", "text": cut(_text(notice), TEAMS_TEXT_CHARS), "wrap": True},
            {"type": "FactSet", "facts": [{"title": name, "value": value} for name, value in _facts(notice)]},
        ],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def discord(notice: Notice) -> dict:
    """Discord webhook: ``content`` and one embed, within Discord's length limits."""
    embed: dict = {
        "title": cut(notice.subject(), DISCORD_TITLE),
        "description": cut(_text(notice), DISCORD_DESCRIPTION - 1000),  # room for the fields in the 6000 total
        "color": _color(notice),
        "fields": [
            {"name": name, "value": cut(value, DISCORD_FIELD_VALUE // 4), "inline": True}
            for name, value in _facts(notice)
        ],
        "timestamp": datetime.fromtimestamp(notice.created, tz=UTC).isoformat(),
    }
    return {"content": cut(notice.subject(), DISCORD_CONTENT), "embeds": [embed]}


def mattermost(notice: Notice) -> dict:
    """Mattermost incoming webhook: ``text`` and a Slack-style message attachment with fields."""
    attachment = {
        "fallback": notice.subject(),
        "color": f"#{_color(notice):06x}",
        "title": notice.subject(),
        "text": cut(_text(notice), MATTERMOST_TEXT_CHARS),
        "fields": [{"short": True, "title": name, "value": value} for name, value in _facts(notice)],
    }
    return {"text": cut(notice.subject(), MATTERMOST_TEXT_CHARS), "attachments": [attachment]}


def generic(notice: Notice) -> dict:
    """Our own JSON document, with every field of the alert."""
    return notice.payload()


PAYLOADS: dict[str, Callable[[Notice], dict]] = {
    "generic": generic,
    "slack": slack,
    "teams": teams,
    "discord": discord,
    "mattermost": mattermost,
}
