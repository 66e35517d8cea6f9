"""The dashboard over plain HTTP for the access tests: servers on loopback, logins, a store with one scan, and
the callback request the Alerts page sends to allow-list a host. Requests go to 127.0.0.1 (and 127.0.0.2) only.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from browser_session import T0, _window, serve  # noqa: F401 (fixture, for the importers)

from traffic_analyzer.dashboard.auth import PASSWORD_ENV, USER_ENV
from traffic_analyzer.records.alert import Alert
from traffic_analyzer.store.engine import store_url
from traffic_analyzer.store.writer import ResultWriter

OTHER_LOOPBACK = "127.0.0.2"  # not 127.0.0.1, so it counts as "another address", yet stays on this machine
USER, PASSWORD = "analyst", "correct horse battery staple"
TIMEOUT_S = 20.0
RUN_ID = "r"
ALLOW_HOST_BUTTON = "alerts-allow-host-button"
SCANNER, TARGET = "172.16.0.8", "64.13.134.52"


@pytest.fixture
def no_credentials(monkeypatch) -> None:
    monkeypatch.delenv(USER_ENV, raising=False)
    monkeypatch.delenv(PASSWORD_ENV, raising=False)


@pytest.fixture
def credentials(monkeypatch) -> None:
    monkeypatch.setenv(USER_ENV, USER)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)


@pytest.fixture
def scan_store(tmp_path: Path) -> tuple[str, str]:
    """A store with one port scan, and that alert's id."""
    url = store_url(tmp_path)
    scan = Alert("port_scan", SCANNER, [TARGET], T0, T0 + 5, 90.0, "probed 1000 ports")
    writer = ResultWriter(url)
    writer.start_run(RUN_ID, "file nmap.pcap", {"status": "none"})
    writer.write_window(RUN_ID, _window(T0, 10, 600, [scan], "finished"))
    writer.finish_run(RUN_ID, "finished")
    writer.close()
    return url, scan.alert_id(RUN_ID)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand a redirect back as it is (its Set-Cookie included) instead of following it."""

    def redirect_request(self, *args, **kwargs) -> None:
        return None


def _request(url: str, body: bytes | None = None, **headers: str) -> tuple[int, dict, str]:
    """Status, headers and body, without following redirects or raising on 4xx."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=TIMEOUT_S) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def allow_host_request(dependencies: str, alert_id: str) -> bytes:
    """That request, built from the dashboard's ``_dash-dependencies`` answer."""
    (callback,) = [c for c in json.loads(dependencies) if any(i["id"] == ALLOW_HOST_BUTTON for i in c["inputs"])]
    body = {
        "output": callback["output"],
        "outputs": [
            {"id": part.split(".")[0], "property": part.split(".", 1)[1]}
            for part in callback["output"].strip(".").split("...")
        ],
        "inputs": [{**i, "value": 1 if i["id"] == ALLOW_HOST_BUTTON else None} for i in callback["inputs"]],
        "changedPropIds": [f"{ALLOW_HOST_BUTTON}.n_clicks"],
        "state": [{**s, "value": alert_id if s["id"] == "alerts-selected" else 0} for s in callback["state"]],
    }
    return json.dumps(body).encode()


def _message(text: str) -> str:
    """The message a callback answer puts under the Alerts page's buttons."""
    return json.loads(text)["response"]["alerts-action-message"]["children"]


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
