"""The store at scale: several sensors writing one PostgreSQL at once, and the dashboard's queries on a week of data.

    .venv/bin/python bench/make_mixed_capture.py --seed 21 --out bench/out/mixed-21.pcap
    .venv/bin/python bench/make_benign_corpus.py --seed 11 --hours 1 --hosts 50 --start-hour 10 \
        --out bench/out/office-1h.pcap
    .venv/bin/python bench/store_scale.py [--sensors 1,2,4,8] [--days 7] [--no-postgresql] [--sqlite-store PATH]

Both parts write the WindowResults of one analysis (``store_bench.collect``: the runner's windows, cached in
bench/out/) through the real ``ResultWriter``, one transaction a window, so they time the store alone:

- **Sensors** (``--capture``, the busy lab capture): N writer processes, each a sensor with its own run, write
  every window of the capture into one PostgreSQL database at once, as fast as they can. Reported: flows and
  rows a second the store took in all, and the headroom: that rate over what N sensors seeing this traffic in
  real time would hand it (N times the capture's flows per second of traffic). Below 1 the backlog grows.
- **A week** (``--day-capture``, an hour of the benign office, repeated with shifted times and fresh uids):
  one sensor's run of ``--days`` days is written to SQLite and PostgreSQL, then each query the dashboard's
  pages make is timed on it (best of 3), with the store's size in bytes per hour of traffic.
  ``--sqlite-store`` keeps the SQLite store; given one that exists, the queries are timed on it as it is (an
  older store read by this code, or one that this code's writer upgraded), without writing the days again.

PostgreSQL runs as a private cluster in a temporary folder on a free port of 127.0.0.1 (``store_bench.postgres``).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import math
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from store_bench import collect, new_database, postgres  # noqa: E402

from traffic_analyzer.store.reader import ResultReader  # noqa: E402
from traffic_analyzer.store.retention import Retention  # noqa: E402
from traffic_analyzer.store.writer import ResultWriter  # noqa: E402

OUT = ROOT / "bench" / "out"
HOUR_S = 3600.0


def shifted(result, seconds: float, tag: str):
    """A copy of a WindowResult moved ``seconds`` later, its flows and messages renamed (uid + tag), no alerts."""
    r = copy.copy(result)
    r.window_start, r.window_end = result.window_start + seconds, result.window_end + seconds
    r.traffic = result.traffic.assign(second=result.traffic["second"] + seconds)
    r.flows = result.flows.assign(
        ts=result.flows["ts"] + seconds, last_ts=result.flows["last_ts"] + seconds, uid=result.flows["uid"] + tag
    )
    if len(result.app):
        r.app = result.app.assign(ts=result.app["ts"] + seconds, uid=result.app["uid"] + tag)
    r.alerts = []
    r.health = {**result.health, "at": result.health["at"] + seconds} if result.health.get("at") else {}
    return r


def _sensor(url: str, name: str, results: list, done: multiprocessing.Queue) -> None:
    writer = ResultWriter(url, sensor=name, retention=Retention(days=0))
    run_id = f"run-{name}"
    writer.start_run(run_id, f"file {name}.pcap", {"status": "none"}, live=False)
    started = time.perf_counter()
    for result in results:
        writer.write_window(run_id, result)
    done.put((name, time.perf_counter() - started))
    writer.finish_run(run_id, "finished")
    writer.close()


def sensors(admin_url: str, results: list, counts: list[int]) -> None:
    flows = sum(len(r.flows) for r in results)
    rows = sum(len(t) for r in results for t in (r.traffic, r.protocols, r.hosts, r.flows, r.dns, r.app))
    span = results[-1].window_end - results[0].window_start
    print(f"capture: {len(results)} windows, {span:.0f} s of traffic, {flows:,} flow rows ({flows / span:,.0f}/s)")
    print("| sensors | slowest sensor s | flow rows/s stored | rows/s stored | headroom over real time |")
    print("|---:|---:|---:|---:|---:|")
    ctx = multiprocessing.get_context("spawn")
    for n in counts:
        url = new_database(admin_url, f"sensors_{n}")
        done = ctx.Queue()
        procs = [ctx.Process(target=_sensor, args=(url, f"s{i}", results, done)) for i in range(n)]
        for p in procs:
            p.start()
        times = [done.get(timeout=3600)[1] for _ in procs]
        for p in procs:
            p.join(60)
        slowest = max(times)
        print(
            f"| {n} | {slowest:.1f} | {n * flows / slowest:,.0f} | {n * rows / slowest:,.0f} | "
            f"{(n * flows / slowest) / (n * flows / span):.1f}x |"
        )


def write_days(url: str, results: list, days: float) -> tuple[float, int]:
    """One sensor's run of ``days`` days made of the hour of ``results`` repeated; seconds taken, windows written."""
    span = math.ceil(results[-1].window_end - results[0].window_start)  # whole seconds: traffic rows are by second
    copies = max(1, round(days * 24 * HOUR_S / span))
    writer = ResultWriter(url, sensor="office", retention=Retention(days=0))
    writer.start_run("week", "live eth0", {"status": "none"}, live=True)
    started = time.perf_counter()
    for k in range(copies):
        for result in results:
            writer.write_window("week", result if k == 0 else shifted(result, k * span, f"-{k}"))
    taken = time.perf_counter() - started
    writer.finish_run("week", "finished")
    writer.close()
    return taken, copies * len(results)


def dashboard_queries(reader: ResultReader, run: str, host: str) -> dict[str, Callable[[], object]]:
    """What the pages ask for on each refresh (overview, hosts, host detail, flows), by page."""
    first, last = reader.flow_span(run)
    recent = (last - 600.0, last) if last is not None else (None, None)
    return {
        "overview: traffic, last hour (the default)": lambda: reader.traffic(run, last_s=HOUR_S),
        "overview: traffic, whole run": lambda: reader.traffic(run),
        "overview: protocols": lambda: reader.protocols(run),
        "overview: top talkers": lambda: reader.top_talkers(run),
        "overview: alerts": lambda: reader.alerts(run),
        "overview: latest flows": lambda: reader.flows(run),
        "overview: flow count": lambda: reader.flow_count(run),
        "hosts: totals": lambda: reader.host_totals(run),
        "host: windows": lambda: reader.host_windows(run, host),
        "host: peers": lambda: reader.host_peers(run, host),
        "host: ports": lambda: reader.host_ports(run, host),
        "host: DNS": lambda: reader.host_dns(run, host),
        "flows: search by host": lambda: reader.search_flows(run, ip=host),
        "flows: count by host": lambda: reader.count_flows(run, ip=host),
        "flows: last 10 minutes": lambda: reader.search_flows(run, start=recent[0], end=recent[1]),
        "flows: latest (no search)": lambda: reader.search_flows(run),
        "flows: services": lambda: reader.flow_values(run, "service"),
        "flows: states": lambda: reader.flow_values(run, "conn_state"),
        "flows: span": lambda: reader.flow_span(run),
    }


def time_queries(url: str, host: str) -> dict[str, float]:
    reader = ResultReader(url)
    out = {}
    for name, query in dashboard_queries(reader, "week", host).items():
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            query()
            best = min(best, time.perf_counter() - started)
        out[name] = best
    reader.close()
    return out


def week(results: list, days: float, admin_url: str | None, sqlite_store: Path | None = None) -> None:
    host = results[0].hosts.sort_values("bytes_out", ascending=False)["host"].iloc[0]
    stores = {}
    with tempfile.TemporaryDirectory(prefix="nta-week-") as folder:
        path = sqlite_store or Path(folder) / "analyzer.db"
        taken, windows = (0.0, 0) if path.exists() else write_days(f"sqlite:///{path}", results, days)
        size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        stores["SQLite"] = (taken, windows, size, time_queries(f"sqlite:///{path}", host))
    if admin_url is not None:
        url = new_database(admin_url, "week")
        taken, windows = write_days(url, results, days)
        import sqlalchemy as sa

        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.connect() as conn:
            size = conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar()
        engine.dispose()
        stores["PostgreSQL"] = (taken, windows, size, time_queries(url, host))
    hours = days * 24
    print(f"\n{days:g} days of one sensor ({hours:g} h), the host asked about: {host}")
    print("| store | written in | MB | MB per hour of traffic |")
    print("|---|---:|---:|---:|")
    for kind, (taken, windows, size, _) in stores.items():
        print(f"| {kind} | {taken:.0f} s ({windows:,} windows) | {size / 2**20:,.0f} | {size / 2**20 / hours:.1f} |")
    print("\n| dashboard query | " + " | ".join(f"{k} ms" for k in stores) + " |")
    print("|---|" + "---:|" * len(stores))
    for name in next(iter(stores.values()))[3]:
        print(f"| {name} | " + " | ".join(f"{s[3][name] * 1000:,.1f}" for s in stores.values()) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capture", type=Path, default=OUT / "mixed-21.pcap", help="the sensors' capture")
    parser.add_argument("--day-capture", type=Path, default=OUT / "office-1h.pcap", help="the hour a week is made of")
    parser.add_argument("--sensors", default="1,2,4,8", help="sensor counts to run (default 1,2,4,8)")
    parser.add_argument("--days", type=float, default=7.0, help="days of data for the query timings (default 7)")
    parser.add_argument("--no-postgresql", action="store_true", help="SQLite only (no sensors part)")
    parser.add_argument("--only", choices=("sensors", "week"), help="run one part")
    parser.add_argument(
        "--sqlite-store",
        type=Path,
        help="keep the SQLite store of the days here; if it exists, only time the queries on it (as it is)",
    )
    args = parser.parse_args(argv)
    needed = {"sensors": [args.capture], "week": [args.day_capture]}.get(args.only, [args.capture, args.day_capture])
    for capture in needed:
        if not capture.exists():
            parser.error(f"{capture} does not exist: make it as the module docstring shows")
    os.environ.setdefault("NTA_LOG_LEVEL", "WARNING")
    with postgres() if not args.no_postgresql else contextlib.nullcontext() as admin_url:
        if args.only != "week" and admin_url is not None:
            sensors(admin_url, collect(args.capture, 5.0), [int(n) for n in args.sensors.split(",")])
        if args.only != "sensors":
            week(collect(args.day_capture, 5.0), args.days, admin_url, args.sqlite_store)
    return 0


if __name__ == "__main__":
    sys.exit(main())
