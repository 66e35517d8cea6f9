"""The book that merges repeated evidence of one attack into one alert (Zeek's Notice identity)."""

from __future__ import annotations

from ..records.alert import Alert


class AlertBook:
    """Open alerts by key: repeated evidence of one attack updates one alert instead of adding more.

    An update widens the alert's time span and raises its score; its explanation and evidence stay those of
    the strongest version seen, so that the counts the evidence holds are the ones the explanation quotes.
    """

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
            # The explanation and the evidence it quotes are those of the strongest version: a scan whose probes
            # age out re-emits weaker counts, which add only what the stronger version did not say.
            if alert.score >= old.score:
                old.explanation = alert.explanation
                old.evidence = {**old.evidence, **alert.evidence}
            else:
                old.evidence = {**alert.evidence, **old.evidence}
            old.score = max(old.score, alert.score)
            old.updates += 1
            changed.append(old)
        return changed
