"""Soak test: a long live capture of generated traffic, with the analyzer's memory and open files sampled.

Two network namespaces joined by a veth (no default route, removed afterwards); a web server in
one, a client in the other opening short TCP connections (a new flow each) and sending UDP
datagrams to a few service ports, so flows keep starting and ending for the whole run. The analyzer captures the veth.
Every ``--interval`` seconds the analyzer process tree is sampled: resident memory of the
analyzer and of its capture processes, open files, threads, and the windows in its store.

    sudo .venv/bin/python bench/soak.py --minutes 60            # the README's figures
    sudo .venv/bin/python bench/soak.py --minutes 1 --interval 5  # what tests/system/test_soak.py runs

Prints a table and writes every sample as CSV (``--csv``, default bench/out/soak-<minutes>min.csv).
"""

from __future__ import annotations

import argparse
import csv
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from netns import namespace_pair  # noqa: E402

CLI = ROOT / "network_traffic_analyzer.py"
WEB_PORT = 8080
TRAFFIC = r"""
import random, socket, sys, time
dst, deadline, pps = sys.argv[1], time.time() + float(sys.argv[2]), float(sys.argv[3])
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sent = 0
while time.time() < deadline:
    for _ in range(10):
        udp.sendto(b"soak %d" % sent, (dst, random.choice((5353, 5004, 9999, 27015))))
        sent += 1
    try:
        with socket.create_connection((dst, WEB_PORT), timeout=2) as tcp:
            tcp.sendall(b"GET / HTTP/1.0\r\nHost: soak\r\n\r\n")
            while tcp.recv(65536):
                pass
    except OSError:
        pass
    time.sleep(10 / pps)
print(sent)
""".replace("WEB_PORT", str(WEB_PORT))


@dataclass
class Sample:
    """One look at the analyzer process tree."""

    elapsed_s: float
    analyzer_rss_mb: float
    capture_rss_mb: float
    open_files: int
    threads: int
    windows: int


def _tree(pid: int) -> tuple[psutil.Process | None, list[psutil.Process]]:
    """The analyzer (the Python process running the CLI, maybe re-executed) and its capture processes."""
    try:
        top = psutil.Process(pid)
        procs = [top, *top.children(recursive=True)]
    except psutil.Error:
        return None, []
    analyzer = next((p for p in reversed(procs) if _is_cli(p)), None)
    captures = [p for p in procs if _name(p) in ("tshark", "dumpcap")]
    return analyzer, captures


def _is_cli(proc: psutil.Process) -> bool:
    try:
        return str(CLI) in proc.cmdline()
    except psutil.Error:
        return False


def _name(proc: psutil.Process) -> str:
    try:
        return proc.name()
    except psutil.Error:
        return ""


def _windows(db: Path) -> int:
    """Windows committed so far (read-only, so the sample never blocks the analyzer)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT count(DISTINCT window_start) FROM hosts").fetchone()[0]
    except sqlite3.Error:
        return -1


def _sample(pid: int, started: float, db: Path) -> Sample | None:
    analyzer, captures = _tree(pid)
    if analyzer is None:
        return None
    try:
        rss = analyzer.memory_info().rss / 2**20
        files = analyzer.num_fds()
        threads = analyzer.num_threads()
        capture_rss = sum(p.memory_info().rss for p in captures if p.is_running()) / 2**20
    except psutil.Error:
        return None
    elapsed = round(time.monotonic() - started, 1)
    return Sample(elapsed, round(rss, 1), round(capture_rss, 1), files, threads, _windows(db))


def soak(minutes: float, interval_s: float, pps: float, backend: str | None) -> tuple[list[Sample], dict]:
    """Run the analyzer on generated traffic for ``minutes`` and sample it every ``interval_s``."""
    duration = minutes * 60
    with namespace_pair() as pair, tempfile.TemporaryDirectory(prefix="nta-soak-") as tmp:
        data_dir = Path(tmp) / "data"
        web = pair.popen_in(
            pair.ns_a, sys.executable, "-m", "http.server", str(WEB_PORT), "--bind", pair.ip_a, "--directory", tmp,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        cmd = [
            sys.executable, str(CLI), "--interface", pair.if_a, "--duration", str(duration + 5), "--no-dashboard",
            "--data-dir", str(data_dir), "--log-file", str(Path(tmp) / "soak.log"), "--json", "--window", "5",
        ]  # fmt: skip
        if backend:
            cmd += ["--backend", backend]
        analyzer = pair.popen_in(pair.ns_a, *cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)  # the capture opens
        traffic = pair.popen_in(
            pair.ns_b, sys.executable, "-c", TRAFFIC, pair.ip_a, str(duration), str(pps),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        started = time.monotonic()
        samples: list[Sample] = []
        try:
            while analyzer.poll() is None and time.monotonic() - started < duration + 120:
                sample = _sample(analyzer.pid, started, data_dir / "analyzer.db")
                if sample is not None:
                    samples.append(sample)
                    print(_row(sample), flush=True)
                time.sleep(interval_s)
            out, err = analyzer.communicate(timeout=120)
        finally:
            for proc in (traffic, analyzer, web):
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(timeout=30)
        if analyzer.returncode != 0:
            raise SystemExit(f"the analyzer failed ({analyzer.returncode}): {err.strip()[-500:]}")
        summary = json.loads(out)
        summary["datagrams_sent"] = int((traffic.stdout.read() or "0").strip() or 0)
    return samples, summary


def _row(s: Sample) -> str:
    return (
        f"{s.elapsed_s:>8.0f} s  analyzer {s.analyzer_rss_mb:>7.1f} MB  capture {s.capture_rss_mb:>7.1f} MB  "
        f"files {s.open_files:>4}  threads {s.threads:>3}  windows {s.windows:>5}"
    )


def trend(samples: list[Sample]) -> dict:
    """Growth over the run, skipping the warm-up (the first quarter): flat is the target."""
    samples = [s for s in samples if s.capture_rss_mb > 0] or samples  # while the capture ran
    steady = samples[len(samples) // 4 :] or samples
    hours = max((steady[-1].elapsed_s - steady[0].elapsed_s) / 3600, 1e-9)
    return {
        "samples": len(samples),
        "analyzer_rss_first_mb": samples[0].analyzer_rss_mb,
        "analyzer_rss_max_mb": max(s.analyzer_rss_mb for s in samples),
        "analyzer_rss_last_mb": samples[-1].analyzer_rss_mb,
        "analyzer_growth_mb_per_hour": round((steady[-1].analyzer_rss_mb - steady[0].analyzer_rss_mb) / hours, 1),
        "capture_rss_max_mb": max(s.capture_rss_mb for s in samples),
        "open_files_min": min(s.open_files for s in steady),
        "open_files_max": max(s.open_files for s in steady),
        "windows": samples[-1].windows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--interval", type=float, default=60, help="seconds between samples")
    parser.add_argument("--pps", type=float, default=500, help="approximate UDP datagrams per second")
    parser.add_argument("--backend", help="live capture backend (default: the analyzer's default)")
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--json", action="store_true", help="print the trend as JSON at the end")
    args = parser.parse_args()
    samples, summary = soak(args.minutes, args.interval, args.pps, args.backend)
    if not samples:
        raise SystemExit("no sample was taken: the analyzer ended at once")
    out = args.csv or ROOT / "bench" / "out" / f"soak-{args.minutes:g}min.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(asdict(samples[0])))
        writer.writeheader()
        writer.writerows(asdict(s) for s in samples)
    result = trend(samples) | {
        "packets": summary["packets"],
        "flows": summary["flows"],
        "dropped": summary.get("dropped"),
        "alerts": len(summary["alerts"]),
        "datagrams_sent": summary["datagrams_sent"],
        "csv": str(out),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>28}: {value}")


if __name__ == "__main__":
    main()
