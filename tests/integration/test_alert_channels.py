"""Alert channels against real receivers on 127.0.0.1: e-mail (aiosmtpd), webhook (http.server), syslog (UDP, TCP).

Policies (severity, deduplication, rate limit, digest) and the background retries are checked
by what actually arrives at those servers, never by a stand-in.
"""

from __future__ import annotations

import json
import logging
import time

import pytest
from alert_servers import (
    HttpReceiver,
    SmtpServer,
    SyslogReceiver,
    free_port,
    parse_rfc5424,
    self_signed_tls,
    wait_for,
)

from traffic_analyzer.alerts.dispatcher import AlertDispatcher, Channel, dispatcher_from_config
from traffic_analyzer.alerts.email_channel import EmailSink
from traffic_analyzer.alerts.policy import ChannelPolicy
from traffic_analyzer.alerts.syslog_channel import BOM, SyslogSink
from traffic_analyzer.alerts.webhook_channel import WebhookSink
from traffic_analyzer.alerts.worker import DeliveryWorker
from traffic_analyzer.dashboard.formatting import channel_states
from traffic_analyzer.detection.alert_book import AlertBook
from traffic_analyzer.errors import ConfigError
from traffic_analyzer.records.alert import Alert
from traffic_analyzer.settings import Config

SENSOR, RUN = "sensor-7", "run0123456789"
T0 = 1_278_275_056.0  # packet time of the scan: 2010-07-04 20:24:16 UTC
EXPLANATION = "172.16.0.8 probed 502 distinct TCP ports of 64.13.134.52 in 3.7 s; the threshold is 25 ports in 60 s."
QUIET_S = 300.0


class Records(logging.Handler):
    """Keeps the log lines the channels write, to count outage messages."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def log() -> Records:
    records = Records()
    logger = logging.getLogger("test_alert_channels")
    logger.handlers = [records]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return records


def scan(attacker: str = "172.16.0.8", score: float = 78.0, probes: int = 973, end: float = T0 + 3.7) -> Alert:
    return Alert(
        kind="port_scan",
        attacker=attacker,
        victims=["64.13.134.52"],
        start=T0,
        end=end,
        score=score,
        explanation=EXPLANATION,
        evidence={"probes": probes, "evidence_pcap": "/var/lib/nta/evidence/345a0a673368416e.pcap"},
        detector="port_scan",
    )


def dispatcher(sink, log: Records, min_severity="low", per_hour=0, monotonic=time.monotonic) -> AlertDispatcher:
    logger = logging.getLogger("test_alert_channels")
    policy = ChannelPolicy(min_severity, per_hour, sensor=SENSOR, run_id=RUN, monotonic=monotonic)
    worker = DeliveryWorker(sink, logger, retry_first_s=0.05, retry_max_s=0.4)
    return AlertDispatcher([Channel(policy, worker)], RUN, QUIET_S, logger)


# -- each channel delivers to its real server ---------------------------------------------------------


def test_email_arrives_at_a_real_smtp_server_through_the_settings(tmp_path):
    with SmtpServer() as smtp:
        config = Config(
            email_to="soc@example.org, oncall@example.org",
            email_from="nta@sensor-7.example.org",
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_security="none",
            sensor_name=SENSOR,
        )
        alerts = dispatcher_from_config(config, logging.getLogger("test_alert_channels"), RUN)
        alerts.send([scan()], now=T0 + 5)
        alerts.close()
        assert len(smtp.messages) == 2  # the alert, then "ended" when the run closes
        new, ended = smtp.messages
    assert smtp.inbox.envelopes[0] == ("nta@sensor-7.example.org", ["soc@example.org", "oncall@example.org"])
    assert new["Subject"] == "[NTA sensor-7] new alert: high port_scan 172.16.0.8 -> 64.13.134.52 (score 78)"
    assert new["X-NTA-Severity"] == "high" and new["X-NTA-Event"] == "new"
    body = new.get_content()
    assert EXPLANATION in body
    assert "Start:       2010-07-04 20:24:16 UTC" in body and "End:         2010-07-04 20:24:19 UTC" in body
    assert f"Sensor:      {SENSOR}, run {RUN}" in body
    assert "Evidence:    /var/lib/nta/evidence/345a0a673368416e.pcap" in body
    assert ended["Subject"].startswith("[NTA sensor-7] alert ended: high port_scan 172.16.0.8")
    assert "the run ended" in ended.get_content()
    email_health = next(h for h in alerts.health() if h["channel"] == "email")
    assert email_health["delivered"] == 2 and email_health["state"] == "ok"


@pytest.mark.parametrize("implicit_tls", [False, True], ids=["starttls", "tls"])
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # aiosmtpd cannot tell SMTPS is TLS
def test_email_over_tls_logs_in_with_the_password_from_the_environment(tmp_path, monkeypatch, log, implicit_tls):
    server_tls, cert = self_signed_tls(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts our certificate like a system CA
    monkeypatch.setenv("NTA_SMTP_PASSWORD", "s3cret pass")
    with SmtpServer(tls=server_tls, implicit_tls=implicit_tls, login=("alerts", "s3cret pass")) as smtp:
        security = "tls" if implicit_tls else "starttls"
        sink = EmailSink(["soc@example.org"], "nta@example.org", "127.0.0.1", smtp.port, security, user="alerts")
        alerts = dispatcher(sink, log)
        alerts.send([scan()], now=T0 + 5)
        wait_for(lambda: smtp.messages, "the e-mail")
        alerts.close()
    assert smtp.logins == ["alerts", "alerts"]  # one session per message: the alert, then "ended" at close
    assert "new alert: high port_scan" in smtp.messages[0]["Subject"]


def test_webhook_posts_the_alert_as_json(log):
    with HttpReceiver() as hook:
        alerts = dispatcher(WebhookSink(hook.url), log)
        alerts.send([scan()], now=T0 + 5)
        wait_for(lambda: hook.posts, "the webhook POST")
        alerts.close()
    post = hook.posts[0]
    assert hook.headers[0]["Content-Type"] == "application/json"
    assert post["event"] == "new" and post["severity"] == "high"
    assert post["sensor"] == SENSOR and post["run_id"] == RUN
    alert = post["alert"]
    assert (alert["kind"], alert["attacker"], alert["victims"]) == ("port_scan", "172.16.0.8", ["64.13.134.52"])
    assert alert["score"] == 78 and alert["explanation"] == EXPLANATION
    assert alert["start"] == T0 and alert["alert_id"] == scan().alert_id(RUN)
    assert alert["evidence_pcap"] == "/var/lib/nta/evidence/345a0a673368416e.pcap"
    assert [p["event"] for p in hook.posts] == ["new", "ended"]


def test_webhook_target_hides_the_token_in_its_url():
    assert (
        WebhookSink("https://hooks.example.org/services/T000/B000/XXXX?key=1").target == "https://hooks.example.org/…"
    )


@pytest.mark.parametrize("protocol", ["udp", "tcp"])
def test_syslog_receives_rfc5424_messages(log, protocol):
    with SyslogReceiver(protocol) as collector:
        alerts = dispatcher(SyslogSink(collector.target, hostname=SENSOR), log)
        alerts.send([scan()], now=T0 + 5)
        alerts.send([scan(score=95, probes=1994, end=T0 + 5.1)], now=T0 + 10)  # grows: severity high -> critical
        alerts.close()
        wait_for(lambda: len(collector.messages) == 3, "three syslog messages")
    new, update, ended = (parse_rfc5424(m) for m in collector.messages)
    assert new["pri"] == 4 * 8 + 3  # facility auth, severity err (a high alert)
    assert update["pri"] == 4 * 8 + 2  # critical
    assert ended["pri"] == 4 * 8 + 6  # informational
    assert (new["hostname"], new["app"], new["msgid"]) == (SENSOR, "network-traffic-analyzer", "ALERT")
    assert (update["msgid"], ended["msgid"]) == ("UPDATE", "ENDED")
    assert new["sd_id"] == "nta@32473"
    params = new["params"]
    assert (params["kind"], params["attacker"], params["victims"]) == ("port_scan", "172.16.0.8", "64.13.134.52")
    assert (params["score"], params["severity"], params["run_id"]) == ("78", "high", RUN)
    assert params["start"] == "2010-07-04T20:24:16+00:00"
    assert params["evidence_pcap"] == "/var/lib/nta/evidence/345a0a673368416e.pcap"
    assert new["msg"].startswith(BOM) and EXPLANATION in new["msg"]
    assert "severity high -> critical" in update["msg"]
    assert new["timestamp"].endswith("Z")


# -- quiet under floods ---------------------------------------------------------------------------------


def test_a_flood_of_updates_to_one_attack_gives_one_message_and_a_few_updates(log):
    book = AlertBook()
    with HttpReceiver() as hook:
        alerts = dispatcher(WebhookSink(hook.url), log)
        for i in range(1000):  # the same scan seen again and again, slowly growing
            changed = book.add([scan(score=40 + 55 * i / 999, probes=i + 1, end=T0 + i)])
            alerts.send(changed, now=T0 + i)
        alerts.close()
        wait_for(lambda: hook.posts and hook.posts[-1]["event"] == "ended", "the ended message")
    events = [p["event"] for p in hook.posts]
    assert events[0] == "new" and events.count("new") == 1 and events.count("ended") == 1
    updates = events.count("update")
    assert 1 <= updates <= 15  # severity steps, +10 score steps and doublings of the evidence only
    (health,) = alerts.health()
    assert health["deduplicated"] == 1000 - 1 - updates
    assert health["delivered"] == len(events)


def test_an_attack_that_goes_quiet_is_reported_ended_once(log):
    with HttpReceiver() as hook:
        alerts = dispatcher(WebhookSink(hook.url), log)
        alerts.send([scan()], now=T0 + 5)
        alerts.send([], now=T0 + 3.7 + QUIET_S - 1)  # not quiet long enough yet
        alerts.send([], now=T0 + 3.7 + QUIET_S)
        alerts.send([], now=T0 + 3.7 + 2 * QUIET_S)
        wait_for(lambda: len(hook.posts) == 2, "the ended message")
        alerts.close()
    assert [p["event"] for p in hook.posts] == ["new", "ended"]
    assert hook.posts[1]["reason"] == f"no new evidence for {QUIET_S:.0f} s"


def test_below_the_minimum_severity_nothing_is_sent_until_the_alert_rises(log):
    with HttpReceiver() as hook:
        alerts = dispatcher(WebhookSink(hook.url), log, min_severity="high")
        alerts.send([scan(score=50)], now=T0 + 5)  # medium
        alerts.send([scan(score=72)], now=T0 + 10)  # high: news for this channel
        alerts.close()
    assert [(p["event"], p["severity"]) for p in hook.posts] == [("new", "high"), ("ended", "high")]
    assert alerts.health()[0]["below_min_severity"] == 1


def test_the_rate_limit_holds_messages_back_and_sends_them_as_a_digest(log):
    clock = [0.0]
    with HttpReceiver() as hook:
        alerts = dispatcher(WebhookSink(hook.url), log, per_hour=3, monotonic=lambda: clock[0])
        attackers = [f"10.0.0.{i}" for i in range(1, 11)]
        alerts.send([scan(attacker=a) for a in attackers], now=T0 + 5)
        wait_for(lambda: len(hook.posts) == 3, "three messages")
        assert alerts.health()[0]["held"] == 7
        clock[0] += 3600 / 3  # one token back
        alerts.send([], now=T0 + 10)
        wait_for(lambda: len(hook.posts) == 4, "the digest")
        alerts.close()
        wait_for(lambda: len(hook.posts) == 5, "the final digest")
    digest = hook.posts[3]
    assert digest["event"] == "digest" and digest["severity"] == "high"
    assert sorted(h["alert"]["attacker"] for h in digest["held"]) == sorted(attackers[3:])
    assert all(h["events"] == ["new"] for h in digest["held"])
    final = hook.posts[4]  # at the end of the run every alert ends; the bucket is empty, so one digest says so
    assert final["event"] == "digest" and len(final["held"]) == 10
    assert all(h["events"] == ["ended"] for h in final["held"])
    assert alerts.health()[0]["digests"] == 2


# -- a channel that is down -----------------------------------------------------------------------------


def test_smtp_down_is_retried_in_the_background_and_delivers_when_it_comes_up(log):
    port = free_port()  # nothing listens here yet: connections are refused
    sink = EmailSink(["soc@example.org"], "nta@example.org", "127.0.0.1", port, "none")
    alerts = dispatcher(sink, log)
    for i in range(5):  # the analysis loop goes on while the channel is down
        alerts.send([scan(attacker=f"10.0.0.{i}")], now=T0 + 5)
    health = alerts.health()[0]
    assert health["delivered"] == 0 and health["queued"] == 5
    wait_for(lambda: alerts.health()[0]["failed_attempts"] >= 3, "three failed attempts")
    health = alerts.health()[0]
    assert health["state"] == "failing" and "ConnectionRefusedError" in health["last_error"]
    name, state, details = channel_states(json.dumps(alerts.health()))[0]
    assert name == "email" and state.startswith("failing:") and "ConnectionRefusedError" in state
    assert "5 queued" in details
    with SmtpServer(port=port) as smtp:
        wait_for(lambda: len(smtp.messages) == 5, "the five queued e-mails")
        alerts.close()
        assert len(smtp.messages) == 10  # and the five "ended" messages at close
    assert [m["Subject"].split(": ")[1].split()[2] for m in smtp.messages[:5]] == [f"10.0.0.{i}" for i in range(5)]
    health = alerts.health()[0]
    assert health["state"] == "ok" and health["delivered"] == 10 and health["queued"] == 0
    failing = [line for line in log.lines if "is failing" in line]
    assert len(failing) == 1, "an outage is logged once, not per retry"
    assert sum("delivers again" in line for line in log.lines) == 1


def test_a_webhook_that_times_out_is_retried_until_it_answers(log):
    with HttpReceiver() as hook:
        hook.delay_s = 1.0
        alerts = dispatcher(WebhookSink(hook.url, timeout_s=0.2), log)
        alerts.send([scan()], now=T0 + 5)  # returns at once: the worker waits, not the analysis
        wait_for(lambda: alerts.health()[0]["failed_attempts"] >= 1, "a timed-out attempt")
        assert "timed out" in alerts.health()[0]["last_error"]
        hook.delay_s = 0.0
        wait_for(lambda: hook.posts, "the webhook POST after the timeouts")
        alerts.close()
    assert hook.posts[0]["event"] == "new"


def test_what_cannot_be_sent_by_the_end_is_written_to_the_log(log):
    sink = EmailSink(["soc@example.org"], "nta@example.org", "127.0.0.1", free_port(), "none")
    alerts = dispatcher(sink, log)
    alerts.send([scan()], now=T0 + 5)
    alerts.close(timeout_s=0.5)
    unsent = [line for line in log.lines if "not delivered before exit" in line]
    assert len(unsent) == 2 and "new alert: high port_scan 172.16.0.8" in unsent[0]


# -- settings -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"syslog_target": "127.0.0.1:514"}, "syslog_target"),
        ({"syslog_target": "udp://127.0.0.1:99999"}, "syslog_target"),
        ({"webhook_url": "ftp://example.org/x"}, "webhook_url"),
        ({"email_to": " , "}, "email_to"),
        ({"email_to": "a@example.org", "smtp_user": "alerts", "smtp_password_env": "NTA_TEST_UNSET"}, "NTA_TEST_UNSET"),
    ],
)
def test_bad_channel_settings_fail_at_start_naming_the_setting(settings, named, monkeypatch):
    monkeypatch.delenv("NTA_TEST_UNSET", raising=False)
    with pytest.raises(ConfigError, match=named):
        dispatcher_from_config(Config(**settings), logging.getLogger("test_alert_channels"), RUN)


def test_a_password_is_never_sent_in_clear_off_this_machine(monkeypatch):
    monkeypatch.setenv("NTA_SMTP_PASSWORD", "x")
    with pytest.raises(ConfigError, match="in clear"):
        EmailSink(["a@example.org"], "nta@example.org", "mail.example.org", 25, "none", user="alerts")
