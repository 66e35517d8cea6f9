"""Example configuration for network_traffic_analyzer.py, generated from traffic_analyzer/settings.py.

Copy it, edit the values, and run either of:
    sudo python3 network_traffic_analyzer.py --config my_config.py
    sudo python3 my_config.py
Each key is a NetworkTrafficAnalyzer constructor parameter; command-line options override it.
"""

CONFIG = {
    # Interface to capture on; None picks the one holding the default route. (command line:
    # --interface)
    "interface": None,
    # Seconds to capture; 0 captures until stopped (Ctrl-C). (command line: --duration)
    "capture_duration": 0.0,
    # BPF capture filter for live capture, e.g. 'tcp or udp port 53'; the dashboard's own traffic is
    # always left out. (command line: --filter)
    "capture_filter": None,
    # Live capture backend: dumpcap (the default: dumpcap into the in-process decoder, with kernel
    # drop counts and flow sampling under load), pyshark, or tshark (tshark's field output);
    # file_reader says how files are decoded. (command line: --backend)
    "capture_backend": "dumpcap",
    # Analyse this pcap/pcapng file instead of capturing live. (command line: --read)
    "read_file": None,
    # Train the anomaly model on these benign pcap/pcapng files (comma-separated) and save it.
    # (command line: --train)
    "train_file": None,
    # Without a saved model, learn the baseline from the first this many seconds of a live capture.
    # (command line: --baseline)
    "baseline_s": 600.0,
    # Where the anomaly model is saved and loaded; None means DATA_DIR/model.joblib. (command line:
    # --model)
    "model_path": None,
    # Anomaly model: isolation_forest, autoencoder (a Kitsune-style autoencoder ensemble), or
    # local_outlier_factor (scikit-learn's LOF in novelty mode). (command line: --anomaly-model)
    "anomaly_model": "isolation_forest",
    # The anomaly model's false-alarm budget: about this many anomaly alerts a day on traffic like
    # its baseline (its threshold is placed in the baseline's scores, extrapolated beyond them when
    # a day holds more host windows than the baseline). (command line: --anomaly-alerts-per-day)
    "anomaly_alerts_per_day": 1.0,
    # Instead of anomaly_alerts_per_day, the share of host windows the anomaly threshold may flag
    # (0.001 flags 36 an hour of 50 hosts in 5 s windows). None uses anomaly_alerts_per_day.
    # (command line: --false-alarm-rate)
    "false_alarm_rate": None,
    # Seconds of traffic per analysis window. (command line: --window)
    "window_s": 5.0,
    # Reading a file, run the detectors in a second process while the next window is read and its
    # flows metered (uses a second core when there is one). (command line: --no-parallel-detection)
    "parallel_detection": True,
    # Distinct ports of one host that make a port scan. (command line: --scan-min-ports)
    "scan_min_ports": 25,
    # Seconds over which port-scan probes add up (Zeek's scan policy also looks 5 minutes back): a
    # slow scan of one probe every few seconds still adds up. (command line: --scan-window)
    "scan_window_s": 300.0,
    # Folder for the result database, the model and alert evidence (relative: to the working
    # directory at start). (command line: --data-dir)
    "data_dir": "data",
    # Log file: a line per capture window and per alert. (command line: --log-file)
    "log_file": "network_analysis.log",
    # Serve the live dashboard. (command line: --no-dashboard)
    "dashboard": True,
    # Address the dashboard binds to. (command line: --host)
    "dashboard_host": "127.0.0.1",
    # Port of the dashboard. (command line: --port)
    "dashboard_port": 8050,
    # Require a login (NTA_DASHBOARD_USER / NTA_DASHBOARD_PASSWORD from the environment) when the
    # dashboard binds an address other than 127.0.0.1; --no-auth serves it to anyone who can reach
    # it. (command line: --no-auth)
    "dashboard_auth": True,
    # PEM certificate file: serve the dashboard over HTTPS (with dashboard_tls_key); do so whenever
    # it binds an address other than 127.0.0.1, as basic auth sends the password with every request.
    # (command line: --tls-cert)
    "dashboard_tls_cert": None,
    # PEM private key file of dashboard_tls_cert; keep it chmod 600. (command line: --tls-key)
    "dashboard_tls_key": None,
    # Show a progress bar on stderr while reading a file. (command line: --no-progress)
    "progress": True,
    # Live capture says nothing on stderr but warnings and alerts: no 'capturing on' and dashboard
    # lines at start, no status line (packets, alerts, drops, sampled-out) every minute. (command
    # line: --quiet)
    "quiet": False,
    # Started as root, become this user once the capture is open (files in data_dir are handed
    # over); None means the user who ran sudo, 'root' keeps root. (command line: --run-as)
    "run_as": None,
    # File of NAME=value lines (e.g. NTA_DASHBOARD_PASSWORD, NTA_SMTP_PASSWORD) read into the
    # environment; keep it chmod 600. (command line: --secrets-file)
    "secrets_file": None,
    # Result store as an SQLAlchemy URL, e.g. postgresql://user@db-host/nta for several sensors;
    # None means SQLite in data_dir. (command line: --store)
    "store": None,
    # This sensor's name in a shared store; None means the machine's host name. (command line:
    # --sensor-name)
    "sensor_name": None,
    # Delete results older than this many days; 0 keeps them. (command line: --retention-days)
    "retention_days": 30.0,
    # Delete the oldest results while the store holds more than this many MB; 0 sets no limit.
    # (command line: --retention-max-mb)
    "retention_max_mb": 0.0,
    # How files are decoded: auto (the in-process fast reader, tshark for link types it cannot
    # read), fast, or tshark. (command line: --file-reader)
    "file_reader": "auto",
    # Which known-attack detectors run: None runs them all; a list of names such as ['port_scan',
    # 'brute_force'] runs those; [] runs none (the anomaly model alone). On the command line
    # --detectors port_scan,brute_force, --detectors all or --detectors none. (command line:
    # --detectors)
    "detectors": None,
    # Override known-attack detector thresholds, e.g. {'port_scan': {'min_ports': 30}}; on the
    # command line --threshold port_scan.min_ports=30 (repeatable). README 'Detector thresholds'
    # lists them all. (command line: --threshold)
    "detector_thresholds": None,
    # Threat-intel indicator files, loaded at start and re-read on SIGHUP: Zeek Intel framework
    # files (#fields indicator indicator_type meta.source; Intel::ADDR, SUBNET, DOMAIN and URL
    # items) or plain lists of one IP address, CIDR range or domain a line. The intel_match detector
    # alerts on hosts that contact them (a domain matches its subdomains too). On the command line
    # --intel FILE, repeatable, adds to the config file's. (command line: --intel)
    "intel_files": (),
    # Save the packets behind each alert as DATA_DIR/evidence/<alert_id>.pcap (from the input file,
    # or from a dumpcap ring buffer of recent packets when capturing live). (command line: --no-
    # evidence)
    "evidence": True,
    # Size bound of the live ring buffer of recent raw packets that evidence pcaps are cut from
    # (MB). (command line: --evidence-ring-mb)
    "evidence_ring_mb": 100.0,
    # Packets kept in one alert's evidence pcap. (command line: --evidence-max-packets)
    "evidence_max_packets": 10000,
    # Size cap of one alert's evidence pcap (MB). (command line: --evidence-max-mb)
    "evidence_max_mb": 10.0,
    # An alert with no new evidence for this many seconds (packet time) is reported as ended on
    # every channel. (command line: --alert-quiet)
    "alert_quiet_s": 300.0,
    # Lowest alert severity written to log_file.
    "log_min_severity": "low",
    # Append each alert as a Suricata EVE JSON line to this file (e.g. /var/log/nta/eve.json), for
    # log shippers to tail; reopened when rotated away. None writes none. (command line: --eve-file)
    "eve_file": None,
    # Lowest alert severity written to eve_file.
    "eve_min_severity": "low",
    # Write Zeek's conn.log, dns.log, http.log and ssl.log into this folder while the analyzer runs
    # (the rows and uids of export --format zeek), rotated as Zeek does; None writes none. (command
    # line: --zeek-log-dir)
    "zeek_log_dir": None,
    # Format of the zeek_log_dir logs: tsv (Zeek's ASCII logs with their header lines) or json
    # (Zeek's JSON lines). (command line: --zeek-log-format)
    "zeek_log_format": "tsv",
    # Every this many seconds of network time (packet time for a --read, as zeek -r), the
    # zeek_log_dir logs are closed, renamed conn.<open time>.log and started anew; 0 never rotates.
    # (command line: --zeek-log-rotate)
    "zeek_log_rotate_s": 3600.0,
    # Send alert e-mail to these addresses (comma-separated); None sends no e-mail. (command line:
    # --email-to)
    "email_to": None,
    # Sender of alert e-mail; None means network-traffic-analyzer@HOSTNAME.
    "email_from": None,
    # SMTP server for alert e-mail. (command line: --smtp-host)
    "smtp_host": "localhost",
    # SMTP port; 0 means 587 for starttls, 465 for tls, 25 for none. (command line: --smtp-port)
    "smtp_port": 0,
    # starttls, tls (implicit TLS) or none (plain; a password is then only sent to localhost).
    # (command line: --smtp-security)
    "smtp_security": "starttls",
    # SMTP login; its password is read from the environment variable smtp_password_env, never from a
    # config file.
    "smtp_user": None,
    # Environment variable holding the SMTP password (secrets_file can set it).
    "smtp_password_env": "NTA_SMTP_PASSWORD",
    # Lowest alert severity sent by e-mail.
    "email_min_severity": "high",
    # At most this many alert e-mails an hour; the rest go out as a digest.
    "email_per_hour": 20,
    # POST each alert as JSON to this http(s) URL; None posts nothing. (command line: --webhook-url)
    "webhook_url": None,
    # Shape of the webhook's JSON: generic (every field), or what slack, teams (Workflows, Adaptive
    # Card), discord or mattermost incoming webhooks take. (command line: --webhook-format)
    "webhook_format": "generic",
    # Lowest alert severity posted to webhook_url.
    "webhook_min_severity": "medium",
    # At most this many webhook posts an hour; the rest go out as a digest.
    "webhook_per_hour": 60,
    # Send RFC 5424 syslog messages to udp://host:port or tcp://host:port; None sends none. (command
    # line: --syslog-target)
    "syslog_target": None,
    # Lowest alert severity sent to syslog_target.
    "syslog_min_severity": "low",
    # At most this many syslog messages an hour; the rest go in a digest.
    "syslog_per_hour": 600,
    # When live traffic outruns the analysis, analyse a sample of whole flows and scale counts back
    # up (dumpcap backend); --no-sampling analyses every packet and lets the capture drop instead.
    # (command line: --no-sampling)
    "sampling": True,
    # Also sample flows whenever live traffic passes this many packets per second; 0 samples only
    # when the analysis falls behind. (command line: --sample-max-pps)
    "sample_max_pps": 0.0,
    # Memory for analysis windows the result store cannot take (disk full, database locked or
    # unreachable): they are written when it recovers; beyond this the oldest are dropped and
    # counted as lost. (command line: --store-backlog-mb)
    "store_backlog_mb": 100.0,
}

if __name__ == "__main__":
    import os
    import sys
    from pathlib import Path

    analyzer = Path(__file__).resolve().parent / "network_traffic_analyzer.py"
    os.execv(sys.executable, [sys.executable, str(analyzer), "--config", __file__, *sys.argv[1:]])
