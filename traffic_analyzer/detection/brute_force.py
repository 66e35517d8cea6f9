"""Password guessing against a login service: many short, alike sessions, or many failed-login replies."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..records.alert import Alert
from ..records.window import WindowData
from .base import Detector
from .columns import groups_of, rows_of
from .params import COUNT, POSITIVE
from .sliding import SlidingTable
from .span import burst_span

_SESSION_COLUMNS = ["uid", "orig_h", "resp_h", "resp_p", "ts", "duration", "orig_bytes"]
MAX_TRACKED_ROWS = 500_000  # sessions and failed replies remembered at most (the newest): a bound, not a threshold

# Services that take a password, by port. A browser's many HTTPS connections are not here.
AUTH_PORTS: dict[int, str] = {
    21: "FTP",
    22: "SSH",
    23: "Telnet",
    25: "SMTP",
    110: "POP3",
    143: "IMAP",
    389: "LDAP",
    445: "SMB",
    465: "SMTPS",
    587: "SMTP submission",
    993: "IMAPS",
    995: "POP3S",
    1433: "MSSQL",
    3306: "MySQL",
    3389: "RDP",
    5432: "PostgreSQL",
    5900: "VNC",
    6379: "Redis",
    27017: "MongoDB",
}
FTP_LOGIN_FAILED = 530
HTTP_UNAUTHORIZED = (401, 403)
SCORE_FLOOR = 45.0
SCORE_SPAN = 45.0
SCORE_FULL_RATIO = 25.0  # at this many times the threshold the score is SCORE_FLOOR + SCORE_SPAN


class BruteForceDetector(Detector):
    """One client, one login service, many attempts.

    Parameters
    ----------
    min_attempts : int
        Sessions from one client to one login service within ``window_s`` that make a guessing run.
        Interactive users open a few sessions; tools such as hydra or medusa open dozens.
    window_s : float
        Memory of attempts, so slow guessing (one try every few seconds) still adds up.
    max_session_s : float
        A guess is a short session; longer ones (real work, file transfers) do not count.
    max_size_spread : float
        Guesses look alike: the spread (coefficient of variation) of the client's bytes per session
        stays under this; real sessions vary far more.
    min_failed_replies : int
        Explicit failures (FTP 530, HTTP 401/403) from one server to one client that make a guessing run
        whatever the session pattern.
    max_idle_s : float
        Guessing tools start the next attempt as soon as (or before) the last one ended: the median idle
        time between one session's end and the next one's start stays under this; a slow guesser waits a few
        seconds between tries to pass unnoticed. People and their scripts pause between logins to read and
        type (10 s and more).
    """

    name = "brute_force"
    _parameter_constraints = {
        "min_attempts": COUNT,
        "window_s": POSITIVE,
        "max_session_s": POSITIVE,
        "max_size_spread": POSITIVE,
        "min_failed_replies": COUNT,
        "max_idle_s": POSITIVE,
    }

    def __init__(
        self,
        min_attempts: int = 10,
        window_s: float = 600.0,
        max_session_s: float = 60.0,
        max_size_spread: float = 0.25,
        min_failed_replies: int = 10,
        max_idle_s: float = 10.0,
    ) -> None:
        self.min_attempts = min_attempts
        self.window_s = window_s
        self.max_session_s = max_session_s
        self.max_size_spread = max_size_spread
        self.min_failed_replies = min_failed_replies
        self.max_idle_s = max_idle_s
        sessions = pd.DataFrame(columns=_SESSION_COLUMNS)
        last = {c: "last" for c in _SESSION_COLUMNS if c != "uid"}  # a session seen again: its latest state
        self._sessions = SlidingTable(sessions, window_s, MAX_TRACKED_ROWS, key="uid", merge=last)
        failures = pd.DataFrame(columns=["client", "server", "ts", "code"])
        self._failures = SlidingTable(failures, window_s, MAX_TRACKED_ROWS)

    def detect(self, window: WindowData) -> list[Alert]:
        self._remember(window)
        alerts = self._session_runs(window)
        alerts += self._failed_login_runs()
        return alerts

    def _remember(self, window: WindowData) -> None:
        f = window.flows
        sessions = self._sessions.rows.iloc[:0]
        if len(f):
            auth = f["proto"].to_numpy(dtype=object, na_value="") == "tcp"
            auth &= np.isin(f["resp_p"].to_numpy(dtype=np.int64, na_value=-1), list(AUTH_PORTS))
            auth &= f["orig_bytes"].to_numpy() > 0
            if auth.any():
                sessions = rows_of(f, np.flatnonzero(auth), _SESSION_COLUMNS)
        self._sessions.add(sessions, now=window.end)
        p = window.packets
        ftp_fail = p["ftp_reply_code"].to_numpy(dtype=np.int64, na_value=-1) == FTP_LOGIN_FAILED
        http_fail = np.isin(p["http_status"].to_numpy(dtype=np.int64, na_value=-1), list(HTTP_UNAUTHORIZED))
        at = np.flatnonzero(ftp_fail | http_fail)
        failures = self._failures.rows.iloc[:0]
        if len(at):
            fails = rows_of(p, at, ["dst_ip", "src_ip", "ts", "ftp_reply_code", "http_status"])
            failures = pd.DataFrame(
                {
                    "client": fails["dst_ip"].astype(str),
                    "server": fails["src_ip"].astype(str),
                    "ts": fails["ts"],
                    "code": fails["ftp_reply_code"].fillna(fails["http_status"]),
                }
            )
        self._failures.add(failures, now=window.end)

    def _session_runs(self, window: WindowData) -> list[Alert]:
        rows = self._sessions.rows
        short = rows[rows["duration"].to_numpy(dtype=float, na_value=np.nan) <= self.max_session_s]
        alerts = []
        for (client, server, port), runs in groups_of(short, ["orig_h", "resp_h", "resp_p"], self.min_attempts):
            size = runs["orig_bytes"].astype(float)
            spread = float(size.std(ddof=0) / size.mean()) if size.mean() > 0 else 0.0
            if spread > self.max_size_spread or _median_idle_s(runs) > self.max_idle_s:
                continue
            service = AUTH_PORTS.get(int(port), f"port {port}")
            start, end = burst_span(runs["ts"])
            span = end - start
            text = (
                f"{client} opened {len(runs)} short {service} sessions to {server} in {span:.0f} s, each "
                f"{size.median():.0f} bytes give or take {spread:.0%} (a password-guessing pattern); "
                f"the threshold is {self.min_attempts} alike sessions within {self.window_s:.0f} s."
            )
            alerts.append(
                self._alert(
                    client,
                    server,
                    start,
                    end,
                    len(runs),
                    text,
                    {
                        "sessions": len(runs),
                        "service": service,
                        "port": int(port),
                        "median_session_s": round(float(runs["duration"].median()), 2),
                        "size_spread": round(spread, 3),
                    },
                )
            )
        return alerts

    def _failed_login_runs(self) -> list[Alert]:
        alerts = []
        for (client, server), fails in groups_of(self._failures.rows, ["client", "server"], self.min_failed_replies):
            start, end = burst_span(fails["ts"])
            codes = ", ".join(f"{int(c)} x{n}" for c, n in fails["code"].value_counts().items())
            text = (
                f"{server} refused {len(fails)} logins from {client} ({codes}) in "
                f"{end - start:.0f} s; the threshold is {self.min_failed_replies} "
                f"failed logins within {self.window_s:.0f} s."
            )
            alerts.append(
                self._alert(
                    client,
                    server,
                    start,
                    end,
                    len(fails),
                    text,
                    {"failed_logins": len(fails), "reply_codes": codes},
                )
            )
        return alerts

    def _alert(
        self, client: str, server: str, start: float, end: float, attempts: int, text: str, evidence: dict
    ) -> Alert:
        threshold = min(self.min_attempts, self.min_failed_replies)
        ratio = max(1.0, attempts / threshold)
        score = SCORE_FLOOR + SCORE_SPAN * min(1.0, math.log(ratio) / math.log(SCORE_FULL_RATIO))
        return Alert(
            kind="brute_force",
            attacker=client,
            victims=[server],
            start=float(start),
            end=float(end),
            score=round(score, 1),
            explanation=text,
            evidence=evidence,
            detector=self.name,
        )


def _median_idle_s(sessions: pd.DataFrame) -> float:
    """Median pause between one session's end and the next one's start (0 when they overlap)."""
    ordered = sessions.sort_values("ts")
    ends = (ordered["ts"] + ordered["duration"].fillna(0.0)).to_numpy(dtype=float)
    idle = ordered["ts"].to_numpy(dtype=float)[1:] - ends[:-1]
    return float(np.median(np.clip(idle, 0.0, None))) if len(idle) else 0.0
