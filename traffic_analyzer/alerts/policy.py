"""Which alert changes become messages on one channel: minimum severity, deduplication, rate limit, digest.

An ongoing attack is one alert (same ``alert_id`` window after window). A channel hears about it
once when it first reaches the channel's minimum severity, again only when it grows markedly
(severity up, score up by ``SCORE_STEP``, a numeric piece of evidence at least doubled), and once
when it ends. A token bucket caps the messages per hour; what it holds back goes out as one digest
as soon as a token is free again (and at the end of the run).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .notice import DIGEST, ENDED, NEW, SEVERITY_RANK, UPDATE, Notice

SCORE_STEP = 10.0  # score points an alert must gain for an update message
EVIDENCE_GROWTH = 2.0  # a numeric evidence value must reach this many times its last reported value...
EVIDENCE_MIN_STEP = 10  # ...and grow by at least this much (3 -> 6 ports is not news)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def growth(last: dict, now: dict) -> str:
    """Why ``now`` is worth a message after ``last`` was sent, or "" when it is not."""
    if SEVERITY_RANK[now["severity"]] > SEVERITY_RANK[last["severity"]]:
        return f"severity {last['severity']} -> {now['severity']}"
    if now["score"] >= last["score"] + SCORE_STEP:
        return f"score {last['score']:.0f} -> {now['score']:.0f}"
    for key, value in now["evidence"].items():
        old = last["evidence"].get(key)
        if not (_is_number(value) and _is_number(old)):
            continue
        if value >= old * EVIDENCE_GROWTH and value - old >= EVIDENCE_MIN_STEP:
            return f"{key} {old} -> {value}"
    return ""


class ChannelPolicy:
    """The per-channel filter between the analysis and a channel's delivery queue.

    Parameters
    ----------
    min_severity : alerts below it are not sent on this channel.
    per_hour : token-bucket rate limit (bursts of up to ``per_hour``, refilled at ``per_hour`` an hour);
        0 means no limit.
    monotonic : the clock of the bucket (seconds); tests pass their own.
    """

    def __init__(
        self,
        min_severity: str,
        per_hour: int,
        sensor: str,
        run_id: str,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.min_severity = min_severity
        self.per_hour = per_hour
        self.sensor = sensor
        self.run_id = run_id
        self._monotonic = monotonic
        self._tokens = float(per_hour)
        self._refilled = monotonic()
        self._sent: dict[str, dict] = {}  # alert_id -> the snapshot last reported
        self._held: dict[str, dict] = {}  # alert_id -> {"events": [...], "alert": latest snapshot}
        self._held_since: float | None = None
        self.counts = {"deduplicated": 0, "below_min_severity": 0, "held": 0, "digests": 0}

    def notices(self, changed: list[dict], ended: list[dict], ended_reason: str = "") -> list[Notice]:
        """The messages to queue now for these new/updated and ended alert snapshots."""
        fresh = [n for n in (self._review(snap) for snap in changed) if n is not None]
        for snap in ended:
            if self._sent.pop(snap["alert_id"], None) is not None:  # only alerts this channel announced end on it
                fresh.append(self._notice(ENDED, snap, ended_reason))
        out = []
        if self._held and self._take():
            out.append(self._digest())
        for notice in fresh:
            if not self._held and self._take():
                out.append(notice)
            else:
                self._hold(notice)
        return out

    def flush(self) -> Notice | None:
        """At the end of the run: the digest of whatever is still held, whatever the limit."""
        return self._digest() if self._held else None

    def _review(self, snap: dict) -> Notice | None:
        if SEVERITY_RANK[snap["severity"]] < SEVERITY_RANK[self.min_severity]:
            self.counts["below_min_severity"] += 1
            return None
        last = self._sent.get(snap["alert_id"])
        if last is None:
            self._sent[snap["alert_id"]] = snap
            return self._notice(NEW, snap)
        reason = growth(last, snap)
        if not reason:
            self.counts["deduplicated"] += 1
            return None
        self._sent[snap["alert_id"]] = snap
        return self._notice(UPDATE, snap, reason)

    def _notice(self, event: str, snap: dict, reason: str = "") -> Notice:
        return Notice(event, self.sensor, self.run_id, alert=snap, reason=reason)

    def _take(self) -> bool:
        """A token from the bucket, if one is free."""
        if self.per_hour <= 0:
            return True
        now = self._monotonic()
        self._tokens = min(float(self.per_hour), self._tokens + (now - self._refilled) * self.per_hour / 3600)
        self._refilled = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    def _hold(self, notice: Notice) -> None:
        assert notice.alert is not None
        self.counts["held"] += 1
        if self._held_since is None:
            self._held_since = notice.created
        entry = self._held.setdefault(notice.alert["alert_id"], {"events": [], "alert": notice.alert})
        entry["alert"] = notice.alert
        if notice.event not in entry["events"]:
            entry["events"].append(notice.event)

    def _digest(self) -> Notice:
        held = sorted(self._held.values(), key=lambda h: (-h["alert"]["score"], h["alert"]["start"]))
        notice = Notice(DIGEST, self.sensor, self.run_id, held=held, held_since=self._held_since)
        self._held = {}
        self._held_since = None
        self.counts["digests"] += 1
        return notice
