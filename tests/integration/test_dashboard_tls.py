"""The dashboard over HTTPS, with a self-signed certificate made by openssl for the test. Loopback addresses only."""

from __future__ import annotations

import http.client
import json
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from dashboard_http import (  # noqa: F401 (fixtures)
    OTHER_LOOPBACK,
    PASSWORD,
    USER,
    NoRedirect,
    _basic,
    _message,
    allow_host_request,
    credentials,
    scan_store,
    serve,
)

from traffic_analyzer.dashboard.server import DashboardServer, TlsFiles
from traffic_analyzer.errors import AnalyzerError, ConfigError
from traffic_analyzer.settings import validate

TIMEOUT_S = 20.0
CERT_DAYS = "2"


@pytest.fixture
def tls(tmp_path: Path) -> TlsFiles:
    """A self-signed certificate for OTHER_LOOPBACK and its key (mode 0600)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "dashboard.pem", tmp_path / "dashboard.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", CERT_DAYS, "-subj", "/CN=nta-test",
         "-addext", f"subjectAltName=IP:{OTHER_LOOPBACK}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    key.chmod(0o600)
    return TlsFiles(cert, key)


def _https(
    url: str, tls: TlsFiles, body: bytes | None = None, **headers: str
) -> tuple[int, http.client.HTTPMessage, str]:
    """Status, headers and body over HTTPS, trusting only the test's certificate."""
    https = urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=str(tls.cert)))
    request = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.build_opener(NoRedirect, https).open(request, timeout=TIMEOUT_S) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def test_off_loopback_the_login_and_the_changes_travel_over_https_only(scan_store, credentials, serve, tls):  # noqa: F811
    url, alert_id = scan_store
    server = serve(url, OTHER_LOOPBACK, tls=tls)
    assert server.url.startswith(f"https://{OTHER_LOOPBACK}:")
    login = {"Authorization": _basic(USER, PASSWORD)}

    assert _https(server.url, tls)[0] == 401
    status, _, page = _https(server.url, tls, **login)
    assert status == 200 and "Network Traffic Analyzer" in page
    plain = server.url.replace("https://", "http://")
    with pytest.raises((urllib.error.URLError, http.client.HTTPException, ConnectionError)):
        urllib.request.urlopen(urllib.request.Request(plain, headers=login), timeout=TIMEOUT_S).read()

    deps = _https(server.url + "_dash-dependencies", tls, **login)[2]
    assert json.loads(deps)  # the callbacks, read over HTTPS
    body = allow_host_request(deps, alert_id)
    post = {**login, "Content-Type": "application/json"}
    assert _https(server.url + "_dash-update-component", tls, body, **post, Origin=plain.rstrip("/"))[0] == 403
    status, _, text = _https(server.url + "_dash-update-component", tls, body, **post, Origin=server.url.rstrip("/"))
    assert status == 200 and _message(text).startswith("Allow-listed all alerts from ")

    status, headers, _ = _https(server.login_url, tls, **login)
    assert status == 303
    cookie = headers.get("Set-Cookie", "")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_a_key_that_does_not_match_is_one_line_naming_the_settings(tmp_path, tls, credentials):  # noqa: F811
    other = TlsFiles(tls.cert, tmp_path / "missing.key")
    server = DashboardServer(str(tmp_path / "x.db"), host=OTHER_LOOPBACK, port=0, tls=other)
    with pytest.raises(AnalyzerError) as caught:
        server.start()
    message = str(caught.value)
    assert message.startswith(f"cannot serve the dashboard over HTTPS with {tls.cert} and {other.key}: ")
    assert message.endswith("(check dashboard_tls_cert / dashboard_tls_key)") and "\n" not in message
    server.stop()


def test_a_certificate_without_its_key_is_a_config_error():
    with pytest.raises(ConfigError, match="^dashboard_tls_key is not set: HTTPS needs both"):
        validate({"dashboard_tls_cert": "dashboard.pem"})
