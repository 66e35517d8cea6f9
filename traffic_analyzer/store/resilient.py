"""Keeping watch while the result store is out: a full disk, a locked database, a stopped server.

:class:`ResilientWriter` stands between the analysis loop and the :class:`~.writer.ResultWriter`.
A window the store cannot take stays in a bounded in-memory backlog and the analysis goes on; the
next windows retry, oldest first, and the backlog is written as soon as the store takes writes
again. Each outage is reported once (log and stderr) with its cause, and once more when it ends.
Windows beyond the backlog's bound are dropped, counted and reported. Windows already committed
are never touched: each is whole in one transaction.

Windows that come less than :attr:`ResilientWriter.commit_every_s` after the last commit (a file's,
read a few a second) wait for the next and go in one transaction together, up to
:data:`MAX_BATCH`; a live window (one every few seconds) is committed as it comes.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
import time
from collections import deque
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from ..errors import AnalyzerError
from ..records.window import WindowResult
from .engine import display_url, one_line
from .retention import Retention
from .writer import ResultWriter

MAX_BATCH = 16  # windows committed in one transaction at most
RETRY_INTERVAL_S = 2.0  # after a failed write, windows wait this long before the store is tried again
ALERT_BYTES = 2048  # rough memory of one held alert (its evidence dict), for the backlog bound
BYTES_PER_MB = 2**20
SQLITE_FULL_CODES = {sqlite3.SQLITE_FULL}
SQLITE_LOCK_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
PG_DISK_FULL = "53100"  # SQLSTATE disk_full
PG_LOCK_STATES = {"55P03", "40P01", "57014"}  # lock_not_available, deadlock_detected, query_canceled (lock_timeout)
PG_GONE_CLASSES = ("08", "57P")  # connection exceptions; the server shutting down or starting up


def outage_cause(exc: BaseException | None) -> str | None:
    """Why the store cannot take writes now, in words that end "result store URL ...".

    None when the failure is not an outage but a bug or bad data (a constraint, a type): retrying
    that window could never succeed, so it is raised as before.
    """
    if not isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        return None
    orig = exc.orig
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        code &= 0xFF  # the primary result code under an extended one
    state = getattr(orig, "sqlstate", None) or ""
    if code in SQLITE_FULL_CODES or state == PG_DISK_FULL:
        return "is full (No space left on device)"
    if code in SQLITE_LOCK_CODES or state in PG_LOCK_STATES:
        return "is locked by another process"
    if exc.connection_invalidated or state.startswith(PG_GONE_CLASSES) or (code is None and not state):
        return f"is unreachable ({one_line(exc)})"
    return f"cannot be written ({one_line(exc)})"


@dataclass
class _Held:
    """A window waiting for the store, with the memory it holds."""

    run_id: str
    result: WindowResult
    size: int = 0


def window_bytes(result: WindowResult) -> int:
    """Roughly how much memory a held window takes: its tables, deep, and its alerts."""
    frames = (result.traffic, result.protocols, result.hosts, result.flows, result.dns, result.app)
    tables = sum(int(f.memory_usage(index=True, deep=True).sum()) for f in frames if isinstance(f, pd.DataFrame))
    return tables + ALERT_BYTES * len(result.alerts)


class ResilientWriter:
    """The run's writer: windows the store cannot take wait in memory, up to ``backlog_mb``.

    Parameters
    ----------
    writer : ResultWriter
        The store's single writer; its run bookkeeping (``start_run``) still fails the start.
    backlog_mb : float
        Memory for windows waiting while the store is out; the oldest are dropped beyond it.
    logger : logging.Logger
        Where an outage, a dropped backlog and the recovery are reported (warnings reach stderr).
    """

    commit_every_s = 1.0  # a window within this long of the last commit waits to be committed with the next

    def __init__(self, writer: ResultWriter, backlog_mb: float, logger: logging.Logger) -> None:
        self.writer = writer
        self.backlog_bytes = int(backlog_mb * BYTES_PER_MB)
        self.logger = logger
        self.url = display_url(writer.url)
        self.sensor = writer.sensor
        self._held: deque[_Held] = deque()
        self._held_bytes = 0
        self._pending_model: tuple[str, dict] | None = None
        self.cause: str | None = None  # the current outage's cause; None while the store takes writes
        self._since = 0.0
        self._retry_at = 0.0
        self._committed_at = -float("inf")  # time.monotonic() of the last commit
        self._dropping_reported = False
        self.written_late = 0  # windows written after an outage, over the whole run
        self.lost = 0  # windows dropped from a full backlog, over the whole run
        self.outages = 0

    # -- what the run loop calls ----------------------------------------------------------------
    def start_run(self, run_id: str, source: str, model: dict, live: bool | None = None) -> None:
        self.writer.start_run(run_id, source, model, live)

    def write_window(self, run_id: str, result: WindowResult) -> None:
        """Store the window, after any held ones; when the store is out, hold it and go on.

        A window that follows the last commit closely waits for the next (see :attr:`commit_every_s`).
        """
        self._held.append(_Held(run_id, result))
        now = time.monotonic()
        if self.cause is not None and now < self._retry_at:
            self._hold_unsized()
            return
        if self.cause is None and len(self._held) < MAX_BATCH and now - self._committed_at < self.commit_every_s:
            return
        self._flush()

    def set_model(self, run_id: str, model: dict) -> None:
        """Record the trained model; while the store is out, it is recorded on recovery."""
        self._pending_model = (run_id, model)
        if self.cause is None:
            self._flush()

    def finish_run(self, run_id: str, status: str, model: dict | None = None) -> None:
        """The run's last write: everything held, then its end. Raises AnalyzerError if the store is still out."""
        self._flush()
        if self.cause is None:
            try:
                self.writer.finish_run(run_id, status, model)
                return
            except AnalyzerError as exc:
                cause = outage_cause(exc.__cause__)
                if cause is None:
                    raise
                self.cause = cause
        raise AnalyzerError(
            f"result store {self.url} {self.cause}: {len(self._held) + self.lost} windows of run {run_id} "
            "were not stored; the windows committed before are intact"
        )

    def health(self) -> dict:
        """The store's state for the summary: ok or out (and why), windows waiting, written late, lost."""
        return {
            "state": "ok" if self.cause is None else "failing",
            "cause": self.cause or "",
            "waiting": len(self._held),
            "written_late": self.written_late,
            "lost": self.lost,
            "outages": self.outages,
        }

    def status(self) -> str:
        """A few words for the health panel's status line; empty while nothing ever went wrong."""
        if self.cause is not None:
            return f"result store {self.cause}: {len(self._held)} windows waiting, {self.lost} lost"
        if self.outages:
            return f"result store ok ({self.written_late} windows written late, {self.lost} lost)"
        return ""

    def set_retention(self, retention: Retention) -> None:
        """New retention settings (a config reload) apply from the next pruning step."""
        self.writer.retention = retention

    def close(self) -> None:
        self.writer.close()

    # -- inside ---------------------------------------------------------------------------------
    def _flush(self) -> None:
        """Write held windows oldest first, up to MAX_BATCH a transaction, until the store refuses some;
        then report the outage once."""
        while self._held:
            batch = list(itertools.islice(self._held, MAX_BATCH))
            try:
                self.writer.write_windows([(held.run_id, held.result) for held in batch])
            except AnalyzerError as exc:
                self._failed(exc)
                return
            self._committed_at = time.monotonic()
            for held in batch:
                self._held.popleft()
                self._held_bytes -= held.size
            if self.cause is not None:
                self.written_late += len(batch)
        if self._pending_model is not None:
            try:
                self.writer.set_model(*self._pending_model)
            except AnalyzerError as exc:
                self._failed(exc)
                return
            self._pending_model = None
        if self.cause is not None:
            self._recovered()

    def _failed(self, exc: AnalyzerError) -> None:
        cause = outage_cause(exc.__cause__)
        if cause is None:
            raise exc
        self._retry_at = time.monotonic() + RETRY_INTERVAL_S
        self._hold_unsized()
        if cause == self.cause:
            return
        if self.cause is None:
            self.outages += 1
            self._since = time.monotonic()
            self._dropping_reported = False
        self.cause = cause
        self.logger.warning(
            "result store %s %s: the analysis goes on; windows are kept in memory (up to %.0f MB) and written "
            "once it recovers",
            self.url,
            cause,
            self.backlog_bytes / BYTES_PER_MB,
        )

    def _hold_unsized(self) -> None:
        """Count the memory of held windows not yet counted (the newest); drop the oldest while the backlog is
        over its bound."""
        for held in reversed(self._held):
            if held.size:
                break
            held.size = window_bytes(held.result)
            self._held_bytes += held.size
        while self._held and self._held_bytes > self.backlog_bytes:
            dropped = self._held.popleft()
            self._held_bytes -= dropped.size
            self.lost += 1
            if not self._dropping_reported:
                self._dropping_reported = True
                self.logger.warning(
                    "result store %s: the backlog of windows reached %.0f MB; the oldest windows are dropped "
                    "(counted as lost) until it recovers",
                    self.url,
                    self.backlog_bytes / BYTES_PER_MB,
                )

    def _recovered(self) -> None:
        self.logger.warning(
            "result store %s recovered after %.0f s: %d windows written late in all, %d lost",
            self.url,
            time.monotonic() - self._since,
            self.written_late,
            self.lost,
        )
        self.cause = None
