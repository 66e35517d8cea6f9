"""Alerts as Suricata EVE JSON ``alert`` events, the form SIEMs and log shippers already parse.

Suricata's schema (OISF/suricata ``etc/schema.json``) allows no top-level fields of our own, so
everything that is ours (score, explanation, kind, detector, victims...) goes in
``alert.metadata``, whose values are lists of strings as Suricata writes a rule's metadata.
``src_ip`` is the attacker and ``dest_ip`` the first victim, each only when it is an IP address
(an ARP spoofer is a MAC, a spoofed flood's source is ``*``). ``flow_id`` is the alert's own id:
an attack spans many flows, so no single flow id would be true.
"""

from __future__ import annotations

import ipaddress
import zlib
from datetime import UTC, datetime

EVE_SEVERITY: dict[str, int] = {"critical": 1, "high": 1, "medium": 2, "low": 3}  # Suricata: 1 high .. 3 low
SIGNATURE_ID_BASE = 9_100_000  # sids 9,100,000-9,199,999: a local range, clear of the ET and Suricata rule sets
FLOW_ID_MASK = 2**53 - 1  # flow ids stay exact in JSON readers that hold numbers as doubles
CATEGORIES: dict[str, str] = {  # alert kind -> Suricata classification (classification.config wording)
    "port_scan": "Detection of a Network Scan",
    "host_sweep": "Detection of a Network Scan",
    "syn_flood": "Attempted Denial of Service",
    "mac_flood": "Attempted Denial of Service",
    "ddos_reflection": "Attempted Denial of Service",
    "ddos_amplification": "Attempted Denial of Service",
    "brute_force": "Attempted User Privilege Gain",
    "web_attack": "Web Application Attack",
    "web_scan": "Web Application Attack",
    "sql_injection": "Web Application Attack",
    "xss": "Web Application Attack",
    "path_traversal": "Web Application Attack",
    "arp_spoof": "Potentially Bad Traffic",
    "c2_beacon": "A Network Trojan was detected",
    "c2_checkin": "A Network Trojan was detected",
    "dga": "A Network Trojan was detected",
    "exploit_kit": "A Network Trojan was detected",
    "suspicious_download": "Potentially Bad Traffic",
    "dns_tunnel": "Potential Corporate Privacy Violation",
    "dns_exfiltration": "Potential Corporate Privacy Violation",
    "icmp_tunnel": "Potential Corporate Privacy Violation",
    "data_exfiltration": "Potential Corporate Privacy Violation",
    "intel_match": "Potentially Bad Traffic",
}
DEFAULT_CATEGORY = "Misc activity"
PORT_KEYS = ("port", "target_port")  # evidence keys that name the one victim port an attack aimed at


def eve_timestamp(ts: float) -> str:
    """Suricata's timestamp form: microseconds and a numeric UTC offset (``2024-05-01T12:00:00.000000+0000``)."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def signature_id(kind: str) -> int:
    """A stable sid per alert kind, so a SIEM rule can key on it."""
    return SIGNATURE_ID_BASE + zlib.crc32(kind.encode()) % 100_000


def _victim_port(evidence: dict) -> int | None:
    for key in PORT_KEYS:
        value = evidence.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535:
            return value
    return None


def eve_alert(alert: dict, sensor: str, ts: float | None = None, event: str = "") -> dict:
    """One EVE alert event from an alert snapshot (victims a list, evidence a dict, with alert_id and severity).

    ``ts`` is the event time (default: the alert's start, its first evidence); ``event`` is the
    channel notice (new, update, ended), kept in the metadata.
    """
    victims = [v for v in alert["victims"] if v]
    evidence = alert.get("evidence") or {}
    metadata: dict[str, list[str]] = {
        "alert_id": [alert["alert_id"]],
        "kind": [alert["kind"]],
        "detector": [alert.get("detector") or alert["kind"]],
        "score": [f"{float(alert['score']):.0f}"],
        "nta_severity": [alert["severity"]],
        "explanation": [alert["explanation"]],
        "attacker": [alert["attacker"]],
        "start": [eve_timestamp(alert["start"])],
        "end": [eve_timestamp(alert["end"])],
    }
    if victims:
        metadata["victims"] = victims
    for key in ("run_id", "evidence_pcap"):
        if alert.get(key):
            metadata[key] = [str(alert[key])]
    if event:
        metadata["event"] = [event]
    record: dict = {
        "timestamp": eve_timestamp(alert["start"] if ts is None else ts),
        "flow_id": int(alert["alert_id"], 16) & FLOW_ID_MASK,
        "event_type": "alert",
    }
    if is_ip(alert["attacker"]):
        record["src_ip"] = alert["attacker"]
    if victims and is_ip(victims[0]):
        record["dest_ip"] = victims[0]
        port = _victim_port(evidence)
        if port is not None:
            record["dest_port"] = port
    if sensor:
        record["host"] = sensor
    record["alert"] = {
        "action": "allowed",  # the analyzer watches; it never blocks
        "gid": 1,
        "signature_id": signature_id(alert["kind"]),
        "rev": 1,
        "signature": f"NTA {alert['kind']}: {alert['attacker']} -> {', '.join(victims) or '-'}",
        "category": CATEGORIES.get(alert["kind"], DEFAULT_CATEGORY),
        "severity": EVE_SEVERITY[alert["severity"]],
        "metadata": metadata,
    }
    return record
