"""Zeek's conn, dns, http and ssl logs written while the analyzer runs (``zeek_log_dir``), rotated as Zeek does.

The rows are the export's (:func:`.zeek_app.zeek_writer`, :func:`.zeek_app.app_log`): the same fields, text
and uids, so ``export --format zeek`` of the run gives the same rows. As in Zeek, a connection is
written once, when it ends; a DNS, HTTP or TLS row as soon as it is complete (a query with its
answer, a request with its response, a ClientHello), the rest when their connection ends.

Rotation follows Zeek's: every ``rotate_s`` of network time (aligned to local midnight, as Zeek's
``log_rotate_base_time``), each open log gets its ``#close`` line, is renamed
``<log>.<open time>.log`` (Zeek's ``Log::default_rotation_date_format``) and a new one is opened
with fresh header lines. Network time is the packets' clock: the wall clock for a live capture, the
capture's own time for a ``--read``, as ``zeek -r`` does, so a day-long capture gives a file an
hour whose name says which hour it holds (reading it takes seconds of wall clock). A log that an
external tool (logrotate) moved away is closed and opened anew, as the eve_file channel does; one
left in the folder by an earlier run is renamed aside before a new one is opened. Write failures
(disk full, folder removed) cost one warning; the analysis goes on and the logs resume when they
can be written again.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import TextIO

import pandas as pd

from ..errors import ConfigError
from ..records.window import WindowResult
from .zeek import ZeekJsonWriter, ZeekLogWriter
from .zeek_app import BUILDERS, zeek_writer

LOGS = ("conn", "dns", "http", "ssl")
ROTATED_TIME_FORMAT = "%Y-%m-%d-%H-%M-%S"  # Zeek's Log::default_rotation_date_format (local time)
HEADER_LINES = 8  # a Zeek TSV log's header lines, #separator to #types: #open is among them
# The key of one row of each app log; a row is complete when both of its messages were seen.
ROW_KEYS = {"dns": ["uid", "dns_qname", "dns_qtype"], "http": ["uid", "trans_depth"], "ssl": ["uid"]}


def next_rotation(now: float, rotate_s: float) -> float:
    """The first rotation time after ``now``: multiples of ``rotate_s`` from local midnight, as Zeek's."""
    day = time.localtime(now)
    midnight = time.mktime((day.tm_year, day.tm_mon, day.tm_mday, 0, 0, 0, 0, 0, -1))
    return midnight + (math.floor((now - midnight) / rotate_s) + 1) * rotate_s


def rotated_path(path: Path, opened_at: float) -> Path:
    """Where a rotated log goes: conn.log -> conn.2026-12-06-23-00-00.log (a number more if that is taken)."""
    stamp = time.strftime(ROTATED_TIME_FORMAT, time.localtime(opened_at))
    target = path.with_name(f"{path.stem}.{stamp}.log")
    number = 0
    while target.exists():
        number += 1
        target = path.with_name(f"{path.stem}.{stamp}.{number}.log")
    return target


def opened_at(path: Path) -> float:
    """When a log found on disk was opened: its ``#open`` line (TSV), else its last change (JSON has no header)."""
    with open(path, encoding="utf-8", errors="replace") as log:
        for _, line in zip(range(HEADER_LINES), log, strict=False):
            if line.startswith("#open\t"):
                try:
                    return time.mktime(time.strptime(line.split("\t", 1)[1].strip(), ROTATED_TIME_FORMAT))
                except ValueError:
                    break
    return path.stat().st_mtime


class LiveLogFile:
    """One live Zeek log: opened with its header lines, closed with ``#close``, renamed aside when rotated."""

    def __init__(self, directory: Path, log: str, as_json: bool) -> None:
        self.path = directory / f"{log}.log"
        self.log = log
        self.as_json = as_json
        self.opened_at: float | None = None  # network time it was opened: its rotated name; None while closed
        self._out: TextIO | None = None
        self._writer: ZeekLogWriter | ZeekJsonWriter | None = None
        self._inode: tuple[int, int] | None = None

    def write(self, rows: pd.DataFrame, now: float) -> None:
        if self._out is not None and self._moved_away():
            self.close(now)  # the moved file gets its #close; the rows go to a new one
        if self._out is None:
            self._open(now)
        assert self._out is not None and self._writer is not None
        self._writer.write(rows)
        self._out.flush()

    def rotate(self, now: float) -> None:
        """Close, rename to ``<log>.<open time>.log`` and open a new file, which starts at ``now``."""
        if self._out is None:
            return
        moved = self._moved_away()
        started = self.opened_at
        self.close(now)
        if not moved and started is not None:
            os.replace(self.path, rotated_path(self.path, started))
        self._open(now)

    def close(self, now: float) -> None:
        out, writer, self._out, self._writer, self.opened_at = self._out, self._writer, None, None, None
        if out is None or writer is None:
            return
        try:
            writer.end(now)
        finally:
            out.close()

    def drop(self) -> None:
        """Let go of the file after a write error, without its #close (that would fail too)."""
        out, self._out, self._writer, self.opened_at = self._out, None, None, None
        if out is not None:
            try:
                out.close()
            except OSError:
                pass  # the failure is already reported; the unwritten rest is lost

    def set_aside(self) -> None:
        """A log of an earlier run or a failed write goes under its rotated name: a new one never appends to it."""
        if self.path.exists() and self.path.stat().st_size:
            os.replace(self.path, rotated_path(self.path, opened_at(self.path)))

    def _open(self, now: float) -> None:
        self.set_aside()
        out = open(self.path, "a", encoding="utf-8")  # an empty file made by logrotate's `create` is kept
        stat = os.fstat(out.fileno())
        self._out, self._inode, self.opened_at = out, (stat.st_dev, stat.st_ino), now
        self._writer = zeek_writer(out, self.log, self.as_json)
        self._writer.begin(now)

    def _moved_away(self) -> bool:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return True
        return (stat.st_dev, stat.st_ino) != self._inode


class AppRows:
    """Pairs a run's DNS, HTTP and TLS messages into Zeek rows as windows come, as the export pairs them.

    A row is given once: when it is complete, or when its connection ends. The messages of open
    connections are kept until then (a few per connection), so a pair split over two windows is one row.
    """

    def __init__(self) -> None:
        self._events = pd.DataFrame()  # messages of open connections, with a run_id column for the builders
        self._given: set[tuple] = set()  # (log, *key) of the rows given for open connections

    def rows(self, app: pd.DataFrame, ended: set[str]) -> dict[str, pd.DataFrame]:
        """The rows of dns, http and ssl that this window's messages (``app``) and ended connections complete."""
        if len(app):
            fresh = app.assign(run_id="")
            self._events = pd.concat([self._events, fresh], ignore_index=True) if len(self._events) else fresh
        if self._events.empty:
            return {}
        changed = set(app["uid"]) | ended
        events = self._events[self._events["uid"].isin(changed)]
        out = {}
        for log, builder in BUILDERS.items():
            rows = builder(events).reset_index(drop=True)
            if rows.empty:
                continue
            key_columns = rows[ROW_KEYS[log]].astype(object)
            key_columns = key_columns.where(key_columns.notna(), None)  # NaN is no set key: it equals nothing
            keys = [(log, *key) for key in key_columns.itertuples(index=False, name=None)]
            fresh_rows = [key not in self._given for key in keys]
            due = pd.Series(fresh_rows) & (_complete(rows, log) | rows["uid"].isin(ended))
            self._given.update(key for key, take in zip(keys, due, strict=True) if take)
            out[log] = rows[due.to_numpy()]
        if ended:
            self._events = self._events[~self._events["uid"].isin(ended)].reset_index(drop=True)
            self._given = {key for key in self._given if key[1] not in ended}
        return out


def _complete(rows: pd.DataFrame, log: str) -> pd.Series:
    """Rows no later message can change: a DNS query with its answer, an HTTP request with its response."""
    if log == "dns":
        return rows["query_ts"].notna() & rows["answer_ts"].notna()
    if log == "http":
        return rows["http_method"].notna() & rows["http_status"].notna()
    return pd.Series(True, index=rows.index)  # ssl: the first ClientHello is the row


class ZeekLiveLogs:
    """Writes each window's ended connections and completed DNS/HTTP/TLS rows to Zeek logs in ``directory``."""

    def __init__(self, directory: str, log_format: str, rotate_s: float, logger: logging.Logger) -> None:
        self.directory = Path(directory)
        self.rotate_s = rotate_s  # 0: never rotate
        self.logger = logger
        self.files = {log: LiveLogFile(self.directory, log, log_format == "json") for log in LOGS}
        self.app = AppRows()
        self.lost = 0  # rows not written while the logs could not be
        self._failing = False
        self._next_rotation: float | None = None

    def start(self) -> None:
        """Make the folder and set aside the logs an earlier run left; an error names the setting."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            for file in self.files.values():
                file.set_aside()
        except OSError as exc:
            raise ConfigError(f"zeek_log_dir {str(self.directory)!r} cannot be written: {exc.strerror}") from exc

    def write_window(self, result: WindowResult, now: float) -> None:
        """Write a window's rows; ``now`` is network time (the wall clock live, the packets' for a file)."""
        ended = result.ended_flows()
        rows = {"conn": ended, **self.app.rows(result.app, set(ended["uid"]))}
        try:
            self._rotate_if_due(now)
            for log, frame in rows.items():
                if len(frame):
                    self.files[log].write(frame, now)
        except OSError as exc:
            self._failed(exc, sum(len(frame) for frame in rows.values()))
            return
        if self._failing:
            self._failing = False
            self.logger.warning("zeek logs in %s are written again (%d rows were lost)", self.directory, self.lost)

    def close(self, now: float) -> None:
        """Each open log gets its ``#close`` line and keeps its name (the next run sets it aside)."""
        for file in self.files.values():
            try:
                file.close(now)
            except OSError as exc:
                self._failed(exc, 0)

    def _rotate_if_due(self, now: float) -> None:
        if self.rotate_s <= 0:
            return
        if self._next_rotation is None:
            self._next_rotation = next_rotation(now, self.rotate_s)
        if now < self._next_rotation:
            return
        started = self._next_rotation + math.floor((now - self._next_rotation) / self.rotate_s) * self.rotate_s
        self._next_rotation = started + self.rotate_s
        for file in self.files.values():
            file.rotate(started)

    def _failed(self, exc: OSError, rows: int) -> None:
        self.lost += rows
        for file in self.files.values():
            file.drop()
        if not self._failing:
            self._failing = True
            self.logger.warning(
                "zeek logs in %s cannot be written (%s); the analysis goes on, they resume when they can be written",
                self.directory,
                exc.strerror or exc,
            )
