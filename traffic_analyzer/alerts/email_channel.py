"""Alert e-mail over SMTP: STARTTLS (port 587), implicit TLS (465) or plain (25, for a local relay).

The password never lives in code or in the config file: it is read from the environment variable
named by ``smtp_password_env`` (NTA_SMTP_PASSWORD unless changed), which ``secrets_file`` can fill.
"""

from __future__ import annotations

import ipaddress
import os
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from ..errors import ConfigError
from .notice import Notice
from .worker import DELIVERY_TIMEOUT_S, DeliveryError

SMTP_PORTS: dict[str, int] = {"starttls": 587, "tls": 465, "none": 25}  # default port by smtp_security


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _one_line(text: str) -> str:
    return " ".join(text.split())


class EmailSink:
    """Sends each notice as one plain-text e-mail, a new SMTP session per message."""

    name = "email"

    def __init__(
        self,
        recipients: list[str],
        sender: str,
        host: str,
        port: int = 0,
        security: str = "starttls",
        user: str | None = None,
        password_env: str = "NTA_SMTP_PASSWORD",
        timeout_s: float = DELIVERY_TIMEOUT_S,
    ) -> None:
        if not recipients:
            raise ConfigError("email_to names no address")
        if user and security == "none" and not _is_loopback(host):
            raise ConfigError(
                f"smtp_security 'none' would send the password for {user} in clear to {host}: use starttls or tls"
            )
        self.password = None
        if user:
            self.password = os.environ.get(password_env)
            if not self.password:
                raise ConfigError(
                    f"smtp_user is set but the environment has no {password_env}: export it or put it in secrets_file"
                )
        self.recipients = recipients
        self.sender = sender
        self.host = host
        self.port = port or SMTP_PORTS[security]
        self.security = security
        self.user = user
        self.timeout_s = timeout_s
        self.target = f"smtp://{host}:{self.port} ({security}) to {', '.join(recipients)}"

    def message(self, notice: Notice) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = _one_line(notice.subject())
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = formatdate(notice.created, usegmt=True)
        msg["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        msg["X-NTA-Event"] = notice.event
        msg["X-NTA-Severity"] = notice.severity
        if notice.alert is not None:
            msg["X-NTA-Alert-Id"] = notice.alert["alert_id"]
        msg.set_content(notice.body())
        return msg

    def deliver(self, notice: Notice) -> None:
        msg = self.message(notice)
        context = ssl.create_default_context()
        try:
            if self.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s, context=context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
            with smtp:
                if self.security == "starttls":
                    smtp.starttls(context=context)
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"recipients refused: {', '.join(exc.recipients)}") from exc
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            if 500 <= exc.smtp_code < 600:  # permanent: the same message would be refused again
                raise DeliveryError(f"SMTP {exc.smtp_code} {exc.smtp_error!r}") from exc
            raise

    def close(self) -> None:
        """Nothing stays open between messages."""
