"""Time the result store's writes: one ``--read``'s windows, written to a fresh SQLite and PostgreSQL store.

    python bench/make_capture.py --packets 200000 --rate 1000
    python bench/store_bench.py [--capture bench/out/replay-200000-at-1000pps.pcap] [--code DIR]

The capture is analysed once (as ``runner.py`` does it: file windows, every detector, a health
sample per window, the final flush) and its WindowResults are kept in ``bench/out/`` as a
pickle, so every timing, of either checkout, writes the very same windows. Then, ``--repeat``
times each, a new store is made and every window is written through ``ResultWriter.write_window``
(one transaction per window, retention on as in a default run). ``--code DIR`` times the store of
another checkout (``--code ../main`` for the store before this branch) on the same windows.

PostgreSQL runs as a private cluster in a temporary folder on a free port of 127.0.0.1 (as
``tests/postgres.py`` starts it, as the ``postgres`` user when run as root), with its default
durability (fsync on); without initdb the PostgreSQL part is skipped with a message.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pickle
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
DEFAULT_CAPTURE = OUT / "replay-200000-at-1000pps.pcap"
PG_BIN_GLOB = "usr/lib/postgresql/*/bin"
PG_START_TIMEOUT_S = 60
RESULT_TABLES = ("traffic", "protocols", "hosts", "flows", "dns_queries", "alerts", "health")


def _use_code(code: Path) -> None:
    """Import ``traffic_analyzer`` from ``code`` (a checkout of this project)."""
    sys.path.insert(0, str(code.resolve()))
    module = importlib.import_module("traffic_analyzer")
    print(f"store code: {Path(module.__file__).parent}", file=sys.stderr)


def _writer_class():
    """The store's writer, before (store/database.py) or after (store/writer.py) the split."""
    try:
        return importlib.import_module("traffic_analyzer.store.writer").ResultWriter
    except ModuleNotFoundError:
        return importlib.import_module("traffic_analyzer.store.database").ResultWriter


def collect(capture: Path, window_s: float) -> list:
    """The WindowResults of one --read of ``capture``, as the runner hands them to the store (cached)."""
    cache = OUT / f"{capture.stem}-{capture.stat().st_size}-{window_s:g}s-windows.pkl"
    if cache.exists():
        with cache.open("rb") as fh:
            return pickle.load(fh)
    from traffic_analyzer.capture.file_reader import CaptureFileSource
    from traffic_analyzer.pipeline import Analysis, default_detectors, file_windows
    from traffic_analyzer.settings import DEFAULTS

    started = time.perf_counter()
    source = CaptureFileSource(str(capture), progress=False)
    analysis = Analysis(default_detectors(DEFAULTS["scan_min_ports"], DEFAULTS["scan_window_s"]))
    results = []
    for packets in file_windows(source.batches(), window_s):
        result, _ = analysis.process(packets, live=False)
        result.health = analysis.health(source.stats, f"reading {capture.name}", live=False)
        results.append(result)
    last = analysis.finish()
    last.health = analysis.health(source.stats, "finished", live=False)
    results.append(last)
    print(f"analysed {capture.name} in {time.perf_counter() - started:.1f} s: {len(results)} windows", file=sys.stderr)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with cache.open("wb") as fh:
        pickle.dump(results, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return results


def rows_of(result) -> int:
    """Rows one window hands to the store: its tables, its alerts and its health sample."""
    tables = (result.traffic, result.protocols, result.hosts, result.flows, result.dns)
    return sum(len(t) for t in tables) + len(result.alerts) + (1 if result.health else 0)


def time_writes(url: str, results: list) -> tuple[list[float], float, dict[str, int]]:
    """Seconds each window's write took on a new store at ``url``, this process's CPU seconds, and the rows stored."""
    import sqlalchemy as sa

    from traffic_analyzer.store.engine import open_engine
    from traffic_analyzer.store.retention import Retention

    writer = _writer_class()(url, sensor="bench", retention=Retention(days=30))
    writer.start_run("bench", "file bench.pcap", {"status": "none"})
    seconds = []
    cpu = time.process_time()
    for result in results:
        started = time.perf_counter()
        writer.write_window("bench", result)
        seconds.append(time.perf_counter() - started)
    cpu = time.process_time() - cpu
    writer.finish_run("bench", "finished")
    writer.close()
    engine = open_engine(url)
    with engine.connect() as conn:
        stored = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in RESULT_TABLES}
    engine.dispose()
    return seconds, cpu, stored


def report(kind: str, runs: list[tuple[list[float], float]], rows: int, stored: dict[str, int]) -> None:
    """The median run (by wall time): ms per window (mean, median, busiest), CPU of this process, rows per second."""
    totals = [sum(seconds) for seconds, _ in runs]
    seconds, cpu = runs[totals.index(statistics.median_low(totals))]
    total = sum(seconds)
    ms = [s * 1000 for s in seconds]
    print(
        f"{kind:<10} {len(ms)} windows: {total:6.2f} s, {total * 1000 / len(ms):6.1f} ms/window "
        f"(median {statistics.median(ms):.1f}, busiest {max(ms):.1f}; CPU here {cpu * 1000 / len(ms):.1f}), "
        f"{rows / total:>8,.0f} rows/s; runs {', '.join(f'{t:.2f}' for t in totals)} s"
    )
    print(f"{'':<10} stored rows: {', '.join(f'{t} {n:,}' for t, n in stored.items())}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_owner(*cmd: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)


@contextmanager
def postgres() -> Iterator[str | None]:
    """A private PostgreSQL cluster's admin URL for as long as the block runs; None without PostgreSQL."""
    found = sorted(Path("/").glob(PG_BIN_GLOB), reverse=True)
    bin_dir = next((d for d in found if (d / "initdb").exists() and (d / "pg_ctl").exists()), None)
    if bin_dir is None:
        print("PostgreSQL skipped: no initdb under /usr/lib/postgresql (./setup.sh --dev installs it)")
        yield None
        return
    root = Path(tempfile.mkdtemp(prefix="nta-bench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data, port = root / "data", _free_port()
    run = {"check": True, "capture_output": True, "timeout": PG_START_TIMEOUT_S}
    try:
        subprocess.run(_as_owner(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"), **run)
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
        pg_ctl = str(bin_dir / "pg_ctl")
        subprocess.run(_as_owner(pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"), **run)
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_owner(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"), **run)
        shutil.rmtree(root, ignore_errors=True)


def new_database(admin_url: str, name: str) -> str:
    import sqlalchemy as sa

    engine = sa.create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--capture", type=Path, default=DEFAULT_CAPTURE, help="capture to analyse (default: %(default)s)"
    )
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose store is timed (default: this one)")
    parser.add_argument("--window", type=float, default=5.0, help="analysis window in seconds (default: 5)")
    parser.add_argument("--repeat", type=int, default=3, help="fresh stores per kind; the median is shown")
    parser.add_argument("--no-postgresql", action="store_true", help="time SQLite only")
    args = parser.parse_args(argv)
    if not args.capture.exists():
        parser.error(f"{args.capture} does not exist: make it with bench/make_capture.py --packets 200000 --rate 1000")
    _use_code(args.code)
    results = collect(args.capture, args.window)
    rows = sum(rows_of(r) for r in results)
    print(f"{args.capture.name}: {len(results)} windows, {rows:,} rows handed to the store")

    runs, stored = [], {}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="nta-bench-sqlite-") as folder:
            seconds, cpu, stored = time_writes(f"sqlite:///{folder}/analyzer.db", results)
            runs.append((seconds, cpu))
    report("SQLite", runs, rows, stored)
    if args.no_postgresql:
        return 0
    with postgres() as admin_url:
        if admin_url is not None:
            runs = []
            for i in range(args.repeat):
                seconds, cpu, stored = time_writes(new_database(admin_url, f"bench_{i}"), results)
                runs.append((seconds, cpu))
            report("PostgreSQL", runs, rows, stored)
    return 0


if __name__ == "__main__":
    sys.exit(main())
