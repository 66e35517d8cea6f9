"""Fuzz the capture readers and the whole analysis with hostile capture files.

    .venv/bin/python scripts/fuzz_captures.py --cases 10000 --jobs 2 --seed 1
    .venv/bin/python scripts/fuzz_captures.py --campaign protocol-flips --harness read --cases 2000 --jobs 2 --seed 1

Each case (see ``fuzz_cases.py``: the public and tiny captures, mutated, and crafted hostile ones)
is read by the fast reader (FastPcapSource) and, for a share of the cases, by the tshark reader
(PcapFileSource); the packets of each go through the real pipeline (file_windows -> Analysis with
every detector and an anomaly model -> finish). Cases run in worker processes with an address-space
limit; a case that takes longer than ``--timeout-s`` is a hang and its worker is replaced.

``--campaign protocol-flips`` makes every case from one public capture in turn with bit flips aimed
at IP and TCP/UDP headers and DNS/TCP payloads (``fuzz_cases.flip_protocol_bits``). ``--harness
read`` runs each case through the code of ``--read`` instead (``NetworkTrafficAnalyzer(read_file=...)
.analyze()``: the auto file reader, the result store, alert channels and evidence pcaps, in a data_dir
of the worker holding the baseline model), and the tshark share with ``file_reader="tshark"``.

Outcomes: ``ok``; ``error`` (one of our AnalyzerError family with a one-line message, which is how
an unreadable or damaged file must end); ``crash`` (any other exception, a broken invariant, or a
worker killed by a signal); ``hang``; ``memory`` (the limit was hit). Crashes, hangs and memory
cases are saved with their traceback under ``--out`` as reproducers (every result in
``results.jsonl``). Exit status 1 if any.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402
from fuzz_cases import CAMPAIGNS, SHARED_PCAPS, TINY_PCAPS, Case, load_seeds  # noqa: E402

from traffic_analyzer.capture.fast_pcap import FastPcapSource  # noqa: E402
from traffic_analyzer.capture.pcap_file import PcapFileSource  # noqa: E402
from traffic_analyzer.detection.anomaly.base import MIN_BASELINE_WINDOWS  # noqa: E402
from traffic_analyzer.detection.anomaly.iforest import HostAnomalyModel  # noqa: E402
from traffic_analyzer.detection.anomaly.persist import save_model  # noqa: E402
from traffic_analyzer.errors import AnalyzerError, TruncatedCaptureError  # noqa: E402
from traffic_analyzer.features.host_windows import host_features_of  # noqa: E402
from traffic_analyzer.pipeline import Analysis, default_detectors, file_windows  # noqa: E402
from traffic_analyzer.records.packets import PACKET_SCHEMA  # noqa: E402
from traffic_analyzer.settings import DEFAULTS  # noqa: E402

BAD = ("crash", "hang", "memory")
OUTCOMES = ("ok", "error", *BAD)
TIMEOUT_S = 60.0  # a case (a few hundred packets, each reader plus analysis) takes well under a second alone
MEMORY_MB = 3072  # address space of a worker (and of the tshark it starts): its imports take about 1.5 GiB
TSHARK_SHARE = 0.1  # cases also read by tshark (a process start each: slower)
WINDOW_S = 5.0  # the analyzer's default window
BASELINE_CAPTURE = "benign-android-mixed.pcap"  # the anomaly model of the workers learns from this one
WORKER_START_S = 300.0  # imports and the baseline model, on a busy machine
HARNESSES = ("pipeline", "read")  # file_windows -> Analysis directly, or the whole --read run


# --------------------------------------------------------------------------- one case, in a worker


class InvariantBroken(Exception):
    """The analyzer went on, but with something it promises never to produce."""


def baseline_model():
    """An anomaly model fitted on a benign capture, so anomaly scoring runs on every case (None without it)."""
    path = SHARED_PCAPS / BASELINE_CAPTURE
    if not path.exists():
        path = TINY_PCAPS / "tiny-ethernet.pcap"
    analysis, rows = Analysis(detectors=[]), []
    for packets in file_windows(FastPcapSource(path, progress=False).batches(), 1.0):
        rows.append(host_features_of(analysis.process(packets, live=False)[1]))
    features = pd.concat(rows)
    if len(features) < MIN_BASELINE_WINDOWS:
        return None
    seconds = float((analysis.last_ts or 0.0) - (analysis.first_ts or 0.0))
    return HostAnomalyModel(n_estimators=50).fit(features, seconds=max(seconds, 1.0))  # the default budget


def analyse(source, model) -> tuple[str, str, int]:
    """(outcome, message, packets analysed) of one reader and the whole pipeline over one file."""

    def checked(batches):
        for batch in batches:
            if list(batch.columns) != list(PACKET_SCHEMA) or dict(batch.dtypes) != PACKET_SCHEMA:
                raise InvariantBroken(f"a packet table without the schema: {dict(batch.dtypes)}")
            yield batch

    analysis = Analysis(default_detectors(DEFAULTS["scan_min_ports"], DEFAULTS["scan_window_s"]), model)
    error: AnalyzerError | None = None
    try:
        source.check()
        for packets in file_windows(checked(source.batches()), WINDOW_S):
            analysis.process(packets, live=False)
    except AnalyzerError as exc:
        error = exc
    analysis.finish()
    if error is None:
        return "ok", "", analysis.packets
    message = one_line(str(error))
    if isinstance(error, TruncatedCaptureError) and analysis.packets != source.stats.packets:
        raise InvariantBroken(f"read {source.stats.packets} packets before the damage but analysed {analysis.packets}")
    return "error", message, analysis.packets


def one_line(message: str) -> str:
    if not message or "\n" in message:
        raise InvariantBroken(f"an error message that is not one line: {message!r}")
    return message


def analyse_as_read(path: Path, file_reader: str, data_dir: Path) -> tuple[str, str, int]:
    """(outcome, message, packets analysed) of the case through the code of ``--read`` (what cli.main runs)."""
    from network_traffic_analyzer import NetworkTrafficAnalyzer

    analyzer = NetworkTrafficAnalyzer(
        read_file=str(path),
        file_reader=file_reader,
        dashboard=False,
        progress=False,
        data_dir=str(data_dir),
        log_file=str(data_dir / "analysis.log"),
    )
    try:
        summary = analyzer.analyze()
    except AnalyzerError as exc:
        return "error", one_line(str(exc)), 0
    if "error" in summary:
        return "error", one_line(summary["error"]), summary["packets"]
    return "ok", "", summary["packets"]


def run_case(path: Path, tshark: bool, model, data_dir: Path | None = None) -> dict:
    """Outcome of one case: the worst over the readers (each followed by the analysis).

    With ``data_dir``, each reader runs the whole ``--read`` code in it (the read harness).
    """
    started = time.monotonic()
    if data_dir is None:
        readers = [("fast", lambda: analyse(FastPcapSource(path, progress=False), model))]
        readers += [("tshark", lambda: analyse(PcapFileSource(path, progress=False), model))] if tshark else []
    else:
        readers = [("auto", lambda: analyse_as_read(path, "auto", data_dir))]
        readers += [("tshark", lambda: analyse_as_read(path, "tshark", data_dir))] if tshark else []
    result = {"outcome": "ok", "readers": {}}
    for name, read in readers:
        try:
            outcome, message, packets = read()
        except MemoryError:
            outcome, message, packets = "memory", f"{name}: MemoryError\n{traceback.format_exc()}", 0
        except Exception:  # anything else is a bug to fix: keep its traceback
            outcome, message, packets = "crash", f"{name}: {traceback.format_exc()}", 0
        result["readers"][name] = {"outcome": outcome, "message": message, "packets": packets}
        if OUTCOMES.index(outcome) > OUTCOMES.index(result["outcome"]):
            result["outcome"], result["message"] = outcome, message
    result["seconds"] = round(time.monotonic() - started, 3)
    result["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def worker_main(memory_mb: int, read_dir: Path | None = None) -> None:
    """Serve cases: a JSON job per stdin line, a JSON result per line on the real stdout."""
    limit = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything the analyzer prints goes to the worker log, not into the protocol
    import warnings

    warnings.simplefilter("ignore")  # RuntimeWarnings on absurd values are expected here
    model = baseline_model()
    if read_dir is not None:  # the read harness: the data_dir of its --read runs, with the model they load
        read_dir.mkdir(parents=True, exist_ok=True)
        if model is not None:
            save_model(model, read_dir / "model.joblib", trained_on=BASELINE_CAPTURE)
    out.write(json.dumps({"ready": True, "model": model is not None}) + "\n")
    out.flush()
    for line in sys.stdin:
        job = json.loads(line)
        result = run_case(Path(job["path"]), job["tshark"], model, read_dir)
        out.write(json.dumps(result) + "\n")
        out.flush()
        if result["outcome"] == "memory":
            return  # a process that hit its limit may be in a poor state: the parent starts a fresh one


# --------------------------------------------------------------------------- the parent


class Worker:
    """A worker process in its own process group (so a hung tshark is killed with it)."""

    def __init__(self, memory_mb: int, log: Path, read_dir: Path | None = None) -> None:
        self.memory_mb = memory_mb
        self.log = log
        self.read_dir = read_dir  # the read harness: the data_dir of the worker's --read runs
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, "--worker", "--memory-mb", str(self.memory_mb)]
                + (["--read-dir", str(self.read_dir)] if self.read_dir else []),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                start_new_session=True,
                env=env,
            )
        ready = self._read(WORKER_START_S)
        if ready is None or not ready.get("ready"):
            self.kill()
            raise RuntimeError(f"a fuzz worker did not start; see {self.log}")

    def _read(self, timeout_s: float) -> dict | None:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else {"eof": True}

    def run(self, path: Path, tshark: bool, timeout_s: float) -> dict:
        started = time.monotonic()
        self.proc.stdin.write(json.dumps({"path": str(path), "tshark": tshark}) + "\n")
        self.proc.stdin.flush()
        result = self._read(timeout_s)
        if result is None:
            self.kill()
            self.start()
            return {"outcome": "hang", "message": f"no result after {timeout_s:g} s", "seconds": timeout_s}
        if result.get("eof"):
            code = self.proc.wait()
            self.start()
            name = signal.Signals(-code).name if code < 0 else f"exit status {code}"
            outcome = "memory" if code == -signal.SIGKILL else "crash"
            return {"outcome": outcome, "message": f"the worker died ({name})", "seconds": time.monotonic() - started}
        if result["outcome"] == "memory":
            self.proc.wait()
            self.start()
        return result

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class FuzzRun:
    """Results of a fuzz run, case number -> worker result."""

    results: dict[int, dict] = field(default_factory=dict)
    cases: dict[int, Case] = field(default_factory=dict)
    wall_s: float = 0.0

    def count(self) -> Counter:
        return Counter(r["outcome"] for r in self.results.values())

    def bad(self) -> dict[int, dict]:
        return {n: r for n, r in self.results.items() if r["outcome"] in BAD}


def uses_tshark(seed: int, number: int, share: float) -> bool:
    return random.Random(f"tshark:{seed}:{number}").random() < share


def run_cases(
    seed: int,
    numbers: list[int],
    jobs: int = 2,
    tshark_share: float = TSHARK_SHARE,
    timeout_s: float = TIMEOUT_S,
    memory_mb: int = MEMORY_MB,
    workdir: Path | None = None,
    progress: bool = False,
    campaign: str = "mixed",
    harness: str = "pipeline",
) -> FuzzRun:
    """Run the given cases on ``jobs`` workers and collect every result (bad cases keep their bytes)."""
    seeds = load_seeds()
    make_case = CAMPAIGNS[campaign]
    run = FuzzRun()
    started = time.monotonic()
    pending = list(numbers)
    lock = threading.Lock()
    with tempfile.TemporaryDirectory(prefix="fuzz-", dir=workdir) as tmp:
        tmp_path = Path(tmp)
        failures: list[BaseException] = []

        def work(slot: int) -> None:
            try:
                read_dir = tmp_path / f"read-{slot}" if harness == "read" else None
                worker = Worker(memory_mb, (workdir or tmp_path) / f"worker-{slot}.log", read_dir)
            except BaseException as exc:
                failures.append(exc)
                return
            try:
                while True:
                    with lock:
                        if not pending:
                            return
                        number = pending.pop(0)
                    case = make_case(seeds, seed, number)
                    path = tmp_path / f"case-{number}.pcap"
                    path.write_bytes(case.data)
                    result = worker.run(path, uses_tshark(seed, number, tshark_share), timeout_s)
                    path.unlink()
                    with lock:
                        run.results[number] = result
                        if result["outcome"] in BAD:
                            run.cases[number] = case
                            if progress and workdir is not None:  # at once: a long run is looked at while it runs
                                print(f"{result['outcome']}: {save_reproducer(case, result, workdir)}", file=sys.stderr)
                        if progress and len(run.results) % 250 == 0:
                            counts = dict(run.count())
                            print(f"{len(run.results)}/{len(numbers)} {counts}", file=sys.stderr, flush=True)
            finally:
                worker.close()

        threads = [threading.Thread(target=work, args=(slot,)) for slot in range(jobs)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]
    run.wall_s = time.monotonic() - started
    return run


def save_reproducer(case: Case, result: dict, out: Path) -> Path:
    """A bad case as a capture file plus a text file saying how it was made and what happened."""
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{result['outcome']}-{case.number}"
    (out / f"{stem}.txt").write_text(
        f"case {case.number} from {case.seed}, mutations {case.mutations}\n{json.dumps(result, indent=1)}\n"
    )
    (out / f"{stem}.pcap").write_bytes(case.data)
    return out / f"{stem}.pcap"


def save_reproducers(run: FuzzRun, out: Path) -> list[Path]:
    """Every bad case of a run, saved as by :func:`save_reproducer`."""
    return [save_reproducer(run.cases[n], result, out) for n, result in sorted(run.bad().items())]


def summary(run: FuzzRun) -> str:
    """The result table (markdown) with the slowest case and the largest worker."""
    counts = run.count()
    total = len(run.results)
    readers = Counter(name for r in run.results.values() for name in r.get("readers", {}))
    errors = Counter(
        _error_kind(info["message"])
        for r in run.results.values()
        for info in r.get("readers", {}).values()
        if info["outcome"] == "error"
    )
    lines = ["| outcome | cases | share |", "|---|---:|---:|"]
    lines += [f"| {name} | {counts[name]} | {counts[name] / max(total, 1):.1%} |" for name in OUTCOMES]
    seconds = [r.get("seconds", 0.0) for r in run.results.values()]
    rss = [r.get("max_rss_mb", 0.0) for r in run.results.values()]
    lines.append("")
    lines.append(
        f"{total} cases in {run.wall_s:.0f} s; readers run: {dict(readers)}; slowest case "
        f"{max(seconds, default=0):.2f} s; largest worker {max(rss, default=0):.0f} MB resident"
    )
    lines.append("clean errors: " + ", ".join(f"{kind} {n}" for kind, n in errors.most_common()))
    return "\n".join(lines)


def _error_kind(message: str) -> str:
    for kind in ("is cut short", "is damaged", "link type", "not a pcap", "too short", "tshark"):
        if kind in message:
            return kind.replace("is ", "")
    return message.split(":")[0][:40]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1, help="fuzz seed: the same seed gives the same cases")
    parser.add_argument("--cases", type=int, default=10_000, help="number of cases")
    parser.add_argument("--first", type=int, default=0, help="number of the first case (to rerun a range)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--tshark-share", type=float, default=TSHARK_SHARE, help="share of cases also read by tshark")
    parser.add_argument("--timeout-s", type=float, default=TIMEOUT_S, help="a case taking longer is a hang")
    parser.add_argument("--memory-mb", type=int, default=MEMORY_MB, help="address-space limit of a worker")
    parser.add_argument("--out", type=Path, default=Path("fuzz-results"), help="folder for reproducers and logs")
    parser.add_argument(
        "--campaign", choices=sorted(CAMPAIGNS), default="mixed",
        help="mixed: every mutation over every seed; protocol-flips: bit flips in IP/TCP/UDP headers and "
        "DNS/TCP payloads of each public capture in turn",
    )  # fmt: skip
    parser.add_argument(
        "--harness", choices=HARNESSES, default="pipeline",
        help="pipeline: each reader into the analysis; read: the whole --read run (store, alerts, evidence)",
    )  # fmt: skip
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--read-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args.memory_mb, args.read_dir)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    numbers = list(range(args.first, args.first + args.cases))
    run = run_cases(
        args.seed, numbers, args.jobs, args.tshark_share, args.timeout_s, args.memory_mb, args.out,
        progress=True, campaign=args.campaign, harness=args.harness,
    )  # fmt: skip
    saved = save_reproducers(run, args.out)
    with (args.out / "results.jsonl").open("w") as fh:
        for number, result in sorted(run.results.items()):
            fh.write(json.dumps({"case": number, **result}) + "\n")
    print(summary(run))
    for path in saved:
        print(f"reproducer: {path}")
    return 1 if saved else 0


if __name__ == "__main__":
    sys.exit(main())
