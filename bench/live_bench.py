"""Live benchmark: replayed traffic at rising rates over a veth between two namespaces, captured by the analyzer.

Two network namespaces joined by a veth (no default route, removed afterwards). tcpreplay in
one replays the benchmark capture (``bench/make_capture.py``), IPv4 only and rewritten into the
namespaces' 10.213.0.0/24 (``tcprewrite --pnat``), at each ``--rates`` packets/s for
``--seconds``; the analyzer (default settings but ``--no-evidence``: dumpcap backend, flow sampling
on) captures the other end. Per rate: packets sent, lost on the veth before any capture could see them, captured,
kernel (capture) drops, sampled out, and the keep rate at the end.

Then attack to alert: with ``--latency-pps`` of background replay running, ``--trials`` nmap SYN
scans, each from a new address, and the store polled every 0.1 s until the port_scan alert row
for that attacker is there; the time from the scan's first packet (the alert's start) to that
moment is reported, for each ``--windows`` setting.

    sudo .venv/bin/python bench/live_bench.py                       # the figures in bench/RESULTS.md
    sudo .venv/bin/python bench/live_bench.py --rates 20000 --seconds 5 --trials 2   # a quick look

Bounded: every replay is limited by packet count, every wait by a timeout.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from make_capture import build  # noqa: E402
from netns import SUBNET_PREFIX, HostPair, namespace_pair  # noqa: E402

CLI = ROOT / "network_traffic_analyzer.py"
OUT = ROOT / "bench" / "out"
SOURCE_PACKETS = 200_000  # the replayed capture (looped as needed)
START_TIMEOUT_S = 40.0
STOP_TIMEOUT_S = 120.0
ALERT_TIMEOUT_S = 60.0
SCAN_PORTS = "1-200"
DRAIN_S = 5.0  # after the replay, time for the capture to hand on what it holds before the analyzer stops


@dataclass
class RateResult:
    """What one rate step saw."""

    target_pps: int
    achieved_pps: float
    sent: int
    veth_dropped: int
    captured: int
    kernel_dropped: int | None
    sampled_out: int
    analysed: int
    keep_rate: float
    alerts: int


def replay_capture() -> Path:
    """The benchmark capture, IPv4 only, every address moved into the namespaces' /24."""
    rewritten = OUT / f"live-replay-{SOURCE_PACKETS}.pcap"
    if rewritten.exists():
        return rewritten
    source = build(SOURCE_PACKETS, OUT / f"replay-{SOURCE_PACKETS}.pcap")
    ipv4 = OUT / "live-replay-ipv4.pcap"
    subprocess.run(["tcpdump", "-Z", "root", "-r", str(source), "-w", str(ipv4), "ip"], check=True, capture_output=True)
    pnat = f"--pnat=0.0.0.0/0:{SUBNET_PREFIX}.0/24"
    subprocess.run(
        ["tcprewrite", pnat, "--fixcsum", f"--infile={ipv4}", f"--outfile={rewritten}"], check=True, capture_output=True
    )
    ipv4.unlink()
    return rewritten


def rx_dropped(pair: HostPair) -> int:
    """Packets the sensor's end of the veth dropped before the stack (and any capture) saw them."""
    out = pair.run_in(pair.ns_a, "cat", f"/sys/class/net/{pair.if_a}/statistics/rx_dropped").stdout
    return int(out.strip() or 0)


def start_analyzer(pair: HostPair, work: Path, window_s: float, extra: list[str]) -> subprocess.Popen:
    log = work / "analysis.log"
    proc = pair.popen_in(
        pair.ns_a,
        sys.executable,
        str(CLI),
        "--interface",
        pair.if_a,
        "--window",
        str(window_s),
        "--no-dashboard",
        "--json",
        "--no-progress",
        "--data-dir",
        str(work / "data"),
        "--log-file",
        str(log),
        *extra,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not (log.exists() and "capturing on" in log.read_text()):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"the analyzer did not start: {proc.communicate()[1][-500:]}")
        time.sleep(0.2)
    time.sleep(3)  # dumpcap opens the interface after the run is logged
    return proc


def stop_analyzer(proc: subprocess.Popen) -> dict:
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    try:
        summary = json.loads(out)
    except json.JSONDecodeError:
        raise SystemExit(f"the analyzer failed (exit {proc.returncode}): {err[-3000:]}") from None
    if proc.returncode != 0:  # the summary is there, but say what went wrong
        print(f"analyzer exit {proc.returncode}: {summary.get('error') or err.strip().splitlines()[-1:]}", flush=True)
    return summary


def replay(pair: HostPair, capture: Path, pps: int, packets: int, wait: bool = True):
    cmd = ["tcpreplay", "-i", pair.if_b, f"--pps={pps}", f"--limit={packets}", "--loop=0", "--preload-pcap"]
    if not wait:
        return pair.popen_in(pair.ns_b, *cmd, str(capture), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    timeout = packets / pps * 3 + 60
    done = pair.run_in(pair.ns_b, *cmd, str(capture), timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"tcpreplay failed: {done.stderr.strip()}")
    sent = int(re.search(r"Actual: (\d+) packets", done.stdout).group(1))
    rated = float(re.search(r"Rated: [\d.]+ Bps, [\d.]+ Mbps, ([\d.]+) pps", done.stdout).group(1))
    return sent, rated


def rate_step(pair: HostPair, capture: Path, pps: int, seconds: float, extra: list[str]) -> RateResult:
    with tempfile.TemporaryDirectory(prefix="nta-live-bench-") as tmp:
        analyzer = start_analyzer(pair, Path(tmp), 5.0, extra)
        before = rx_dropped(pair)
        sent, achieved = replay(pair, capture, pps, int(pps * seconds))
        lost = rx_dropped(pair) - before
        time.sleep(DRAIN_S)
        s = stop_analyzer(analyzer)
    return RateResult(
        target_pps=pps,
        achieved_pps=round(achieved),
        sent=sent,
        veth_dropped=lost,
        captured=s["packets"] + s["sampled_out"],
        kernel_dropped=s["dropped"],
        sampled_out=s["sampled_out"],
        analysed=s["packets"],
        keep_rate=s["sample_rate"],
        alerts=len(s["alerts"]),
    )


def scan_alert_latency(
    pair: HostPair, capture: Path, window_s: float, trials: int, background_pps: int, extra: list[str]
) -> list[float]:
    """Seconds from each scan's first packet to its port_scan row in the store."""
    latencies = []
    with tempfile.TemporaryDirectory(prefix="nta-live-bench-") as tmp:
        work = Path(tmp)
        analyzer = start_analyzer(pair, work, window_s, extra)
        background = None
        if background_pps:
            seconds = trials * (ALERT_TIMEOUT_S / 4) + 30
            background = replay(pair, capture, background_pps, int(background_pps * seconds), wait=False)
            time.sleep(6)  # the sampler settles
        try:
            for trial in range(trials):
                attacker = f"{SUBNET_PREFIX}.{100 + trial}"
                pair.run_in(pair.ns_b, "ip", "addr", "add", f"{attacker}/24", "dev", pair.if_b)
                time.sleep(1.3 * (trial % 4))  # scans start at different points of a window
                scan = pair.popen_in(
                    pair.ns_b,
                    *("nmap", "-n", "-Pn", "-sS", "-p", SCAN_PORTS, "--max-retries", "0", "-T4"),
                    *("-S", attacker, "-e", pair.if_b, pair.ip_a),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                latencies.append(_wait_for_alert(work / "data" / "analyzer.db", attacker))
                scan.wait(timeout=60)
        finally:
            if background is not None:
                background.terminate()
                background.wait(timeout=30)
            stop_analyzer(analyzer)
    return latencies


def _wait_for_alert(db_path: Path, attacker: str) -> float:
    deadline = time.time() + ALERT_TIMEOUT_S
    query = "SELECT start FROM alerts WHERE kind = 'port_scan' AND attacker = ?"
    while time.time() < deadline:
        try:
            with sqlite3.connect(db_path, timeout=5) as db:
                row = db.execute(query, (attacker,)).fetchone()
        except sqlite3.OperationalError:
            row = None
        if row is not None:
            return time.time() - row[0]
        time.sleep(0.1)
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="25000,50000,75000,100000,150000", help="packets/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=8.0, help="replay length per rate")
    parser.add_argument("--trials", type=int, default=3, help="scans per latency setting")
    parser.add_argument("--windows", default="5,1", help="window_s values for the latency runs")
    parser.add_argument("--latency-pps", default="0,50000", help="background replay rates for the latency runs")
    parser.add_argument(
        "--analyzer-args",
        default="--no-evidence",
        help="extra analyzer options (default: no evidence ring, a second dumpcap whose alert cuts are slow)",
    )
    parser.add_argument("--json", type=Path, default=OUT / "live-bench.json")
    args = parser.parse_args()
    extra = args.analyzer_args.split()
    capture = replay_capture()
    results, latencies = [], {}
    with namespace_pair() as pair:
        for pps in [int(r) for r in args.rates.split(",") if r]:
            step = rate_step(pair, capture, pps, args.seconds, extra)
            results.append(step)
            print(json.dumps(asdict(step)), flush=True)
        for window_s in [float(w) for w in args.windows.split(",") if w]:
            for bg in [int(r) for r in args.latency_pps.split(",") if r]:
                found = scan_alert_latency(pair, capture, window_s, args.trials, bg, extra)
                latencies[f"window {window_s:g} s, background {bg} pps"] = found
                print(f"window {window_s:g} s, background {bg} pps: {[round(x, 2) for x in found]}", flush=True)
    print()
    print("| target pps | achieved pps | sent | lost on veth | captured | kernel drops | sampled out | analysed |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r.target_pps:,} | {r.achieved_pps:,} | {r.sent:,} | {r.veth_dropped:,} | {r.captured:,} | "
            f"{r.kernel_dropped if r.kernel_dropped is not None else '?'} | {r.sampled_out:,} | "
            f"{r.analysed:,} ({r.analysed / max(1, r.captured):.0%}) |"
        )
    print()
    print("| setting | scans | attack to alert in the store (s): median | max |")
    print("|---|---:|---:|---:|")
    for name, found in latencies.items():
        ok = sorted(x for x in found if x == x)
        median = ok[len(ok) // 2] if ok else float("nan")
        print(f"| {name} | {len(ok)}/{len(found)} | {median:.1f} | {max(ok, default=float('nan')):.1f} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"rates": [asdict(r) for r in results], "latency_s": latencies}, indent=1))


if __name__ == "__main__":
    main()
