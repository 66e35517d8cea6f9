"""What every injected attack shares: it runs once, through its own recording lab, and labels itself.

Every attack writes through a ``Recorder`` that notes the first and last frame it put in the capture,
so a label's time range is exactly the attack's packets (the victims' answers included). The attacks
themselves are in ``probes`` (scans, sweep, flood) and ``intrusions`` (the rest).
"""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np

from .behaviour import Once
from .lab import Lab
from .labels import Label
from .office import Office
from .sessions import Web


class Recorder:
    """Passes frames on to the lab's sink and remembers the first and last time inside the capture."""

    def __init__(self, lab: Lab) -> None:
        self.sink = lab.timeline
        self.start_us, self.end_us = lab.span_us
        self.first_us: int | None = None
        self.last_us: int | None = None

    def add(self, ts_us: int, frame: bytes, wire_len: int = 0) -> None:
        if self.start_us <= ts_us < self.end_us:
            self.first_us = ts_us if self.first_us is None else min(self.first_us, ts_us)
            self.last_us = ts_us if self.last_us is None else max(self.last_us, ts_us)
        self.sink.add(ts_us, frame, wire_len)


class Attack(Once):
    """Runs once at ``at_us`` through its own recording lab; ``label`` describes what it did."""

    kind = ""

    def __init__(self, office: Office, rng: np.random.Generator, at_us: int, seconds: float) -> None:
        self.recorder = Recorder(office.lab)
        lab = Lab(office.lab.seed, office.net, self.recorder, office.lab.profile, office.lab.span_us)
        super().__init__(lab, rng, at_us)
        resolver = copy.copy(office.resolver)
        resolver.lab = lab
        self.office = replace(office, lab=lab, web=Web(lab), resolver=resolver)
        self.seconds = seconds
        self.attacker = ""
        self.victim = ""
        self.notes = ""

    def label(self) -> Label | None:
        """The label row, or None when none of the attack's packets fell inside the capture."""
        if self.recorder.first_us is None or self.recorder.last_us is None:
            return None
        return Label(self.attacker, self.victim, self.kind, self.recorder.first_us, self.recorder.last_us, self.notes)
