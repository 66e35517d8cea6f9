"""What an alert channel sends: a notice about one alert (new, update, ended) or a digest of held ones.

A notice carries a snapshot of the alert taken when it was queued, so the analysis thread can
keep merging evidence into the live :class:`Alert` while a channel's worker formats and sends
the copy. Every channel renders the same notice: a subject line, a plain-text body and a JSON
payload.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..records.alert import Alert

NEW, UPDATE, ENDED, DIGEST = "new", "update", "ended", "digest"  # notice events
SEVERITY_RANK: dict[str, int] = {"low": 0, "medium": 1, "high": 2, "critical": 3}
DIGEST_LINES = 25  # alerts listed one by one in a digest; the rest are counted
APP_NAME = "network-traffic-analyzer"


def alert_snapshot(alert: Alert, run_id: str) -> dict:
    """A frozen copy of the alert with its stable id; evidence_pcap is lifted to the top when present."""
    snap = alert.as_dict()
    snap["alert_id"] = alert.alert_id(run_id)
    pcap = snap.get("evidence_pcap") or snap["evidence"].get("evidence_pcap")
    if pcap:
        snap["evidence_pcap"] = str(pcap)
    return snap


def clock(ts: float) -> str:
    """Epoch seconds as a UTC time a person reads."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def victims_text(alert: dict) -> str:
    return ", ".join(alert["victims"]) or "-"


@dataclass
class Notice:
    """One message for one channel."""

    event: str  # NEW, UPDATE, ENDED or DIGEST
    sensor: str
    run_id: str
    alert: dict | None = None  # the alert snapshot (None for a digest)
    reason: str = ""  # why an update was sent, e.g. "severity medium -> high"
    held: list[dict] = field(default_factory=list)  # digest: {"events": [...], "alert": snapshot} per held alert
    held_since: float | None = None  # digest: wall-clock time the first of them was held
    created: float = field(default_factory=time.time)

    @property
    def severity(self) -> str:
        """The alert's severity, or the worst one held in a digest."""
        if self.alert is not None:
            return self.alert["severity"]
        worst = max((SEVERITY_RANK[h["alert"]["severity"]] for h in self.held), default=0)
        return next(name for name, rank in SEVERITY_RANK.items() if rank == worst)

    def subject(self) -> str:
        """One line: what happened, how bad, who against whom."""
        if self.event == DIGEST:
            return f"[NTA {self.sensor}] digest: {len(self.held)} alerts held back by the rate limit"
        a = self.alert
        assert a is not None
        label = {NEW: "new alert", UPDATE: "alert update", ENDED: "alert ended"}[self.event]
        return (
            f"[NTA {self.sensor}] {label}: {a['severity']} {a['kind']} "
            f"{a['attacker']} -> {victims_text(a)} (score {a['score']:.0f})"
        )

    def body(self) -> str:
        """The plain-text message: every field a responder needs, one per line."""
        if self.event == DIGEST:
            return self._digest_body()
        a = self.alert
        assert a is not None
        lines = [self.subject(), ""]
        if self.reason:
            lines.append(f"Why this message: {self.reason}")
        lines += [
            f"Severity:    {a['severity']} (score {a['score']:.0f} of 100)",
            f"Kind:        {a['kind']}",
            f"Attacker:    {a['attacker']}",
            f"Victims:     {victims_text(a)}",
            f"Start:       {clock(a['start'])} UTC",
            f"End:         {clock(a['end'])} UTC (latest evidence)",
            f"Explanation: {a['explanation']}",
            f"Sensor:      {self.sensor}, run {self.run_id}, alert {a['alert_id']}",
        ]
        if a.get("evidence_pcap"):
            lines.append(f"Evidence:    {a['evidence_pcap']}")
        if a["evidence"]:
            lines += ["", "Evidence details:"]
            lines += [f"  {key}: {value}" for key, value in a["evidence"].items() if key != "evidence_pcap"]
        return "\n".join(lines) + "\n"

    def _digest_body(self) -> str:
        since = f" since {clock(self.held_since)} UTC" if self.held_since else ""
        lines = [self.subject() + since, ""]
        for h in self.held[:DIGEST_LINES]:
            a = h["alert"]
            lines.append(
                f"- [{a['severity']}] {a['kind']} {a['attacker']} -> {victims_text(a)}, score {a['score']:.0f}, "
                f"{clock(a['start'])}..{clock(a['end'])} UTC ({', '.join(h['events'])}): {a['explanation']}"
            )
        if len(self.held) > DIGEST_LINES:
            lines.append(f"... and {len(self.held) - DIGEST_LINES} more (see the dashboard)")
        lines.append(f"Sensor: {self.sensor}, run {self.run_id}")
        return "\n".join(lines) + "\n"

    def payload(self) -> dict:
        """The JSON document a webhook receives."""
        doc = {
            "source": APP_NAME,
            "event": self.event,
            "severity": self.severity,
            "sensor": self.sensor,
            "run_id": self.run_id,
            "sent_at": self.created,
            "summary": self.subject(),
        }
        if self.alert is not None:
            doc["alert"] = self.alert
        if self.reason:
            doc["reason"] = self.reason
        if self.event == DIGEST:
            doc["held"] = self.held
            doc["held_since"] = self.held_since
        return doc
