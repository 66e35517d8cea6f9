"""Every alert channel behind one call per analysis window: the log file, eve.json, e-mail, a webhook, syslog.

The analysis loop calls :meth:`AlertDispatcher.send` with the window's new and updated alerts;
each channel's :class:`ChannelPolicy` picks the messages and its :class:`DeliveryWorker` sends
them from a thread of its own, so a slow or dead channel never holds up capture or analysis.
The log file and eve.json are written at once, in the analysis thread, as the log always was.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass

from ..records.alert import Alert
from ..settings import Config
from .email_channel import EmailSink
from .eve_channel import EveFileSink
from .log_channel import LogSink
from .notice import Notice, alert_snapshot
from .policy import ChannelPolicy
from .syslog_channel import SyslogSink
from .webhook_channel import WebhookSink
from .worker import DeliveryWorker, Sink, error_text

CLOSE_TIMEOUT_S = 10.0  # at the end of the run, how long the channels may take to send what is queued
CHANNEL_SETTINGS: dict[str, tuple[str, ...]] = {  # channel name -> the settings it is built from
    "log": ("log_min_severity",),
    "eve": ("eve_file", "eve_min_severity"),
    "email": (
        "email_to", "email_from", "smtp_host", "smtp_port", "smtp_security", "smtp_user", "smtp_password_env",
        "email_min_severity", "email_per_hour",
    ),
    "webhook": ("webhook_url", "webhook_format", "webhook_min_severity", "webhook_per_hour"),
    "syslog": ("syslog_target", "syslog_min_severity", "syslog_per_hour"),
}  # fmt: skip


class InlineDelivery:
    """Delivers in the caller's thread: for local files (the log, eve.json), which have no outage to wait out."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.delivered = 0
        self.failed_attempts = 0
        self.last_error = ""
        self.failing = False

    def submit(self, notice: Notice) -> None:
        try:
            self.sink.deliver(notice)
        except Exception as exc:  # a full disk must not stop the analysis
            self.failed_attempts += 1
            self.last_error = error_text(exc)
            self.failing = True
            return
        self.delivered += 1
        self.failing = False

    def health(self) -> dict:
        state = "failing" if self.failing else ("ok" if self.delivered else "idle")
        return {
            "state": state,
            "delivered": self.delivered,
            "failed_attempts": self.failed_attempts,
            "queued": 0,
            "last_error": self.last_error,
        }

    def stop(self) -> None:
        """Nothing is ever queued."""

    def join(self, deadline: float) -> list[Notice]:
        self.sink.close()
        return []


@dataclass
class Channel:
    """One destination: its policy (what to send) and its delivery (how, and in which thread)."""

    policy: ChannelPolicy
    delivery: DeliveryWorker | InlineDelivery

    @property
    def name(self) -> str:
        return self.delivery.sink.name


class AlertDispatcher:
    """Fans each window's alerts out to the channels and reports when an attack has gone quiet."""

    def __init__(self, channels: list[Channel], run_id: str, quiet_s: float, logger: logging.Logger) -> None:
        self.channels = channels
        self.run_id = run_id
        self.quiet_s = quiet_s
        self.logger = logger
        self._open: dict[str, dict] = {}  # alert_id -> latest snapshot, until the alert ends
        self._closed = False

    def send(self, alerts: list[Alert], now: float) -> None:
        """Queue this window's messages; ``now`` is the window's end in packet time. Never blocks."""
        changed = [alert_snapshot(alert, self.run_id) for alert in alerts]
        for snap in changed:
            self._open[snap["alert_id"]] = snap
        ended = [snap for snap in self._open.values() if now - snap["end"] >= self.quiet_s]
        for snap in ended:
            del self._open[snap["alert_id"]]
        reason = f"no new evidence for {self.quiet_s:.0f} s"
        for channel in self.channels:
            for notice in channel.policy.notices(changed, ended, ended_reason=reason):
                channel.delivery.submit(notice)

    def health(self) -> list[dict]:
        """Per channel: where it sends, what it sent, held back or folded into earlier messages, and failures."""
        return [
            {"channel": c.name, "target": c.delivery.sink.target, **c.policy.counts, **c.delivery.health()}
            for c in self.channels
        ]

    def reconfigure(self, config: Config, changed: set[str]) -> list[str]:
        """Apply changed settings while running (SIGHUP); returns the names of the channels rebuilt.

        Only channels whose settings changed are rebuilt (the others keep their deduplication and
        rate-limit state); open alerts carry over. A bad setting raises ConfigError before anything
        changes. Retired channels send what they queued, in the background.
        """
        rebuilt = [name for name, names in CHANNEL_SETTINGS.items() if changed & set(names)]
        fresh = channels_from_config(config, self.logger, self.run_id, set(rebuilt))
        retired = [c for c in self.channels if c.name in rebuilt]
        kept = [c for c in self.channels if c.name not in rebuilt]
        order = list(CHANNEL_SETTINGS)
        self.channels = sorted(kept + fresh, key=lambda c: order.index(c.name) if c.name in order else len(order))
        self.quiet_s = config.alert_quiet_s
        if retired:
            threading.Thread(target=self._retire, args=(retired,), name="alert-channels-retired", daemon=True).start()
        return rebuilt

    def _retire(self, channels: list[Channel]) -> None:
        for channel in channels:
            digest = channel.policy.flush()
            if digest:
                channel.delivery.submit(digest)
            channel.delivery.stop()
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        for channel in channels:
            for notice in channel.delivery.join(deadline):
                self.logger.warning("alert channel %s: not delivered before reload: %s", channel.name, notice.subject())

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> str | None:
        """End of the run: open alerts end, held ones go out as a digest, queues drain within ``timeout_s``.

        Returns one line naming the channels that could not deliver everything (None when all went
        out): the run then fails, as it does when the result store is out, rather than exit 0 with
        alerts lost. Each undelivered message is named in the log file.
        """
        if self._closed:
            return None
        self._closed = True
        ended = list(self._open.values())
        self._open.clear()
        for channel in self.channels:
            notices = channel.policy.notices([], ended, ended_reason="the run ended; no more evidence is collected")
            digest = channel.policy.flush()
            for notice in notices + ([digest] if digest else []):
                channel.delivery.submit(notice)
            channel.delivery.stop()
        deadline = time.monotonic() + timeout_s
        lost = []
        for channel in self.channels:
            unsent = channel.delivery.join(deadline)
            for notice in unsent:
                self.logger.info("alert channel %s: not delivered before exit: %s", channel.name, notice.subject())
            if unsent:
                error = channel.delivery.health()["last_error"]
                because = f", last error: {error}" if error else ""
                lost.append(f"{channel.name} ({channel.delivery.sink.target}): {len(unsent)} unsent{because}")
        if not lost:
            return None
        return f"alert messages not delivered before exit: {'; '.join(lost)}; the log file names each one"


def dispatcher_from_config(config: Config, logger: logging.Logger, run_id: str) -> AlertDispatcher:
    """The channels the settings ask for; a bad channel setting fails here, before capture starts."""
    return AlertDispatcher(channels_from_config(config, logger, run_id), run_id, config.alert_quiet_s, logger)


def channels_from_config(
    config: Config, logger: logging.Logger, run_id: str, only: set[str] | None = None
) -> list[Channel]:
    """The channels the settings ask for (of those named in ``only``, when given); raises ConfigError for a bad one."""
    c = config
    sensor = c.sensor_name or socket.gethostname()
    wanted = set(CHANNEL_SETTINGS) if only is None else only

    def policy(min_severity: str, per_hour: int) -> ChannelPolicy:
        return ChannelPolicy(min_severity, int(per_hour), sensor=sensor, run_id=run_id)

    channels = [Channel(policy(c.log_min_severity, 0), InlineDelivery(LogSink(logger)))] if "log" in wanted else []
    if c.eve_file and "eve" in wanted:
        channels.append(Channel(policy(c.eve_min_severity, 0), InlineDelivery(EveFileSink(c.eve_file, sensor))))
        logger.info("alert channel eve: %s (min severity %s)", c.eve_file, c.eve_min_severity)
    sinks: list[tuple[Sink, str, int]] = []
    if c.email_to and "email" in wanted:
        recipients = [addr.strip() for addr in c.email_to.split(",") if addr.strip()]
        sender = c.email_from or f"network-traffic-analyzer@{socket.gethostname()}"
        email = EmailSink(
            recipients, sender, c.smtp_host, c.smtp_port, c.smtp_security, c.smtp_user, c.smtp_password_env
        )
        sinks.append((email, c.email_min_severity, c.email_per_hour))
    if c.webhook_url and "webhook" in wanted:
        webhook = WebhookSink(c.webhook_url, payload_format=c.webhook_format)
        sinks.append((webhook, c.webhook_min_severity, c.webhook_per_hour))
    if c.syslog_target and "syslog" in wanted:
        sinks.append((SyslogSink(c.syslog_target, sensor), c.syslog_min_severity, c.syslog_per_hour))
    for sink, min_severity, per_hour in sinks:
        channels.append(Channel(policy(min_severity, per_hour), DeliveryWorker(sink, logger)))
        logger.info("alert channel %s: %s (min severity %s, %d/h)", sink.name, sink.target, min_severity, per_hour)
    return channels
