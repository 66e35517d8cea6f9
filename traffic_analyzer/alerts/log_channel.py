"""The log file (the seed's network_analysis.log, rotated): a line per capture window and per alert notice."""

from __future__ import annotations

import logging
import logging.handlers
from datetime import UTC, datetime
from pathlib import Path

from ..errors import ConfigError
from .notice import DIGEST, NEW, Notice

LOGGER_NAME = "traffic_analyzer"
LOG_MAX_BYTES = 10 * 2**20  # rotate at 10 MiB
LOG_BACKUPS = 5
LOG_VERBS = {"new": "ALERT", "update": "ALERT UPDATE", "ended": "ALERT ENDED"}  # notice event -> log word


def setup_logging(log_file: str | Path) -> logging.Logger:
    """File log (rotated) for everything; stderr only for warnings and alerts."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.INFO)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    try:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(log_file, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS)
    except OSError as exc:
        raise ConfigError(f"log_file {str(log_file)!r} cannot be written: {exc.strerror}") from exc
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(file_handler)
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger.addHandler(console)
    logger.propagate = False
    return logger


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


class LogSink:
    """Writes each notice to the log file; new alerts also reach stderr as warnings."""

    name = "log"
    target = "log file"

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def deliver(self, notice: Notice) -> None:
        if notice.event == DIGEST:
            self.logger.warning("ALERT DIGEST %s", " | ".join(notice.body().splitlines()))
            return
        alert = notice.alert
        assert alert is not None
        level = logging.WARNING if notice.event == NEW else logging.INFO
        extra = f" ({notice.reason})" if notice.reason else ""
        if alert.get("evidence_pcap"):
            extra += f" evidence_pcap={alert['evidence_pcap']}"
        self.logger.log(
            level,
            "%s %s %s attacker=%s victims=%s score=%.0f %s..%s UTC: %s%s",
            LOG_VERBS[notice.event],
            alert["severity"],
            alert["kind"],
            alert["attacker"],
            ",".join(alert["victims"]) or "-",
            alert["score"],
            _clock(alert["start"]),
            _clock(alert["end"]),
            alert["explanation"],
            extra,
        )

    def close(self) -> None:
        """The log stays open for the rest of the run's messages."""


def log_window(
    logger: logging.Logger, start: float, end: float, packets: int, n_bytes: int, flows: int, alerts: int
) -> None:
    logger.info(
        "window %s..%s UTC: %d packets, %d bytes, %d flows, %d alerts",
        _clock(start),
        _clock(end),
        packets,
        n_bytes,
        flows,
        alerts,
    )
