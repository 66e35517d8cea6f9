"""Web attacks visible in cleartext HTTP requests: SQL injection, path traversal, XSS, command injection."""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import unquote_plus

import numpy as np
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
# A tool made for one attack names that attack, not a scan: hydra's requests are password guesses, so its
# alert is the brute_force the login rule raises for the same client and server (one key, one alert). Its
# score stays at SCORE_FIRST: a user agent alone is a hint, and the rule's count and explanation win the merge.
TOOL_KINDS = {"hydra": "brute_force"}
SCORE_FIRST = 60.0  # one matching request
SCORE_PER_MORE = 5.0  # each further matching request, up to SCORE_MAX
SCORE_MAX = 90.0


REMEMBERED = 50_000  # URIs and user agents whose verdict is kept across windows (clients repeat them)


@lru_cache(maxsize=REMEMBERED)
def _uri_attack(raw_uri: str | None) -> tuple[str, str, str] | None:
    """(kind, meaning, decoded URI) of the first pattern the URI matches, or None."""
    uri = "" if raw_uri is None else unquote_plus(raw_uri)
    for kind, pattern, meaning in PATTERNS:
        if pattern.search(uri):
            return kind, meaning, uri
    return None


@lru_cache(maxsize=REMEMBERED)
def _scanner(agent: str) -> str | None:
    """The scanning tool a user agent names, or None."""
    found = SCANNER_AGENTS.search(agent)
    return found.group(0) if found else None


class WebAttackDetector(Detector):
    """Matches each HTTP request's URI and user agent against known attack patterns."""

    name = "web_attack"

    def __init__(self) -> None:
        self._hits: dict[tuple[str, str, str], list[tuple[float, str, str]]] = {}

    def detect(self, window: WindowData) -> list[Alert]:
        p = window.packets
        at = np.flatnonzero(~p["http_method"].isna().to_numpy())
        if not len(at):
            return []
        touched = set()
        columns = (
            p[c].to_numpy(dtype=object)[at].tolist() for c in ("ts", "src_ip", "dst_ip", "http_uri", "http_user_agent")
        )
        for ts, src, dst, raw_uri, raw_agent in zip(*columns, strict=True):
            found = _uri_attack(None if pd.isna(raw_uri) else str(raw_uri))
            if found is not None:
                kind, meaning, uri = found
                key = (kind, str(src), str(dst))
                self._hits.setdefault(key, []).append((ts, meaning, uri[:200]))
                touched.add(key)
            agent = "" if pd.isna(raw_agent) else str(raw_agent)
            scanner = _scanner(agent)
            if scanner:
                key = (TOOL_KINDS.get(scanner.lower(), "web_scan"), str(src), str(dst))
                self._hits.setdefault(key, []).append((ts, f"the {scanner} user agent", agent[:200]))
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
            score=SCORE_FIRST
            if kind in TOOL_KINDS.values()
            else min(SCORE_MAX, SCORE_FIRST + SCORE_PER_MORE * (len(hits) - 1)),
            explanation=text,
            evidence={"requests": len(hits), "patterns": meanings, "examples": [u for _, _, u in hits[-5:]]},
            detector=self.name,
        )
