"""Store query results -> table rows (AG Grid rowData), and the flow search the flows page reads from its inputs.

Pure functions of the frames :class:`~traffic_analyzer.store.reader.ResultReader` returns
(and of the acknowledgements and allow-list entries), unit-tested without a browser. Rows hold
strings and numbers only; the tables show them as text.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC
from urllib.parse import urlencode

import pandas as pd

from ..records.alert import severity_of
from ..store.annotations import AllowEntry, allowed
from . import formatting as fmt

NEW, ACKNOWLEDGED, UPDATED, ALLOW_LISTED = "new", "acknowledged", "updated since ack", "allow-listed"
EPOCH_TEXT = re.compile(r"^\d{9,10}(\.\d+)?$")  # a time typed as epoch seconds
MAX_PORT = 65535


def victims_of(victims: object) -> list[str]:
    """The store's comma-separated victims as a list."""
    return [v for v in str(victims or "").split(",") if v]


def alert_status(alert: dict, acknowledged: dict[str, float], entries: tuple[AllowEntry, ...]) -> str:
    """new, acknowledged, updated since ack (new evidence after the acknowledgement) or allow-listed."""
    if allowed(str(alert["kind"]), str(alert["attacker"]), victims_of(alert["victims"]), entries):
        return ALLOW_LISTED
    acked_at = acknowledged.get(str(alert["alert_id"]))
    if acked_at is None:
        return NEW
    updated_at = alert.get("updated_at")
    return UPDATED if not fmt.is_missing(updated_at) and float(updated_at) > acked_at else ACKNOWLEDGED


def alert_rows(
    alerts: pd.DataFrame, acknowledged: dict[str, float], entries: Iterable[AllowEntry], host: str | None = None
) -> list[dict]:
    """Rows of an alerts table, in the frame's order (the store sorts by score).

    With ``host``, only the alerts naming it as attacker or victim, with its role in each.
    """
    entries = tuple(entries)
    rows = []
    for alert in alerts.to_dict("records"):
        victims = victims_of(alert["victims"])
        row = {
            "id": str(alert["alert_id"]),
            "status": alert_status(alert, acknowledged, entries),
            "severity": str(alert["severity"]),
            "score": float(alert["score"]),
            "kind": str(alert["kind"]),
            "attacker": str(alert["attacker"]),
            "victims": ", ".join(victims),
            "start": fmt.timestamp(alert["start"]),
            "end": fmt.timestamp(alert["end"]),
            "explanation": str(alert["explanation"]),
        }
        if host is not None:
            roles = [r for r, hit in (("attacker", row["attacker"] == host), ("victim", host in victims)) if hit]
            if not roles:
                continue
            row["role"] = " and ".join(roles)
        rows.append(row)
    return rows


def host_rows(totals: pd.DataFrame, alerts: pd.DataFrame, entries: Iterable[AllowEntry]) -> list[dict]:
    """One row per host: its threat score and traffic, most threatening first, then busiest.

    The threat score is the highest score of the alerts naming the host as attacker, leaving out
    allow-listed ones; 0 when there are none.
    """
    entries = tuple(entries)
    threat: dict[str, float] = {}
    as_attacker: dict[str, int] = {}
    as_victim: dict[str, int] = {}
    for alert in alerts.to_dict("records"):
        attacker, victims = str(alert["attacker"]), victims_of(alert["victims"])
        as_attacker[attacker] = as_attacker.get(attacker, 0) + 1
        for victim in victims:
            as_victim[victim] = as_victim.get(victim, 0) + 1
        if not allowed(str(alert["kind"]), attacker, victims, entries):
            threat[attacker] = max(threat.get(attacker, 0.0), float(alert["score"]))
    rows = []
    for host in totals.to_dict("records"):
        name = str(host["host"])
        score = threat.get(name, 0.0)
        rows.append(
            {
                "host": name,
                "threat": score,
                "severity": severity_of(score) if score > 0 else "",
                "alerts": as_attacker.get(name, 0),
                "targeted": as_victim.get(name, 0),
                "packets_out": int(host["packets_out"]),
                "bytes_out": int(host["bytes_out"]),
                "packets_in": int(host["packets_in"]),
                "bytes_in": int(host["bytes_in"]),
                "first_seen": fmt.timestamp(host["first_window"]),
                "last_seen": fmt.timestamp(host["last_window"]),
            }
        )
    return sorted(rows, key=lambda r: (-r["threat"], -(r["bytes_out"] + r["bytes_in"]), r["host"]))


def flow_rows(flows: pd.DataFrame) -> list[dict]:
    """Rows of a flows table: Zeek conn.log fields, times in UTC, nulls as empty cells."""
    rows = []
    for flow in flows.to_dict("records"):
        row = {name: (None if fmt.is_missing(v) or v is pd.NA else v) for name, v in flow.items()}
        rows.append(
            {
                "uid": str(row["uid"]),
                "ts": fmt.precise_timestamp(row["ts"]),
                "duration": row["duration"],
                "orig_h": str(row["orig_h"]),
                "orig_p": None if row["orig_p"] is None else int(row["orig_p"]),
                "resp_h": str(row["resp_h"]),
                "resp_p": None if row["resp_p"] is None else int(row["resp_p"]),
                "proto": row["proto"] or "",
                "service": row["service"] or "",
                "conn_state": row["conn_state"] or "",
                "history": row["history"] or "",
                "orig_bytes": row["orig_bytes"],
                "resp_bytes": row["resp_bytes"],
                "orig_pkts": row["orig_pkts"],
                "resp_pkts": row["resp_pkts"],
            }
        )
    return rows


def peer_rows(peers: pd.DataFrame) -> list[dict]:
    """Rows of a host's peers table (ResultReader.host_peers)."""
    return [
        {
            "peer": str(p["peer"]),
            "flows": int(p["flows"]),
            "bytes_sent": int(p["bytes_sent"]),
            "bytes_received": int(p["bytes_received"]),
            "first": fmt.timestamp(p["first_ts"]),
            "last": fmt.timestamp(p["last_ts"]),
        }
        for p in peers.to_dict("records")
    ]


def dns_rows(names: pd.DataFrame) -> list[dict]:
    """Rows of a host's DNS names table (ResultReader.host_dns); names are attacker-chosen text."""
    return [
        {
            "qname": str(n["qname"]),
            "queries": int(n["queries"]),
            "first": fmt.timestamp(n["first_window"]),
            "last": fmt.timestamp(n["last_window"]),
        }
        for n in names.to_dict("records")
    ]


def port_rows(ports: pd.DataFrame) -> list[dict]:
    """Rows of a host's ports-and-services table (ResultReader.host_ports)."""
    return [
        {
            "role": "server (contacted on)" if p["role"] == "server" else "client (connected to)",
            "proto": str(p["proto"] or ""),
            "port": None if fmt.is_missing(p["port"]) or p["port"] is pd.NA else int(p["port"]),
            "service": "" if fmt.is_missing(p["service"]) or p["service"] is None else str(p["service"]),
            "flows": int(p["flows"]),
            "peers": int(p["peers"]),
            "bytes": int(p["bytes"]),
        }
        for p in ports.to_dict("records")
    ]


def parse_time(text: str) -> float:
    """A time typed by the user, as epoch seconds: "2010-07-04 20:24:16" (UTC), an ISO time with zone, or epoch."""
    text = text.strip()
    if EPOCH_TEXT.match(text):
        return float(text)
    try:
        stamp = pd.Timestamp(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a time: use YYYY-MM-DD HH:MM:SS (UTC)") from exc
    if pd.isna(stamp):
        raise ValueError(f"{text!r} is not a time: use YYYY-MM-DD HH:MM:SS (UTC)")
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp
    return stamp.timestamp()


@dataclass(frozen=True)
class FlowSearch:
    """What the flows page searches for; None or empty means any."""

    ip: str | None = None  # an address, or a prefix ending in *
    port: int | None = None  # either end
    service: str | None = None
    conn_states: tuple[str, ...] = ()
    start: float | None = None  # flows overlapping [start, end], epoch seconds
    end: float | None = None

    def conditions(self) -> dict:
        """Keyword arguments of ResultReader.search_flows and count_flows."""
        return {
            "ip": self.ip,
            "port": self.port,
            "service": self.service,
            "conn_states": list(self.conn_states) or None,
            "start": self.start,
            "end": self.end,
        }

    def describe(self) -> str:
        """The search in words, for the summary line: "with 10.0.0.1, port 22, state REJ"."""
        parts = []
        if self.ip:
            parts.append(f"with {self.ip}")
        if self.port is not None:
            parts.append(f"port {self.port}")
        if self.service:
            parts.append(f"service {self.service}")
        if self.conn_states:
            parts.append(f"state {' or '.join(self.conn_states)}")
        if self.start is not None:
            parts.append(f"from {fmt.timestamp(self.start)}")
        if self.end is not None:
            parts.append(f"until {fmt.timestamp(self.end)}")
        return ", ".join(parts)


def flow_search(
    ip: str | None,
    port: object,
    service: str | None,
    conn_states: list[str] | None,
    start: str | None,
    end: str | None,
) -> tuple[FlowSearch, list[str]]:
    """The flows page's inputs as a FlowSearch, and a message per input it had to ignore."""
    problems = []
    ip = (ip or "").strip() or None
    if ip and not ip.endswith("*"):
        try:
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            problems.append(f"{ip!r} is not an IP address (end it with * to match a prefix)")
            ip = None
    port_number = None
    if port not in (None, ""):
        try:
            port_number = int(port)
        except (TypeError, ValueError):
            port_number = -1
        if not 0 <= port_number <= MAX_PORT:
            problems.append(f"port {port!r} is not a number from 0 to {MAX_PORT}")
            port_number = None
    times = []
    for label, text in (("from", start), ("until", end)):
        value = None
        if text and text.strip():
            try:
                value = parse_time(text)
            except ValueError as exc:
                problems.append(f"{label}: {exc}")
        times.append(value)
    search = FlowSearch(
        ip=ip,
        port=port_number,
        service=service or None,
        conn_states=tuple(conn_states or ()),
        start=times[0],
        end=times[1],
    )
    return search, problems


def flows_link(ip: str | None = None, start: float | None = None, end: float | None = None) -> str:
    """The flows page searching for ``ip`` between two times, as a link."""
    query = {}
    if ip:
        query["ip"] = ip
    if start is not None:
        query["start"] = fmt.timestamp(start)
    if end is not None:
        query["end"] = fmt.timestamp(end + 1)  # the shown time drops the fraction: keep the last second
    return "/flows" + (f"?{urlencode(query)}" if query else "")


def host_link(host: str) -> str:
    return f"/hosts?{urlencode({'host': host})}"


def alert_link(alert_id: str) -> str:
    return f"/alerts?{urlencode({'alert': alert_id})}"
