"""The dashboard under load: many viewers polling the Overview and Alerts pages while the analyzer captures.

Two network namespaces joined by a veth (no default route, removed afterwards). The analyzer captures
one end, with its dashboard on 127.0.0.1:8050 inside that namespace; tcpreplay sends the live benchmark's
capture (``live_bench.replay_capture``) into the other end at ``--pps`` for the whole run. First
``--quiet-minutes`` without viewers, then ``--minutes`` with ``--viewers`` of them.

A viewer is what an open browser tab sends, not a guess at it: headless Chromium opens each page once
(inside the namespace) and the requests its refresh timer makes (``_dash-update-component`` POSTs
triggered by the app's interval) are recorded with their headers. Every viewer then keeps both pages
open: every 2 s it sends each page's recorded callbacks, one after another on its own keep-alive
connection per page (a browser would send them in parallel, so a page's time here is an upper bound),
carrying the interval's count and the values the previous answers gave the page's stores, as Dash's
renderer does. A page update's latency is the time from its first request to its last answer; an
error is a status other than 200, a timeout (10 s) or a refused connection.

From the analyzer's store, per phase: the windows' kernel drops, sampled-out packets and lag.

    sudo .venv/bin/python bench/dashboard_load.py --viewers 50 --minutes 10 --pps 10000   # the README's row
    sudo .venv/bin/python bench/dashboard_load.py --viewers 5 --minutes 0.5 --quiet-minutes 0.25  # a quick look
"""

from __future__ import annotations

import argparse
import http.client
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

CLI = ROOT / "network_traffic_analyzer.py"
PAGES = ("/", "/alerts")
REFRESH = "app-refresh-interval"  # dashboard.data.REFRESH_INTERVAL_ID
TICK_S = 2.0  # dashboard.data.REFRESH_MS
TIMEOUT_S = 10.0
START_TIMEOUT_S = 60.0
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
DROPPED_HEADERS = {"content-length", "host", "connection", "accept-encoding"}


# -- inside the sensor's namespace: record one tab, then replay it as many viewers -------------------------


def record(url: str) -> dict[str, list[tuple[dict, bytes]]]:
    """Per page, the (headers, body) of each callback its refresh timer fires, as headless Chromium sent them."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--window-size=1400,1000",
        f"--user-data-dir={tempfile.mkdtemp()}",
    ):
        options.add_argument(flag)  # fmt: skip
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    recorded: dict[str, list[tuple[dict, bytes]]] = {}
    try:
        for page in PAGES:
            driver.get(url + page)
            time.sleep(6 * TICK_S)  # the page loads, then a few refreshes
            calls: dict[str, tuple[dict, bytes]] = {}
            seen = []  # the changed properties of every callback: said when none was the refresh
            for entry in driver.get_log("performance"):
                message = json.loads(entry["message"])["message"]
                if message["method"] != "Network.requestWillBeSent":
                    continue
                request = message["params"]["request"]
                if "/_dash-update-component" not in request["url"] or "postData" not in request:
                    continue
                body = json.loads(request["postData"])
                seen.append(body.get("changedPropIds"))
                if f"{REFRESH}.n_intervals" not in body.get("changedPropIds", []):
                    continue
                headers = {k: v for k, v in request["headers"].items() if k.lower() not in DROPPED_HEADERS}
                calls[body["output"]] = (headers, request["postData"].encode())  # the latest of each callback
            if not calls:
                raise SystemExit(
                    f"no refresh callback recorded on {page} (callbacks seen: {seen}; page title {driver.title!r}, "
                    f"{driver.page_source[:300]!r})"
                )
            recorded[page] = list(calls.values())
    finally:
        driver.quit()
    return recorded


class Tab:
    """One open page of one viewer: its callbacks, and the values its components hold between refreshes."""

    def __init__(self, url: str, calls: list[tuple[dict, bytes]]) -> None:
        self.parts = urllib.parse.urlsplit(url)
        self.calls = [(headers, json.loads(body)) for headers, body in calls]
        self.values: dict[tuple[str, str], object] = {}  # (component, property) -> as the last answer set it
        self.connection: http.client.HTTPConnection | None = None

    def refresh(self, tick: int) -> tuple[float, int]:
        """Send the page's callbacks for refresh ``tick``; (seconds for all, errors)."""
        started, errors = time.perf_counter(), 0
        for headers, body in self.calls:
            for part in ("inputs", "state"):
                for item in body.get(part, []):
                    if isinstance(item, dict) and "id" in item:
                        key = (str(item["id"]), item["property"])
                        if key == (REFRESH, "n_intervals"):
                            item["value"] = tick
                        elif key in self.values:
                            item["value"] = self.values[key]
            try:
                answer = self._post(headers, json.dumps(body).encode())
            except (OSError, http.client.HTTPException):
                errors += 1
                self.connection = None
                continue
            if answer is None:
                errors += 1
                continue
            for component, props in answer.get("response", {}).items():
                for prop, value in props.items():
                    self.values[(component, prop)] = value
        return time.perf_counter() - started, errors

    def _post(self, headers: dict, body: bytes) -> dict | None:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.parts.hostname, self.parts.port, timeout=TIMEOUT_S)
        self.connection.request("POST", "/_dash-update-component", body, headers)
        response = self.connection.getresponse()
        data = response.read()
        if response.status == 204:  # every output unchanged (PreventUpdate)
            return {}
        return json.loads(data) if response.status == 200 else None


def viewers(url: str, count: int, seconds: float) -> dict:
    """``count`` viewers, each with every page of PAGES open, for ``seconds``: latencies and errors."""
    recorded = record(url)
    latencies: dict[str, list[float]] = {page: [] for page in PAGES}
    errors = {page: 0 for page in PAGES}
    lock = threading.Lock()
    viewing_from = time.time()
    deadline = time.monotonic() + seconds

    def view(offset: float) -> None:
        tabs = {page: Tab(url, calls) for page, calls in recorded.items()}
        time.sleep(offset)  # viewers opened the pages at different moments
        tick = 1
        while time.monotonic() < deadline:
            due = time.monotonic() + TICK_S
            for page, tab in tabs.items():
                took, failed = tab.refresh(tick)
                with lock:
                    latencies[page].append(took)
                    errors[page] += failed
            tick += 1
            time.sleep(max(0.0, due - time.monotonic()))

    threads = [threading.Thread(target=view, args=(TICK_S * i / count,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    return {
        "viewing": [viewing_from, time.time()],
        "callbacks": {page: len(calls) for page, calls in recorded.items()},
        "pages": {page: _percentiles(latencies[page]) | {"errors": errors[page]} for page in PAGES},
    }


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {"updates": 0}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    ms = lambda s: round(1000 * s)  # noqa: E731
    return {"updates": len(values), "p50_ms": ms(cuts[49]), "p95_ms": ms(cuts[94]), "p99_ms": ms(cuts[98]),
            "max_ms": ms(max(values))}  # fmt: skip


# -- the run: namespaces, replay, analyzer, then the viewers inside the sensor's namespace ---------------------


def _health(db: Path, since: float, until: float) -> dict:
    """What the analyzer's capture-health rows say of a span of wall-clock time: packets captured, kernel drops
    and sampled-out packets in it (the rows carry running totals), the worst lag and the busiest CPU."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:

        def totals(at: float) -> tuple:
            row = conn.execute(
                "SELECT packets, COALESCE(dropped, 0), sampled_out FROM health WHERE at < ? ORDER BY at DESC LIMIT 1",
                (at,),
            ).fetchone()
            return row or (0, 0, 0)

        (p0, d0, s0), (p1, d1, s1) = totals(since), totals(until)
        lag, cpu, windows = conn.execute(
            "SELECT MAX(lag_s), MAX(cpu_percent), COUNT(*) FROM health WHERE at >= ? AND at < ?", (since, until)
        ).fetchone()
    return {"windows": windows, "packets": p1 - p0, "kernel_dropped": d1 - d0, "sampled_out": s1 - s0,
            "worst_lag_s": lag, "most_cpu_percent": cpu}  # fmt: skip


def run(viewer_count: int, minutes: float, quiet_minutes: float, pps: int) -> dict:
    from live_bench import replay, replay_capture, stop_analyzer
    from netns import namespace_pair

    capture = replay_capture()
    seconds = minutes * 60
    with namespace_pair() as pair, tempfile.TemporaryDirectory(prefix="nta-dash-load-") as tmp:
        work = Path(tmp)
        log = work / "analysis.log"
        analyzer = pair.popen_in(
            pair.ns_a, sys.executable, str(CLI), "--interface", pair.if_a, "--window", "5", "--json", "--no-progress",
            "--data-dir", str(work / "data"), "--log-file", str(log), "--port", "8050",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        url = "http://127.0.0.1:8050"
        deadline = time.monotonic() + START_TIMEOUT_S
        while pair.run_in(pair.ns_a, "curl", "-sf", "-o", "/dev/null", url + "/").returncode != 0:
            if analyzer.poll() is not None or time.monotonic() > deadline:
                analyzer.kill()
                raise SystemExit(f"the analyzer did not start: {analyzer.communicate()[1][-800:]}")
            time.sleep(0.5)
        total = quiet_minutes * 60 + seconds + 120  # the recording included
        background = replay(pair, capture, pps, int(pps * total), wait=False)
        try:
            quiet_from = time.time()
            time.sleep(quiet_minutes * 60)
            quiet_until = time.time()
            driver = pair.run_in(
                pair.ns_a, sys.executable, __file__, "--inside", url, "--viewers", str(viewer_count),
                "--minutes", str(minutes), timeout=seconds + 600,
            )  # fmt: skip
            if driver.returncode != 0:
                raise SystemExit(f"the viewers failed: {driver.stderr[-2000:]}")
            seen = json.loads(driver.stdout.strip().splitlines()[-1])
        finally:
            background.terminate()
            background.wait(timeout=30)
        summary = stop_analyzer(analyzer)
        db = work / "data" / "analyzer.db"
        seen["quiet"] = _health(db, quiet_from, quiet_until)
        seen["loaded"] = _health(db, *seen["viewing"])  # the recording left out
    seen.update(viewers=viewer_count, minutes=minutes, pps=pps, analyzer_alerts=len(summary.get("alerts", [])))
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=10.0, help="with the viewers")
    parser.add_argument("--quiet-minutes", type=float, default=2.0, help="before the viewers, for comparison")
    parser.add_argument("--pps", type=int, default=10_000, help="replayed packets/s on the veth")
    parser.add_argument("--inside", metavar="URL", help=argparse.SUPPRESS)  # the viewers' half, in the namespace
    args = parser.parse_args()
    if args.inside:
        print(json.dumps(viewers(args.inside, args.viewers, args.minutes * 60)))
        return
    result = run(args.viewers, args.minutes, args.quiet_minutes, args.pps)
    print(json.dumps(result, indent=1))
    print("| page | updates | p50 ms | p95 ms | p99 ms | max ms | errors |\n|---|---:|---:|---:|---:|---:|---:|")
    for page, p in result["pages"].items():
        print(f"| {page} | {p['updates']:,} | {p.get('p50_ms')} | {p.get('p95_ms')} | {p.get('p99_ms')} | "
              f"{p.get('max_ms')} | {p['errors']} |")  # fmt: skip
    for phase in ("quiet", "loaded"):
        print(phase, result[phase])


if __name__ == "__main__":
    main()
