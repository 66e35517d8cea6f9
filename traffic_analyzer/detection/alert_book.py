"""The book that merges repeated evidence of one attack into one alert (Zeek's Notice identity)."""

from __future__ import annotations

from ..records.alert import Alert


class AlertBook:
    """Open alerts by key: repeated evidence of one attack updates one alert instead of adding more."""

    def __init__(self) -> None:
        self.alerts: dict[str, Alert] = {}

    def add(self, new: list[Alert]) -> list[Alert]:
        """Merge new findings; returns the alerts that were created or changed."""
        changed = []
        for alert in new:
            old = self.alerts.get(alert.key)
            if old is None:
                self.alerts[alert.key] = alert
                changed.append(alert)
                continue
            old.start = min(old.start, alert.start)
            old.end = max(old.end, alert.end)
            if alert.score >= old.score:
                old.explanation = alert.explanation
            old.score = max(old.score, alert.score)
            old.evidence = {**old.evidence, **alert.evidence}
            old.updates += 1
            changed.append(old)
        return changed
