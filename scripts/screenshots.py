"""Save a full-page PNG of every dashboard page into docs/screenshots/, for the README and reviews.

    .venv/bin/python scripts/screenshots.py                      # analyses nmap-syn-scan first
    .venv/bin/python scripts/screenshots.py --capture ../shared/pcaps/ftp-bruteforce.pcap
    .venv/bin/python scripts/screenshots.py --store sqlite:///data/analyzer.db

Without --store it runs the analyzer's CLI on a capture (nmap-syn-scan.pcapng by default) into
a temporary data directory. The alerts page is taken with its highest-scoring alert selected and
the hosts page drilled into its most threatening host, so the details show too. Needs Debian's
chromium and chromium-driver; talks only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a plain script from a checkout, like network_traffic_analyzer.py

import dash  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from traffic_analyzer.dashboard.server import DashboardServer  # noqa: E402
from traffic_analyzer.dashboard.tables import alert_link, host_link, host_rows  # noqa: E402
from traffic_analyzer.store.engine import store_url  # noqa: E402
from traffic_analyzer.store.reader import ResultReader  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DEFAULT_CAPTURE = ROOT.parent / "shared" / "pcaps" / "nmap-syn-scan.pcapng"
WINDOW_WIDTH = 1400
PAGE_READY_TIMEOUT_S = 30.0
SETTLE_S = 1.0  # after the data shows: lets Plotly finish its transitions before the capture
CLI_TIMEOUT_S = 300.0
# True once the page has rendered its data: no placeholder left and every plot drawn.
PAGE_READY_JS = """
return document.querySelector('#_pages_content') !== null
    && !document.body.innerText.includes('Loading')
    && Array.from(document.querySelectorAll('.js-plotly-plot')).every(p => p.querySelector('.main-svg'));
"""


def _analyse(capture: Path, data_dir: Path) -> str:
    """Run the analyzer CLI on ``capture`` and return the URL of the store it wrote."""
    cmd = [
        sys.executable,
        str(ROOT / "network_traffic_analyzer.py"),
        "--read",
        str(capture),
        "--no-dashboard",
        "--no-progress",
        "--data-dir",
        str(data_dir),
        "--log-file",
        str(data_dir / "analysis.log"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f"error: the analyzer failed on {capture}: {proc.stderr.strip()}")
    return store_url(data_dir)


def _selections(store: str) -> dict[str, str]:
    """Page module name -> the path to take it at: with the top alert and the top host selected."""
    reader = ResultReader(store)
    try:
        run = reader.latest_run()
        if run is None:
            return {}
        alerts = reader.alerts(run["run_id"])
        hosts = host_rows(reader.host_totals(run["run_id"]), alerts, [])
    finally:
        reader.close()
    paths = {}
    if not alerts.empty:
        paths["alerts"] = alert_link(str(alerts.iloc[0]["alert_id"]))
    if hosts:
        paths["hosts"] = host_link(hosts[0]["host"])
    return paths


def _browser(profile_dir: Path) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile_dir}",
        f"--window-size={WINDOW_WIDTH},1000",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def _screenshot(driver: webdriver.Chrome, url: str, target: Path) -> None:
    """Load ``url``, wait for its data, then capture the whole page height through the DevTools protocol."""
    driver.get(url)
    WebDriverWait(driver, PAGE_READY_TIMEOUT_S).until(lambda d: d.execute_script(PAGE_READY_JS))
    time.sleep(SETTLE_S)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": WINDOW_WIDTH, "height": height, "scale": 1},
        },
    )
    target.write_bytes(base64.b64decode(shot["data"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="result store URL; by default the CLI analyses --capture first")
    parser.add_argument("--capture", type=Path, default=DEFAULT_CAPTURE, help="capture to analyse without --store")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="folder for the PNGs")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dashboard-screenshots-") as tmp:
        store = args.store or _analyse(args.capture, Path(tmp) / "data")
        selections = _selections(store)
        server = DashboardServer(store, port=0)
        server.start()
        driver = _browser(Path(tmp) / "chromium-profile")
        try:
            args.out.mkdir(parents=True, exist_ok=True)
            for page in dash.page_registry.values():
                name = page["module"].rsplit(".", 1)[-1]
                target = args.out / f"{name}.png"
                _screenshot(driver, server.url.rstrip("/") + selections.get(name, page["relative_path"]), target)
                print(target)
        finally:
            driver.quit()
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
