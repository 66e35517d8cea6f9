"""Web attacks visible in cleartext HTTP requests: SQL injection, path traversal, XSS, command injection."""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

import pandas as pd

from ..records.alert import Alert
from ..records.window import WindowData
from .base import Detector

# (kind, pattern, what it means). Patterns run on the URL-decoded request target, case-insensitively.
PATTERNS: tuple[tuple[str, re.Pattern, str], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE), meaning)
    for kind, pattern, meaning in (
        ("sql_injection", r"\bunion\b[\s/*+]+(all[\s/*+]+)?select\b", "UNION SELECT"),
        ("sql_injection", r"'\s*(or|and)\s*'?\w*'?\s*(=|like)\s*'?\w*", "a quote followed by OR/AND comparison"),
        ("sql_injection", r"\b(or|and)\s+\d+\s*=\s*\d+", "an always-true OR 1=1 comparison"),
        # A call, not a word: "sleep(5)", "benchmark(1e7,md5(1))", "waitfor delay '0:0:5'" (not "/benchmark-results").
        (
            "sql_injection",
            r"\b(sleep|benchmark|pg_sleep)\s*\(\s*[\d'\"(]|\bwaitfor\s+delay\s+'",
            "a time-delay function",
        ),
        (
            "sql_injection",
            r"\binformation_schema\b|\bload_file\s*\(|\binto\s+(out|dump)file\b",
            "schema or file access",
        ),
        ("path_traversal", r"(\.\.[/\\]){2,}|\.\.[/\\].*(etc/passwd|win\.ini|boot\.ini)", "../ path traversal"),
        ("path_traversal", r"/etc/(passwd|shadow)|c:\\windows\\", "a system file path"),
        ("xss", r"<\s*script\b|\bon(error|load|mouseover)\s*=|javascript\s*:", "script in the request"),
        (
            "command_injection",
            r"[;|`]\s*(cat|id|uname|wget|curl|nc|bash|sh)(\s|$)|\$\((cat|id|uname)\b",
            "a shell command",
        ),
    )
)
SCANNER_AGENTS = re.compile(
    r"sqlmap|nikto|nmap scripting engine|dirbuster|gobuster|wpscan|acunetix|nessus|"
    r"masscan|zgrab|w3af|havij|hydra",
    re.IGNORECASE,
)
SCORE_FIRST = 60.0  # one matching request
SCORE_PER_MORE = 5.0  # each further matching request, up to SCORE_MAX
SCORE_MAX = 90.0


class WebAttackDetector(Detector):
    """Matches each HTTP request's URI and user agent against known attack patterns."""

    name = "web_attack"

    def __init__(self) -> None:
        self._hits: dict[tuple[str, str, str], list[tuple[float, str, str]]] = {}

    def detect(self, window: WindowData) -> list[Alert]:
        p = window.packets
        requests = p[p["http_method"].notna()]
        if requests.empty:
            return []
        touched = set()
        for row in requests[["ts", "src_ip", "dst_ip", "http_uri", "http_user_agent"]].itertuples(index=False):
            uri = "" if pd.isna(row.http_uri) else unquote_plus(str(row.http_uri))
            agent = "" if pd.isna(row.http_user_agent) else str(row.http_user_agent)
            for kind, pattern, meaning in PATTERNS:
                if pattern.search(uri):
                    key = (kind, str(row.src_ip), str(row.dst_ip))
                    self._hits.setdefault(key, []).append((row.ts, meaning, uri[:200]))
                    touched.add(key)
                    break
            scanner = SCANNER_AGENTS.search(agent)
            if scanner:
                key = ("web_scan", str(row.src_ip), str(row.dst_ip))
                self._hits.setdefault(key, []).append((row.ts, f"the {scanner.group(0)} user agent", agent[:200]))
                touched.add(key)
        return [self._alert(key) for key in touched]

    def _alert(self, key: tuple[str, str, str]) -> Alert:
        kind, client, server = key
        hits = self._hits[key][-100:]
        self._hits[key] = hits
        meanings = sorted({m for _, m, _ in hits})
        example = hits[-1][2]
        text = (
            f"{client} sent {len(hits)} HTTP requests to {server} carrying {', '.join(meanings)}, e.g. "
            f"{example!r}; ordinary browsing carries none of these."
        )
        return Alert(
            kind=kind,
            attacker=client,
            victims=[server],
            start=float(hits[0][0]),
            end=float(hits[-1][0]),
            score=min(SCORE_MAX, SCORE_FIRST + SCORE_PER_MORE * (len(hits) - 1)),
            explanation=text,
            evidence={"requests": len(hits), "patterns": meanings, "examples": [u for _, _, u in hits[-5:]]},
            detector=self.name,
        )
