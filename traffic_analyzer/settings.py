"""The one catalogue of settings: name, default, help. The constructor, the command line,
config.example.py and the README's table are all derived from it or checked against it."""

from __future__ import annotations

import ipaddress
import json
import os
import textwrap
from dataclasses import dataclass, field, make_dataclass
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class Setting:
    """One configuration setting (a constructor parameter of NetworkTrafficAnalyzer)."""

    name: str
    default: Any
    help: str
    flag: str | None = None  # command-line option; None if only settable in a config file
    type: type = str
    choices: tuple = ()


SEVERITIES = ("low", "medium", "high", "critical")  # alert severities, lowest first

SETTINGS: tuple[Setting, ...] = (
    Setting("interface", None, "Interface to capture on; None picks the one holding the default route.", "--interface"),
    Setting("capture_duration", 0.0, "Seconds to capture; 0 captures until stopped (Ctrl-C).", "--duration", float),
    Setting(
        "capture_filter",
        None,
        "BPF capture filter for live capture, e.g. 'tcp or udp port 53'; the dashboard's own traffic is always "
        "left out.",
        "--filter",
    ),
    Setting(
        "capture_backend",
        "dumpcap",
        "Live capture backend: dumpcap (the default: dumpcap into the in-process decoder, with kernel drop "
        "counts and flow sampling under load), pyshark, or tshark (tshark's field output); file_reader says how "
        "files are decoded.",
        "--backend",
        str,
        ("pyshark", "tshark", "dumpcap"),
    ),
    Setting("read_file", None, "Analyse this pcap/pcapng file instead of capturing live.", "--read"),
    Setting(
        "train_file",
        None,
        "Train the anomaly model on these benign pcap/pcapng files (comma-separated) and save it.",
        "--train",
    ),
    Setting(
        "baseline_s",
        600.0,
        "Without a saved model, learn the baseline from the first this many seconds of a live capture.",
        "--baseline",
        float,
    ),
    Setting(
        "model_path", None, "Where the anomaly model is saved and loaded; None means DATA_DIR/model.joblib.", "--model"
    ),
    Setting(
        "anomaly_model",
        "isolation_forest",
        "Anomaly model: isolation_forest, autoencoder (a Kitsune-style autoencoder ensemble), or "
        "local_outlier_factor (scikit-learn's LOF in novelty mode).",
        "--anomaly-model",
        str,
        ("isolation_forest", "autoencoder", "local_outlier_factor"),
    ),
    Setting(
        "anomaly_alerts_per_day",
        1.0,
        "The anomaly model's false-alarm budget: about this many anomaly alerts a day on traffic like its "
        "baseline (its threshold is placed in the baseline's scores, extrapolated beyond them when a day "
        "holds more host windows than the baseline).",
        "--anomaly-alerts-per-day",
        float,
    ),
    Setting(
        "false_alarm_rate",
        None,
        "Instead of anomaly_alerts_per_day, the share of host windows the anomaly threshold may flag "
        "(0.001 flags 36 an hour of 50 hosts in 5 s windows). None uses anomaly_alerts_per_day.",
        "--false-alarm-rate",
        float,
    ),
    Setting("window_s", 5.0, "Seconds of traffic per analysis window.", "--window", float),
    Setting(
        "parallel_detection",
        True,
        "Reading a file, run the detectors in a second process while the next window is read and its flows "
        "metered (uses a second core when there is one).",
        "--no-parallel-detection",
        bool,
    ),
    Setting("scan_min_ports", 25, "Distinct ports of one host that make a port scan.", "--scan-min-ports", int),
    Setting(
        "scan_window_s",
        300.0,
        "Seconds over which port-scan probes add up (Zeek's scan policy also looks 5 minutes back): a slow scan "
        "of one probe every few seconds still adds up.",
        "--scan-window",
        float,
    ),
    Setting(
        "data_dir",
        "data",
        "Folder for the result database, the model and alert evidence (relative: to the working directory at start).",
        "--data-dir",
    ),
    Setting("log_file", "network_analysis.log", "Log file: a line per capture window and per alert.", "--log-file"),
    Setting("dashboard", True, "Serve the live dashboard.", "--no-dashboard", bool),
    Setting("dashboard_host", "127.0.0.1", "Address the dashboard binds to.", "--host"),
    Setting("dashboard_port", 8050, "Port of the dashboard.", "--port", int),
    Setting(
        "dashboard_auth",
        True,
        "Require a login (NTA_DASHBOARD_USER / NTA_DASHBOARD_PASSWORD from the environment) when the dashboard "
        "binds an address other than 127.0.0.1; --no-auth serves it to anyone who can reach it.",
        "--no-auth",
        bool,
    ),
    Setting(
        "dashboard_tls_cert",
        None,
        "PEM certificate file: serve the dashboard over HTTPS (with dashboard_tls_key); do so whenever it binds "
        "an address other than 127.0.0.1, as basic auth sends the password with every request.",
        "--tls-cert",
    ),
    Setting("dashboard_tls_key", None, "PEM private key file of dashboard_tls_cert; keep it chmod 600.", "--tls-key"),
    Setting("progress", True, "Show a progress bar on stderr while reading a file.", "--no-progress", bool),
    Setting(
        "quiet",
        False,
        "Live capture says nothing on stderr but warnings and alerts: no 'capturing on' and dashboard lines at "
        "start, no status line (packets, alerts, drops, sampled-out) every minute.",
        "--quiet",
        bool,
    ),
    Setting(
        "run_as",
        None,
        "Started as root, become this user once the capture is open (files in data_dir are handed over); "
        "None means the user who ran sudo, 'root' keeps root.",
        "--run-as",
    ),
    Setting(
        "secrets_file",
        None,
        "File of NAME=value lines (e.g. NTA_DASHBOARD_PASSWORD, NTA_SMTP_PASSWORD) read into the environment; "
        "keep it chmod 600.",
        "--secrets-file",
    ),
    Setting(
        "store",
        None,
        "Result store as an SQLAlchemy URL, e.g. postgresql://user@db-host/nta for several sensors; "
        "None means SQLite in data_dir.",
        "--store",
    ),
    Setting(
        "sensor_name",
        None,
        "This sensor's name in a shared store; None means the machine's host name.",
        "--sensor-name",
    ),
    Setting(
        "retention_days",
        30.0,
        "Delete results older than this many days; 0 keeps them.",
        "--retention-days",
        float,
    ),
    Setting(
        "retention_max_mb",
        0.0,
        "Delete the oldest results while the store holds more than this many MB; 0 sets no limit.",
        "--retention-max-mb",
        float,
    ),
    Setting(
        "file_reader",
        "auto",
        "How files are decoded: auto (the in-process fast reader, tshark for link types it cannot read), "
        "fast, or tshark.",
        "--file-reader",
        str,
        ("auto", "fast", "tshark"),
    ),
    Setting(
        "detectors",
        None,
        "Which known-attack detectors run: None runs them all; a list of names such as ['port_scan', "
        "'brute_force'] runs those; [] runs none (the anomaly model alone). On the command line "
        "--detectors port_scan,brute_force, --detectors all or --detectors none.",
        "--detectors",
        list,
    ),
    Setting(
        "detector_thresholds",
        None,
        "Override known-attack detector thresholds, e.g. {'port_scan': {'min_ports': 30}}; on the command line "
        "--threshold port_scan.min_ports=30 (repeatable). README 'Detector thresholds' lists them all.",
        "--threshold",
        dict,
    ),
    Setting(
        "intel_files",
        (),
        "Threat-intel indicator files, loaded at start and re-read on SIGHUP: Zeek Intel framework files "
        "(#fields indicator indicator_type meta.source; Intel::ADDR, SUBNET, DOMAIN and URL items) or plain "
        "lists of one IP address, CIDR range or domain a line. The intel_match detector alerts on hosts that "
        "contact them (a domain matches its subdomains too). On the command line --intel FILE, repeatable, "
        "adds to the config file's.",
        "--intel",
        tuple,
    ),
    Setting(
        "evidence",
        True,
        "Save the packets behind each alert as DATA_DIR/evidence/<alert_id>.pcap (from the input file, or from "
        "a dumpcap ring buffer of recent packets when capturing live).",
        "--no-evidence",
        bool,
    ),
    Setting(
        "evidence_ring_mb",
        100.0,
        "Size bound of the live ring buffer of recent raw packets that evidence pcaps are cut from (MB).",
        "--evidence-ring-mb",
        float,
    ),
    Setting("evidence_max_packets", 10000, "Packets kept in one alert's evidence pcap.", "--evidence-max-packets", int),
    Setting("evidence_max_mb", 10.0, "Size cap of one alert's evidence pcap (MB).", "--evidence-max-mb", float),
    Setting(
        "alert_quiet_s",
        300.0,
        "An alert with no new evidence for this many seconds (packet time) is reported as ended on every channel.",
        "--alert-quiet",
        float,
    ),
    Setting("log_min_severity", "low", "Lowest alert severity written to log_file.", None, str, SEVERITIES),
    Setting(
        "eve_file",
        None,
        "Append each alert as a Suricata EVE JSON line to this file (e.g. /var/log/nta/eve.json), for log "
        "shippers to tail; reopened when rotated away. None writes none.",
        "--eve-file",
    ),
    Setting("eve_min_severity", "low", "Lowest alert severity written to eve_file.", None, str, SEVERITIES),
    Setting(
        "zeek_log_dir",
        None,
        "Write Zeek's conn.log, dns.log, http.log and ssl.log into this folder while the analyzer runs (the rows "
        "and uids of export --format zeek), rotated as Zeek does; None writes none.",
        "--zeek-log-dir",
    ),
    Setting(
        "zeek_log_format",
        "tsv",
        "Format of the zeek_log_dir logs: tsv (Zeek's ASCII logs with their header lines) or json (Zeek's JSON lines).",
        "--zeek-log-format",
        str,
        ("tsv", "json"),
    ),
    Setting(
        "zeek_log_rotate_s",
        3600.0,
        "Every this many seconds of network time (packet time for a --read, as zeek -r), the zeek_log_dir logs are "
        "closed, renamed conn.<open time>.log and started anew; 0 never rotates.",
        "--zeek-log-rotate",
        float,
    ),
    Setting(
        "email_to",
        None,
        "Send alert e-mail to these addresses (comma-separated); None sends no e-mail.",
        "--email-to",
    ),
    Setting("email_from", None, "Sender of alert e-mail; None means network-traffic-analyzer@HOSTNAME.", None),
    Setting("smtp_host", "localhost", "SMTP server for alert e-mail.", "--smtp-host"),
    Setting("smtp_port", 0, "SMTP port; 0 means 587 for starttls, 465 for tls, 25 for none.", "--smtp-port", int),
    Setting(
        "smtp_security",
        "starttls",
        "starttls, tls (implicit TLS) or none (plain; a password is then only sent to localhost).",
        "--smtp-security",
        str,
        ("starttls", "tls", "none"),
    ),
    Setting(
        "smtp_user",
        None,
        "SMTP login; its password is read from the environment variable smtp_password_env, never from a config file.",
        None,
    ),
    Setting(
        "smtp_password_env",
        "NTA_SMTP_PASSWORD",
        "Environment variable holding the SMTP password (secrets_file can set it).",
        None,
    ),
    Setting("email_min_severity", "high", "Lowest alert severity sent by e-mail.", None, str, SEVERITIES),
    Setting("email_per_hour", 20, "At most this many alert e-mails an hour; the rest go out as a digest.", None, int),
    Setting("webhook_url", None, "POST each alert as JSON to this http(s) URL; None posts nothing.", "--webhook-url"),
    Setting(
        "webhook_format",
        "generic",
        "Shape of the webhook's JSON: generic (every field), or what slack, teams (Workflows, Adaptive Card), "
        "discord or mattermost incoming webhooks take.",
        "--webhook-format",
        str,
        ("generic", "slack", "teams", "discord", "mattermost"),
    ),
    Setting("webhook_min_severity", "medium", "Lowest alert severity posted to webhook_url.", None, str, SEVERITIES),
    Setting("webhook_per_hour", 60, "At most this many webhook posts an hour; the rest go out as a digest.", None, int),
    Setting(
        "syslog_target",
        None,
        "Send RFC 5424 syslog messages to udp://host:port or tcp://host:port; None sends none.",
        "--syslog-target",
    ),
    Setting("syslog_min_severity", "low", "Lowest alert severity sent to syslog_target.", None, str, SEVERITIES),
    Setting("syslog_per_hour", 600, "At most this many syslog messages an hour; the rest go in a digest.", None, int),
    Setting(
        "sampling",
        True,
        "When live traffic outruns the analysis, analyse a sample of whole flows and scale counts back up "
        "(dumpcap backend); --no-sampling analyses every packet and lets the capture drop instead.",
        "--no-sampling",
        bool,
    ),
    Setting(
        "sample_max_pps",
        0.0,
        "Also sample flows whenever live traffic passes this many packets per second; 0 samples only when the "
        "analysis falls behind.",
        "--sample-max-pps",
        float,
    ),
    Setting(
        "store_backlog_mb",
        100.0,
        "Memory for analysis windows the result store cannot take (disk full, database locked or unreachable): "
        "they are written when it recovers; beyond this the oldest are dropped and counted as lost.",
        "--store-backlog-mb",
        float,
    ),
)

DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


def validate(values: dict[str, Any]) -> None:
    """Raise ConfigError naming the first setting whose value cannot work."""
    for name in values:
        if name not in BY_NAME:
            raise ConfigError(f"unknown setting {name!r}; known settings: {', '.join(BY_NAME)}")
    for s in SETTINGS:
        value = values.get(s.name, s.default)
        if value is None and s.default is None:
            continue
        if s.type is bool and not isinstance(value, bool):
            raise ConfigError(f"{s.name} must be True or False, not {value!r}")
        if s.type in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigError(f"{s.name} must be a number, not {value!r}")
        if s.type is int and not float(value).is_integer():
            raise ConfigError(f"{s.name} must be a whole number, not {value!r}")
        if s.type is tuple and (
            isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value)
        ):
            raise ConfigError(f"{s.name} must be a list of file paths, not {value!r}")
        if s.type is str and not isinstance(value, str):
            raise ConfigError(f"{s.name} must be text, not {value!r}")
        if s.choices and value not in s.choices:
            raise ConfigError(f"{s.name} must be one of {', '.join(s.choices)}, not {value!r}")
    _check_ranges({**DEFAULTS, **values})


def _check_ranges(v: dict[str, Any]) -> None:
    if v["capture_duration"] < 0:
        raise ConfigError(f"capture_duration must be 0 (continuous) or more seconds, not {v['capture_duration']}")
    for name in ("window_s", "scan_window_s", "baseline_s"):
        if v[name] <= 0:
            raise ConfigError(f"{name} must be more than 0 seconds, not {v[name]}")
    if v["scan_min_ports"] < 2:
        raise ConfigError(f"scan_min_ports must be at least 2, not {v['scan_min_ports']}")
    if not v["anomaly_alerts_per_day"] > 0:
        raise ConfigError(f"anomaly_alerts_per_day must be above 0, not {v['anomaly_alerts_per_day']}")
    if v["false_alarm_rate"] is not None and not 0 < v["false_alarm_rate"] < 1:
        raise ConfigError(f"false_alarm_rate must be between 0 and 1, not {v['false_alarm_rate']}")
    if not 1 <= v["dashboard_port"] <= 65535:
        raise ConfigError(f"dashboard_port must be between 1 and 65535, not {v['dashboard_port']}")
    if bool(v["dashboard_tls_cert"]) != bool(v["dashboard_tls_key"]):
        missing = "dashboard_tls_key" if v["dashboard_tls_cert"] else "dashboard_tls_cert"
        raise ConfigError(f"{missing} is not set: HTTPS needs both dashboard_tls_cert and dashboard_tls_key")
    host = v["dashboard_host"]
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(f"dashboard_host must be an IP address or localhost, not {host!r}") from None
    for name in ("retention_days", "retention_max_mb"):
        if v[name] < 0:
            raise ConfigError(f"{name} must be 0 (no limit) or more, not {v[name]}")
    if v["store"] and "://" not in v["store"]:
        raise ConfigError(f"store must be a database URL like postgresql://user@host/db, not {v['store']!r}")
    for name in ("evidence_ring_mb", "evidence_max_packets", "evidence_max_mb"):
        if v[name] <= 0:
            raise ConfigError(f"{name} must be more than 0, not {v[name]}")
    if v["alert_quiet_s"] <= 0:
        raise ConfigError(f"alert_quiet_s must be more than 0 seconds, not {v['alert_quiet_s']}")
    for name in ("email_per_hour", "webhook_per_hour", "syslog_per_hour"):
        if v[name] < 0:
            raise ConfigError(f"{name} must be 0 (no limit) or more, not {v[name]}")
    if v["sample_max_pps"] < 0:
        raise ConfigError(f"sample_max_pps must be 0 (no limit) or more packets per second, not {v['sample_max_pps']}")
    if v["zeek_log_rotate_s"] < 0:
        raise ConfigError(f"zeek_log_rotate_s must be 0 (never rotate) or more seconds, not {v['zeek_log_rotate_s']}")
    if v["store_backlog_mb"] < 0:
        raise ConfigError(f"store_backlog_mb must be 0 (keep no window) or more, not {v['store_backlog_mb']}")
    if v["read_file"] and v["capture_filter"]:
        raise ConfigError("capture_filter applies to live capture only; filter a file with tcpdump -r FILE -w OUT")
    from .detection.catalogue import check_names, check_thresholds  # the detectors: loaded when settings are checked

    check_names(v["detectors"])
    check_thresholds(v["detector_thresholds"])


Config = make_dataclass(
    "Config",
    [(s.name, Any, field(default=s.default)) for s in SETTINGS],
    frozen=True,
    namespace={"__doc__": "A validated, frozen set of settings handed from the facade to the runner."},
)

PATH_SETTINGS = ("data_dir",)  # folders a run hands to other code (the dashboard's file download among them)


def config_of(values: dict[str, Any]) -> Config:
    """The run's Config, with a relative data_dir made absolute once, against the working directory at start.

    Code that gets a relative path may resolve it elsewhere: ``flask.send_file`` takes it as relative to
    the dashboard package, so the default ``data`` made every evidence download fail (issue 15 item 1).
    """
    absolute = {name: os.path.abspath(values[name]) for name in PATH_SETTINGS if values.get(name)}
    lists = {s.name: tuple(values[s.name]) for s in SETTINGS if s.type is tuple and s.name in values}
    return Config(**{**values, **absolute, **lists})


def config_example_text() -> str:
    """The text of config.example.py, derived from SETTINGS (a test keeps the file in step)."""
    lines = [
        '"""Example configuration for network_traffic_analyzer.py, generated from traffic_analyzer/settings.py.',
        "",
        "Copy it, edit the values, and run either of:",
        "    sudo python3 network_traffic_analyzer.py --config my_config.py",
        "    sudo python3 my_config.py",
        "Each key is a NetworkTrafficAnalyzer constructor parameter; command-line options override it.",
        '"""',
        "",
        "CONFIG = {",
    ]
    for s in SETTINGS:
        flag = f" (command line: {s.flag})" if s.flag else ""
        lines += textwrap.wrap(s.help + flag, width=100, initial_indent="    # ", subsequent_indent="    # ")
        lines.append(f"    {json.dumps(s.name)}: {_python_literal(s.default)},")
    lines += [
        "}",
        "",
        'if __name__ == "__main__":',
        "    import os",
        "    import sys",
        "    from pathlib import Path",
        "",
        '    analyzer = Path(__file__).resolve().parent / "network_traffic_analyzer.py"',
        '    os.execv(sys.executable, [sys.executable, str(analyzer), "--config", __file__, *sys.argv[1:]])',
        "",
    ]
    return "\n".join(lines)


def _python_literal(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else repr(value)


def readme_table() -> str:
    """The README's configuration table, derived from SETTINGS (a test keeps the README in step)."""
    rows = ["| parameter | default | command line | meaning |", "|---|---|---|---|"]
    for s in SETTINGS:
        rows.append(f"| `{s.name}` | `{s.default!r}` | `{s.flag or ''}` | {s.help} |")
    return "\n".join(rows)
