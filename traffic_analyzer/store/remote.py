"""The result store's writer in a process of its own, beside the reading and the detection worker.

Writing a window's rows costs a quarter of the reading process's time on a lab capture (SQLite inserts
and upserts, a transaction per window). :class:`RemoteWriter` runs the :class:`~.resilient.ResilientWriter`
in a forked process with the same methods, so that the reader goes on with the next window while the last
one is written. Calls go over in order; a window is pickled when it is handed over (its alerts are the
state they had then), and at most ``MAX_IN_FLIGHT`` windows wait for the store, so a slow store slows the
reading down instead of filling memory. ``start_run`` and ``finish_run`` wait for the store's answer;
a failed window write is raised at the next call, as the in-process writer would have raised it.

Forked only: the process needs the analyzer's modules and logging as they are (the store's outage reports
go to the same log), and only a process with no other thread can fork safely. :func:`can_fork` says when.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import queue
import signal
import threading
import traceback
from typing import Any

from ..errors import AnalyzerError
from ..memory import return_freed_memory_promptly
from ..records.window import WindowResult
from .retention import Retention

MAX_IN_FLIGHT = 4  # windows handed over and not yet written, at most
POLL_S = 1.0  # how often a wait checks that the other process still lives
STOP_WAIT_S = 30.0  # for the last windows and the store's checkpoint at the end


def can_fork() -> bool:
    """Whether a writer process can be forked now: this process runs no other thread."""
    return threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()


class RemoteWriter:
    """:class:`~.resilient.ResilientWriter`'s interface, served by a forked process; opens the store there and
    raises its one-line error here if it cannot."""

    def __init__(self, url: str, sensor: str | None, retention: Retention, backlog_mb: float) -> None:
        context = multiprocessing.get_context("fork")
        self.url = url
        self._inbox: Any = context.Queue()
        self._outbox: Any = context.Queue()
        self._process = context.Process(
            target=_serve,
            args=(self._inbox, self._outbox, os.getpid(), url, sensor, retention, backlog_mb),
            name="nta-store",
            daemon=True,
        )
        self._process.start()
        self._in_flight = 0  # calls sent and not yet answered
        self._error: BaseException | None = None  # raised by a call not waited for; raised at the next call
        self._health: dict = {}
        self._status = ""
        _, self.sensor = self._answer("ready")

    # -- ResilientWriter's methods ------------------------------------------------------------------
    def start_run(self, run_id: str, source: str, model: dict, live: bool | None = None) -> None:
        self._call("start_run", run_id, source, model, live, wait=True)

    def write_window(self, run_id: str, result: WindowResult) -> None:
        self._call("write_window", run_id, result)

    def set_model(self, run_id: str, model: dict) -> None:
        self._call("set_model", run_id, model)

    def set_retention(self, retention: Retention) -> None:
        self._call("set_retention", retention)

    def finish_run(self, run_id: str, status: str, model: dict | None = None) -> None:
        self._call("finish_run", run_id, status, model, wait=True)

    def health(self) -> dict:
        self._collect(block=False)
        return dict(self._health)

    def status(self) -> str:
        self._collect(block=False)
        return self._status

    def close(self) -> None:
        """Let the process write what it holds, close the store and end; safe to call twice."""
        if not self._process.is_alive():
            return
        try:
            self._inbox.put(pickle.dumps(("stop", ()), pickle.HIGHEST_PROTOCOL))
            self._process.join(STOP_WAIT_S)
        finally:
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(STOP_WAIT_S)

    # -- inside --------------------------------------------------------------------------------------
    def _call(self, method: str, *args, wait: bool = False) -> None:
        self._collect(block=False)
        while self._in_flight >= MAX_IN_FLIGHT:  # the store is behind: wait for it rather than hold more
            self._collect(block=True)
        self._raise_held()
        self._check_alive()
        self._inbox.put(pickle.dumps((method, args), pickle.HIGHEST_PROTOCOL))  # as the call's objects are now
        self._in_flight += 1
        if wait:
            while self._in_flight:
                self._collect(block=True)
            self._raise_held()

    def _collect(self, block: bool) -> None:
        """Take the process's answers: one when ``block``, then whatever else has come."""
        while self._in_flight:
            try:
                message = self._outbox.get(timeout=POLL_S) if block else self._outbox.get_nowait()
            except queue.Empty:
                if not block:
                    return
                self._check_alive()
                continue
            block = False
            self._in_flight -= 1
            self._take(message)

    def _take(self, message: tuple) -> None:
        what, self._health, self._status, error = message
        if error is not None and self._error is None:
            self._error = error

    def _answer(self, expected: str) -> tuple:
        while True:
            try:
                message = self._outbox.get(timeout=POLL_S)
                break
            except queue.Empty:
                self._check_alive()
        if message[0] == "error":
            self._process.join(STOP_WAIT_S)
            raise message[1]
        assert message[0] == expected, message
        return message

    def _raise_held(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _check_alive(self) -> None:
        if not self._process.is_alive():
            raise AnalyzerError(
                f"the result store's writer process exited with code {self._process.exitcode} (out of memory?); "
                "run with --no-parallel-detection to write from the analysing process"
            )


def _serve(
    inbox: Any, outbox: Any, parent: int, url: str, sensor: str | None, retention: Retention, backlog_mb: float
) -> None:
    """The writer process: every call in order, each answered with the store's state and any error."""
    from .resilient import ResilientWriter
    from .writer import ResultWriter

    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # the terminal's Ctrl-C and hang-up are for the main process
    return_freed_memory_promptly()
    logger = logging.getLogger("traffic_analyzer")
    try:
        writer = ResilientWriter(ResultWriter(url, sensor, retention), backlog_mb, logger)
    except Exception as exc:  # noqa: BLE001 - the main process raises it as its own start-up error
        outbox.put(("error", _picklable(exc, traceback.format_exc())))
        outbox.close()
        outbox.join_thread()
        return
    outbox.put(("ready", writer.sensor))
    while True:
        try:
            method, args = pickle.loads(inbox.get(timeout=POLL_S))
        except queue.Empty:
            if os.getppid() != parent:  # the analyzer is gone without a word: nothing more will come
                break
            continue
        if method == "stop":
            break
        error = None
        try:
            getattr(writer, method)(*args)
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the main process
            error = _picklable(exc, traceback.format_exc())
        outbox.put((method, writer.health(), writer.status(), error))
    writer.close()
    outbox.close()
    outbox.join_thread()


def _picklable(exc: BaseException, trace: str) -> BaseException:
    """The exception itself if it crosses processes, else a RuntimeError carrying its traceback."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any failure to cross means: send its text
        return RuntimeError(f"the result store's writer process failed:\n{trace}")
    return exc
