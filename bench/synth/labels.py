"""Label rows in the project's labels.csv format: file,attacker,victim,kind,start_ts,end_ts,notes."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

COLUMNS = ("file", "attacker", "victim", "kind", "start_ts", "end_ts", "notes")


@dataclass(frozen=True)
class Label:
    """One labelled stretch of a capture (times in microseconds since the epoch)."""

    attacker: str
    victim: str
    kind: str
    start_us: int
    end_us: int
    notes: str


def _seconds(t_us: int) -> str:
    return f"{t_us // 1_000_000}.{t_us % 1_000_000:06d}"


def write_labels(path: Path, capture_name: str, labels: list[Label]) -> None:
    """``path`` with a header and one row per label, in the order given."""
    with path.open("w", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(COLUMNS)
        for lab in labels:
            row = [
                capture_name,
                lab.attacker,
                lab.victim,
                lab.kind,
                _seconds(lab.start_us),
                _seconds(lab.end_us),
                lab.notes,
            ]
            out.writerow(row)
