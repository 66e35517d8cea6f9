"""Throughput and peak memory of the packet readers and of the analysis: python3 bench/run_benchmarks.py

Builds a replay of the public captures (bench/make_capture.py; 1M packets by default,
``--packets 10000000`` for 10M) and runs each tool in its own process, so each peak RSS is
its own: FastPcapSource alone; PcapFileSource (tshark -T fields -> pandas); tshark -T fields
alone; the seed-style pyshark loop; dpkt; scapy; NFStream (if installed); this project end to
end (file -> packet table -> flows -> host windows -> alerts), once on the replay's own sparse
timing (per-window cost dominates) and once on the same packets spaced as a busy link
(``pipeline_busy``: per-packet cost dominates); and the IsolationForest's fit
and scoring time per 100k host windows. The slow tools read a slice (a prefix of the same
replay) so that the whole run takes minutes. Prints a markdown table.

Third-party tools are benchmark-only: ``pip install dpkt scapy nfstream`` into the venv.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from make_capture import OUT, at_rate, build, captures_folder  # noqa: E402

# Tool -> (packets it reads, description). None means the whole capture.
SLICES: dict[str, int | None] = {
    "fast": None,
    "tshark_fields": 200_000,
    "tshark_alone": 200_000,
    "dpkt": None,
    "scapy": 20_000,
    "pyshark": 5_000,
    "nfstream": None,
    "pipeline": 20_000,
    "pipeline_busy": None,
}
LABELS = {
    "fast": "FastPcapSource (numpy decode -> packet table)",
    "tshark_fields": "PcapFileSource (tshark -T fields -> pandas)",
    "tshark_alone": "tshark -T fields alone (output discarded)",
    "dpkt": "dpkt loop (Ethernet/IP/TCP/UDP objects per packet)",
    "scapy": "scapy PcapReader loop",
    "pyshark": "pyshark.FileCapture loop (the seed's way)",
    "nfstream": "NFStream flows (default settings)",
    "pipeline": "this project end to end (--read: fast reader, Analysis, 5 s windows)",
    "pipeline_busy": "this project end to end, the same packets as a busy link (100,000 packets/s)",
}
BUSY_PPS = 100_000.0  # pipeline_busy: the replay's packets spaced evenly at this rate
WINDOW_S = 5.0
FOREST_ROWS = 100_000


# --------------------------------------------------------------------------- workers (one process each)


def work_fast(path: Path) -> dict:
    from traffic_analyzer.capture.fast_pcap import FastPcapSource

    return {"packets": sum(len(b) for b in FastPcapSource(path, progress=False).batches())}


def work_tshark_fields(path: Path) -> dict:
    from traffic_analyzer.capture.pcap_file import PcapFileSource

    return {"packets": sum(len(b) for b in PcapFileSource(path, progress=False).batches())}


def work_tshark_alone(path: Path) -> dict:
    from traffic_analyzer.capture.tshark import FIELD_ARGS, tshark_path

    out = subprocess.run([tshark_path(), "-n", "-r", str(path), *FIELD_ARGS], capture_output=True, check=True)
    return {"packets": out.stdout.count(b"\n")}


def work_dpkt(path: Path) -> dict:
    import dpkt

    packets = 0
    with path.open("rb") as fh:
        for _, buf in dpkt.pcap.Reader(fh):
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            if isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6):
                l4 = ip.data
                if isinstance(l4, dpkt.tcp.TCP | dpkt.udp.UDP):
                    _ = (l4.sport, l4.dport)
            packets += 1
    return {"packets": packets}


def work_scapy(path: Path) -> dict:
    from scapy.all import IP, TCP, UDP, PcapReader

    packets = 0
    for pkt in PcapReader(str(path)):
        if IP in pkt:
            _ = (pkt[IP].src, pkt[IP].dst)
            if TCP in pkt or UDP in pkt:
                _ = pkt.sport
        packets += 1
    return {"packets": packets}


def work_pyshark(path: Path) -> dict:
    import pyshark

    packets = 0
    capture = pyshark.FileCapture(str(path), keep_packets=False)
    try:
        for pkt in capture:
            _ = (pkt.highest_layer, pkt.length, pkt.sniff_timestamp)
            if hasattr(pkt, "ip"):
                _ = (pkt.ip.src, pkt.ip.dst)
            packets += 1
    finally:
        capture.close()
    return {"packets": packets}


def work_nfstream(path: Path) -> dict:
    import nfstream

    flows = packets = 0
    for flow in nfstream.NFStreamer(source=str(path)):
        flows += 1
        packets += flow.bidirectional_packets
    return {"packets": packets, "flows": flows}


def work_pipeline(path: Path) -> dict:
    from traffic_analyzer.capture.file_reader import CaptureFileSource
    from traffic_analyzer.pipeline import Analysis, default_detectors, file_windows

    analysis = Analysis(default_detectors(scan_min_ports=25, scan_window_s=60.0))
    packets = windows = alerts = 0
    for batch in file_windows(CaptureFileSource(path, progress=False).batches(), WINDOW_S):
        result, _ = analysis.process(batch, live=False)
        packets += len(batch)
        windows += 1
        alerts += len(result.alerts)
    analysis.finish()
    return {"packets": packets, "windows": windows, "alerts": alerts}


def work_pipeline_busy(path: Path) -> dict:
    return work_pipeline(path)


def work_forest(path: Path) -> dict:
    """IsolationForest fit and score on 100k host windows resampled from real ones."""
    import numpy as np
    import pandas as pd

    from traffic_analyzer.capture.fast_pcap import FastPcapSource
    from traffic_analyzer.detection.anomaly.iforest import HostAnomalyModel
    from traffic_analyzer.features.host_windows import host_features_of
    from traffic_analyzer.pipeline import Analysis, file_windows

    analysis = Analysis(detectors=[])
    rows = [
        host_features_of(analysis.process(batch, live=False)[1])
        for batch in file_windows(FastPcapSource(path, progress=False).batches(), WINDOW_S)
    ]
    real = pd.concat(rows)
    rng = np.random.default_rng(0)
    picked = real.iloc[rng.integers(0, len(real), FOREST_ROWS)].to_numpy(dtype=float)
    jitter = rng.lognormal(0.0, 0.3, picked.shape)  # realistic spread around real windows
    X = pd.DataFrame(np.round(picked * jitter), columns=real.columns)
    started = time.perf_counter()
    model = HostAnomalyModel(false_alarm_rate=0.001).fit(X)
    fitted = time.perf_counter()
    model.decision_function(X)
    scored = time.perf_counter()
    return {"real_windows": len(real), "fit_s": fitted - started, "score_s": scored - fitted, "rows": FOREST_ROWS}


WORKERS = {name: globals()[f"work_{name}"] for name in [*SLICES, "forest"]}
# Modules each worker imports before its clock starts (start-up is not throughput).
PRELOAD = {
    "fast": ["traffic_analyzer.capture.fast_pcap"],
    "tshark_fields": ["traffic_analyzer.capture.pcap_file"],
    "tshark_alone": ["traffic_analyzer.capture.tshark"],
    "dpkt": ["dpkt"],
    "scapy": ["scapy.all"],
    "pyshark": ["pyshark"],
    "nfstream": ["nfstream"],
    "pipeline": ["traffic_analyzer.pipeline", "traffic_analyzer.capture.file_reader"],
    "pipeline_busy": ["traffic_analyzer.pipeline", "traffic_analyzer.capture.file_reader"],
    "forest": [
        "traffic_analyzer.pipeline",
        "traffic_analyzer.capture.fast_pcap",
        "traffic_analyzer.detection.anomaly.iforest",
    ],
}


def run_worker(name: str, path: Path) -> None:
    for module in PRELOAD[name]:
        importlib.import_module(module)
    started = time.perf_counter()
    result = WORKERS[name](path)
    result["seconds"] = time.perf_counter() - started
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result["rss_mb"] = round(own / 1024)
    result["child_rss_mb"] = round(children / 1024)
    print(json.dumps(result))


# --------------------------------------------------------------------------- driver


def measure(name: str, path: Path, timeout_s: float, attempts: int = 2) -> dict:
    """Run one tool in a fresh process; a second attempt for tools that fail now and then (pyshark)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, str(path)]
    error = "failed"
    for _ in range(attempts):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return {"error": f"no result within {timeout_s:.0f} s"}
        if proc.returncode == 0:
            return json.loads(proc.stdout.strip().splitlines()[-1])
        error = (proc.stderr.strip().splitlines() or ["failed"])[-1]
    return {"error": error}


def available(name: str) -> str | None:
    """Why a tool cannot run here, or None."""
    modules = {"dpkt": "dpkt", "scapy": "scapy", "pyshark": "pyshark", "nfstream": "nfstream"}
    if name in modules:
        if importlib.util.find_spec(modules[name]) is None:
            return f"not installed (pip install {modules[name]})"
    if name.startswith("tshark") or name == "pyshark":
        if shutil.which("tshark") is None:
            return "tshark not installed"
    return None


def table(results: dict[str, dict], total: int) -> str:
    fast = results.get("fast", {})
    fast_rate = fast.get("packets", 0) / fast["seconds"] if fast.get("seconds") else None
    lines = [
        "| tool | packets read | seconds | packets/s | FastPcapSource is ... x faster "
        "| peak RSS MB (own + tshark child) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, label in LABELS.items():
        r = results.get(name)
        if r is None:
            continue
        if "error" in r:
            lines.append(f"| {label} | - | - | - | - | {r['error']} |")
            continue
        rate = r["packets"] / r["seconds"] if r["seconds"] else 0.0
        ratio = f"{fast_rate / rate:,.1f}" if fast_rate and rate and name != "fast" else "1.0"
        rss = f"{r['rss_mb']:,}" + (f" + {r['child_rss_mb']:,}" if r.get("child_rss_mb") else "")
        extra = ""
        if "windows" in r:
            extra = f" ({r['windows']:,} windows, {1000 * r['seconds'] / r['windows']:.0f} ms each)"
        lines.append(f"| {label}{extra} | {r['packets']:,} | {r['seconds']:.1f} | {rate:,.0f} | {ratio} | {rss} |")
    forest = results.get("forest")
    if forest and "error" not in forest:
        lines.append("")
        lines.append(
            f"IsolationForest (HostAnomalyModel, 200 trees) on {forest['rows']:,} host windows resampled from "
            f"{forest['real_windows']:,} real ones: fit {forest['fit_s']:.1f} s, score {forest['score_s']:.1f} s "
            f"per 100k windows; peak RSS {forest['rss_mb']:,} MB."
        )
    lines.append("")
    lines.append(f"Capture: {total:,}-packet replay of {captures_folder()} (bench/make_capture.py).")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=1_000_000, help="size of the replayed capture")
    parser.add_argument("--only", default="", help="comma-separated tools to run (default: all)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per tool")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("path", nargs="?", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args.worker, args.path)
        return
    wanted = [n for n in args.only.split(",") if n] or [*SLICES, "forest"]
    full = build(args.packets, OUT / f"replay-{args.packets}.pcap")
    results: dict[str, dict] = {}
    for name in wanted:
        size = SLICES.get(name, SLICES["pipeline"])
        size = args.packets if size is None else min(size, args.packets)
        path = full if size == args.packets else build(size, OUT / f"replay-{size}.pcap")
        if name == "pipeline_busy":
            path = at_rate(full, BUSY_PPS, OUT / f"replay-{args.packets}-at-{BUSY_PPS:.0f}pps.pcap")
        reason = available(name)
        print(f"{name}: {size:,} packets ...", file=sys.stderr, flush=True)
        results[name] = {"error": reason} if reason else measure(name, path, args.timeout)
    print(table(results, args.packets))


if __name__ == "__main__":
    main()
