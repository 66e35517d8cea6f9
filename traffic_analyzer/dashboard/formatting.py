"""Numbers and times from the store as the short strings the dashboard shows.

Store rows come through pandas, so a NULL arrives as ``None`` or ``NaN``; every helper
treats both as "not known" instead of printing "nan".
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

UNKNOWN = "unknown"
NOT_FOR_A_FILE = "not applicable to a file"  # kernel drops and analysis lag: a file has neither
_BYTE_UNITS = ("B", "kB", "MB", "GB", "TB")
CONN_STATES: dict[str, str] = {
    "S0": "attempt, no reply",
    "S1": "established, not closed",
    "SF": "normal establish and close",
    "REJ": "attempt rejected",
    "S2": "established, originator closed, no reply",
    "S3": "established, responder closed, no reply",
    "RSTO": "established, originator aborted",
    "RSTR": "responder aborted",
    "RSTOS0": "originator sent SYN then RST, no SYN-ACK",
    "RSTRH": "responder sent SYN-ACK then RST, no SYN seen",
    "SH": "originator sent SYN then FIN, no SYN-ACK",
    "SHR": "responder sent SYN-ACK then FIN, no SYN seen",
    "OTH": "no SYN seen, midstream traffic",
}  # Zeek conn_state -> its meaning, as in Zeek's conn.log documentation


def is_missing(value: object) -> bool:
    """True for None and NaN, the two ways a NULL reaches us through pandas."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def is_file_run(run: dict) -> bool:
    """A run that read a capture file (stores before schema v2 have no ``live`` column: the source says)."""
    live = run.get("live")
    return not str(run.get("source", "")).startswith("live") if is_missing(live) else not bool(live)


def count(value: object) -> str:
    """An integer count with thousands separators: 2011 -> "2,011"."""
    return UNKNOWN if is_missing(value) else f"{int(value):,}"


def size(n_bytes: object) -> str:
    """Bytes in decimal units, as network tools count them: 185072 -> "185.1 kB"."""
    if is_missing(n_bytes):
        return UNKNOWN
    value = float(n_bytes)
    unit = 0
    while abs(value) >= 1000 and unit < len(_BYTE_UNITS) - 1:
        value /= 1000
        unit += 1
    return f"{int(value)} B" if unit == 0 else f"{value:.1f} {_BYTE_UNITS[unit]}"


def duration(seconds: object) -> str:
    """A delay a person can read at a glance: 0.42 -> "0.4 s", 5400 -> "1.5 h"."""
    if is_missing(seconds):
        return UNKNOWN
    s = float(seconds)
    if abs(s) < 60:
        return f"{s:.1f} s"
    if abs(s) < 3600:
        return f"{s / 60:.1f} min"
    if abs(s) < 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:,.0f} days"


def timestamp(epoch_s: object) -> str:
    """Epoch seconds as UTC "YYYY-MM-DD HH:MM:SS", which also sorts correctly as text."""
    if is_missing(epoch_s):
        return UNKNOWN
    return datetime.fromtimestamp(float(epoch_s), tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def precise_timestamp(epoch_s: object) -> str:
    """Epoch seconds as UTC "YYYY-MM-DD HH:MM:SS.mmm", for flows that start within one second."""
    if is_missing(epoch_s):
        return UNKNOWN
    return datetime.fromtimestamp(float(epoch_s), tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def evidence_items(evidence: object) -> list[tuple[str, str]]:
    """An alert's evidence (the JSON text the store keeps, or a dict) as (key, value) strings to show as text.

    Nested objects get dotted keys, lists of numbers are joined with commas and lists of text
    put one item per line, keys lose their underscores: {"distinct_ports": 1000, "sample_ports":
    [1, 3]} -> [("distinct ports", "1000"), ("sample ports", "1, 3")]. Text that is not a JSON
    object is shown whole under "evidence".
    """
    if isinstance(evidence, str):
        try:
            evidence = json.loads(evidence)
        except ValueError:
            return [("evidence", evidence)] if evidence else []
    if not isinstance(evidence, dict):
        return [] if is_missing(evidence) else [("evidence", _plain(evidence))]
    items: list[tuple[str, str]] = []
    _flatten("", evidence, items)
    return items


def _flatten(prefix: str, value: object, items: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            name = str(key).replace("_", " ")
            _flatten(f"{prefix}.{name}" if prefix else name, inner, items)
    elif isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        for i, inner in enumerate(value):
            _flatten(f"{prefix}[{i}]", inner, items)
    elif isinstance(value, list) and all(isinstance(v, int | float) for v in value):
        items.append((prefix, ", ".join(_plain(v) for v in value) if value else "none"))
    elif isinstance(value, list):
        items.append((prefix, "\n".join(_plain(v) for v in value)))  # one text per line
    else:
        items.append((prefix, _plain(value)))


def _plain(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def model_status(model: dict) -> str:
    """The anomaly model's state from ``runs.model``, e.g. "trained on baseline.pcap"."""
    status = str(model.get("status") or "none")
    if status == "trained":
        parts = ["trained"]
        if model.get("trained_on"):
            parts.append(f"on {model['trained_on']}")
        trained_at = model.get("trained_at")
        if isinstance(trained_at, int | float) and not is_missing(trained_at):
            parts.append(f"at {timestamp(trained_at)} UTC")
        elif isinstance(trained_at, str) and trained_at:
            parts.append(f"at {trained_at}")
        if isinstance(model.get("threshold"), int | float):
            parts.append(f"(threshold {model['threshold']:.3g})")
        return " ".join(parts)
    if status == "none":
        return "no anomaly model"
    return status


def channel_states(channels: object) -> list[tuple[str, str, str]]:
    """Alert channels' health (the JSON list the store keeps) as (channel, state, details) strings.

    {"channel": "email", "state": "failing", "failed_attempts": 3, "last_error": "..."} ->
    ("email", "failing: 3 failed attempts, last error: ...", "smtp://... · 0 sent · ... · last error: ...").
    """
    if isinstance(channels, str):
        try:
            channels = json.loads(channels)
        except ValueError:
            return []
    if not isinstance(channels, list):
        return []
    rows = []
    for c in channels:
        if not isinstance(c, dict):
            continue
        state = str(c.get("state") or UNKNOWN)
        if state == "failing":
            error = c.get("last_error") or UNKNOWN
            state += f": {count(c.get('failed_attempts'))} failed attempts, last error: {error}"
        elif state == "ok":
            state += f": {count(c.get('delivered'))} sent"
        details = [str(c.get("target") or "")]
        for key, label in (
            ("delivered", "sent"),
            ("deduplicated", "folded into earlier messages"),
            ("held", "held for a digest"),
            ("digests", "digests"),
            ("queued", "queued"),
        ):
            if key in c:
                details.append(f"{count(c[key])} {label}")
        if c.get("last_error"):
            details.append(f"last error: {c['last_error']}")
        rows.append((str(c.get("channel") or UNKNOWN), state, " · ".join(d for d in details if d)))
    return rows
