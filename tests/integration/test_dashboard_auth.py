"""Who may open the dashboard: a login off 127.0.0.1, local host names only on it. Loopback addresses only."""

from __future__ import annotations

import base64
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from conftest import ROOT
from dashboard_http import OTHER_LOOPBACK, PASSWORD, USER, credentials, no_credentials, serve  # noqa: F401

from traffic_analyzer.dashboard.auth import PASSWORD_ENV, USER_ENV, Credentials, credentials_from_env
from traffic_analyzer.dashboard.server import DashboardServer
from traffic_analyzer.errors import AnalyzerError
from traffic_analyzer.store.engine import store_url
from traffic_analyzer.store.writer import ResultWriter

TIMEOUT_S = 20.0
SERVER_START_TIMEOUT_S = 30.0


@pytest.fixture
def store(tmp_path) -> str:
    url = store_url(tmp_path)
    ResultWriter(url).close()
    return url


def _get(url: str, user: str | None = None, password: str | None = None, **headers: str) -> tuple[int, dict, str]:
    """Status, headers and body of a GET, without following anything or raising on 4xx."""
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


@pytest.mark.parametrize("host", ["0.0.0.0", OTHER_LOOPBACK])
def test_another_address_without_credentials_is_refused_in_one_line(store, no_credentials, host):
    server = DashboardServer(store, host=host, port=0)
    with pytest.raises(AnalyzerError) as caught:
        server.start()
    assert str(caught.value) == (
        f"serving the dashboard on {host} needs a login: set NTA_DASHBOARD_USER and NTA_DASHBOARD_PASSWORD in the "
        "environment (HTTP basic auth), or pass --no-auth to let in anyone who can reach it"
    )
    assert "\n" not in str(caught.value)
    server.stop()


def test_half_the_credentials_is_an_error_naming_the_missing_variable(monkeypatch):
    monkeypatch.setenv(USER_ENV, USER)
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    with pytest.raises(AnalyzerError, match="^NTA_DASHBOARD_PASSWORD is not set"):
        credentials_from_env()
    assert PASSWORD not in repr(Credentials(USER, PASSWORD))


def test_every_request_needs_the_login_on_another_address(store, credentials, serve):
    server = serve(store, OTHER_LOOPBACK)
    assert server.requires_login
    assert server.url.startswith(f"http://{OTHER_LOOPBACK}:")

    status, headers, _ = _get(server.url)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith('Basic realm="Network Traffic Analyzer"')
    assert _get(server.url, USER, "wrong")[0] == 401
    assert _get(server.url, "someone", PASSWORD)[0] == 401
    for path in ("assets/style.css", "_dash-layout", "_dash-dependencies", "alerts"):
        assert _get(server.url + path)[0] == 401, path  # Dash's own routes too

    status, _, body = _get(server.url, USER, PASSWORD)
    assert status == 200 and "Network Traffic Analyzer" in body
    assert _get(server.url + "_dash-layout", USER, PASSWORD)[0] == 200


def test_no_auth_serves_another_address_to_anyone(store, no_credentials, serve):
    server = serve(store, OTHER_LOOPBACK, no_auth=True)
    assert not server.requires_login
    assert _get(server.url)[0] == 200


def test_the_default_address_serves_without_login_but_only_to_local_host_names(store, no_credentials, serve):
    server = serve(store, "127.0.0.1")
    port = server.url.rsplit(":", 1)[1].rstrip("/")

    assert _get(server.url)[0] == 200
    assert _get(server.url, Host=f"localhost:{port}")[0] == 200
    status, _, body = _get(server.url, Host=f"attacker.example:{port}")  # a DNS-rebound page
    assert status == 403 and "only answers to localhost" in body


def test_the_module_cli_maps_no_auth_and_refuses_without_it(store, no_credentials):
    proc = subprocess.run(
        [sys.executable, "-m", "traffic_analyzer.dashboard", "--store", store, "--host", OTHER_LOOPBACK, "--port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SERVER_START_TIMEOUT_S,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"error: serving the dashboard on {OTHER_LOOPBACK} needs a login")
    assert proc.stderr.count("\n") == 1
