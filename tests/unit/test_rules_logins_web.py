"""Password guessing and web attack rules on hand-built windows: brute_force, web_attack."""

from __future__ import annotations

import pytest
from builders import feed, flow, http_request, summary, tcp, window

from traffic_analyzer.detection.brute_force import BruteForceDetector
from traffic_analyzer.detection.web_attack import WebAttackDetector
from traffic_analyzer.records.packets import TCP_ACK, TCP_PSH

pytestmark = pytest.mark.unit

CLIENT, SERVER = "10.0.0.66", "10.0.0.22"


# brute_force: >= min_attempts short, alike, back-to-back sessions to one login service, or
# >= min_failed_replies failed-login replies, within window_s


def sessions(first_ts: float, count: int, every_s: float = 3.0, duration: float = 2.0, sizes=(1000,)) -> list[dict]:
    """SSH sessions from CLIENT to SERVER, ``every_s`` apart (1 s idle between them by default)."""
    return [
        flow(
            first_ts + every_s * i,
            CLIENT,
            SERVER,
            22,
            orig_p=40000 + i,
            duration=duration,
            conn_state="SF",
            history="ShADadFf",
            orig_bytes=sizes[i % len(sizes)],
            resp_bytes=2000,
            orig_pkts=12,
            resp_pkts=10,
        )
        for i in range(count)
    ]


def failed_logins(first_ts: float, count: int, code: str = "ftp_reply_code", value: int = 530) -> list[dict]:
    """Replies refusing a login, from SERVER to CLIENT, one a second."""
    return [
        tcp(first_ts + i, SERVER, CLIENT, 40000 + i, sport=21, flags=TCP_PSH | TCP_ACK, payload_len=24, **{code: value})
        for i in range(count)
    ]


def test_brute_force_fires_on_min_attempts_alike_sessions():
    rows = sessions(500.0, 10)
    alerts = BruteForceDetector(min_attempts=10).detect(window(flow_rows=rows))
    assert [summary(a) for a in alerts] == [("brute_force", CLIENT, [SERVER], 500.0, rows[-1]["ts"])]
    assert alerts[0].evidence["sessions"] == 10 and alerts[0].evidence["service"] == "SSH"


@pytest.mark.parametrize(
    "rows",
    [
        sessions(500.0, 9),  # one session short of min_attempts
        sessions(500.0, 10, every_s=8.0),  # 6 s idle between sessions: over max_idle_s (5 s), a person typing
        sessions(500.0, 10, sizes=(500, 1500)),  # bytes spread 50 %: over max_size_spread (25 %), real work
        sessions(500.0, 10, every_s=62.0, duration=61.0),  # over max_session_s (60 s): not a guess
    ],
    ids=["9-sessions", "idle", "unalike", "long"],
)
def test_brute_force_near_miss_sessions(rows):
    detector = BruteForceDetector(min_attempts=10, max_session_s=60.0, max_size_spread=0.25, max_idle_s=5.0)
    assert detector.detect(window(flow_rows=rows)) == []


def test_brute_force_fires_on_min_failed_replies():
    rows = failed_logins(500.0, 6) + failed_logins(506.0, 4, code="http_status", value=401)
    alerts = BruteForceDetector(min_failed_replies=10).detect(window(rows))
    assert [summary(a) for a in alerts] == [("brute_force", CLIENT, [SERVER], 500.0, 509.0)]
    assert alerts[0].evidence["failed_logins"] == 10


def test_brute_force_spans_the_guessing_not_an_earlier_refusal():
    """One refused login 66 s before 20 guesses a second: the alert starts at the first guess."""
    rows = failed_logins(434.0, 1, "http_status", 401) + failed_logins(500.0, 20, "http_status", 401)
    alerts = BruteForceDetector(min_failed_replies=10).detect(window(rows))
    assert [summary(a) for a in alerts] == [("brute_force", CLIENT, [SERVER], 500.0, 519.0)]


def test_brute_force_near_miss_failed_replies():
    rows = failed_logins(500.0, 9) + failed_logins(509.0, 3, value=230)  # 230: logged in
    assert BruteForceDetector(min_failed_replies=10).detect(window(rows)) == []


@pytest.mark.parametrize("late_ts, fires", [(1000.0, True), (1200.0, False)])
def test_brute_force_forgets_failures_older_than_window_s(late_ts, fires):
    detector = BruteForceDetector(min_failed_replies=10, window_s=600.0)
    alerts = feed(detector, [window(failed_logins(500.0, 9)), window(failed_logins(late_ts, 1))])
    assert alerts[0] == [] and bool(alerts[1]) is fires


@pytest.mark.parametrize("late_ts, fires", [(1000.0, True), (1200.0, False)])
def test_brute_force_forgets_sessions_older_than_window_s(late_ts, fires):
    detector = BruteForceDetector(min_attempts=10, window_s=600.0)
    early = sessions(500.0, 9)
    late = [{**row, "ts": late_ts, "orig_p": 41000} for row in sessions(late_ts, 1)]
    alerts = feed(detector, [window(flow_rows=early), window(flow_rows=late)])
    assert alerts[0] == [] and bool(alerts[1]) is fires


# web_attack: known attack patterns in a request's URL-decoded target or user agent (no threshold, no horizon)


@pytest.mark.parametrize(
    "uri, kind",
    [
        ("/item.php?id=1%27%20OR%20%271%27=%271", "sql_injection"),
        ("/item.php?id=-1+UNION+ALL+SELECT+user,pass+FROM+users", "sql_injection"),
        ("/static/..%2f..%2f..%2fetc/passwd", "path_traversal"),
        ("/search?q=%3Cscript%3Ealert(1)%3C/script%3E", "xss"),
        ("/cgi-bin/ping?host=10.0.0.1;id", "command_injection"),
        ("/item.php?id=1%27%20AND%20SLEEP(5)--", "sql_injection"),
        ("/item.php?id=1+AND+BENCHMARK(5000000,MD5(1))", "sql_injection"),
        ("/item.php?id=1;SELECT+pg_sleep(10)--", "sql_injection"),
        ("/item.aspx?id=1;WAITFOR+DELAY+%270:0:5%27--", "sql_injection"),
        ("/item.php?id=(select*from(select(sleep(5)))a)", "sql_injection"),
    ],
)
def test_web_attack_fires_on_a_pattern(uri, kind):
    alerts = WebAttackDetector().detect(window([http_request(600.0, CLIENT, SERVER, uri)]))
    assert [summary(a) for a in alerts] == [(kind, CLIENT, [SERVER], 600.0, 600.0)]


def test_web_attack_fires_on_a_scanner_user_agent():
    request = http_request(600.0, CLIENT, SERVER, "/", http_user_agent="sqlmap/1.7.2#stable (https://sqlmap.org)")
    alerts = WebAttackDetector().detect(window([request]))
    assert [summary(a) for a in alerts] == [("web_scan", CLIENT, [SERVER], 600.0, 600.0)]


def test_web_attack_adds_up_hits_across_windows():
    first = http_request(600.0, CLIENT, SERVER, "/a?id=1 or 1=1")
    second = http_request(610.0, CLIENT, SERVER, "/b?id=2 or 2=2")
    alerts = feed(WebAttackDetector(), [window([first]), window([second])])
    assert [summary(a) for a in alerts[1]] == [("sql_injection", CLIENT, [SERVER], 600.0, 610.0)]
    assert alerts[1][0].evidence["requests"] == 2


def test_web_attack_near_miss_benign_requests():
    benign = [
        http_request(600.0, CLIENT, SERVER, "/search?q=union+station+select+seats"),  # words, no UNION SELECT
        http_request(601.0, CLIENT, SERVER, "/blog/o%27reilly-or-not"),  # a quote, no comparison
        http_request(602.0, CLIENT, SERVER, "/docs/../index.html"),  # one ../ to no system file
        http_request(603.0, CLIENT, SERVER, "/", http_user_agent="Mozilla/5.0 (X11; Linux x86_64)"),
        tcp(604.0, SERVER, CLIENT, 50000, sport=80, http_status=200, http_uri="/?id=1 or 1=1"),  # not a request
        http_request(605.0, CLIENT, SERVER, "/benchmark-results"),  # the words, no call
        http_request(606.0, CLIENT, SERVER, "/blog/sleep-better-tips?ref=sleep"),
        http_request(607.0, CLIENT, SERVER, "/api/benchmark(s)/list"),  # parentheses, no argument
        http_request(608.0, CLIENT, SERVER, "/docs/pg_sleep.html"),
        http_request(609.0, CLIENT, SERVER, "/faq/waitfor-delay"),
    ]
    assert WebAttackDetector().detect(window(benign)) == []


def test_web_attack_keeps_the_last_100_hits_of_an_attack():
    requests = [http_request(600.0 + i, CLIENT, SERVER, f"/?id={i} or 1=1") for i in range(150)]
    alerts = WebAttackDetector().detect(window(requests))
    assert [summary(a) for a in alerts] == [("sql_injection", CLIENT, [SERVER], 650.0, 749.0)]
    assert alerts[0].evidence["requests"] == 100


def test_a_password_guessing_tool_is_brute_force_not_a_scan():
    request = http_request(600.0, CLIENT, SERVER, "/login.php", http_user_agent="Mozilla/4.0 (Hydra)")
    alerts = WebAttackDetector().detect(window([request, request]))
    assert [summary(a) for a in alerts] == [("brute_force", CLIENT, [SERVER], 600.0, 600.0)]
    assert alerts[0].score == 60.0  # a hint: the login rule's count and explanation win when both raise it
