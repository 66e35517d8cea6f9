"""Two sensors write into one real PostgreSQL database at the same time; one dashboard shows both,
and its sensor filter shows one at a time."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from browser_session import _act, _text, _wait, browser, console, serve  # noqa: F401 (fixtures)
from conftest import CLI
from postgres import postgres_server, postgres_url  # noqa: F401 (fixtures)
from selenium.webdriver.common.by import By

from traffic_analyzer.dashboard.app import create_app
from traffic_analyzer.store.reader import ResultReader

SENSORS = {"alpha": "dns-exfil-dnsexfiltrator.pcap", "beta": "http-sqli-dvwa.pcapng"}


@pytest.fixture
def two_sensors(pcaps, postgres_url, tmp_path) -> dict[str, dict]:  # noqa: F811
    """Both analyzers started together on the same store; sensor name -> its --json summary."""
    running = {}
    for sensor, capture in SENSORS.items():
        cmd = [sys.executable, str(CLI), "--read", str(pcaps / capture), "--no-dashboard", "--json", "--no-progress"]
        cmd += ["--store", postgres_url, "--sensor-name", sensor, "--window", "1"]
        cmd += ["--data-dir", str(tmp_path / sensor), "--log-file", str(tmp_path / f"{sensor}.log")]
        running[sensor] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    summaries = {}
    for sensor, process in running.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        summaries[sensor] = json.loads(out)
    return summaries


def test_two_sensors_share_one_postgresql_and_the_reader_tells_them_apart(two_sensors, postgres_url):  # noqa: F811
    reader = ResultReader(postgres_url)
    assert reader.sensors() == ["alpha", "beta"]
    latest = {r["sensor"]: r for r in reader.latest_runs()}
    assert set(latest) == {"alpha", "beta"}
    for sensor, summary in two_sensors.items():
        run = latest[sensor]
        assert summary["sensor"] == sensor and run["run_id"] == summary["run_id"] and run["status"] == "finished"
        assert reader.traffic(run["run_id"])["packets"].sum() == summary["packets"]
        assert reader.count_flows(run["run_id"]) == summary["flows"]
        assert len(reader.alerts(run["run_id"])) == len(summary["alerts"])
    both = [r["run_id"] for r in latest.values()]
    assert reader.traffic(both)["packets"].sum() == sum(s["packets"] for s in two_sensors.values())
    assert [r["run_id"] for r in reader.latest_runs("beta")] == [two_sensors["beta"]["run_id"]]
    reader.close()


def test_one_dashboard_shows_both_sensors_and_filters_by_sensor(  # noqa: F811
    two_sensors, labels, postgres_url, browser, serve, console
):
    app = create_app(postgres_url)
    pages = {name: sys.modules[f"traffic_analyzer.dashboard.pages.{name}"] for name in ("overview", "hosts", "flows")}
    with app.server.test_request_context():
        from traffic_analyzer.dashboard import data

        assert [o["value"] for o in data.sensor_options(0)] == ["alpha", "beta"]
        header, *_, alert_rows = pages["overview"].refresh(0, None)
        assert header[0].id == "overview-run-sensors"
        assert header[0].children == "Sensors: beta (finished), alpha (finished)" or header[0].children == (
            "Sensors: alpha (finished), beta (finished)"
        )
        assert len(alert_rows) == sum(len(s["alerts"]) for s in two_sensors.values())
        every_flow = sum(s["flows"] for s in two_sensors.values())
        assert pages["flows"].refresh(0, "", "", None, [], "", "", None, None)[0] == f"{every_flow:,} flows."

        for sensor, summary in two_sensors.items():
            header, *_, alert_rows = pages["overview"].refresh(0, sensor)
            assert header[0].children == f"Sensor: {sensor} (finished)"
            assert len(alert_rows) == len(summary["alerts"])
            assert (
                pages["flows"].refresh(0, "", "", None, [], "", "", sensor, None)[0] == f"{summary['flows']:,} flows."
            )
            _, hosts, _ = pages["hosts"].refresh_list(0, sensor, None)
            reader = ResultReader(postgres_url)
            assert sorted(h["host"] for h in hosts) == sorted(reader.host_totals(summary["run_id"])["host"])
            reader.close()

        reader = ResultReader(postgres_url)  # the exfiltrating host's DNS names on its drill-down, as text
        alpha = two_sensors["alpha"]["run_id"]
        (client,) = labels.loc[labels["file"] == SENSORS["alpha"], "attacker"]  # the labelled exfiltrating host
        names = reader.host_dns(alpha, client, limit=50)
        reader.close()
        detail = pages["hosts"].refresh_detail(0, client, "alpha", None)
        dns_summary, dns_rows = detail[-3], detail[-2]
        assert len(names) > 0 and dns_summary.startswith(f"{len(names)} name")
        assert [r["qname"] for r in dns_rows] == names["qname"].tolist()
        assert all(isinstance(r["qname"], str) for r in dns_rows)
    data.detach_stores(app.server)

    # the same in real Chromium: both sensors, then the header's sensor filter picks one
    browser.get(serve(postgres_url).url)
    _wait(browser, lambda d: _text(d, "overview-run-sensors").startswith("Sensors: "), "both sensors")
    assert {"alpha (finished)", "beta (finished)"} <= set(_text(browser, "overview-run-sensors")[9:].split(", "))
    _act(browser, ".app-sensor-filter", lambda el: el.click())
    _act(browser, ".dash-dropdown-option", lambda _el: next(
        o for o in browser.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option") if o.text.strip() == "alpha"
    ).click())  # fmt: skip
    _wait(browser, lambda d: _text(d, "overview-run-sensors") == "Sensor: alpha (finished)", "the alpha sensor alone")
    browser.get("about:blank")
