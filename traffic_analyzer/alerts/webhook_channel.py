"""Alert webhook: each notice POSTed as one JSON document to a URL, ours or a chat service's (chat_formats)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from ..errors import ConfigError
from .chat_formats import PAYLOADS
from .notice import APP_NAME, Notice
from .worker import DELIVERY_TIMEOUT_S, DeliveryError

RETRYABLE_HTTP = (408, 425, 429)  # client-side codes that mean "try again later"


class WebhookSink:
    """POSTs JSON with a timeout; a 4xx answer is a refusal, anything else that fails is retried."""

    name = "webhook"

    def __init__(self, url: str, timeout_s: float = DELIVERY_TIMEOUT_S, payload_format: str = "generic") -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"webhook_url must be an http:// or https:// URL, not {url!r}")
        if payload_format not in PAYLOADS:
            raise ConfigError(f"webhook_format must be one of {', '.join(PAYLOADS)}, not {payload_format!r}")
        self.url = url
        self.payload = PAYLOADS[payload_format]
        self.timeout_s = timeout_s
        # webhook URLs often carry a token in the path or query: show only where they go
        self.target = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}/…"

    def deliver(self, notice: Notice) -> None:
        body = json.dumps(self.payload(notice), default=str).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": APP_NAME},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            if 400 <= exc.code < 500 and exc.code not in RETRYABLE_HTTP:
                raise DeliveryError(f"HTTP {exc.code} {exc.reason}") from exc
            raise

    def close(self) -> None:
        """Nothing stays open between messages."""
