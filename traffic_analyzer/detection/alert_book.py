"""The book that merges repeated evidence of one attack into one alert (Zeek's Notice identity)."""

from __future__ import annotations

from ..records.alert import Alert


class AlertBook:
    """Open alerts by key: repeated evidence of one attack updates one alert instead of adding more.

    An update widens the alert's time span and raises its score. Its explanation and evidence come from one
    version, so that the counts the evidence holds are the ones the explanation quotes: the latest, unless it
    scores lower and saw nothing later than the alert already had.
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
            # The explanation and the evidence it quotes go together, from the latest version that scored as high
            # or saw more of the attack (a flood's running totals to its last SYN). A weaker re-statement of what
            # was seen already (a scan whose probes age out of the detector's memory) adds only what the version
            # that speaks did not say.
            if alert.score >= old.score or alert.end > old.end:
                old.explanation = alert.explanation
                old.evidence = {**old.evidence, **alert.evidence}
            else:
                old.evidence = {**alert.evidence, **old.evidence}
            old.start = min(old.start, alert.start)
            old.end = max(old.end, alert.end)
            old.score = max(old.score, alert.score)
            old.updates += 1
            changed.append(old)
        return changed
