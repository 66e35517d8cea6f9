"""Exploit-kit style deliveries: executable content over cleartext HTTP from a doubtful server."""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..records.alert import Alert
from ..records.window import WindowData
from .base import Detector
from .params import COUNT, POSITIVE

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
# Signed packages a package manager verifies: apt, yum/dnf, zypper and pacman fetch them over plain HTTP daily.
PACKAGE_TYPES = (
    "application/vnd.debian.binary-package",
    "application/x-debian-package",
    "application/x-rpm",
    "application/x-redhat-package-manager",
)
PACKAGE_NAME = re.compile(r"\.(deb|udeb|ddeb|rpm|pkg\.tar\.(zst|xz|gz))$", re.IGNORECASE)
PACKAGE_AGENTS = re.compile(r"APT-HTTP|\byum/|\bdnf/|libdnf|ZYpp|pacman|apt-cacher", re.IGNORECASE)
# A file name that runs when opened on Windows or is a plug-in exploit; an ELF by name is as telling.
EXECUTABLE_NAME = re.compile(
    r"\.(exe|dll|scr|msi|com|pif|cpl|bat|cmd|ps1|vbs|vbe|js|jse|wsf|hta|lnk|jar|swf|xap|elf)$", re.IGNORECASE
)
CHEAP_TLDS = (".tk", ".top", ".xyz", ".pw", ".cc", ".ru", ".su", ".ml", ".ga", ".cf", ".gq", ".work", ".click")
MIN_PAYLOAD_BYTES = 50_000  # smaller octet-streams are API blobs and media segments
MIN_CHECKINS = 2  # POSTs to servers first reached after the exploit chain: one is a form, two are a malware's loop
MAX_PAIRS = 200_000  # (client, server) pairs whose first contact is remembered
WEB_PORTS = (80, 8080)
SCORE_BASE = 30.0  # a large executable (by name or type) over HTTP, nothing else odd: worth a low note
SCORE_ODD_PORT = 25.0  # served from a port no web server uses
SCORE_PLUGIN_CHAIN = 30.0  # the same server also served a Flash/Java/Silverlight file: an exploit chain
SCORE_DOUBTFUL_HOST = 15.0  # requested by raw IP or under a throw-away top-level domain


class SuspiciousDownloadDetector(Detector):
    """Scores each executable download by what surrounds it; medium or above means an exploit chain.

    A download is judged only when it is an executable by name or type, or something is odd about
    its server: an ``application/octet-stream`` from an ordinary host is an updater or a CDN blob,
    and signed packages (apt's ``.deb``, rpm) are never judged. A host that received an exploit
    chain is then watched for ``followup_s``: repeated HTTP POSTs to servers it first reached after
    the exploit chain are reported as post-infection C2 check-ins.

    Parameters
    ----------
    min_payload_bytes : int
        Smallest HTTP response body judged as a download; smaller octet-streams are API blobs and media segments.
    followup_s : float
        How long a host that received an exploit chain is watched for HTTP POSTs to new servers.
    min_checkins : int
        POSTs to servers first reached after the exploit chain needed before they are check-ins: one
        POST is a web form, malware checks in again and again.
    """

    name = "suspicious_download"
    _parameter_constraints = {"min_payload_bytes": COUNT, "followup_s": POSITIVE, "min_checkins": COUNT}

    def __init__(
        self, min_payload_bytes: int = MIN_PAYLOAD_BYTES, followup_s: float = 600.0, min_checkins: int = MIN_CHECKINS
    ) -> None:
        self.min_payload_bytes = min_payload_bytes
        self.followup_s = followup_s
        self.min_checkins = min_checkins
        self._requests: dict[tuple[str, str], tuple[str, str, str]] = {}  # (client, server) -> (Host, URI, agent)
        self._plugins: dict[tuple[str, str], float] = {}  # (client, server) -> time a plug-in file was served
        self._infected: dict[str, tuple[float, str]] = {}  # client -> (time of the exploit chain, EK server)
        self._first_contact: dict[tuple[str, str], float] = {}  # (client, server) -> first packet the client sent
        self._posts: dict[tuple[str, str], list[tuple[float, str]]] = {}  # (client, server) -> (time, URI)

    def detect(self, window: WindowData) -> list[Alert]:
        p = window.packets
        self._remember_contacts(p)
        requests = np.flatnonzero(~p["http_host"].isna().to_numpy())
        for src, dst, host, uri, agent in _values(
            p, requests, ["src_ip", "dst_ip", "http_host", "http_uri", "http_user_agent"]
        ):
            self._requests[(str(src), str(dst))] = (
                str(host),
                "" if pd.isna(uri) else str(uri),
                "" if pd.isna(agent) else str(agent),
            )
        ok = p["http_status"].to_numpy(dtype=np.int64, na_value=-1) == 200
        responses = np.flatnonzero(ok & ~p["http_content_type"].isna().to_numpy())
        alerts = []
        columns = ["ts", "src_ip", "dst_ip", "src_port", "http_content_type", "http_content_length"]
        for row in (_Response(*values) for values in _values(p, responses, columns)):
            ctype = str(row.http_content_type).split(";")[0].strip().lower()
            pair = (str(row.dst_ip), str(row.src_ip))
            if ctype in EXPLOIT_PLUGIN_TYPES:
                self._plugins[pair] = row.ts
            size = None if pd.isna(row.http_content_length) else int(row.http_content_length)
            if ctype not in EXECUTABLE_TYPES or (size is not None and size < self.min_payload_bytes):
                continue
            alert = self._alert(row.ts, pair, int(row.src_port), ctype, size)
            if alert is None:
                continue
            if alert.kind == "exploit_kit":
                self._infected[pair[0]] = (float(row.ts), pair[1])
            alerts.append(alert)
        alerts += self._checkins(p)
        if len(self._requests) > 50_000:
            self._requests.clear()
        return alerts

    def _remember_contacts(self, p: pd.DataFrame) -> None:
        """When each client first sent to each server: a check-in server is one reached only after the infection."""
        if len(self._first_contact) > MAX_PAIRS:
            self._first_contact.clear()
        src, sources = pd.factorize(p["src_ip"].to_numpy(dtype=object))
        dst, destinations = pd.factorize(p["dst_ip"].to_numpy(dtype=object))
        known = (src >= 0) & (dst >= 0)  # as a group-by, a packet without both addresses counts nowhere
        if not known.any():
            return
        pair, pairs = pd.factorize(src[known].astype(np.int64) * len(destinations) + dst[known])
        first = np.full(len(pairs), np.inf)
        np.minimum.at(first, pair, p["ts"].to_numpy(dtype=float)[known])
        for key, ts in zip(pairs.tolist(), first.tolist(), strict=True):
            self._first_contact.setdefault(
                (str(sources[key // len(destinations)]), str(destinations[key % len(destinations)])), ts
            )

    def _checkins(self, p: pd.DataFrame) -> list[Alert]:
        """Repeated POSTs from a host that just received an exploit chain, to servers it first reached after it."""
        if not self._infected:
            return []
        posts = p[p["http_method"].eq("POST").fillna(False) & p["src_ip"].isin(list(self._infected))]
        touched = set()
        for row in posts[["ts", "src_ip", "dst_ip", "http_uri"]].itertuples(index=False):
            infected_at, ek_server = self._infected[str(row.src_ip)]
            key = (str(row.src_ip), str(row.dst_ip))
            if key[1] == ek_server or not 0 <= row.ts - infected_at <= self.followup_s:
                continue
            if self._first_contact.get(key, infected_at) < infected_at:  # talked to it before: not the malware's
                continue
            self._posts.setdefault(key, []).append((float(row.ts), str(row.http_uri)))
            touched.add(key)
        alerts = []
        for client, server in touched:
            infected_at, ek_server = self._infected[client]
            checkins = sum(len(v[-50:]) for (c, _), v in self._posts.items() if c == client)
            if checkins < self.min_checkins:
                continue
            posts_seen = self._posts[(client, server)][-50:]
            host = self._requests.get((client, server), (server, "", ""))[0]
            text = (
                f"{client} sent {len(posts_seen)} HTTP POSTs to {server} ({host}, e.g. {posts_seen[-1][1][:80]!r}) "
                f"{posts_seen[0][0] - infected_at:.0f} s after it received an exploit chain from {ek_server}, "
                f"a server it first reached after that ({checkins} such POSTs in all); "
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
                    evidence={"posts": len(posts_seen), "checkins": checkins, "exploit_kit": ek_server, "host": host},
                    detector=self.name,
                )
            )
        return alerts

    def _alert(self, ts: float, pair: tuple[str, str], port: int, ctype: str, size: int | None) -> Alert | None:
        client, server = pair
        host, uri, agent = self._requests.get(pair, (server, "", ""))
        name = uri.split("?")[0]
        if ctype in PACKAGE_TYPES or PACKAGE_NAME.search(name) or PACKAGE_AGENTS.search(agent):
            return None  # a signed package for a package manager
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
        if not reasons and ctype == "application/octet-stream" and not EXECUTABLE_NAME.search(name):
            return None  # an opaque blob from an ordinary server: updaters, CDNs and games fetch these all day
        said = f"{size} bytes of {ctype}" if size is not None else ctype
        text = (
            f"{client} downloaded {said} over cleartext HTTP from {server} ({host}{', ' + name[:80] if name else ''})"
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


class _Response(NamedTuple):
    ts: float
    src_ip: str
    dst_ip: str
    src_port: int
    http_content_type: str
    http_content_length: int


def _values(p: pd.DataFrame, at: np.ndarray, columns: list[str]) -> zip:
    """Rows ``at`` of these packet columns as tuples of Python values (missing ones as pd.NA), as itertuples gives."""
    return zip(*(p[c].to_numpy(dtype=object)[at].tolist() for c in columns), strict=True)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split(":")[0].strip("[]"))
    except ValueError:
        return False
    return True
