"""What the site's own baseline does that a detector would flag: learned when training, not raised again.

A poller that calls its update server every few minutes, the nightly backup to a storage provider,
the mirror that serves installers over plain HTTP: to a detector that knows nothing of the site these
look like a beacon, an exfiltration or a suspicious download. Running the detectors over the benign
baseline (``--train``) shows which. The remote end of each such alert is kept with the model, and an
alert of the same kind whose remote ends are all known is not raised afterwards: Zeek's notice
suppression, learned from the site instead of typed in.

Only kinds whose remote end names a service are learned. A scan, a flood or a brute force seen in the
baseline is not excused, and a beacon to a server the baseline never called is raised as before.

On the baseline the detectors of learnable kinds look harder than they alert (``for_learning``): an hour
of baseline holds fewer check-ins of a slow poller, and a smaller backup, than a day of traffic will.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..records.alert import Alert
from .base import Detector

# Alert kind -> the alert field that names its remote end (the service the site talks to).
LEARNED_KINDS: dict[str, str] = {
    "c2_beacon": "attacker",  # the server polled
    "suspicious_download": "attacker",  # the server the file came from
    "data_exfiltration": "victims",  # where the data went
}

# Detector -> {threshold: factor} while learning from the baseline: half the check-ins at a looser jitter,
# a quarter of the upload volume. Only thresholds of detectors whose alerts are learned.
LEARNING_SCALE: dict[str, dict[str, float]] = {
    "beacon": {"min_beacons": 0.5, "max_jitter": 1.5},
    "exfiltration": {"min_bytes": 0.25},
}
MIN_LEARNING_COUNT = 3  # a count threshold is never scaled below this: two check-ins are no schedule


def for_learning(detectors: list[Detector]) -> list[Detector]:
    """The same detectors, made more sensitive by LEARNING_SCALE (in place), for a run over the baseline."""
    for detector in detectors:
        for threshold, factor in LEARNING_SCALE.get(detector.name, {}).items():
            value = getattr(detector, threshold)
            scaled = max(MIN_LEARNING_COUNT, round(value * factor)) if isinstance(value, int) else value * factor
            setattr(detector, threshold, scaled)
    return detectors


@dataclass(frozen=True)
class KnownPatterns:
    """(kind, remote address) pairs the baseline showed; ``covers`` says whether an alert is one of them."""

    entries: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def learn(cls, alerts: Iterable[Alert]) -> KnownPatterns:
        """The remote ends of the learnable alerts a detector raised on the baseline."""
        return cls(frozenset(end for alert in alerts for end in remote_ends(alert)))

    def covers(self, alert: Alert) -> bool:
        """True when the alert is of a learned kind and every remote end it names was seen in the baseline."""
        ends = remote_ends(alert)
        return bool(ends) and ends <= self.entries

    def describe(self) -> list[str]:
        """One line per learned pattern, for the training log and the model's metadata."""
        return [f"{kind} with {address}" for kind, address in sorted(self.entries)]

    def __len__(self) -> int:
        return len(self.entries)


def remote_ends(alert: Alert) -> frozenset[tuple[str, str]]:
    """The (kind, address) pairs naming an alert's remote ends; empty for kinds that are never learned."""
    field = LEARNED_KINDS.get(alert.kind)
    if field is None:
        return frozenset()
    addresses = [alert.attacker] if field == "attacker" else list(alert.victims)
    return frozenset((alert.kind, a) for a in addresses if a and a != "*")
