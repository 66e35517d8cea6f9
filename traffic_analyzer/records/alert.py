"""The one alert record every detector produces: who, against whom, when, how bad and why."""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

SEVERITY_LEVELS: tuple[tuple[float, str], ...] = (
    (90.0, "critical"),
    (70.0, "high"),
    (40.0, "medium"),
    (0.0, "low"),
)  # minimum score -> severity


ALERT_ID = re.compile(r"^[0-9a-f]{16}$")  # Alert.alert_id: 8 bytes of blake2b, in hex


def severity_of(score: float) -> str:
    """low / medium / high / critical from a 0-100 threat score."""
    for minimum, name in SEVERITY_LEVELS:
        if score >= minimum:
            return name
    return "low"


@dataclass
class Alert:
    """A detected attack or anomaly: who, against whom, when, how bad, and why we think so."""

    kind: str  # e.g. port_scan, anomaly
    attacker: str  # an address, or "*" for many spoofed sources
    victims: list[str]  # addresses, or ["many"]
    start: float  # epoch seconds of the first evidence
    end: float  # epoch seconds of the latest evidence
    score: float  # 0-100 threat score
    explanation: str  # one sentence, with the evidence and the baseline it is compared to
    evidence: dict = field(default_factory=dict)
    detector: str = ""
    updates: int = 1  # how many windows added evidence to this alert

    @property
    def severity(self) -> str:
        return severity_of(self.score)

    @property
    def key(self) -> str:
        """Identity of the ongoing attack: the same key in later windows updates this alert."""
        return f"{self.kind}|{self.attacker}|{','.join(sorted(self.victims))}"

    def alert_id(self, run_id: str) -> str:
        return hashlib.blake2b(f"{run_id}|{self.key}".encode(), digest_size=8).hexdigest()

    def as_dict(self) -> dict:
        d = asdict(self)
        d["severity"] = self.severity
        return d


def evidence_path(folder: Path, alert_id: str) -> Path | None:
    """Where an alert's evidence pcap lives, or None for anything that is not an alert id (no path tricks)."""
    return Path(folder) / f"{alert_id}.pcap" if ALERT_ID.match(alert_id) else None
