"""The dashboard in real headless Chromium, on stores written by the analyzer and by hand.

The nmap test runs the analyzer's CLI on the public nmap-syn-scan capture and checks the
page shows the store's real numbers; the live test writes windows into a store while the
page is open and waits for them to appear without a reload. Everything talks to 127.0.0.1.
"""

from __future__ import annotations

import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import NamedTuple

import pandas as pd
import pytest
from browser_session import (  # noqa: F401 (fixtures)
    HIGH_SEVERITY_RGB,
    KIND_FILTER_CSS,
    ROOT,
    SCORE_SORT_CSS,
    SERVER_START_TIMEOUT_S,
    SEVERITY_BACKGROUNDS_JS,
    T0,
    TABLE_ROWS_JS,
    WAIT_S,
    _act,
    _graph,
    _rows,
    _text,
    _wait,
    _wait_rows,
    _wait_text,
    _window,
    browser,
    console,
    nmap_run,
    serve,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from traffic_analyzer.dashboard import formatting as fmt
from traffic_analyzer.dashboard.data import REFRESH_MS
from traffic_analyzer.dashboard.server import DashboardServer
from traffic_analyzer.errors import AnalyzerError
from traffic_analyzer.records.alert import Alert
from traffic_analyzer.records.window import WindowResult
from traffic_analyzer.store.engine import store_url
from traffic_analyzer.store.writer import ResultWriter

pytestmark = pytest.mark.browser  # the whole module, as before its helpers moved out: one dashboard at a time


@pytest.mark.browser
def test_overview_shows_the_stored_results_of_the_nmap_scan(browser, nmap_run, syn_scan, serve, console):  # noqa: F811
    url, summary = nmap_run
    scanner, target = syn_scan.label["attacker"], syn_scan.label["victim"]
    server = serve(url)
    browser.get(server.url)

    _wait_text(browser, "overview-health-packets", f"{syn_scan.packets:,}")
    assert summary["packets"] == syn_scan.packets
    assert _text(browser, "overview-health-bytes") == fmt.size(summary["bytes"])
    assert _text(browser, "overview-health-dropped") == fmt.NOT_FOR_A_FILE  # was "unknown" (issue 15 item 13)
    assert _text(browser, "overview-health-model") == "no anomaly model"
    assert syn_scan.path.name in _text(browser, "overview-run-source")
    assert _text(browser, "overview-run-status").lower() == "finished"
    _wait(browser, lambda d: d.title == "Overview · Network Traffic Analyzer", "the page title")

    rows = _wait(browser, lambda d: d.execute_script(TABLE_ROWS_JS), "the alerts table rows")
    scans = [r for r in rows if r["attacker"] == scanner and r["kind"] == "port_scan"]
    assert len(scans) == 1, rows
    (expected,) = [a for a in summary["alerts"] if a["kind"] == "port_scan"]
    assert scans[0]["victims"] == target
    assert scans[0]["severity"] == expected["severity"] == "high"
    assert scans[0]["start"] == fmt.timestamp(expected["start"])
    assert float(scans[0]["score"]) == pytest.approx(expected["score"], abs=0.05)
    assert ["high", HIGH_SEVERITY_RGB] in browser.execute_script(SEVERITY_BACKGROUNDS_JS)

    traffic = _wait(browser, lambda d: _graph(d, "overview-traffic-graph"), "the traffic graph")
    packets_per_s = next(t for t in traffic["traces"] if t["name"] == "packets/s")
    assert sum(packets_per_s["y"]) == syn_scan.packets  # one-second bins: the rates add up to the packet count
    seconds = int(syn_scan.label["end_ts"]) - int(syn_scan.label["start_ts"]) + 1  # the scan is the whole capture
    assert len(packets_per_s["x"]) == seconds  # silent seconds included as zeros
    assert not traffic["annotations"]

    protocols = _graph(browser, "overview-protocol-graph")
    assert protocols["traces"][0]["y"] == ["TCP"]
    assert protocols["traces"][0]["x"] == [syn_scan.packets]
    talkers = _graph(browser, "overview-talkers-graph")
    assert set(talkers["traces"][0]["y"]) == {scanner, target}
    browser.get("about:blank")  # the page would poll the server stopped after the test (the next test's console)


@pytest.mark.browser
def test_a_files_overview_says_drops_and_lag_do_not_apply(browser, nmap_run, serve):  # noqa: F811
    """Issue 15 item 13: a file's overview said "Dropped: unknown" and "Analysis lag: unknown", as if
    something had gone wrong; a file is read whole and has no wall clock to lag behind."""
    url, _ = nmap_run
    browser.get(serve(url).url)
    _wait_text(browser, "overview-health-dropped", "not applicable to a file")
    assert _text(browser, "overview-health-lag") == "not applicable to a file"
    # one script read: the refresh may replace the panel between finding it and reading it
    assert "unknown" not in browser.execute_script("return document.querySelector('.stat-grid').innerText")
    browser.get("about:blank")  # the page would poll the server stopped after the test (the next test's console)


@pytest.mark.browser
def test_the_page_follows_a_live_store_without_reloading(browser, serve, console, tmp_path):  # noqa: F811
    url = store_url(tmp_path)
    writer = ResultWriter(url)  # creates the empty store, as the analyzer does at start-up
    server = serve(url)
    browser.get(server.url)

    _wait(browser, lambda d: "No analysis run in this store yet" in _text(d, "overview-run"), "the no-run message")
    assert _text(browser, "overview-alerts-summary").startswith("No alerts yet")
    empty = _wait(browser, lambda d: _graph(d, "overview-traffic-graph"), "the empty traffic graph")
    assert empty["traces"] == [] and "No packets analysed yet" in empty["annotations"][0]
    browser.execute_script("window.notReloaded = true;")

    writer.start_run("live-1", "live eth0 (pyshark)", {"status": "training"})
    writer.write_window("live-1", _window(T0, 1234, 80_000, [], "capturing on eth0"))
    _wait_text(browser, "overview-health-packets", "1,234")
    assert _text(browser, "overview-health-status") == "Status: capturing on eth0"
    assert _text(browser, "overview-health-model") == "training"
    assert _text(browser, "overview-health-dropped") == "0"
    assert _text(browser, "overview-alerts-summary").startswith("No alerts yet: nothing suspicious so far")

    scan = Alert(
        kind="port_scan",
        attacker="10.0.0.1",
        victims=["10.0.0.2"],
        start=T0,
        end=T0 + 1,
        score=80.0,
        explanation="<b>probed</b> <img src=x onerror=alert(1)> 300 ports",
        detector="port_scan",
    )
    writer.write_window("live-1", _window(T0 + 1, 2000, 120_000, [scan], "capturing on eth0"))
    rows = _wait(browser, lambda d: d.execute_script(TABLE_ROWS_JS), "the new alert")
    assert [(r["severity"], r["attacker"], r["kind"]) for r in rows] == [("high", "10.0.0.1", "port_scan")]
    _wait_text(browser, "overview-health-packets", "2,000")
    assert browser.execute_script("return window.notReloaded === true")

    # Text from packets stays text: no markup from the alert or a protocol name reaches the DOM.
    assert rows[0]["explanation"] == "<b>probed</b> <img src=x onerror=alert(1)> 300 ports"
    assert not browser.find_elements(By.CSS_SELECTOR, "#overview-alerts-table b, #overview-alerts-table img")
    protocols = _wait(
        browser, lambda d: (g := _graph(d, "overview-protocol-graph")) and g["ytick_text"] and g, "the protocol graph"
    )
    assert "<b>X</b>" in protocols["ytick_text"]
    writer.close()


@pytest.mark.browser
def test_the_alerts_table_filters_and_sorts(browser, serve, console, tmp_path):  # noqa: F811
    url = store_url(tmp_path)
    writer = ResultWriter(url)
    writer.start_run("r", "file test.pcap", {"status": "none"})
    alerts = [
        Alert(
            kind=kind,
            attacker=attacker,
            victims=["10.9.9.9"],
            start=T0,
            end=T0 + 5,
            score=score,
            explanation=f"{kind} from {attacker}",
        )
        for kind, attacker, score in [
            ("port_scan", "10.0.0.1", 95.0),
            ("anomaly", "10.0.0.2", 45.0),
            ("syn_flood", "10.0.0.3", 75.0),
        ]
    ]
    writer.write_window("r", _window(T0, 10, 600, alerts, "finished"))
    writer.close()
    browser.get(serve(url).url)

    rows = _wait(
        browser, lambda d: len(d.execute_script(TABLE_ROWS_JS)) == 3 and d.execute_script(TABLE_ROWS_JS), "three alerts"
    )
    assert [r["score"] for r in rows] == ["95.0", "75.0", "45.0"]  # highest score first
    assert _text(browser, "overview-alerts-summary") == "3 alerts (1 critical, 1 high, 1 medium), highest score first."

    _act(browser, KIND_FILTER_CSS, lambda el: el.send_keys("syn", Keys.ENTER))
    _wait(
        browser, lambda d: [r["attacker"] for r in d.execute_script(TABLE_ROWS_JS)] == ["10.0.0.3"], "the filtered row"
    )
    _act(browser, KIND_FILTER_CSS, lambda el: el.send_keys(Keys.CONTROL, "a", Keys.BACKSPACE, Keys.ENTER))
    _wait(browser, lambda d: len(d.execute_script(TABLE_ROWS_JS)) == 3, "all rows again")

    _act(browser, SCORE_SORT_CSS, lambda el: el.click())
    _wait(
        browser,
        lambda d: [r["score"] for r in d.execute_script(TABLE_ROWS_JS)] == ["45.0", "75.0", "95.0"],
        "rows sorted by ascending score",
    )


def test_a_port_in_use_is_a_one_line_analyzer_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = DashboardServer(store_url(tmp_path), port=port)
        with pytest.raises(AnalyzerError) as caught:
            server.start()
    assert str(caught.value) == (
        f"port {port} on 127.0.0.1 is already in use: stop the other program or choose another with --port"
    )
    server.stop()  # nothing was started; stop must still be safe


def test_the_module_serves_an_existing_store_until_interrupted(tmp_path):
    ResultWriter(store_url(tmp_path)).close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "traffic_analyzer.dashboard", "--store", store_url(tmp_path), "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], SERVER_START_TIMEOUT_S)
        assert ready, "the dashboard printed no URL"
        line = proc.stdout.readline()
        assert line.startswith("Dashboard: http://127.0.0.1:"), (line, proc.stderr.read() if proc.poll() else "")
        url = line.split()[1]
        with urllib.request.urlopen(url, timeout=WAIT_S) as page:
            assert page.status == 200
            assert "Network Traffic Analyzer" in page.read().decode()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=SERVER_START_TIMEOUT_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=SERVER_START_TIMEOUT_S)


def test_the_module_refuses_a_missing_store_in_one_line(tmp_path):
    missing = tmp_path / "nowhere" / "analyzer.db"
    proc = subprocess.run(
        [sys.executable, "-m", "traffic_analyzer.dashboard", "--store", f"sqlite:///{missing}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SERVER_START_TIMEOUT_S,
    )
    assert proc.returncode == 1
    assert proc.stderr == f"error: no result store at {missing}: run the analyzer first or check --store\n"
    assert not missing.parent.exists()  # refusing must not create the database as a side effect


FILTER_MODEL_JS = "const api = dash_ag_grid.getApi(arguments[0]); return api ? api.getFilterModel() : null;"
FILTER_INPUT_JS = "const el = document.querySelector(arguments[0]); return el ? el.value : null;"


def _hosts_window(second: int, alerts: list[Alert], hosts: list[str]) -> WindowResult:
    """A window in which each of ``hosts`` sent one packet."""
    window = _window(second, len(hosts), 60 * len(hosts), alerts, "capturing on eth0")
    ones = [1] * len(hosts)
    window.hosts = pd.DataFrame(
        {
            "host": hosts,
            "packets_out": ones,
            "bytes_out": [60] * len(hosts),
            "packets_in": ones,
            "bytes_in": [60] * len(hosts),
        }
    )
    return window


def _alert(kind: str, attacker: str, score: float) -> Alert:
    return Alert(kind, attacker, ["10.9.9.9"], T0, T0 + 5, score, f"{kind} from {attacker}")


GRIDS = {"overview": "overview-alerts-table", "alerts": "alerts-table", "hosts": "hosts-table"}  # the filterable ones


class GridFilter(NamedTuple):
    """What the user types in a column filter of a page's grid, and the rows (their ``key``) it leaves."""

    page: str  # module of the page, as the header link's id names it
    away: str  # the page the user visits in between
    column: str
    typed: str
    key: str
    filtered: set[str]  # of the first window's rows
    filtered_later: set[str]  # once the second window is in


GRID_FILTERS = [
    GridFilter("alerts", "overview", "kind", "syn", "attacker", {"10.0.0.3"}, {"10.0.0.3", "10.0.0.4"}),
    GridFilter("hosts", "alerts", "host", "0.0.2", "host", {"10.0.0.2"}, {"10.0.0.2", "10.0.0.20"}),
    GridFilter("overview", "hosts", "kind", "scan", "attacker", {"10.0.0.1"}, {"10.0.0.1", "10.0.0.30"}),
]


@pytest.mark.browser
@pytest.mark.parametrize("case", GRID_FILTERS, ids=lambda case: case.page)
def test_a_grid_filter_stays_on_coming_back_and_across_refreshes(browser, serve, console, tmp_path, case):  # noqa: F811
    """The grids lost the user's column filter when they left the page and came back (the sort stayed)."""
    url = store_url(tmp_path)
    writer = ResultWriter(url)
    writer.start_run("live-1", "live eth0 (pyshark)", {"status": "none"})
    first = [
        _alert("port_scan", "10.0.0.1", 95.0),
        _alert("anomaly", "10.0.0.2", 45.0),
        _alert("syn_flood", "10.0.0.3", 75.0),
    ]
    writer.write_window("live-1", _hosts_window(T0, first, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]))
    try:
        browser.get(serve(url).url + ("" if case.page == "overview" else case.page))
        grid = GRIDS[case.page]
        shown = lambda rows: {row[case.key] for row in rows}  # noqa: E731
        _wait_rows(browser, grid, lambda r: len(r) == 3, "all three rows")

        filter_css = f'#{grid} .ag-floating-filter[col-id="{case.column}"] input'
        _act(browser, filter_css, lambda el: el.send_keys(case.typed, Keys.ENTER))
        _wait_rows(browser, grid, lambda r: shown(r) == case.filtered, f"the rows matching {case.typed!r}")
        model = {case.column: {"filterType": "text", "type": "contains", "filter": case.typed}}
        assert browser.execute_script(FILTER_MODEL_JS, grid) == model

        _act(browser, f"#app-nav-{case.away}", lambda el: el.click())
        _wait_rows(browser, GRIDS[case.away], lambda r: not _rows(browser, grid), f"the {case.away} page")
        _act(browser, f"#app-nav-{case.page}", lambda el: el.click())
        _wait_rows(browser, grid, lambda r: shown(r) == case.filtered, f"the rows matching {case.typed!r} again")
        assert browser.execute_script(FILTER_MODEL_JS, grid) == model
        assert browser.execute_script(FILTER_INPUT_JS, filter_css) == case.typed

        later = [_alert("syn_flood", "10.0.0.4", 60.0), _alert("port_scan", "10.0.0.30", 90.0)]
        writer.write_window("live-1", _hosts_window(T0 + 1, later, ["10.0.0.20", "10.0.0.30", "10.0.0.4"]))
        _wait_rows(browser, grid, lambda r: shown(r) == case.filtered_later, "the new rows, filtered")
        time.sleep(REFRESH_MS / 1000)  # and one more refresh tick
        assert shown(_rows(browser, grid)) == case.filtered_later
        assert browser.execute_script(FILTER_MODEL_JS, grid) == model
    finally:
        writer.close()
        browser.get("about:blank")  # the page would poll the server stopped after the test (the next test's console)
