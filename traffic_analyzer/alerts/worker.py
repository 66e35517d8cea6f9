"""One background thread per alert channel: a bounded queue, retries with exponential backoff, health.

The analysis loop only ever puts a notice on the queue (never waits); the worker delivers it,
and while the channel is down it retries the same notice after 2, 4, 8 ... seconds up to
``retry_max_s``, keeping the order of what is queued. An outage is logged once when it starts and
once when it ends, not per retry. At the end of the run the worker gets a bounded time to drain;
what it could not send is written to the log so nothing is lost.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Protocol

from .notice import Notice

RETRY_FIRST_S = 2.0  # first wait after a failed attempt; doubles per failure
RETRY_MAX_S = 300.0  # cap of the backoff
QUEUE_SIZE = 500  # notices waiting per channel; more are logged and dropped
DELIVERY_TIMEOUT_S = 10.0  # connect/send timeout of every transport
ERROR_CHARS = 300  # longest error text kept for health and logs
POLL_S = 0.5  # how often an idle worker checks whether the run has ended


class DeliveryError(Exception):
    """The channel answered and refused this notice for good (e.g. HTTP 400, SMTP 550): retrying cannot help."""


class Sink(Protocol):
    """A transport: delivers one notice or raises; knows nothing of queues, retries or policy."""

    name: str  # "email", "webhook", "syslog", "log"
    target: str  # where it delivers, without secrets, for health and logs

    def deliver(self, notice: Notice) -> None: ...

    def close(self) -> None: ...


def error_text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:ERROR_CHARS].replace("\n", " ")


class DeliveryWorker:
    """Delivers one channel's notices in the background, retrying while the channel is down."""

    def __init__(
        self,
        sink: Sink,
        logger: logging.Logger,
        retry_first_s: float = RETRY_FIRST_S,
        retry_max_s: float = RETRY_MAX_S,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.sink = sink
        self.logger = logger
        self.retry_first_s = retry_first_s
        self.retry_max_s = retry_max_s
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stopping = threading.Event()
        self._abandon = threading.Event()
        self._in_flight = False
        self._unsent: list[Notice] = []
        self.delivered = 0
        self.failed_attempts = 0
        self.rejected = 0
        self.dropped = 0
        self.last_error = ""
        self.failing_since: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"alert-channel-{sink.name}", daemon=True)
        self._thread.start()

    def submit(self, notice: Notice) -> None:
        """Queue a notice; never blocks. A full queue drops it (and says so in the log)."""
        try:
            self._queue.put_nowait(notice)
        except queue.Full:
            self.dropped += 1
            self.logger.warning(
                "alert channel %s: queue full (%d), not sent: %s", self.sink.name, self._queue.maxsize, notice.subject()
            )

    def health(self) -> dict:
        if self.failing_since is not None:
            state = "failing"
        else:
            state = "ok" if self.delivered else "idle"
        return {
            "state": state,
            "delivered": self.delivered,
            "failed_attempts": self.failed_attempts,
            "rejected": self.rejected,
            "dropped": self.dropped,
            "queued": self._queue.qsize() + int(self._in_flight),
            "last_error": self.last_error,
        }

    def stop(self) -> None:
        """No more notices: deliver what is queued, then end."""
        self._stopping.set()

    def join(self, deadline: float) -> list[Notice]:
        """Wait for the queue to drain until ``deadline`` (time.monotonic), then give up; returns what was not sent."""
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            self._abandon.set()
            self._thread.join(DELIVERY_TIMEOUT_S)  # an attempt in progress ends within its timeout
        while True:
            try:
                self._unsent.append(self._queue.get_nowait())
            except queue.Empty:
                break
        self.sink.close()
        return self._unsent

    def _run(self) -> None:
        while not self._abandon.is_set():
            try:
                notice = self._queue.get(timeout=POLL_S)
            except queue.Empty:
                if self._stopping.is_set():
                    return
                continue
            self._in_flight = True
            try:
                self._deliver(notice)
            finally:
                self._in_flight = False

    def _deliver(self, notice: Notice) -> None:
        """Try until delivered, refused for good, or abandoned at close."""
        delay = self.retry_first_s
        while True:
            try:
                self.sink.deliver(notice)
            except DeliveryError as exc:
                self.rejected += 1
                self.last_error = error_text(exc)
                self.logger.error("alert channel %s refused %r: %s", self.sink.name, notice.subject(), self.last_error)
                return
            except Exception as exc:  # any transport failure: keep the worker alive and retry
                self._failed(exc, delay)
                if self._abandon.wait(delay):
                    self._unsent.append(notice)
                    return
                delay = min(delay * 2, self.retry_max_s)
                continue
            self.delivered += 1
            if self.failing_since is not None:
                self.logger.warning(
                    "alert channel %s (%s) delivers again after %.0f s down; queued notices follow",
                    self.sink.name,
                    self.sink.target,
                    time.time() - self.failing_since,
                )
                self.failing_since = None
            return

    def _failed(self, exc: Exception, delay: float) -> None:
        self.failed_attempts += 1
        self.last_error = error_text(exc)
        if self.failing_since is None:
            self.failing_since = time.time()
            self.logger.warning(
                "alert channel %s (%s) is failing: %s; retrying in the background (first retry in %.3g s)",
                self.sink.name,
                self.sink.target,
                self.last_error,
                delay,
            )
