"""Headless Chromium on the dashboard for the browser tests: the fixtures (a browser, the dashboard served
from a store, the nmap run's store, console errors) and the page helpers they share.

Everything talks to 127.0.0.1.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from conftest import read_json
from made_captures import MadeScan
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from traffic_analyzer.dashboard.server import DashboardServer
from traffic_analyzer.records.alert import Alert
from traffic_analyzer.records.flows import empty_flows
from traffic_analyzer.records.window import WindowResult
from traffic_analyzer.store.engine import store_url

ROOT = Path(__file__).resolve().parents[1]
CLI = ROOT / "network_traffic_analyzer.py"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_S = 20.0  # upper bound for any page condition; the page refreshes every 2 s
SERVER_START_TIMEOUT_S = 30.0
HIGH_SEVERITY_RGB = "rgb(234, 88, 12)"  # SEVERITY_COLOURS["high"] background in pages/overview.py
T0 = 1278275056  # first second of the public nmap-syn-scan.pcapng: packet time of the hand-written windows

# JavaScript run in the page: one read each, so a refresh cannot swap elements between two calls.
# A table's rows of the page shown, in display order, as {column id: text}: AG Grid keeps each row
# absolutely positioned in .ag-center-cols-container, so the order is its row-index attribute.
GRID_ROWS_JS = """
const rowsOf = id => Array.from(document.querySelectorAll('#' + id + ' .ag-center-cols-container .ag-row'))
    .sort((a, b) => Number(a.getAttribute('row-index')) - Number(b.getAttribute('row-index')))
    .map(row => Object.fromEntries(Array.from(row.querySelectorAll('.ag-cell[col-id]'))
        .map(cell => [cell.getAttribute('col-id'), cell.innerText.trim()])))
    .filter(row => Object.keys(row).length > 0);
"""
TABLE_ROWS_JS = GRID_ROWS_JS + "return rowsOf('overview-alerts-table');"
SEVERITY_BACKGROUNDS_JS = """
return Array.from(document.querySelectorAll('#overview-alerts-table .ag-row .ag-cell[col-id="severity"]'))
    .map(cell => [cell.innerText.trim(), getComputedStyle(cell).backgroundColor]);
"""
KIND_FILTER_CSS = '#overview-alerts-table .ag-floating-filter[col-id="kind"] input'
SCORE_SORT_CSS = '#overview-alerts-table .ag-header-cell[col-id="score"] .ag-header-cell-label'
TEXT_JS = "const el = document.getElementById(arguments[0]); return el ? el.innerText.trim() : '';"
# Plotly's computed traces (_fullData) hold plain arrays whatever encoding the figure JSON used.
GRAPH_JS = """
const plot = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
if (!plot || !plot._fullData) return null;
return {
    traces: plot._fullData.map(t => ({name: t.name, x: Array.from(t.x || []), y: Array.from(t.y || [])})),
    annotations: (plot.layout.annotations || []).map(a => a.text),
    ytick_text: Array.from(plot.querySelectorAll('.ytick text')).map(t => t.textContent),
};
"""


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """One headless Chromium for the module, with a fresh profile and the console log kept."""
    for program in (CHROMIUM, CHROMEDRIVER):
        if not program.exists():
            pytest.skip(f"{program} is missing: install Debian's chromium and chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT_S)
    driver.set_script_timeout(WAIT_S)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def nmap_run(syn_scan: MadeScan, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    """Store URL and --json summary of the analyzer CLI reading the made nmap -sS capture (in every clone)."""
    if not CLI.exists():
        pytest.skip(f"the analyzer CLI {CLI.name} is not there yet")
    tmp = tmp_path_factory.mktemp("nmap-run")
    summary = read_json(tmp, syn_scan.path)  # the CLI as a user runs it; asserts it exits 0
    return store_url(tmp / "data"), summary


@pytest.fixture
def serve() -> Iterator:
    """Start DashboardServers on free ports; every one is stopped after the test."""
    servers: list[DashboardServer] = []

    def start(url: str, host: str = "127.0.0.1", **kwargs) -> DashboardServer:
        server = DashboardServer(url, host=host, port=0, **kwargs)
        server.start()
        servers.append(server)
        return server

    start.servers = servers  # type: ignore[attr-defined]  # for the console check
    yield start
    for server in servers:
        _STOPPED_URLS.add(server.url.rstrip("/"))
        server.stop()


_STOPPED_URLS: set[str] = set()  # servers that earlier tests stopped


def _from_an_earlier_test(entry: dict, current: set[str]) -> bool:
    """A failed request to a server an earlier test stopped: Chromium can still be finishing that page's
    last poll after the test moved to about:blank, and the error lands in the next test's log."""
    return any(url in entry["message"] for url in _STOPPED_URLS - current)


@pytest.fixture
def console(browser: webdriver.Chrome, serve) -> Iterator[None]:
    """Fail the test if the page logged a SEVERE console error while it ran (its own servers' pages)."""
    browser.get_log("browser")  # reading the log empties it: start clean
    yield
    current = {server.url.rstrip("/") for server in serve.servers}  # still running: serve stops them later
    severe = [
        entry
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE" and not _from_an_earlier_test(entry, current)
    ]
    assert not severe, f"browser console errors: {severe}"


# --- helpers ----------------------------------------------------------------------------------


def _wait(driver: webdriver.Chrome, condition, what: str):
    """Wait up to WAIT_S for ``condition(driver)`` to be truthy and return its value."""
    try:
        return WebDriverWait(driver, WAIT_S, poll_frequency=0.2).until(condition)
    except TimeoutException:
        pytest.fail(f"after {WAIT_S:.0f} s the page still does not show {what}")


def _text(driver: webdriver.Chrome, element_id: str) -> str:
    """The element's rendered text, read in one script: the page may replace it between two WebDriver calls."""
    return driver.execute_script(TEXT_JS, element_id)


def _act(driver: webdriver.Chrome, css: str, action: Callable[[WebElement], None]) -> None:
    """Find the element and act on it, again if a refresh replaced it in between."""

    def attempt(d: webdriver.Chrome) -> bool:
        action(d.find_element(By.CSS_SELECTOR, css))
        return True

    ignored = (StaleElementReferenceException, NoSuchElementException)
    WebDriverWait(driver, WAIT_S, poll_frequency=0.2, ignored_exceptions=ignored).until(attempt)


def _wait_text(driver: webdriver.Chrome, element_id: str, expected: str) -> None:
    _wait(driver, lambda d: _text(d, element_id) == expected, f"{expected!r} in #{element_id}")


def _graph(driver: webdriver.Chrome, graph_id: str) -> dict | None:
    return driver.execute_script(GRAPH_JS, graph_id)


def _window(second: int, packets: int, n_bytes: int, alerts: list[Alert], status: str) -> WindowResult:
    """A one-second analysis window as the analysis loop would write it."""
    return WindowResult(
        window_start=second,
        window_end=second + 1,
        traffic=pd.DataFrame({"second": [second], "packets": [packets], "bytes": [n_bytes]}),
        protocols=pd.DataFrame(
            {"protocol": ["TCP", "<b>X</b>"], "packets": [packets - 1, 1], "bytes": [n_bytes - 60, 60]}
        ),
        hosts=pd.DataFrame(
            {
                "host": ["10.0.0.1", "10.0.0.2"],
                "packets_out": [packets, 0],
                "bytes_out": [n_bytes, 0],
                "packets_in": [0, packets],
                "bytes_in": [0, n_bytes],
            }
        ),
        flows=empty_flows(),
        alerts=alerts,
        health={
            "at": time.time(),
            "packets": packets,
            "bytes": n_bytes,
            "dropped": 0,
            "sampled_out": 0,
            "lag_s": 0.2,
            "open_flows": 3,
            "cpu_percent": 4.0,
            "rss_mb": 120.0,
            "status": status,
        },
    )


# --- tests ------------------------------------------------------------------------------------


ROWS_JS = GRID_ROWS_JS + "return rowsOf(arguments[0]);"


def _rows(driver, table_id: str) -> list[dict]:
    return driver.execute_script(ROWS_JS, table_id)


def _wait_rows(driver, table_id: str, condition, what: str) -> list[dict]:
    return _wait(driver, lambda d: (rows := _rows(d, table_id)) and condition(rows) and rows, what)


def _click_cell(driver, table_id: str, column: str, text: str | None = None) -> None:
    """Click the first cell of ``column`` (holding ``text``, if given) in a table."""
    css = f'#{table_id} .ag-row .ag-cell[col-id="{column}"]'

    def click(_el) -> None:
        cells = driver.find_elements(By.CSS_SELECTOR, css)
        cell = next(c for c in cells if text is None or c.text.strip() == text)
        cell.click()

    _act(driver, css, click)


@pytest.fixture(autouse=True)
def blank_page(browser) -> None:
    """Start each test on a blank page: the last test's page would poll its stopped server and log errors."""
    browser.get("about:blank")
