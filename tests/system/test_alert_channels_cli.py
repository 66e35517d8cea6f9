"""End to end: the analyzer reads the public nmap SYN scan, its port-scan alert reaches real receivers,
and the dashboard's health panel shows what each channel delivered."""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from alert_servers import HttpReceiver, SmtpServer, SyslogReceiver, free_port, parse_rfc5424, wait_for
from browser_session import _wait_text, browser, console, serve  # noqa: F401 (fixtures)
from conftest import run_cli

from traffic_analyzer.dashboard.formatting import channel_states
from traffic_analyzer.store.engine import store_url

SCANNER, TARGET = "10.20.5.10", "10.20.0.81"  # the made syn_scan capture (tests/made_captures.py)


@dataclass
class ChannelRun:
    """What one analyzer run sent, as its receivers got it, and what it stored about its channels."""

    data_dir: Path
    run_id: str
    emails: list[EmailMessage]
    posts: list[dict]
    syslog: list[dict]
    health: dict[str, dict]  # channel name -> its last health sample


@pytest.fixture(scope="module")
def channel_run(syn_scan, tmp_path_factory: pytest.TempPathFactory) -> ChannelRun:
    assert (syn_scan.label["attacker"], syn_scan.label["victim"]) == (SCANNER, TARGET)
    tmp = tmp_path_factory.mktemp("channels")
    with SmtpServer() as smtp, HttpReceiver() as hook, SyslogReceiver("udp") as collector:
        proc = run_cli(
            "--read",
            str(syn_scan.path),
            "--no-dashboard",
            "--no-progress",
            "--json",
            "--data-dir",
            str(tmp / "data"),
            "--log-file",
            str(tmp / "analysis.log"),
            "--email-to",
            "soc@example.org",
            "--smtp-host",
            "127.0.0.1",
            "--smtp-port",
            str(smtp.port),
            "--smtp-security",
            "none",
            "--webhook-url",
            hook.url,
            "--syslog-target",
            collector.target,
        )
        assert proc.returncode == 0, proc.stderr
        run_id = json.loads(proc.stdout)["run_id"]
        with sqlite3.connect(tmp / "data" / "analyzer.db") as db:
            query = "SELECT channels FROM health WHERE run_id = ? ORDER BY at DESC LIMIT 1"
            (channels,) = db.execute(query, (run_id,)).fetchone()
        health = {c["channel"]: c for c in json.loads(channels)}
        # the run waits for its channels before it exits: SMTP and HTTP answered each message; UDP may lag a moment
        wait_for(lambda: len(collector.messages) == health["syslog"]["delivered"], "the syslog datagrams")
        return ChannelRun(
            tmp / "data",
            run_id,
            list(smtp.messages),
            list(hook.posts),
            [parse_rfc5424(m) for m in collector.messages],
            health,
        )


def test_the_port_scan_alert_reaches_email_webhook_and_syslog(channel_run):
    run = channel_run
    subjects = [m["Subject"] for m in run.emails]
    assert subjects[0].endswith(f"new alert: high port_scan {SCANNER} -> {TARGET} (score 83)")
    assert "alert ended" in subjects[-1]
    body = run.emails[0].get_content()
    assert f"run {run.run_id}" in body and "distinct TCP ports" in body

    new = run.posts[0]
    assert new["event"] == "new" and new["run_id"] == run.run_id
    assert (new["alert"]["kind"], new["alert"]["attacker"], new["alert"]["victims"]) == ("port_scan", SCANNER, [TARGET])
    assert run.posts[-1]["event"] == "ended"
    assert run.posts[-1]["alert"]["evidence_pcap"].endswith(".pcap")  # cut by the end of the run
    assert len(run.posts) <= 3  # new, at most one update, ended: not one post per window

    assert run.syslog[0]["msgid"] == "ALERT" and run.syslog[0]["params"]["attacker"] == SCANNER
    assert run.syslog[-1]["msgid"] == "ENDED"

    states = {name: state for name, state, _ in channel_states(json.dumps(list(run.health.values())))}
    assert states["email"] == f"ok: {len(run.emails)} sent"
    assert states["webhook"] == f"ok: {len(run.posts)} sent"
    assert states["syslog"] == f"ok: {len(run.syslog)} sent"
    assert states["log"].startswith("ok")


@pytest.mark.browser
def test_the_health_panel_shows_each_channel(channel_run, browser, serve, console):  # noqa: F811
    browser.get(serve(store_url(channel_run.data_dir)).url)
    _wait_text(browser, "overview-health-channel-email", f"ok: {len(channel_run.emails)} sent")
    _wait_text(browser, "overview-health-channel-webhook", f"ok: {len(channel_run.posts)} sent")
    _wait_text(browser, "overview-health-channel-syslog", f"ok: {len(channel_run.syslog)} sent")


def test_alerts_a_channel_could_not_deliver_fail_the_run_with_one_message(pcaps: Path, tmp_path: Path):
    """Issue 15 item 11: with the webhook down at exit, the run logged "not delivered before exit" once
    per message on stderr and exited 0. Now it exits 1 with one error line that names the channel."""
    down = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    proc = run_cli(
        "--read", str(pcaps / "nmap-syn-scan.pcapng"), "--no-dashboard", "--no-progress",
        "--data-dir", str(tmp_path / "data"), "--log-file", str(tmp_path / "analysis.log"), "--webhook-url", down,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    said = [line for line in proc.stderr.splitlines() if "not delivered" in line]
    assert len(said) == 1 and said[0].startswith("error: alert messages not delivered before exit: webhook"), said
    assert re.search(r"\): \d+ unsent, last error: .*Connection refused", said[0]) and "Traceback" not in proc.stderr
    logged = (tmp_path / "analysis.log").read_text()
    assert logged.count("alert channel webhook: not delivered before exit: ") >= 2  # each one, in the log file
