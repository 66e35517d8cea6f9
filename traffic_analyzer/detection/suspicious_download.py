"""Exploit-kit style deliveries: executable content over cleartext HTTP from a doubtful server."""

from __future__ import annotations

import ipaddress

import pandas as pd

from ..records.alert import Alert
from ..records.window import WindowData
from .base import Detector

# Content types that run code: a program, a plug-in exploit (Flash, Java, Silverlight), a script host file.
EXECUTABLE_TYPES = (
    "application/octet-stream",
    "application/x-msdownload",
    "application/x-dosexec",
    "application/x-shockwave-flash",
    "application/java-archive",
    "application/x-java-archive",
    "application/x-silverlight-app",
    "application/hta",
    "application/x-ms-shortcut",
)
EXPLOIT_PLUGIN_TYPES = (
    "application/x-shockwave-flash",
    "application/java-archive",
    "application/x-java-archive",
    "application/x-silverlight-app",
)
CHEAP_TLDS = (".tk", ".top", ".xyz", ".pw", ".cc", ".ru", ".su", ".ml", ".ga", ".cf", ".gq", ".work", ".click")
MIN_PAYLOAD_BYTES = 50_000  # smaller octet-streams are API blobs and media segments
WEB_PORTS = (80, 8080)
SCORE_BASE = 30.0  # a large executable over HTTP, nothing else odd: worth a low note
SCORE_ODD_PORT = 25.0  # served from a port no web server uses
SCORE_PLUGIN_CHAIN = 30.0  # the same server also served a Flash/Java/Silverlight file: an exploit chain
SCORE_DOUBTFUL_HOST = 15.0  # requested by raw IP or under a throw-away top-level domain


class SuspiciousDownloadDetector(Detector):
    """Scores each executable download by what surrounds it; medium or above means an exploit chain.

    A host that received an exploit chain is then watched for ``followup_s``: HTTP POSTs it sends to
    other servers in that time are reported as post-infection C2 check-ins.

    Parameters
    ----------
    min_payload_bytes : int
        Smallest HTTP response body judged as a download; smaller octet-streams are API blobs and media segments.
    followup_s : float
        How long a host that received an exploit chain is watched for HTTP POSTs to other servers.
    """

    name = "suspicious_download"

    def __init__(self, min_payload_bytes: int = MIN_PAYLOAD_BYTES, followup_s: float = 600.0) -> None:
        self.min_payload_bytes = min_payload_bytes
        self.followup_s = followup_s
        self._hosts: dict[tuple[str, str], str] = {}  # (client, server) -> Host header last asked for
        self._plugins: dict[tuple[str, str], float] = {}  # (client, server) -> time a plug-in file was served
        self._infected: dict[str, tuple[float, str]] = {}  # client -> (time of the exploit chain, EK server)
        self._posts: dict[tuple[str, str], list[tuple[float, str]]] = {}  # (client, server) -> (time, URI)

    def detect(self, window: WindowData) -> list[Alert]:
        p = window.packets
        requests = p[p["http_host"].notna()]
        for row in requests[["src_ip", "dst_ip", "http_host"]].itertuples(index=False):
            self._hosts[(str(row.src_ip), str(row.dst_ip))] = str(row.http_host)
        responses = p[p["http_status"].eq(200).fillna(False) & p["http_content_type"].notna()]
        alerts = []
        for row in responses[
            ["ts", "src_ip", "dst_ip", "src_port", "http_content_type", "http_content_length"]
        ].itertuples(index=False):
            ctype = str(row.http_content_type).split(";")[0].strip().lower()
            pair = (str(row.dst_ip), str(row.src_ip))
            if ctype in EXPLOIT_PLUGIN_TYPES:
                self._plugins[pair] = row.ts
            size = None if pd.isna(row.http_content_length) else int(row.http_content_length)
            if ctype not in EXECUTABLE_TYPES or (size is not None and size < self.min_payload_bytes):
                continue
            alert = self._alert(row.ts, pair, int(row.src_port), ctype, size)
            if alert.kind == "exploit_kit":
                self._infected[pair[0]] = (float(row.ts), pair[1])
            alerts.append(alert)
        alerts += self._checkins(p)
        if len(self._hosts) > 50_000:
            self._hosts.clear()
        return alerts

    def _checkins(self, p: pd.DataFrame) -> list[Alert]:
        """POSTs from a host that just received an exploit chain, to servers other than the exploit kit."""
        if not self._infected:
            return []
        posts = p[p["http_method"].eq("POST").fillna(False) & p["src_ip"].isin(list(self._infected))]
        touched = set()
        for row in posts[["ts", "src_ip", "dst_ip", "http_uri"]].itertuples(index=False):
            infected_at, ek_server = self._infected[str(row.src_ip)]
            if str(row.dst_ip) == ek_server or not 0 <= row.ts - infected_at <= self.followup_s:
                continue
            key = (str(row.src_ip), str(row.dst_ip))
            self._posts.setdefault(key, []).append((float(row.ts), str(row.http_uri)))
            touched.add(key)
        alerts = []
        for client, server in touched:
            posts_seen = self._posts[(client, server)][-50:]
            infected_at, ek_server = self._infected[client]
            host = self._hosts.get((client, server), server)
            text = (
                f"{client} sent {len(posts_seen)} HTTP POSTs to {server} ({host}, e.g. {posts_seen[-1][1][:80]!r}) "
                f"{posts_seen[0][0] - infected_at:.0f} s after it received an exploit chain from {ek_server}; "
                "malware checks in with its C2 server this way right after infection."
            )
            alerts.append(
                Alert(
                    kind="c2_checkin",
                    attacker=server,
                    victims=[client],
                    start=posts_seen[0][0],
                    end=posts_seen[-1][0],
                    score=75.0,
                    explanation=text,
                    evidence={"posts": len(posts_seen), "exploit_kit": ek_server, "host": host},
                    detector=self.name,
                )
            )
        return alerts

    def _alert(self, ts: float, pair: tuple[str, str], port: int, ctype: str, size: int | None) -> Alert:
        client, server = pair
        host = self._hosts.get(pair, server)
        reasons, score = [], SCORE_BASE
        if port not in WEB_PORTS:
            score += SCORE_ODD_PORT
            reasons.append(f"from port {port}")
        if pair in self._plugins and ctype not in EXPLOIT_PLUGIN_TYPES:
            score += SCORE_PLUGIN_CHAIN
            reasons.append("after the same server served a browser plug-in file")
        if _is_ip(host) or host.split(":")[0].lower().endswith(CHEAP_TLDS):
            score += SCORE_DOUBTFUL_HOST
            reasons.append(f"from the doubtful host {host}")
        said = f"{size} bytes of {ctype}" if size is not None else ctype
        text = (
            f"{client} downloaded {said} over cleartext HTTP from {server} ({host})"
            + (" " + ", ".join(reasons) if reasons else "")
            + "; exploit kits deliver their payload this way, ordinary downloads come over HTTPS from known hosts."
        )
        return Alert(
            kind="exploit_kit" if score >= 40 else "suspicious_download",
            attacker=server,
            victims=[client],
            start=float(ts),
            end=float(ts),
            score=min(score, 95.0),
            explanation=text,
            evidence={"content_type": ctype, "bytes": size, "host": host, "port": port, "reasons": reasons},
            detector=self.name,
        )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split(":")[0].strip("[]"))
    except ValueError:
        return False
    return True
