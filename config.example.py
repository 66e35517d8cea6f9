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
    # BPF capture filter for live capture, e.g. 'tcp or udp port 53'. (command line: --filter)
    "capture_filter": None,
    # Live capture backend: pyshark (the default) or tshark (faster field output); files are always
    # decoded by tshark. (command line: --backend)
    "capture_backend": "pyshark",
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
    # Anomaly model: isolation_forest, or autoencoder (a Kitsune-style autoencoder ensemble).
    # (command line: --anomaly-model)
    "anomaly_model": "isolation_forest",
    # Share of baseline host windows the anomaly threshold may flag (the false-alarm budget).
    # (command line: --false-alarm-rate)
    "false_alarm_rate": 0.001,
    # Seconds of traffic per analysis window. (command line: --window)
    "window_s": 5.0,
    # Distinct ports of one host that make a port scan. (command line: --scan-min-ports)
    "scan_min_ports": 25,
    # Seconds over which port-scan probes add up. (command line: --scan-window)
    "scan_window_s": 60.0,
    # Folder for the result database and the model. (command line: --data-dir)
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
    # Show a progress bar on stderr while reading a file. (command line: --no-progress)
    "progress": True,
    # Started as root, become this user once the capture is open (files in data_dir are handed
    # over); None means the user who ran sudo, 'root' keeps root. (command line: --run-as)
    "run_as": None,
    # File of NAME=value lines (e.g. NTA_DASHBOARD_PASSWORD, NTA_SMTP_PASSWORD) read into the
    # environment; keep it chmod 600. (command line: --secrets-file)
    "secrets_file": None,
}

if __name__ == "__main__":
    import os
    import sys
    from pathlib import Path

    analyzer = Path(__file__).resolve().parent / "network_traffic_analyzer.py"
    os.execv(sys.executable, [sys.executable, str(analyzer), "--config", __file__, *sys.argv[1:]])
