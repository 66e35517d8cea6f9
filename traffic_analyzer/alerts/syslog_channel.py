"""Alerts to a syslog collector: RFC 5424 messages over UDP (RFC 5426) or TCP with octet counting (RFC 6587).

A line looks like::

    <28>1 2024-05-01T12:00:03.250000Z sensor1 network-traffic-analyzer 4242 ALERT
        [nta@32473 alert_id="..." event="new" kind="port_scan" severity="high" score="85" ...] BOM text

The structured data carries every field, so a collector can filter without parsing the text.
"""

from __future__ import annotations

import os
import socket
import urllib.parse
from datetime import UTC, datetime

from ..errors import ConfigError
from .notice import APP_NAME, DIGEST, ENDED, Notice, victims_text
from .worker import DELIVERY_TIMEOUT_S

FACILITY_AUTH = 4  # RFC 5424 facility 4: security/authorization messages
SYSLOG_SEVERITY: dict[str, int] = {"critical": 2, "high": 3, "medium": 4, "low": 5}  # crit, err, warning, notice
SYSLOG_INFO = 6  # informational: an alert that ended
SD_ID = "nta@32473"  # 32473 is the enterprise number RFC 5612 reserves for examples and documentation
MSGIDS: dict[str, str] = {"new": "ALERT", "update": "UPDATE", "ended": "ENDED", "digest": "DIGEST"}
BOM = "\ufeff"  # RFC 5424: MSG in UTF-8 starts with a byte order mark
MAX_MESSAGE_BYTES = 8192  # larger messages are cut (UDP receivers must take 480, should take 2048)
DIGEST_ITEMS = 10  # alerts named in a digest line


def parse_target(target: str) -> tuple[str, str, int]:
    """'udp://host:port' or 'tcp://host:port' (port 514 when left out) -> (protocol, host, port)."""
    parts = urllib.parse.urlsplit(target)
    try:
        port = parts.port or 514
    except ValueError:
        port = 0
    if parts.scheme not in ("udp", "tcp") or not parts.hostname or not 1 <= port <= 65535:
        raise ConfigError(f"syslog_target must look like udp://host:514 or tcp://host:514, not {target!r}")
    return parts.scheme, parts.hostname, port


def _hostname(name: str) -> str:
    """RFC 5424 HOSTNAME: printable US-ASCII without spaces, at most 255 characters."""
    clean = "".join(ch for ch in name if 33 <= ord(ch) <= 126)[:255]
    return clean or "-"


def _sd_value(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _text(notice: Notice) -> str:
    if notice.event == DIGEST:
        items = [
            f"[{h['alert']['severity']}] {h['alert']['kind']} {h['alert']['attacker']} -> {victims_text(h['alert'])}"
            for h in notice.held[:DIGEST_ITEMS]
        ]
        more = f"; and {len(notice.held) - DIGEST_ITEMS} more" if len(notice.held) > DIGEST_ITEMS else ""
        return f"{notice.subject()}: {'; '.join(items)}{more}"
    a = notice.alert
    assert a is not None
    text = f"{notice.subject()}: {a['explanation']}"
    if notice.reason:
        text += f" (update: {notice.reason})"
    if a.get("evidence_pcap"):
        text += f" evidence pcap: {a['evidence_pcap']}"
    return " ".join(text.split())


def rfc5424(notice: Notice, hostname: str, procid: int) -> bytes:
    """One RFC 5424 syslog message (without transport framing)."""
    if notice.event == ENDED:
        severity = SYSLOG_INFO
    else:
        severity = SYSLOG_SEVERITY[notice.severity]
    timestamp = datetime.fromtimestamp(notice.created, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    params: dict[str, object] = {"event": notice.event, "severity": notice.severity, "sensor": notice.sensor}
    params["run_id"] = notice.run_id
    if notice.alert is not None:
        a = notice.alert
        params |= {
            "alert_id": a["alert_id"],
            "kind": a["kind"],
            "attacker": a["attacker"],
            "victims": ",".join(a["victims"]),
            "score": f"{a['score']:.0f}",
            "start": datetime.fromtimestamp(a["start"], tz=UTC).isoformat(),
            "end": datetime.fromtimestamp(a["end"], tz=UTC).isoformat(),
        }
        if a.get("evidence_pcap"):
            params["evidence_pcap"] = a["evidence_pcap"]
    else:
        params["held"] = len(notice.held)
    sd = "[" + SD_ID + "".join(f' {key}="{_sd_value(value)}"' for key, value in params.items()) + "]"
    header = f"<{FACILITY_AUTH * 8 + severity}>1 {timestamp} {_hostname(hostname)} {APP_NAME} {procid} "
    line = (header + f"{MSGIDS[notice.event]} {sd} ").encode() + (BOM + _text(notice)).encode()
    return line[:MAX_MESSAGE_BYTES]


class SyslogSink:
    """Sends RFC 5424 lines: one UDP datagram each, or over one TCP connection kept open."""

    name = "syslog"

    def __init__(self, target: str, hostname: str, timeout_s: float = DELIVERY_TIMEOUT_S) -> None:
        self.protocol, self.host, self.port = parse_target(target)
        self.hostname = hostname
        self.timeout_s = timeout_s
        self.target = f"{self.protocol}://{self.host}:{self.port}"
        self._sock: socket.socket | None = None

    def deliver(self, notice: Notice) -> None:
        message = rfc5424(notice, self.hostname, os.getpid())
        try:
            if self.protocol == "udp":
                if self._sock is None:
                    family = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0][0]
                    self._sock = socket.socket(family, socket.SOCK_DGRAM)
                self._sock.sendto(message, (self.host, self.port))
            else:
                if self._sock is None:
                    self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
                self._sock.sendall(b"%d " % len(message) + message)  # RFC 6587 octet counting
        except OSError:
            self.close()  # a broken connection is reopened on the next attempt
            raise

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
