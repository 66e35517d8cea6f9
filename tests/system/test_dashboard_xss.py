"""Hostile text from packets stays text on every page: a capture carrying script, HTML and markdown payloads.

The capture is built byte by byte with the helpers of tests/data/make_tiny_pcaps.py: DNS
queries whose names are the payloads, and HTTP requests whose URI and Host header carry them.
The real CLI reads it into a store; Chromium then opens every page (and every alert's
details) with alert/confirm/prompt replaced by a tripwire, and the test checks that no script
ran, no element was injected and the payloads show literally where they appear.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from browser_session import _click_cell, _text, _wait, _wait_rows, blank_page, browser, console, serve  # noqa: F401
from conftest import read_json
from data.make_tiny_pcaps import (
    ACK,
    CLIENT,
    FIN,
    LINKTYPE_ETHERNET,
    PSH,
    RESOLVER,
    SERVER,
    SYN,
    T0,
    dns_query,
    frame,
    tcp,
    udp,
)
from selenium.common.exceptions import NoAlertPresentException

from traffic_analyzer.store.engine import store_url

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
LINK = "[click](javascript:alert(1))"
FLAG_IMG = "<img src=x onerror=window.__xss=1>"  # sets the flag instead of opening a dialog
PAYLOADS = (SCRIPT, IMG, LINK)
HTTP_REQUESTS = (  # (URI, Host header): raw where HTTP allows it, percent-encoded where it has spaces
    ("/search?q=" + SCRIPT, IMG),
    ("/" + LINK, SCRIPT),
    ("/?q=%3Cimg%20src%3Dx%20onerror%3Dwindow.__xss%3D1%3E", LINK),
)
# Runs before the page's own scripts: any dialog or the flag marks an injection.
TRIPWIRE_JS = """
for (const name of ['alert', 'confirm', 'prompt']) {
    window[name] = (...args) => { window.__xss = name + ': ' + args.join(' '); };
}
"""
INJECTED_JS = """
const content = document.getElementById('_pages_content') || document.body;
return {
    flag: window.__xss === undefined ? null : String(window.__xss),
    images: content.querySelectorAll('img').length,
    scripts: Array.from(document.querySelectorAll('script')).filter(s => /alert\\(|__xss/.test(s.textContent)).length,
    js_links: document.querySelectorAll('a[href^="javascript"], a[href*="alert("]').length,
    text: document.body.innerText,
};
"""


def _http_exchange(t: float, sport: int, uri: str, host: str) -> list[tuple[float, bytes, bool]]:
    """One TCP connection: handshake, a GET with this URI and Host, a 404, close."""
    request = f"GET {uri} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tiny\r\n\r\n".encode()
    reply = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    c, s, q, r = CLIENT, SERVER, len(request), len(reply)
    return [
        (t, tcp(c, s, sport, 80, 1000, 0, SYN), True),
        (t + 0.001, tcp(s, c, 80, sport, 5000, 1001, SYN | ACK), False),
        (t + 0.002, tcp(c, s, sport, 80, 1001, 5001, ACK), True),
        (t + 0.003, tcp(c, s, sport, 80, 1001, 5001, PSH | ACK, request), True),
        (t + 0.004, tcp(s, c, 80, sport, 5001, 1001 + q, PSH | ACK, reply), False),
        (t + 0.005, tcp(c, s, sport, 80, 1001 + q, 5001 + r, FIN | ACK), True),
        (t + 0.006, tcp(s, c, 80, sport, 5001 + r, 1002 + q, FIN | ACK), False),
        (t + 0.007, tcp(c, s, sport, 80, 1002 + q, 5002 + r, ACK), True),
    ]


def write_hostile_capture(path: Path) -> None:
    """An Ethernet pcap: a DNS query and answer per payload, then the HTTP requests."""
    packets: list[tuple[float, bytes, bool]] = []
    for i, name in enumerate(PAYLOADS):  # no dots in them, so each is one DNS label
        packets.append((T0 + i * 0.1, udp(CLIENT, RESOLVER, 41000 + i, 53, dns_query(name, 0x2000 + i, False)), True))
        packets.append(
            (T0 + i * 0.1 + 0.01, udp(RESOLVER, CLIENT, 53, 41000 + i, dns_query(name, 0x2000 + i, True)), False)
        )
    for i, (uri, host) in enumerate(HTTP_REQUESTS):
        packets += _http_exchange(T0 + 1 + i, 42001 + i, uri, host)
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET)]
    for ts, packet, by_client in packets:
        data = frame(LINKTYPE_ETHERNET, "ip", packet, by_client)
        sec, usec = int(ts), round((ts - int(ts)) * 1e6)
        out.append(struct.pack("<IIII", sec, usec, len(data), len(data)) + data)
    path.write_bytes(b"".join(out))


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    """Store URL and --json summary of the CLI reading the hostile capture."""
    tmp = tmp_path_factory.mktemp("hostile-run")
    write_hostile_capture(tmp / "hostile.pcap")
    return store_url(tmp / "data"), read_json(tmp, tmp / "hostile.pcap")


@pytest.fixture(scope="module")
def tripwire(browser) -> None:  # noqa: F811
    """Every page this module's Chromium opens gets the tripwire before its own scripts."""
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": TRIPWIRE_JS})


def _assert_nothing_ran(driver, where: str) -> str:
    """No dialog, no flag, no injected element; returns the page text."""
    try:
        dialog = driver.switch_to.alert
        pytest.fail(f"{where}: a dialog opened: {dialog.text!r}")
    except NoAlertPresentException:
        pass
    found = driver.execute_script(INJECTED_JS)
    assert found["flag"] is None, f"{where}: a payload ran ({found['flag']})"
    assert (found["images"], found["scripts"], found["js_links"]) == (0, 0, 0), f"{where}: injected elements"
    return found["text"]


@pytest.mark.browser
def test_payloads_from_packets_never_run_and_show_literally(browser, hostile_run, serve, tripwire, console):  # noqa: F811
    url, summary = hostile_run
    (xss,) = [a for a in summary["alerts"] if a["kind"] == "xss"]  # the web attack detector saw the URIs
    assert xss["attacker"] == CLIENT and xss["victims"] == [SERVER]
    server = serve(url)

    browser.get(server.url)
    _wait(browser, lambda d: "xss" in _text(d, "overview-alerts-card"), "the alert on the overview")
    text = _assert_nothing_ran(browser, "overview")
    assert xss["explanation"] in text and FLAG_IMG in text

    browser.get(server.url + "alerts")
    rows = _wait_rows(browser, "alerts-table", lambda r: len(r) == len(summary["alerts"]), "the alerts")
    assert xss["explanation"] in [r["explanation"] for r in rows]
    for alert in summary["alerts"]:  # every alert's details: evidence, flows, timeline
        _click_cell(browser, "alerts-table", "explanation", alert["explanation"])
        _wait(browser, lambda d, a=alert: _text(d, "alerts-detail-explanation") == a["explanation"], "the details")
        _wait(browser, lambda d: _text(d, "alerts-flows-summary"), "the flows of the alert")
        _assert_nothing_ran(browser, f"alert {alert['kind']}")
    _click_cell(browser, "alerts-table", "kind", "xss")
    _wait(browser, lambda d: _text(d, "alerts-detail-kind") == "xss", "the xss alert")
    evidence = _text(browser, "alerts-evidence")
    for uri, _host in HTTP_REQUESTS[:2]:
        assert uri in evidence  # literally, markup and markdown included
    assert FLAG_IMG in evidence  # the detector decoded the third URI; still text

    for path in ("hosts", f"hosts?host={CLIENT}", "flows", f"flows?ip={CLIENT}"):
        browser.get(server.url + path)
        table = "hosts-table" if path.startswith("hosts") else "flows-table"
        _wait_rows(browser, table, lambda r: len(r) > 0, f"the rows of /{path}")
        assert CLIENT in _assert_nothing_ran(browser, path)
