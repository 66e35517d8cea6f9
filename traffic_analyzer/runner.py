"""Wires the stages for one run: source -> analysis windows -> store, log and dashboard."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pandas as pd

from .alerts.dispatcher import AlertDispatcher, dispatcher_from_config
from .alerts.evidence import EvidenceRecorder, evidence_recorder
from .alerts.log_channel import log_window, setup_logging
from .capture.dumpcap_live import DumpcapLiveSource
from .capture.file_reader import CaptureFileSource
from .capture.live import LiveSource, PysharkLiveSource, TsharkLiveSource
from .capture.own_traffic import without_dashboard
from .capture.processes import start_keeper, stop_keeper
from .capture.sampling import SamplingController, sampling_status, scale_counts
from .capture.source import PacketSource
from .capture.tshark import check_live_capture, default_interface, tshark_path
from .console import ConsoleStatus
from .detection.base import Detector
from .detection.fitting import BaselineFitting
from .detection.intel import IndicatorSet
from .detection.known_patterns import KnownPatterns, for_learning
from .errors import AnalyzerError, ConfigError, TruncatedCaptureError
from .export.zeek_live import ZeekLiveLogs
from .features.host_windows import HOST_FEATURES, host_features_of
from .memory import MemoryTrimmer
from .pipeline import Analysis, default_detectors, file_windows, parallel_worthwhile, start_worker
from .privileges import drop_to, hand_over, readable_by, target_account
from .records.alert import Alert
from .reload import load_indicators, plan_reload, reloaded_indicators, swapped_detectors
from .secrets_file import load_secrets
from .settings import Config, config_of
from .store.annotations import AllowList, AnnotationStore
from .store.engine import display_url, resolve_store
from .store.resilient import ResilientWriter
from .store.retention import Retention
from .store.writer import ResultWriter

if TYPE_CHECKING:
    from .detection.anomaly.base import BaselineModel
    from .detection.anomaly.report import ModelReport
    from .detection.remote import RemoteDetection


def _models() -> ModuleType:
    """Making, saving, loading anomaly models: scikit-learn loads only for a run with a model (quick start)."""
    from .detection.anomaly import persist

    return persist


class Runner:
    """Runs one capture or file analysis to its end and returns the summary.

    ``reload_settings`` re-reads the settings (the command line's --config file) when SIGHUP asks.
    """

    def __init__(self, config: Config, reload_settings: Callable[[], dict[str, Any]] | None = None) -> None:
        self.config = config
        self.reload_settings = reload_settings
        self.reload_requested = threading.Event()  # set by SIGHUP, handled between two windows
        self.data_dir = Path(config.data_dir)
        self.model_path = Path(config.model_path) if config.model_path else self.data_dir / "model.joblib"
        self.store = resolve_store(config.store, self.data_dir)  # SQLAlchemy URL of the result store
        self.run_id = uuid.uuid4().hex[:12]
        self.stop_requested = threading.Event()
        self.logger: logging.Logger = logging.getLogger("traffic_analyzer")
        self.dashboard = None
        self.model: BaselineModel | None = None
        self.model_meta: dict = {"status": "none"}
        self.allow_list = AllowList()
        self.account = None  # the unprivileged account to become, when started as root
        self.evidence: EvidenceRecorder | None = None  # cuts the alert pcaps
        self.alerts: AlertDispatcher | None = None  # log, e-mail, webhook, syslog
        self.console = ConsoleStatus(enabled=False)  # a live run's start lines and status a minute on stderr
        self.worker: RemoteDetection | None = None  # a file's detection process
        self.parallel = False  # whether a file's detectors run in that process (set in prepare)
        self.worker_model: Path | None = None  # the saved model that process loads (and this one never does)
        self.intel = IndicatorSet()  # the intel_files' indicators, re-read on SIGHUP
        self.zeek_logs: ZeekLiveLogs | None = None  # conn/dns/http/ssl logs written as the run goes (zeek_log_dir)

    # -- set-up ---------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Everything that can fail before capture starts fails here, with its one-line error."""
        c = self.config
        self.logger = setup_logging(c.log_file)
        if c.secrets_file:
            load_secrets(c.secrets_file, self.logger)
        self.account = target_account(c.run_as)
        tshark_path()
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AnalyzerError(f"data_dir {str(self.data_dir)!r} cannot be created: {exc.strerror}") from exc
        writer = ResultWriter(self.store, c.sensor_name, Retention(c.retention_days, c.retention_max_mb))
        self.writer = ResilientWriter(writer, c.store_backlog_mb, self.logger)
        self.alerts = dispatcher_from_config(c, self.logger, self.run_id)
        if c.zeek_log_dir:
            self.zeek_logs = ZeekLiveLogs(c.zeek_log_dir, c.zeek_log_format, c.zeek_log_rotate_s, self.logger)
            self.zeek_logs.start()
        self.intel = load_indicators(c.intel_files, self.logger, self.data_dir)
        # Reading a file, the detectors run in a second process beside reading and flow metering.
        self.parallel = bool(c.read_file) and parallel_worthwhile(c.read_file, c.parallel_detection)
        if self.parallel and self.account is None:
            # No privilege drop to wait for: the detection worker starts now and imports while this one sets up.
            self.worker = start_worker()
        if c.train_file:
            self.train(c.train_file)
        elif self.model_path.exists() and self.parallel:
            self.worker_model = self.model_path  # loaded and scored by the worker (_set_up), reported back
            self.model_meta = {"status": "loading"}
        elif self.model_path.exists():
            self.model, report = _models().load_placed(
                self.model_path, HOST_FEATURES, c.anomaly_alerts_per_day, c.false_alarm_rate
            )
            self._take(report)

    def _apply_budget(self, config: Config) -> bool:
        """A fitted model keeps its baseline's scores: a changed false-alarm budget moves its threshold."""
        if self.model is None:
            return False
        return self._take(
            _models().placed(self.model, self.model_meta, config.anomaly_alerts_per_day, config.false_alarm_rate)
        )

    def _take(self, report: ModelReport) -> bool:
        """Keep and log what became of the model (loaded, threshold moved); True when its threshold moved."""
        if report.loaded_from is not None:
            self.logger.info("loaded anomaly model %s (trained on %s)", report.loaded_from, report.meta["trained_on"])
        if report.refused is not None:  # an older saved model: it keeps working at the threshold it was saved with
            self.logger.warning("%s; it keeps its threshold until then", report.refused)
        if report.placed is not None:
            self.logger.info("anomaly threshold placed for %s", report.placed)
        self.model_meta = report.meta
        return report.placed is not None

    def _worker_reports(self, wait: bool = False) -> None:
        """Keep, log and store what the detection worker reported of the model it loaded (``wait``: all due)."""
        if self.worker_model is None or self.worker is None:
            return
        for report in self.worker.model_reports(wait):
            self._take(report)
            self.writer.set_model(self.run_id, self.model_meta)

    def start_dashboard(self) -> None:
        if self.config.dashboard:
            from .dashboard.server import DashboardServer, TlsFiles

            c = self.config
            self.dashboard = DashboardServer(
                self.store,
                c.dashboard_host,
                c.dashboard_port,
                no_auth=not c.dashboard_auth,
                evidence_dir=self.data_dir / "evidence",
                tls=TlsFiles.of(c.dashboard_tls_cert, c.dashboard_tls_key),
                apart=True,  # its requests must not take turns with the analysis for the GIL
                log_file=c.log_file,
            )
            self.dashboard.start()
            self.console.dashboard(self.dashboard.url)  # said here when it starts after the privilege drop

    def train(self, paths: str) -> None:
        """Fit the anomaly model on benign captures (comma-separated paths) and save it."""
        rows = []
        seconds = 0.0
        seen: list[Alert] = []  # what the detectors make of the baseline: the site's own pollers, backups...
        c = self.config
        fitting = BaselineFitting(self._fitters())  # learns the figures where the detectors run
        for path in [p.strip() for p in paths.split(",") if p.strip()]:
            analysis = Analysis(  # the detectors in a worker as for --read: a day of baseline is an hour of work
                for_learning(default_detectors(c.scan_min_ports, c.scan_window_s, c.detector_thresholds, c.detectors))
                + [fitting],
                parallel=parallel_worthwhile(path, c.parallel_detection),
            )
            source = CaptureFileSource(path, reader=self.config.file_reader, progress=self.config.progress)
            first = last = None
            try:
                for _, window in analysis.results(file_windows(source.batches(), self.config.window_s), live=False):
                    rows.append(host_features_of(window))
                    first = window.start if first is None else first
                    last = window.end
                seen += analysis.book.alerts.values()
                (fitting,) = [d for d in analysis.detection.snapshot() if isinstance(d, BaselineFitting)]
            finally:
                analysis.close()
            seconds += (last - first) if first is not None else 0.0  # the file's network time
        features = pd.concat(rows) if rows else pd.DataFrame(columns=list(HOST_FEATURES))
        model = self._new_model().fit(features, seconds=seconds)
        model.known_patterns_ = self._learned(seen)
        model.detector_baselines_ = fitting.figures()
        self.model = model
        self.model_meta = _models().save_model(model, self.model_path, trained_on=paths)
        self.logger.info(
            "trained anomaly model on %s: %d host windows over %.0f s, threshold for %s, saved to %s",
            paths,
            len(features),
            seconds,
            _models().budget_text(model),
            self.model_path,
        )

    def source(self) -> tuple[PacketSource, bool, str]:
        c = self.config
        if c.read_file:
            source = CaptureFileSource(c.read_file, reader=c.file_reader, progress=c.progress)
            return source, False, f"reading {c.read_file}"
        iface = c.interface or default_interface()
        # The analyzer's own dashboard traffic is never captured (a polling browser looks like a beacon).
        bpf = c.capture_filter
        if c.dashboard:
            if c.capture_filter:
                check_live_capture(iface, c.capture_filter)  # a bad filter is reported as the user wrote it
            bpf = without_dashboard(c.capture_filter, c.dashboard_host, c.dashboard_port)
        if c.capture_backend == "dumpcap":
            sampling = SamplingController(max_pps=c.sample_max_pps, enabled=c.sampling)
            src = DumpcapLiveSource(iface, bpf, c.capture_duration, c.window_s, sampling=sampling)
            return src, True, f"capturing on {iface}"
        backend = TsharkLiveSource if c.capture_backend == "tshark" else PysharkLiveSource
        src = backend(iface, bpf, duration_s=c.capture_duration, window_s=c.window_s)
        return src, True, f"capturing on {iface}"

    # -- the run --------------------------------------------------------------------------------
    def run(self) -> dict:
        try:
            analysis, source, live, status = self._set_up()
        except BaseException:
            if self.worker is not None:
                self.worker.close()
            raise
        return self._analyse(analysis, source, live, status)

    def _set_up(self) -> tuple[Analysis, PacketSource, bool, str]:
        self.prepare()
        source, live, status = self.source()
        source.check()
        self.evidence = evidence_recorder(self.config, self.data_dir, self.run_id, live, self.account, self.logger)
        if self.account is None:
            self.start_dashboard()
        elif not live:  # a file needs no privilege at all
            self.drop_privileges(read_file=self.config.read_file)
        if self.model is None and live:
            self.model_meta = {"status": "training", "baseline_s": self.config.baseline_s}
        self.writer.start_run(self.run_id, source.stats.source, self.model_meta)
        self.logger.info("run %s: %s", self.run_id, status)
        self.console = ConsoleStatus(enabled=live and not self.config.quiet)
        self.console.started(status, self.config.capture_duration)
        if self.dashboard is not None:
            self.console.dashboard(self.dashboard.url)
        c = self.config
        detectors = default_detectors(c.scan_min_ports, c.scan_window_s, c.detector_thresholds, c.detectors, self.intel)
        if self.parallel and self.worker is None:  # started after the privilege drop: it runs unprivileged
            self.worker = start_worker()
        analysis = Analysis(detectors, self.model, worker=self.worker)
        if self.worker is not None and self.worker_model is not None:
            self.worker.load_model(self.worker_model, HOST_FEATURES, c.anomaly_alerts_per_day, c.false_alarm_rate)
        return analysis, source, live, status

    def _analyse(self, analysis: Analysis, source: PacketSource, live: bool, status: str) -> dict:
        alerts = self.alerts
        assert alerts is not None
        annotations = AnnotationStore(self.store)
        baseline_rows: list[pd.DataFrame] = []
        fitters = self._fitters() if live and analysis.model is None else []  # learn the live baseline's figures
        started = time.time()
        failure: AnalyzerError | None = None
        previous = signal.getsignal(signal.SIGTERM)
        previous_hup = signal.getsignal(signal.SIGHUP)

        def stop(*_) -> None:
            self.stop_requested.set()
            source.stop()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGHUP, lambda *_: self.reload_requested.set())
        try:
            windows = source.batches() if live else file_windows(source.batches(), self.config.window_s)
            trimmer = MemoryTrimmer()
            for result, window in analysis.results(windows, live=live):
                packets = window.packets
                trimmer.maybe_trim()  # keeps a long run's memory flat (see memory.py)
                self._refresh_allow_list(annotations)
                result.alerts = [a for a in result.alerts if not self.allow_list.allows(a.kind, a.attacker, a.victims)]
                scale_counts(result, source.stats.sample_rate)  # a flow sample stands for all traffic
                health_status = self._status(
                    (source.stats.down or source.stats.link_down or status) + sampling_status(source.stats)
                )
                result.health = analysis.health(source.stats, health_status, live)
                if self.evidence is not None:
                    self.evidence.feed(result.alerts)
                alerts.send(result.alerts, now=window.end)
                result.health["channels"] = json.dumps(alerts.health())
                self._worker_reports()
                self.writer.write_window(self.run_id, result)
                if self.zeek_logs is not None:
                    self.zeek_logs.write_window(result, time.time() if live else result.window_end)
                self.console.window(source.stats, analysis.packets, len(analysis.book.alerts))
                if len(packets) or not live:
                    log_window(
                        self.logger,
                        window.start,
                        window.end,
                        len(packets),
                        int(packets["length"].sum()),
                        len(window.flows),
                        len(result.alerts),
                    )
                if live and self.account is not None and os.geteuid() == 0:
                    # the capture has run a whole window: its processes hold root
                    restart = source.restart_command() if isinstance(source, LiveSource) else None
                    self.drop_privileges(capture_command=restart)
                if live and analysis.model is None:
                    baseline_rows.append(host_features_of(window))
                    for fitter in fitters:
                        fitter.partial_fit(window)
                    if time.time() - started >= self.config.baseline_s:
                        self._fit_live_baseline(analysis, baseline_rows, time.time() - started, fitters)
                if self.reload_requested.is_set():
                    self._reload(analysis, alerts)
            self._worker_reports(wait=True)  # the model as the worker has it at the end (a late reload's budget)
        except KeyboardInterrupt:
            stop()
        except TruncatedCaptureError as exc:
            failure = exc
        except AnalyzerError as exc:
            analysis.close()
            if self.evidence is not None:
                self.evidence.stop()
            alerts.close()
            if self.zeek_logs is not None:
                self.zeek_logs.close(time.time() if live else analysis.last_ts or time.time())
            try:
                self.writer.finish_run(self.run_id, "failed", self.model_meta)
            except AnalyzerError as store_exc:
                self.logger.warning("%s", store_exc)  # the run's own error is the one to report
            raise exc
        finally:
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, previous)
                signal.signal(signal.SIGHUP, previous_hup)
            stop_keeper()
        analysis.close()
        last = analysis.finish()
        if self.evidence is not None:
            self.evidence.finish(list(analysis.book.alerts.values()))  # every alert's final pcap
        last.health = analysis.health(source.stats, self._status("finished" if not failure else str(failure)), live)
        last.alerts = [a for a in last.alerts if not self.allow_list.allows(a.kind, a.attacker, a.victims)]
        alerts.send(last.alerts, now=analysis.last_ts or time.time())
        undelivered = alerts.close()  # open alerts end, held ones go out as a digest; bounded wait
        last.health["channels"] = json.dumps(alerts.health())
        self.writer.write_window(self.run_id, last)
        if self.zeek_logs is not None:  # the connections still open end here, as the store's last window says
            now = time.time() if live else last.window_end
            self.zeek_logs.write_window(last, now)
            self.zeek_logs.close(now)
        self.writer.finish_run(self.run_id, "finished" if failure is None else "damaged", self.model_meta)
        if undelivered:  # stored and finished; like a store still out, lost alerts fail the run
            self.logger.info("%s", undelivered)
            raise AnalyzerError(undelivered)
        summary = self.summary(analysis, source)
        annotations.close()
        self.writer.close()  # the run's last row is written: close the store now (SQLite checkpoints its WAL)
        if failure is not None:
            summary["error"] = str(failure)
        self.logger.info(
            "run %s finished: %d packets, %d flows, %d alerts",
            self.run_id,
            summary["packets"],
            summary["flows"],
            len(summary["alerts"]),
        )
        return summary

    def _status(self, status: str) -> str:
        """The health status line, with the result store's state when it is or was out."""
        store = self.writer.status()
        return f"{status}; {store}" if store else status

    def _refresh_allow_list(self, annotations: AnnotationStore) -> None:
        """Entries added on the dashboard apply from the next window; while the store is out, the last read stays."""
        try:
            self.allow_list = annotations.allow_list()
        except AnalyzerError:
            pass  # the writer reports the outage once, in its own words

    def _reload(self, analysis: Analysis, alerts: AlertDispatcher) -> None:
        """SIGHUP: re-read the settings; apply what can change while running, name what needs a restart."""
        self.reload_requested.clear()
        if self.reload_settings is None:
            self.logger.warning("SIGHUP: there is no --config file to re-read; the running configuration stays")
            return
        try:
            plan = plan_reload(self.config, config_of(self.reload_settings()))
        except AnalyzerError as exc:
            self.logger.warning("config reload failed: %s; the running configuration stays", exc)
            return
        intel = reloaded_indicators(plan.config.intel_files, self.intel, self.logger, self.data_dir)
        try:
            detectors = swapped_detectors(analysis.detectors, self.config, plan.config, intel)
            alerts.reconfigure(plan.config, set(plan.applied))  # the last step: it raises before changing anything
        except AnalyzerError as exc:
            self.logger.warning("config reload failed: %s; the running configuration stays", exc)
            return
        analysis.detectors = detectors
        self.intel = intel
        if analysis.model is not None and self._apply_budget(plan.config):
            analysis.model = self.model  # the detection worker gets the moved threshold too
            self.writer.set_model(self.run_id, self.model_meta)
        elif self.worker is not None and self.worker_model is not None:  # the worker's model: it moves it, reports
            self.worker.set_budget(plan.config.anomaly_alerts_per_day, plan.config.false_alarm_rate)
        self.writer.set_retention(Retention(plan.config.retention_days, plan.config.retention_max_mb))
        self.logger.log(logging.WARNING if plan.restart else logging.INFO, "%s", plan.describe(self.config))
        self.config = plan.config

    def drop_privileges(self, read_file: str | None = None, capture_command: list[str] | None = None) -> None:
        """Hand data_dir and the log to the unprivileged account, become it, then serve the dashboard.

        ``capture_command`` is the live capture the root keeper may start again if it dies.
        """
        account = self.account
        assert account is not None
        if read_file and not readable_by(read_file, account):
            raise ConfigError(
                f"{read_file} cannot be read by {account.name}, whom the analyzer becomes after start; "
                f"make it readable (chmod o+r) or pass run_as='root'"
            )
        log_file = Path(self.config.log_file)
        owned = [self.data_dir, self.model_path, *log_file.parent.glob(log_file.name + "*")]
        if self.config.zeek_log_dir:
            owned.append(Path(self.config.zeek_log_dir))  # rotation makes and renames files in it
        hand_over([Path(p) for p in owned], account)
        start_keeper(capture_command)  # stays root: ends the root captures, and restarts the live one
        drop_to(account)
        self.logger.info("running as %s (uid %d) from now on; capture processes keep root", account.name, account.uid)
        self.start_dashboard()

    def _new_model(self) -> BaselineModel:
        c = self.config
        return _models().make_model(c.anomaly_model, c.anomaly_alerts_per_day, c.false_alarm_rate)

    def _learned(self, alerts: Iterable[Alert]) -> KnownPatterns:
        """The site's own pollers, backups and mirrors among the alerts the baseline raised, logged one by one."""
        known = KnownPatterns.learn(alerts)
        for pattern in known.describe():
            self.logger.info("learned from the baseline, not raised again: %s", pattern)
        return known

    def _fitters(self) -> list[Detector]:
        """Fresh detectors that learn the baseline's figures (``partial_fit``) beside the training's own run."""
        c = self.config
        return default_detectors(c.scan_min_ports, c.scan_window_s, c.detector_thresholds, c.detectors)

    def _fit_live_baseline(
        self, analysis: Analysis, rows: list[pd.DataFrame], seconds: float, fitters: list[Detector]
    ) -> None:
        features = pd.concat(rows)
        try:
            model = self._new_model().fit(features, seconds=seconds)
        except AnalyzerError as exc:
            self.model_meta = {"status": "too little baseline", "detail": str(exc)}
            self.logger.warning("%s; the anomaly model keeps learning", exc)
            return
        trained_on = f"first {self.config.baseline_s:.0f} s of live capture"
        model.known_patterns_ = self._learned(analysis.book.alerts.values())
        model.detector_baselines_ = BaselineFitting(fitters).figures()
        self.model_meta = _models().save_model(model, self.model_path, trained_on=trained_on)
        analysis.model = self.model = model
        rows.clear()
        self.writer.set_model(self.run_id, self.model_meta)
        self.logger.info("anomaly model trained on %s (%d host windows)", trained_on, len(features))

    def summary(self, analysis: Analysis, source: PacketSource) -> dict:
        shown = [a for a in analysis.book.alerts.values() if not self.allow_list.allows(a.kind, a.attacker, a.victims)]
        alerts = sorted(shown, key=lambda a: (-a.score, a.start))
        return {
            "run_id": self.run_id,
            "source": source.stats.source,
            "packets": analysis.packets,
            "bytes": analysis.bytes,
            "flows": analysis.flow_count,
            "first_packet_ts": analysis.first_ts,
            "last_packet_ts": analysis.last_ts,
            "dropped": source.stats.dropped,
            "sampled_out": source.stats.sampled_out,
            "sample_rate": source.stats.sample_rate,
            "model": self.model_meta,  # kept current: trained, loaded (also by the detection worker), re-budgeted
            "store": display_url(self.store),
            "store_state": self.writer.health(),
            "sensor": self.writer.sensor,
            "alerts": [a.as_dict() for a in alerts],
        }

    def close(self) -> None:
        if self.alerts is not None:
            self.alerts.close()  # a no-op when the run already closed it
        if self.zeek_logs is not None:
            self.zeek_logs.close(time.time())  # a no-op for the logs the run already closed
        if self.dashboard is not None:
            self.dashboard.stop()
