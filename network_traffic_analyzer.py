#!/usr/bin/env python3
"""Network Traffic Analyzer: watch a network, see what is unusual, and why.

Run ``sudo python3 network_traffic_analyzer.py`` and open http://localhost:8050,
or use the class from Python::

    from network_traffic_analyzer import NetworkTrafficAnalyzer
    NetworkTrafficAnalyzer(interface="eth0", capture_duration=60).run()

The constructor parameters are the configuration (see config.example.py and the
README). The work is done by the ``traffic_analyzer`` package beside this file:
capture -> packets -> features -> detection -> store/alerts -> dashboard.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

_HERE = Path(__file__).resolve().parent


def _use_project_venv() -> None:
    """`sudo python3 network_traffic_analyzer.py` runs the system Python: switch to the project's venv."""
    venv = _HERE / ".venv"
    python = venv / "bin" / "python"
    if python.exists() and Path(sys.prefix).resolve() != venv.resolve():
        os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


if __name__ == "__main__":
    _use_project_venv()

for _package in ("pandas", "sklearn", "sqlalchemy", "dash"):  # a fresh checkout without its packages
    if importlib.util.find_spec(_package) is None:
        sys.exit(f"error: {_package} is not installed: run ./setup.sh first (it installs tshark and Python packages)")

from traffic_analyzer.settings import config_of, validate  # noqa: E402 (after the checks above)

if TYPE_CHECKING:
    from traffic_analyzer.runner import Runner


class NetworkTrafficAnalyzer:
    """Captures or reads packets, finds what is unusual, stores it and serves the dashboard.

    Parameters mirror ``traffic_analyzer.settings.SETTINGS`` (a test checks they agree);
    nothing happens until :meth:`run`, which validates them and names any bad one.
    """

    def __init__(
        self,
        interface: str | None = None,
        capture_duration: float = 0.0,
        capture_filter: str | None = None,
        capture_backend: str = "dumpcap",
        read_file: str | None = None,
        train_file: str | None = None,
        baseline_s: float = 600.0,
        model_path: str | None = None,
        anomaly_model: str = "isolation_forest",
        anomaly_alerts_per_day: float = 1.0,
        false_alarm_rate: float | None = None,
        window_s: float = 5.0,
        parallel_detection: bool = True,
        scan_min_ports: int = 25,
        scan_window_s: float = 300.0,
        data_dir: str = "data",
        log_file: str = "network_analysis.log",
        dashboard: bool = True,
        dashboard_host: str = "127.0.0.1",
        dashboard_port: int = 8050,
        dashboard_auth: bool = True,
        dashboard_tls_cert: str | None = None,
        dashboard_tls_key: str | None = None,
        progress: bool = True,
        quiet: bool = False,
        run_as: str | None = None,
        secrets_file: str | None = None,
        store: str | None = None,
        sensor_name: str | None = None,
        retention_days: float = 30.0,
        retention_max_mb: float = 0.0,
        file_reader: str = "auto",
        detectors: list[str] | None = None,
        detector_thresholds: dict | None = None,
        intel_files: tuple[str, ...] | list[str] = (),
        evidence: bool = True,
        evidence_ring_mb: float = 100.0,
        evidence_max_packets: int = 10000,
        evidence_max_mb: float = 10.0,
        alert_quiet_s: float = 300.0,
        log_min_severity: str = "low",
        eve_file: str | None = None,
        eve_min_severity: str = "low",
        zeek_log_dir: str | None = None,
        zeek_log_format: str = "tsv",
        zeek_log_rotate_s: float = 3600.0,
        email_to: str | None = None,
        email_from: str | None = None,
        smtp_host: str = "localhost",
        smtp_port: int = 0,
        smtp_security: str = "starttls",
        smtp_user: str | None = None,
        smtp_password_env: str = "NTA_SMTP_PASSWORD",
        email_min_severity: str = "high",
        email_per_hour: int = 20,
        webhook_url: str | None = None,
        webhook_format: str = "generic",
        webhook_min_severity: str = "medium",
        webhook_per_hour: int = 60,
        syslog_target: str | None = None,
        syslog_min_severity: str = "low",
        syslog_per_hour: int = 600,
        sampling: bool = True,
        sample_max_pps: float = 0.0,
        store_backlog_mb: float = 100.0,
    ) -> None:
        self.interface = interface
        self.capture_duration = capture_duration
        self.capture_filter = capture_filter
        self.capture_backend = capture_backend
        self.read_file = read_file
        self.train_file = train_file
        self.baseline_s = baseline_s
        self.model_path = model_path
        self.anomaly_model = anomaly_model
        self.anomaly_alerts_per_day = anomaly_alerts_per_day
        self.false_alarm_rate = false_alarm_rate
        self.window_s = window_s
        self.parallel_detection = parallel_detection
        self.scan_min_ports = scan_min_ports
        self.scan_window_s = scan_window_s
        self.data_dir = data_dir
        self.log_file = log_file
        self.dashboard = dashboard
        self.dashboard_host = dashboard_host
        self.dashboard_port = dashboard_port
        self.dashboard_auth = dashboard_auth
        self.dashboard_tls_cert = dashboard_tls_cert
        self.dashboard_tls_key = dashboard_tls_key
        self.progress = progress
        self.quiet = quiet
        self.run_as = run_as
        self.secrets_file = secrets_file
        self.store = store
        self.sensor_name = sensor_name
        self.retention_days = retention_days
        self.retention_max_mb = retention_max_mb
        self.file_reader = file_reader
        self.detectors = detectors
        self.detector_thresholds = detector_thresholds
        self.intel_files = intel_files
        self.evidence = evidence
        self.evidence_ring_mb = evidence_ring_mb
        self.evidence_max_packets = evidence_max_packets
        self.evidence_max_mb = evidence_max_mb
        self.alert_quiet_s = alert_quiet_s
        self.log_min_severity = log_min_severity
        self.eve_file = eve_file
        self.eve_min_severity = eve_min_severity
        self.zeek_log_dir = zeek_log_dir
        self.zeek_log_format = zeek_log_format
        self.zeek_log_rotate_s = zeek_log_rotate_s
        self.email_to = email_to
        self.email_from = email_from
        self.smtp_host = smtp_host
        self.smtp_port = smtp_port
        self.smtp_security = smtp_security
        self.smtp_user = smtp_user
        self.smtp_password_env = smtp_password_env
        self.email_min_severity = email_min_severity
        self.email_per_hour = email_per_hour
        self.webhook_url = webhook_url
        self.webhook_format = webhook_format
        self.webhook_min_severity = webhook_min_severity
        self.webhook_per_hour = webhook_per_hour
        self.syslog_target = syslog_target
        self.syslog_min_severity = syslog_min_severity
        self.syslog_per_hour = syslog_per_hour
        self.sampling = sampling
        self.sample_max_pps = sample_max_pps
        self.store_backlog_mb = store_backlog_mb
        self._runner: Runner | None = None

    def get_params(self) -> dict:
        """The configuration, by setting name."""
        names = [name for name in inspect.signature(type(self).__init__).parameters if name != "self"]
        return {name: getattr(self, name) for name in names}

    def analyze(self, reload: Callable[[], dict] | None = None) -> dict:
        """Capture or read until the end, analysing window by window; returns the summary.

        ``reload`` returns fresh, validated settings when SIGHUP asks (the command line re-reads --config).
        """
        params = self.get_params()
        validate(params)
        from traffic_analyzer.runner import Runner  # the whole pipeline: imported when a run starts (fast --help)

        self._runner = Runner(config_of(params), reload_settings=reload)
        try:
            return self._runner.run()
        except BaseException:
            self._runner.close()
            raise

    def serve_until_interrupted(self) -> None:
        """Keep the dashboard up after the analysis ended, until Ctrl-C."""
        runner = self._runner
        if runner is None or runner.dashboard is None:
            return
        if runner.stop_requested.is_set():  # Ctrl-C or SIGTERM during the run: the user wants to quit
            runner.close()
            return
        print(f"analysis finished; dashboard at {runner.dashboard.url} (Ctrl-C to quit)", file=sys.stderr)
        try:
            while True:
                threading.Event().wait(3600)
        except KeyboardInterrupt:
            pass
        finally:
            runner.close()

    def run(self) -> dict:
        """Analyse, then keep serving the dashboard until Ctrl-C; returns the summary."""
        summary = self.analyze()
        self.serve_until_interrupted()
        return summary


def main() -> int:
    """The ``network-traffic-analyzer`` command that ``pip install .`` makes (the same as running this file)."""
    from traffic_analyzer.cli import main as cli_main

    return cli_main(sys.argv[1:], NetworkTrafficAnalyzer)


def _exit_now(code: int) -> None:
    """End the process once its work is done as the interpreter would (wait for non-daemon threads, flush,
    run the exit handlers: logging, multiprocessing), then leave without freeing the heap object by object,
    which takes a quarter of a second after a large file; the system reclaims it at once. Every file the
    run wrote is closed by then."""
    import atexit

    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed pipe: nothing left to say there
    atexit._run_exitfuncs()
    os._exit(code)


if __name__ == "__main__":
    _exit_now(main())
