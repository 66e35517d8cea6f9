"""The alerts, hosts and flows pages in real headless Chromium, on stores the analyzer's CLI wrote.

Numbers on the pages are checked against the --json summary and the store. Acknowledgements
and allow-list entries made in the browser must still be there after the dashboard restarts.
Everything talks to 127.0.0.1.
"""

from __future__ import annotations

import csv
import shutil
import sqlite3
import time
from pathlib import Path

import pandas as pd
import pytest
from browser_session import (  # noqa: F401 (fixtures)
    ROWS_JS,
    T0,
    _act,
    _click_cell,
    _graph,
    _rows,
    _text,
    _wait,
    _wait_rows,
    _wait_text,
    _window,
    blank_page,
    browser,
    console,
    nmap_run,
    serve,
)
from conftest import PublicCaptures, read_json, serving_after_read
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from traffic_analyzer.dashboard import access
from traffic_analyzer.dashboard import formatting as fmt
from traffic_analyzer.records.alert import Alert
from traffic_analyzer.store.annotations import AllowList
from traffic_analyzer.store.engine import store_url
from traffic_analyzer.store.reader import ResultReader
from traffic_analyzer.store.writer import ResultWriter

FTP_CAPTURE = "ftp-bruteforce.pcap"  # public, or its stand-in in a clone
DOWNLOAD_WAIT_S = 20.0
FLOWS_PAGE_SIZE = 25  # rows on a page of the flows table (pages/flows.py; importing a page registers it)

# One read per call, so a refresh cannot swap the table between two WebDriver calls.
EVIDENCE_JS = """
const dl = document.getElementById('alerts-evidence-list');
if (!dl) return null;
const terms = Array.from(dl.querySelectorAll('dt')).map(dt => dt.innerText.trim());
const values = Array.from(dl.querySelectorAll('dd')).map(dd => dd.innerText.trim());
return Object.fromEntries(terms.map((t, i) => [t, values[i]]));
"""
FETCH_JS = """
const done = arguments[arguments.length - 1];
fetch(arguments[0])
    .then(r => r.arrayBuffer().then(b => done([r.status, b.byteLength])))
    .catch(e => done([0, String(e)]));
"""
ALLOW_ENTRIES_JS = """
return Array.from(document.querySelectorAll('#alerts-allow-list .allow-entry-what')).map(e => e.innerText.trim());
"""


def _copy_store(url: str, target_dir: Path) -> str:
    """A copy of a finished store, so a test can annotate it without touching the shared one."""
    target_dir.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(url.removeprefix("sqlite:///"))
    copy = sqlite3.connect(target_dir / "analyzer.db")
    with copy:
        source.backup(copy)
    source.close()
    copy.close()
    return store_url(target_dir)


@pytest.fixture(scope="module")
def ftp_run(pcaps: PublicCaptures, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    """Store URL and --json summary of the analyzer CLI reading ftp-bruteforce.pcap."""
    tmp = tmp_path_factory.mktemp("ftp-run")
    summary = read_json(tmp, pcaps / FTP_CAPTURE)
    return store_url(tmp / "data"), summary


def unique_start(host: str, hosts: list[str]) -> str:
    """The shortest start of ``host``'s address that no other of ``hosts`` contains: what a user types to filter."""
    return next(host[:n] for n in range(1, len(host) + 1) if [h for h in hosts if host[:n] in h] == [host])


def ends(row: pd.Series) -> tuple[str, str]:
    """(attacker, victim) of a label row: the scanner and its target, the FTP client and server."""
    return row["attacker"], row["victim"]


# --- every page -------------------------------------------------------------------------------


@pytest.mark.browser
def test_the_header_links_every_page_and_marks_the_current_one(browser, nmap_run, syn_scan, serve, console):  # noqa: F811
    url, _ = nmap_run
    browser.get(serve(url).url)
    _wait_text(browser, "overview-health-packets", f"{syn_scan.packets:,}")

    for name, element in (("Alerts", "alerts-summary"), ("Hosts", "hosts-summary"), ("Flows", "flows-summary")):
        _act(browser, f"#app-nav-{name.lower()}", lambda el: el.click())
        _wait(browser, lambda d, e=element: _text(d, e) not in ("", "Loading…"), f"the {name} page")
        _wait(browser, lambda d, n=name: d.title == f"{n} · Network Traffic Analyzer", f"the {name} title")
        active = browser.find_elements(By.CSS_SELECTOR, ".app-nav-link-active")
        assert [a.text for a in active] == [name]

    _act(browser, "#app-nav-overview", lambda el: el.click())
    _click_cell(browser, "overview-alerts-table", "kind", "port_scan")  # an alert opens its details
    _wait_text(browser, "alerts-detail-kind", "port_scan")
    assert browser.current_url.split("/")[-1].startswith("alerts?alert=")


@pytest.mark.browser
def test_pages_say_what_is_happening_then_fill_in_by_themselves(browser, serve, console, tmp_path):  # noqa: F811
    url = store_url(tmp_path)
    writer = ResultWriter(url)
    server = serve(url)
    waiting = "No analysis run in this store yet"
    for path, element in (("alerts", "alerts-summary"), ("hosts", "hosts-summary"), ("flows", "flows-summary")):
        browser.get(server.url + path)
        _wait(browser, lambda d, e=element: waiting in _text(d, e), f"the no-run message on /{path}")

    writer.start_run("live-1", "live eth0 (pyshark)", {"status": "none"})
    writer.write_window("live-1", _window(T0, 100, 6000, [], "capturing on eth0"))
    _wait_text(browser, "flows-summary", "No flows yet. Analyzer status: capturing on eth0.")
    browser.execute_script("window.notReloaded = true;")

    browser.find_element(By.ID, "app-nav-alerts").click()
    _wait_text(browser, "alerts-summary", "No alerts yet. Analyzer status: capturing on eth0.")
    scan = Alert("port_scan", "10.0.0.1", ["10.0.0.2"], T0, T0 + 1, 80.0, "10.0.0.1 probed 300 ports")
    writer.write_window("live-1", _window(T0 + 1, 200, 9000, [scan], "capturing on eth0"))
    rows = _wait_rows(browser, "alerts-table", lambda r: len(r) == 1, "the new alert")
    assert (rows[0]["status"], rows[0]["attacker"], rows[0]["severity"]) == ("new", "10.0.0.1", "high")

    browser.find_element(By.ID, "app-nav-hosts").click()
    rows = _wait_rows(browser, "hosts-table", lambda r: len(r) == 2, "the two hosts")
    assert [(r["host"], r["threat"]) for r in rows] == [("10.0.0.1", "80.0"), ("10.0.0.2", "0.0")]
    assert browser.execute_script("return window.notReloaded === true")
    writer.close()


# --- alerts -----------------------------------------------------------------------------------


@pytest.mark.browser
def test_the_alerts_page_explains_the_scan_with_its_evidence_flows_and_timeline(
    browser, nmap_run, syn_scan, serve, console
):  # noqa: F811
    url, summary = nmap_run
    scanner, target = ends(syn_scan.label)
    (expected,) = [a for a in summary["alerts"] if a["kind"] == "port_scan"]
    browser.get(serve(url).url + "alerts")

    rows = _wait_rows(browser, "alerts-table", lambda r: len(r) == len(summary["alerts"]), "the alerts")
    scan = next(r for r in rows if r["kind"] == "port_scan")
    assert (scan["status"], scan["attacker"], scan["victims"]) == ("new", scanner, target)
    assert scan["start"] == fmt.timestamp(expected["start"]) and scan["explanation"] == expected["explanation"]
    assert _text(browser, "alerts-detail-empty").startswith("Click an alert in the table")

    _click_cell(browser, "alerts-table", "kind", "port_scan")
    _wait_text(browser, "alerts-detail-kind", "port_scan")
    assert _text(browser, "alerts-detail-severity").lower() == expected["severity"]
    assert _text(browser, "alerts-detail-score") == f"score {expected['score']:.1f}"
    assert _text(browser, "alerts-detail-explanation") == expected["explanation"]
    evidence = browser.execute_script(EVIDENCE_JS)
    assert evidence["distinct ports"] == str(expected["evidence"]["distinct_ports"])
    assert evidence["probes"] == str(expected["evidence"]["probes"])
    assert evidence["sample ports"] == ", ".join(str(p) for p in expected["evidence"]["sample_ports"])

    reader = ResultReader(url)
    between = {"between": (scanner, [target]), "start": expected["start"], "end": expected["end"]}
    n_flows = reader.count_flows(summary["run_id"], **between)
    assert n_flows == summary["flows"]  # every flow of this capture is the scan
    _wait(browser, lambda d: _text(d, "alerts-flows-summary").startswith(f"{n_flows:,} flows between"), "flow count")
    flows = _rows(browser, "alerts-flows-table")
    assert len(flows) == 10 and {(f["orig_h"], f["resp_h"]) for f in flows} == {(scanner, target)}
    timeline = _wait(browser, lambda d: _graph(d, "alerts-timeline-graph"), "the timeline")
    assert sum(len(t["x"]) for t in timeline["traces"]) == n_flows
    assert {t["name"] for t in timeline["traces"]} == set(reader.flow_values(summary["run_id"], "conn_state"))
    reader.close()
    assert f"ip={scanner}" in browser.find_element(By.ID, "alerts-flows-link").get_attribute("href")


@pytest.mark.browser
def test_the_alerts_table_filters_and_hides_what_was_handled(browser, serve, console, tmp_path):  # noqa: F811
    url = store_url(tmp_path)
    writer = ResultWriter(url)
    writer.start_run("r", "file test.pcap", {"status": "none"})
    alerts = [
        Alert(kind, attacker, ["10.9.9.9"], T0, T0 + 5, score, f"{kind} from {attacker}")
        for kind, attacker, score in [("port_scan", "10.0.0.1", 95.0), ("anomaly", "10.0.0.2", 45.0)]
    ]
    writer.write_window("r", _window(T0, 10, 600, alerts, "finished"))
    writer.finish_run("r", "finished")
    writer.close()
    server = serve(url)
    browser.get(server.login_url)  # acknowledging needs the session's token, even on 127.0.0.1
    browser.get(server.url + "alerts")
    _wait_rows(browser, "alerts-table", lambda r: len(r) == 2, "two alerts")

    kind_filter = '#alerts-table .ag-floating-filter[col-id="kind"] input'
    _act(browser, kind_filter, lambda el: el.send_keys("anom", Keys.ENTER))
    _wait_rows(browser, "alerts-table", lambda r: [x["attacker"] for x in r] == ["10.0.0.2"], "the filtered row")
    _act(browser, kind_filter, lambda el: el.send_keys(Keys.CONTROL, "a", Keys.BACKSPACE, Keys.ENTER))
    _wait_rows(browser, "alerts-table", lambda r: len(r) == 2, "both rows again")

    _click_cell(browser, "alerts-table", "kind", "port_scan")
    _wait_text(browser, "alerts-detail-kind", "port_scan")
    _act(browser, "#alerts-ack-button", lambda el: el.click())
    _wait_rows(browser, "alerts-table", lambda r: r[0]["status"] == "acknowledged", "the acknowledgement")
    _act(browser, '#alerts-hide input[value="acknowledged"]', lambda el: el.click())
    _wait_rows(browser, "alerts-table", lambda r: [x["kind"] for x in r] == ["anomaly"], "the unhandled alert only")
    assert _text(browser, "alerts-summary").endswith("; 1 new, 1 acknowledged; 1 hidden.")


@pytest.mark.browser
def test_acknowledgements_and_allow_list_entries_survive_a_restart(
    browser, nmap_run, syn_scan, serve, console, tmp_path
):  # noqa: F811
    url = _copy_store(nmap_run[0], tmp_path / "copy")
    scanner, target = ends(syn_scan.label)
    first = serve(url)
    browser.get(first.login_url)
    browser.get(first.url + "alerts")
    _click_cell(browser, "alerts-table", "kind", "port_scan")
    _wait_text(browser, "alerts-detail-kind", "port_scan")

    _act(browser, "#alerts-ack-button", lambda el: el.click())
    _wait(browser, lambda d: _text(d, "alerts-ack-status").startswith("acknowledged "), "the acknowledgement")
    _act(browser, "#alerts-allow-host-button", lambda el: el.click())
    _wait(browser, lambda d: browser.execute_script(ALLOW_ENTRIES_JS) == [f"all alerts from {scanner}"], "the entry")
    _wait_rows(browser, "alerts-table", lambda r: r[0]["status"] == "allow-listed", "the allow-listed status")
    assert AllowList.load(url).allows("port_scan", scanner, [target])  # what the analysis loop will read

    browser.get("about:blank")  # a page left open would log the stopped server's refused polls
    first.stop()
    second = serve(url)
    browser.get(second.login_url)  # a new start, a new token
    browser.get(second.url + "alerts")
    _wait_rows(browser, "alerts-table", lambda r: r[0]["status"] == "allow-listed", "the status after the restart")
    assert browser.execute_script(ALLOW_ENTRIES_JS) == [f"all alerts from {scanner}"]
    _click_cell(browser, "alerts-table", "kind", "port_scan")
    _wait(browser, lambda d: _text(d, "alerts-ack-status").startswith("acknowledged "), "the kept acknowledgement")
    assert not browser.find_element(By.ID, "alerts-ack-button").is_enabled()
    assert not browser.find_element(By.ID, "alerts-allow-host-button").is_enabled()

    browser.get(second.url + "hosts")
    rows = _wait_rows(browser, "hosts-table", lambda r: len(r) == 2, "the hosts")
    assert {r["host"]: r["threat"] for r in rows}[scanner] == "0.0"  # allow-listed alerts add no threat

    browser.get(second.url + "alerts")
    _act(browser, "#alerts-allow-list button", lambda el: el.click())
    _wait(browser, lambda d: "Nothing is allow-listed" in _text(d, "alerts-allow-list"), "the emptied allow-list")
    _wait_rows(browser, "alerts-table", lambda r: r[0]["status"] == "acknowledged", "the alert raised again")
    assert AllowList.load(url).entries == ()


@pytest.mark.browser
def test_changes_wait_for_the_login_form_then_work(browser, serve, console, tmp_path):  # noqa: F811
    url = store_url(tmp_path)
    writer = ResultWriter(url)
    writer.start_run("r", "file test.pcap", {"status": "none"})
    scan = Alert("port_scan", "10.0.0.1", ["10.9.9.9"], T0, T0 + 5, 95.0, "probed")
    writer.write_window("r", _window(T0, 10, 600, [scan], "finished"))
    writer.finish_run("r", "finished")
    writer.close()
    server = serve(url)
    browser.delete_all_cookies()  # an earlier test's login must not count
    browser.get(server.url + "alerts")
    _click_cell(browser, "alerts-table", "kind", "port_scan")
    _wait_text(browser, "alerts-detail-kind", "port_scan")
    _act(browser, "#alerts-allow-host-button", lambda el: el.click())
    _wait_text(browser, "alerts-action-message", access.LOGIN_NEEDED)
    assert AllowList.load(url).entries == ()

    browser.get(server.url + "login")
    token = (tmp_path / access.TOKEN_FILE_NAME).read_text().strip()
    browser.find_element(By.NAME, "token").send_keys(token, Keys.ENTER)  # a form POST from the own origin
    _wait(browser, lambda d: d.current_url == server.url, "the overview after the login")
    assert browser.get_cookie(f"nta_token_{server.url.rsplit(':', 1)[1].rstrip('/')}")["httpOnly"]

    browser.get(server.url + "alerts")
    _click_cell(browser, "alerts-table", "kind", "port_scan")
    _wait_text(browser, "alerts-detail-kind", "port_scan")
    _act(browser, "#alerts-allow-host-button", lambda el: el.click())
    _wait(browser, lambda d: browser.execute_script(ALLOW_ENTRIES_JS) == ["all alerts from 10.0.0.1"], "the entry")
    assert AllowList.load(url).allows("port_scan", "10.0.0.1", ["10.9.9.9"])


# --- hosts ------------------------------------------------------------------------------------


@pytest.mark.browser
def test_the_hosts_page_ranks_by_threat_and_drills_into_a_host(browser, ftp_run, labels, serve, console):  # noqa: F811
    url, summary = ftp_run
    ftp_client, ftp_server = ends(labels.set_index("file").loc[FTP_CAPTURE])
    reader = ResultReader(url)
    run_id = summary["run_id"]
    totals = reader.host_totals(run_id).set_index("host")
    (brute,) = [a for a in summary["alerts"] if a["kind"] == "brute_force"]
    browser.get(serve(url).url + "hosts")

    rows = _wait_rows(browser, "hosts-table", lambda r: len(r) == len(totals), "every host")
    assert rows[0]["host"] == brute["attacker"] == ftp_client
    assert (rows[0]["threat"], rows[0]["severity"]) == (f"{brute['score']:.1f}", brute["severity"])
    for row in rows:
        assert row["bytes_out"] == fmt.count(totals.loc[row["host"], "bytes_out"])
        assert row["packets_in"] == fmt.count(totals.loc[row["host"], "packets_in"])

    host_filter = '#hosts-table .ag-floating-filter[col-id="host"] input'
    typed = unique_start(ftp_server, list(totals.index))
    _act(browser, host_filter, lambda el: el.send_keys(typed, Keys.ENTER))
    _wait_rows(browser, "hosts-table", lambda r: [x["host"] for x in r] == [ftp_server], "the filtered host")
    _act(browser, host_filter, lambda el: el.send_keys(Keys.CONTROL, "a", Keys.BACKSPACE, Keys.ENTER))
    _wait_rows(browser, "hosts-table", lambda r: len(r) == len(totals), "every host again")
    _click_cell(browser, "hosts-table", "host", ftp_client)
    _wait(browser, lambda d: d.current_url.endswith(f"/hosts?host={ftp_client}"), "the drill-down URL")
    _wait_text(browser, "hosts-detail-name", ftp_client)
    _wait_text(browser, "hosts-detail-threat", f"{brute['score']:.1f} {brute['severity']}")
    client = totals.loc[ftp_client]
    sent = f"{fmt.size(client['bytes_out'])}, {fmt.count(client['packets_out'])} packets"
    assert _text(browser, "hosts-detail-sent") == sent
    asked = reader.host_dns(summary["run_id"], ftp_client)
    dns_note = f"{len(asked)} name" if len(asked) else "No DNS queries from this host in the stored windows."
    assert _text(browser, "hosts-dns").startswith(dns_note)
    assert [r["qname"] for r in _rows(browser, "hosts-dns-table")] == asked["qname"].tolist()[:10]
    peers = _wait_rows(browser, "hosts-peers-table", lambda r: len(r) == 1, "the peer")
    assert (peers[0]["peer"], peers[0]["flows"]) == (ftp_server, fmt.count(summary["flows"]))
    ports = _rows(browser, "hosts-ports-table")
    assert ports[0]["port"] == "21" and ports[0]["service"] == "ftp" and ports[0]["role"] == "client (connected to)"
    alerts = _rows(browser, "hosts-alerts-table")
    assert [(a["role"], a["kind"]) for a in alerts] == [("attacker", "brute_force")]
    traffic = _wait(browser, lambda d: _graph(d, "hosts-traffic-graph"), "the traffic graph")
    sent_trace = next(t for t in traffic["traces"] if t["name"] == "sent")
    assert sum(sent_trace["y"]) == client["bytes_out"]
    assert len(sent_trace["x"]) == len(reader.host_windows(run_id, ftp_client))
    reader.close()

    _click_cell(browser, "hosts-peers-table", "peer", ftp_server)  # a peer opens that host
    _wait_text(browser, "hosts-detail-name", ftp_server)
    _wait_text(browser, "hosts-detail-threat", "0")
    _wait_text(browser, "hosts-detail-alerts", "0 as attacker, 1 as victim")
    _click_cell(browser, "hosts-alerts-table", "kind", "brute_force")  # an alert opens the alerts page
    _wait_text(browser, "alerts-detail-kind", "brute_force")


# --- flows ------------------------------------------------------------------------------------


@pytest.mark.browser
def test_the_flows_page_searches_the_store_and_downloads_what_it_shows(
    browser, nmap_run, syn_scan, serve, console, tmp_path
):  # noqa: F811
    url, summary = nmap_run
    target = syn_scan.label["victim"]
    run_id = summary["run_id"]
    reader = ResultReader(url)
    browser.get(serve(url).url + "flows")
    _wait_text(browser, "flows-summary", f"{summary['flows']:,} flows.")

    _act(browser, "#flows-ip", lambda el: el.send_keys(target, Keys.ENTER))
    _act(browser, "#flows-port", lambda el: el.send_keys("22", Keys.ENTER))
    n = reader.count_flows(run_id, ip=target, port=22)
    _wait(browser, lambda d: _text(d, "flows-summary").startswith(f"{n:,} of {summary['flows']:,} flows match"), "n")
    rows = _rows(browser, "flows-table")
    assert len(rows) == n and all("22" in (r["orig_p"], r["resp_p"]) for r in rows)

    _act(browser, "#flows-clear", lambda el: el.click())
    _wait_text(browser, "flows-summary", f"{summary['flows']:,} flows.")
    _act(browser, "#flows-state", lambda el: el.click())
    _act(browser, '.dash-dropdown-option input[value="REJ"]', lambda el: el.find_element(By.XPATH, "..").click())
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    rejected = reader.count_flows(run_id, conn_states=["REJ"])
    _wait(browser, lambda d: _text(d, "flows-summary").startswith(f"{rejected} of "), "the REJ flows")
    seconds = range(int(summary["first_packet_ts"]) + 1, int(summary["last_packet_ts"]) + 1)
    later_from = {s: reader.count_flows(run_id, conn_states=["REJ"], start=float(s)) for s in seconds}
    start_s = min(s for s, n in later_from.items() if 0 < n <= FLOWS_PAGE_SIZE)  # the most that one page shows
    later = later_from[start_s]
    assert later < rejected
    _act(browser, "#flows-start", lambda el: el.send_keys(fmt.timestamp(start_s), Keys.ENTER))
    _wait(browser, lambda d: _text(d, "flows-summary").startswith(f"{later} of "), "the later REJ flows")
    shown = _wait_rows(browser, "flows-table", lambda r: len(r) == later, "the table of later REJ flows")
    assert {r["conn_state"] for r in shown} == {"REJ"}

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    _act(browser, "#flows-download-button", lambda el: el.click())
    deadline = time.monotonic() + DOWNLOAD_WAIT_S
    while not list(downloads.glob("*.csv")) and time.monotonic() < deadline:
        time.sleep(0.2)
    (saved,) = downloads.glob("*.csv")
    assert saved.name == f"flows-{run_id}.csv"
    with saved.open(newline="") as f:
        records = list(csv.DictReader(f))
    assert [r["start (UTC)"] for r in records] == [r["ts"] for r in shown]
    assert {r["state"] for r in records} == {"REJ"} and {r["responder"] for r in records} == {target}
    reader.close()
    shutil.rmtree(downloads)


@pytest.mark.browser
def test_the_evidence_download_works_with_the_default_data_dir(browser, syn_scan, tmp_path):  # noqa: F811
    """Issue 15 item 1: run from a folder without --data-dir (the default, relative 'data'), the alerts
    page's "Download evidence (pcap)" answered HTTP 500: flask.send_file took the path as relative to
    the dashboard package. The analyzer's own dashboard serves the pcap the run cut."""
    with serving_after_read(syn_scan.path, tmp_path) as (port, said):
        [pcap] = (tmp_path / "data" / "evidence").glob("*.pcap")
        browser.get(f"http://127.0.0.1:{port}/alerts?alert={pcap.stem}")
        _wait_text(browser, "alerts-detail-kind", "port_scan")
        link = _wait(
            browser, lambda d: d.find_element(By.ID, "alerts-evidence-download").get_attribute("href"), "the link"
        )
        assert browser.find_element(By.ID, "alerts-evidence-download").text == "Download evidence (pcap)"
        assert browser.execute_async_script(FETCH_JS, link) == [200, pcap.stat().st_size]
    assert "Traceback" not in "".join(said)


HEADERS_JS = """
return Array.from(document.querySelectorAll('#' + arguments[0] + ' .ag-header-cell-text'))
    .map(h => h.innerText.trim());
"""


@pytest.mark.browser
def test_a_hosts_byte_counts_say_which_bytes_they_count(browser, ftp_run, labels, serve, console):  # noqa: F811
    """Issue 15 item 9: a host card said "Sent 115.7 kB" and its peer table "bytes sent to it 87,736" without
    saying why they differ: the card counts frames as captured, the peer table IP bytes of its flows."""
    url, _ = ftp_run
    ftp_client, _ = ends(labels.set_index("file").loc[FTP_CAPTURE])
    browser.get(serve(url).url + f"hosts?host={ftp_client}")
    _wait_text(browser, "hosts-detail-name", ftp_client)
    labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".stat-label")]
    assert "Sent (frame bytes)" in labels and "Received (frame bytes)" in labels, labels
    _wait_rows(browser, "hosts-peers-table", lambda r: len(r) == 1, "the peer")
    peers = browser.execute_script(HEADERS_JS, "hosts-peers-table")
    assert "IP bytes sent to it" in peers and "IP bytes received from it" in peers, peers
    assert "IP bytes" in browser.execute_script(HEADERS_JS, "hosts-ports-table")
    browser.get(serve(url).url + "hosts")
    _wait_rows(browser, "hosts-table", lambda r: len(r) > 0, "the hosts")
    hosts = browser.execute_script(HEADERS_JS, "hosts-table")
    assert "frame bytes sent" in hosts and "frame bytes received" in hosts, hosts
