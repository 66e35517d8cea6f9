"""The detectors in a second process: a file's next windows are read and metered while this one is analysed.

Reading a file, one process decodes, cuts windows, meters flows and writes the store while a worker
runs the detectors and the anomaly model; the reader may run up to ``lag`` windows ahead, so the run
takes about the longer of the two halves instead of their sum. Windows go over as pickles (about 10 ms
for a 5,000-packet window); the worker keeps all detector state and sends back each window's
:class:`~.engine.Findings` (changed alerts, host anomaly margins), whose alerts this side mirrors in
``book`` so the run's summary and evidence see them.

A saved anomaly model is loaded by the worker (:meth:`RemoteDetection.load_model`), which also moves
its threshold when the budget changes: the main process gets plain :class:`~.anomaly.report.ModelReport`
records and never imports scikit-learn or SciPy.

Queues, not a bare pipe: both sides may send large messages at once (a window one way, a long
alert list the other), and a queue's feeder thread never blocks its sender. The worker is forked while
the analyzer has no other thread (it then needs no imports of its own and shares their memory), spawned
once threads run (dashboard, alert channels), whose locks a fork would copy in whatever state they are.
"""

from __future__ import annotations

import multiprocessing
import pickle
import queue
import signal
import threading
import traceback
from collections import deque
from typing import TYPE_CHECKING, Any

from ..errors import AnalyzerError
from ..memory import return_freed_memory_promptly
from ..records.window import WindowData
from .alert_book import AlertBook
from .base import Detector
from .engine import Detection, Findings

if TYPE_CHECKING:
    from pathlib import Path

    from .anomaly.base import BaselineModel
    from .anomaly.report import ModelReport

POLL_S = 1.0  # how often a wait for the worker checks that it still lives
STOP_WAIT_S = 10.0


class RemoteDetection:
    """:class:`~.engine.Detection` run in a worker process; same interface, up to ``lag`` windows in flight."""

    # Submit up to this many windows before collecting the oldest: the two processes work at once, and the
    # reader runs ahead while the worker starts (its imports take a second) or meets a slow window.
    lag = 8

    def __init__(self, detectors: list[Detector], model: BaselineModel | None = None) -> None:
        context = multiprocessing.get_context(start_method())
        self._inbox: Any = context.Queue()  # to the worker
        self._outbox: Any = context.Queue()  # from the worker
        self._process = context.Process(
            target=_serve, args=(self._inbox, self._outbox, detectors, model), name="nta-detect", daemon=True
        )
        self._process.start()
        self._detectors = list(detectors)
        self._model = model
        self._waiting = 0  # windows submitted, alerts not yet collected
        self._early: deque[tuple] = deque()  # windows' findings received while waiting for a model report
        self._reports: list[ModelReport] = []  # what the worker said of its model, not yet taken
        self._reports_due = 0  # model loads and budgets asked for, not yet reported
        self.book = AlertBook()  # a mirror: the latest version of every alert the worker reported

    @property
    def detectors(self) -> list[Detector]:
        return self._detectors

    @detectors.setter
    def detectors(self, detectors: list[Detector]) -> None:
        """Swap detectors: those that are the same objects as before keep the worker's state."""
        kept = {id(d) for d in self._detectors}
        self._send(("detectors", [(d.name, None if id(d) in kept else d) for d in detectors]))
        self._detectors = list(detectors)

    @property
    def model(self) -> BaselineModel | None:
        return self._model

    @model.setter
    def model(self, model: BaselineModel | None) -> None:
        self._send(("model", model))
        self._model = model

    def load_model(
        self, path: Path, features: tuple[str, ...], alerts_per_day: float, false_alarm_rate: float | None
    ) -> None:
        """The worker loads the saved model and places its threshold for this budget (persist.load_placed);
        it reports (:meth:`model_reports`) before the findings of the windows submitted after this call."""
        self._send(("load", path, features, alerts_per_day, false_alarm_rate))
        self._reports_due += 1

    def set_budget(self, alerts_per_day: float, false_alarm_rate: float | None) -> None:
        """The worker moves the threshold of the model it loaded to this budget, and reports likewise."""
        self._send(("budget", alerts_per_day, false_alarm_rate))
        self._reports_due += 1

    def model_reports(self, wait: bool = False) -> list[ModelReport]:
        """What the worker reported of its model since the last call; with ``wait``, every report still due."""
        while wait and self._reports_due:
            message = self._receive()
            if message[0] != "model":
                self._early.append(message)  # the findings of a window submitted before the request
        reports, self._reports = self._reports, []
        return reports

    def snapshot(self) -> list[Detector]:
        """Copies of the worker's detectors as they are now, with their learned state; call it with every
        submitted window collected."""
        if self._waiting:
            raise RuntimeError("snapshot() with windows not collected")
        self._send(("snapshot",))
        message = self._receive()
        while message[0] == "model":
            message = self._receive()
        return pickle.loads(message[1])

    def submit(self, window: WindowData) -> None:
        self._send(("window", window))
        self._waiting += 1

    def collect(self) -> Findings:
        """The findings of the oldest submitted window; re-raises what a detector raised in the worker."""
        if self._waiting == 0:
            raise RuntimeError("collect() without a submitted window")
        message = self._early.popleft() if self._early else self._receive()
        while message[0] == "model":
            message = self._receive()
        self._waiting -= 1
        findings: Findings = pickle.loads(message[1])
        for alert in findings.alerts:
            self.book.alerts[alert.key] = alert
        return findings

    def close(self) -> None:
        """End the worker (windows not collected are dropped); safe to call twice."""
        if not self._process.is_alive():
            return
        try:
            self._inbox.put(("stop",))
            self._process.join(STOP_WAIT_S)
        finally:
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(STOP_WAIT_S)

    def _send(self, message: tuple) -> None:
        self._check_alive()
        self._inbox.put(message)

    def _receive(self) -> tuple:
        """The worker's next message; a model report is kept for :meth:`model_reports`, an error raised here."""
        while True:
            try:
                message = self._outbox.get(timeout=POLL_S)
                break
            except queue.Empty:
                self._check_alive()
        if message[0] == "error":
            _, error, trace = message
            raise error if error is not None else RuntimeError(f"a detector failed in the worker:\n{trace}")
        if message[0] == "model":
            self._reports.append(message[1])
            self._reports_due -= 1
        return message

    def _check_alive(self) -> None:
        if not self._process.is_alive():
            code = self._process.exitcode
            how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
            raise AnalyzerError(
                f"the detection worker process {how} (out of memory?); "
                "run with --no-parallel-detection to analyse in one process"
            )


def start_method() -> str:
    """Fork while this process has no other thread: the worker then starts at once with the modules already
    imported (half a second of CPU less) and shares their pages (15 MB less); spawn otherwise, since a
    fork copies other threads' locks in whatever state they are."""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return "fork"
    return "spawn"


def _serve(inbox: Any, outbox: Any, detectors: list[Detector], model: BaselineModel | None) -> None:
    """The worker: detect every window it is sent, in order, until told to stop."""
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # the terminal's Ctrl-C and hang-up are for the main process
    return_freed_memory_promptly()
    detection = Detection(detectors, model)
    meta: dict = {}  # the loaded model's metadata, kept up to date with its budget
    while True:
        message = inbox.get()
        what = message[0]
        if what == "stop":
            break
        try:
            if what == "window":
                # Pickled now, not by the queue's feeder thread later: the alerts are the book's own objects,
                # which the next window's detection changes in place, so a late pickle would carry its state.
                outbox.put(("findings", pickle.dumps(detection.findings(message[1]), pickle.HIGHEST_PROTOCOL)))
            elif what == "snapshot":
                outbox.put(("snapshot", pickle.dumps(detection.snapshot(), pickle.HIGHEST_PROTOCOL)))
            elif what == "detectors":
                running = {d.name: d for d in detection.detectors}
                detection.detectors = [running[name] if d is None else d for name, d in message[1]]
            elif what == "model":
                detection.model = message[1]
            elif what in ("load", "budget"):
                from .anomaly import persist  # scikit-learn and SciPy: here, not in the main process

                if what == "load":
                    detection.model, report = persist.load_placed(*message[1:])
                else:
                    report = persist.placed(detection.model, meta, *message[1:])
                meta = report.meta
                outbox.put(("model", report))
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the main process
            outbox.put(("error", _picklable(exc), traceback.format_exc()))
    outbox.close()
    outbox.join_thread()


def _picklable(exc: Exception) -> Exception | None:
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - an exception that cannot travel is sent as its traceback text
        return None
    return exc
