"""A default ``--read`` against NFStream on the same file, in the same run: packets per second, peak memory, ratio.

    .venv/bin/python bench/read_vs_nfstream.py CAPTURE [--train BENIGN] [--repeat 3]

Each tool runs as its own process (start-up included) ``--repeat`` times; the best time counts. Peak memory
comes from one more run of each, the larger of the process's own peak resident set (its ``wait4`` rusage)
and the peak proportional set size (PSS) of the process and its workers together, sampled every 50 ms.
The timed runs are not sampled: reading a process's smaps costs some 3-4 ms of CPU a process (measured on
the analyzer's two), a seventh of a core at one sample every 50 ms, which on 2 cores is taken from the tool
being measured (most from one that keeps both cores busy). The analyzer runs as a user runs it:
``--read CAPTURE --no-dashboard --json`` with the store, the evidence pcaps and, with ``--train``, an anomaly
model trained on BENIGN beforehand (not timed); once more with ``--no-evidence`` and once with detection in
the main process (``--no-parallel-detection``). NFStream runs with its
defaults (``NFStreamer(source=CAPTURE)``, DPI on). Needs ``pip install nfstream`` in the venv.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
CLI = ROOT / "network_traffic_analyzer.py"
NFSTREAM = "import nfstream,sys; print(sum(f.bidirectional_packets for f in nfstream.NFStreamer(source=sys.argv[1])))"


def _tree_pss(proc: psutil.Process) -> int:
    """Proportional resident bytes (PSS) of a process and all its descendants now: a worker process counts,
    and the libraries they share count once, not once per process as summed RSS would."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_full_info().pss
        except psutil.Error:
            pass  # ended between the listing and the reading
    return total


def timed(cmd: list[str], sample: bool = False) -> tuple[float, float, str]:
    """(seconds, peak memory in MB, stdout) of one child process: the larger of the process's own peak RSS
    (rusage, from wait4) and, with ``sample``, the peak PSS of its process tree, sampled every 50 ms."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        peak_tree, done = 0, threading.Event()

        def sample_pss() -> None:
            nonlocal peak_tree
            watched = psutil.Process(proc.pid)
            while not done.wait(0.05):
                try:
                    peak_tree = max(peak_tree, _tree_pss(watched))
                except psutil.Error:
                    return

        sampler = threading.Thread(target=sample_pss, daemon=True)
        if sample:
            sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        done.set()
        if sample:
            sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd[:4])} failed: {(err.read().strip().splitlines() or ['?'])[-1]}")
        return seconds, max(usage.ru_maxrss * 1024, peak_tree) / 2**20, out.read()


def analyzer(capture: Path, data: Path, *extra: str) -> list[str]:
    args = ["--no-dashboard", "--json", "--no-progress", "--data-dir", str(data), "--log-file", str(data / "a.log")]
    return [sys.executable, str(CLI), "--read", str(capture), *args, *extra]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture", type=Path)
    parser.add_argument("--train", type=Path, help="benign capture to train the anomaly model on first")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="read-bench-"))
    try:
        model = work / "model.joblib"
        if args.train:
            subprocess.run(
                [sys.executable, str(CLI), "--train", str(args.train), "--read", str(args.train), "--no-dashboard"]
                + ["--no-progress", "--no-evidence"]
                + ["--data-dir", str(work / "train"), "--model", str(model), "--log-file", str(work / "t.log")],
                check=True,
                capture_output=True,
            )
        extra = ["--model", str(model)] if args.train else []
        runs = {
            "nfstream": lambda i: [sys.executable, "-c", NFSTREAM, str(args.capture)],
            "analyzer --read (default)": lambda i: analyzer(args.capture, work / f"d{i}", *extra),
            "analyzer --read --no-evidence": lambda i: analyzer(args.capture, work / f"n{i}", "--no-evidence", *extra),
            "analyzer --read --no-parallel-detection": lambda i: analyzer(
                args.capture, work / f"s{i}", "--no-parallel-detection", *extra
            ),
        }
        best: dict[str, tuple[float, float]] = {}
        packets = 0
        for i in range(args.repeat):
            for name, command in runs.items():  # interleaved, so that a busy moment hurts every tool alike
                seconds, _, out = timed(command(i))
                if name.startswith("analyzer"):
                    packets = json.loads(out)["packets"]
                if name not in best or seconds < best[name][0]:
                    best[name] = (seconds, 0.0)
        for name, command in runs.items():
            best[name] = (best[name][0], timed(command(args.repeat), sample=True)[1])
        nf = best["nfstream"][0]
        print(f"{args.capture.name}: {packets:,} packets, best of {args.repeat}")
        print("| tool | seconds | packets/s | peak memory MB | speed vs NFStream |")
        print("|---|---:|---:|---:|---:|")
        for name, (seconds, peak) in best.items():
            print(f"| {name} | {seconds:.2f} | {packets / seconds:,.0f} | {peak:.0f} | {nf / seconds:.2f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
