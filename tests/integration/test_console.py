"""The start lines and the status line a minute of a live run (issue 15 item 4); live: test_live_capture."""

from __future__ import annotations

import io

from traffic_analyzer.capture.source import CaptureStats
from traffic_analyzer.console import ConsoleStatus, status_line


def test_a_status_line_a_minute_and_nothing_when_quiet():
    now = [0.0]
    out = io.StringIO()
    console = ConsoleStatus(True, stream=out, clock=lambda: now[0])
    console.started("capturing on eth0", 0)
    console.dashboard("http://127.0.0.1:8050/")
    stats = CaptureStats(dropped=3, sampled_out=1200)
    for now[0] in (5.0, 59.0, 60.0, 65.0, 119.0, 125.0):
        console.window(stats, 12345, 2)
    status = "status: 12,345 packets, 2 alerts, 3 dropped, 1,200 sampled out"
    assert out.getvalue().splitlines() == [
        "capturing on eth0 (until Ctrl-C)",
        "dashboard at http://127.0.0.1:8050/",
        status,
        status,
    ]
    quiet = io.StringIO()
    silent = ConsoleStatus(False, stream=quiet, clock=lambda: now[0])
    silent.started("capturing on eth0", 60)
    now[0] = 1000.0
    silent.window(stats, 1, 1)
    assert quiet.getvalue() == ""


def test_the_status_says_when_drops_are_unknown_and_why_the_capture_is_down():
    stats = CaptureStats(dropped=None, down="capture on eth0 down: dumpcap exited")
    assert status_line(stats, 0, 0) == (
        "status: 0 packets, 0 alerts, drops unknown, 0 sampled out; capture on eth0 down: dumpcap exited"
    )
