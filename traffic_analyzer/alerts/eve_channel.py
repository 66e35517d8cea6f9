"""Alerts to a Suricata-style ``eve.json``: one EVE alert object a line, for Filebeat, Fluent Bit or Vector to tail.

Log rotation (logrotate, a shipper's own) moves or removes the file under us; the standard
library's WatchedFileHandler notices that (device and inode changed) before each line and opens
the file anew, so no line goes to a file nobody reads.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
from pathlib import Path

from ..errors import ConfigError
from .eve import eve_alert
from .notice import DIGEST, NEW, Notice


class _LineFile(logging.handlers.WatchedFileHandler):
    """A reopen-on-rotation file whose write errors reach the caller (the channel's health), not stderr."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        raise  # noqa: PLE0704 (called inside emit's except block: re-raises the write error)


class EveFileSink:
    """Appends each alert notice as an EVE ``alert`` event; a digest has no EVE form and is skipped."""

    name = "eve"

    def __init__(self, path: str, sensor: str) -> None:
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._file = _LineFile(path, encoding="utf-8", delay=False)
        except OSError as exc:
            raise ConfigError(f"eve_file {path!r} cannot be written: {exc.strerror}") from exc
        self._file.setFormatter(logging.Formatter("%(message)s"))
        self.sensor = sensor
        self.target = path

    def deliver(self, notice: Notice) -> None:
        if notice.event == DIGEST or notice.alert is None:
            return
        alert = {**notice.alert, "run_id": notice.run_id}
        ts = alert["start"] if notice.event == NEW else alert["end"]
        line = json.dumps(eve_alert(alert, self.sensor, ts=ts, event=notice.event), default=str)
        self._file.emit(logging.makeLogRecord({"msg": line, "levelno": logging.INFO}))

    def close(self) -> None:
        self._file.close()
