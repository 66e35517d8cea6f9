"""The log file: a line per capture window and per alert (the seed's network_analysis.log)."""

from __future__ import annotations

import logging
import logging.handlers
from datetime import UTC, datetime
from pathlib import Path

from ..detection.alert import Alert
from ..errors import ConfigError

LOGGER_NAME = "traffic_analyzer"
LOG_MAX_BYTES = 10 * 2**20  # rotate at 10 MiB
LOG_BACKUPS = 5


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


class LogChannel:
    """Writes each new or updated alert to the log; new alerts also reach stderr as warnings."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def send(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            level = logging.WARNING if alert.updates == 1 else logging.INFO
            verb = "ALERT" if alert.updates == 1 else "ALERT UPDATE"
            self.logger.log(
                level,
                "%s %s %s attacker=%s victims=%s score=%.0f %s..%s UTC: %s",
                verb,
                alert.severity,
                alert.kind,
                alert.attacker,
                ",".join(alert.victims) or "-",
                alert.score,
                _clock(alert.start),
                _clock(alert.end),
                alert.explanation,
            )


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
