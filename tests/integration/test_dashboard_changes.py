"""Who may acknowledge and allow-list: the dashboard's own page, logged in. Requests from 127.0.0.1 only.

Each request is what a hostile web page (or a local process) could send to a dashboard on
127.0.0.1: a simple text/plain POST, a form POST, a fetch-like JSON POST with and without the
session cookie, with basic auth on. None may change the store; the dashboard's own origin with
a login (the session token's cookie, or basic auth) may, and every change is logged with who made it.
"""

from __future__ import annotations

import logging
import os
import stat
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest
from dashboard_http import (  # noqa: F401 (fixtures)
    ALLOW_HOST_BUTTON,
    PASSWORD,
    RUN_ID,
    SCANNER,
    TARGET,
    TIMEOUT_S,
    USER,
    NoRedirect,
    _basic,
    _message,
    _request,
    allow_host_request,
    credentials,
    no_credentials,
    scan_store,
    serve,
)

from traffic_analyzer.dashboard import access
from traffic_analyzer.dashboard.server import DashboardServer
from traffic_analyzer.store.annotations import AnnotationStore

LOOPBACK = "127.0.0.1"  # reading open, changes only with the token (or basic auth when its login is set)
EVIL = "http://evil.example"
TIMEOUT_S = 20.0


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def change_log() -> Iterator[list[str]]:
    """The dashboard's log lines while the test runs."""
    logger = logging.getLogger(access.log.name)
    handler, level = _Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def _allow_host_body(server: DashboardServer, alert_id: str, **headers: str) -> bytes:
    """The callback request the Alerts page sends when *Allow-list host* is clicked on ``alert_id``."""
    return allow_host_request(_request(server.url + "_dash-dependencies", **headers)[2], alert_id)


def _origin(server: DashboardServer) -> str:
    return server.url.rstrip("/")


def _log_in(server: DashboardServer) -> str:
    """The Cookie header the browser holds after opening the login URL once."""
    status, headers, _ = _request(server.login_url)
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    return cookie.split(";", 1)[0]


def _unchanged(url: str) -> bool:
    notes = AnnotationStore(url)
    try:
        return notes.allow_entries() == [] and notes.acknowledged() == {}
    finally:
        notes.close()


def _attacks(server: DashboardServer, body: bytes, cookie: str) -> dict[str, tuple[bytes, dict[str, str]]]:
    """What another origin can send: body and headers of each forged request."""
    form = urllib.parse.urlencode({"payload": body.decode()}).encode()
    json_type = {"Content-Type": "application/json"}
    return {
        "simple text/plain POST": (body, {"Content-Type": "text/plain", "Origin": EVIL}),
        "form POST": (form, {"Content-Type": "application/x-www-form-urlencoded", "Origin": EVIL}),
        "fetch JSON POST": (body, {**json_type, "Origin": EVIL}),
        "fetch JSON POST with the cookie": (body, {**json_type, "Origin": EVIL, "Cookie": cookie}),
        "JSON POST from a sandboxed page": (body, {**json_type, "Origin": "null", "Cookie": cookie}),
        "JSON POST with another site as referer": (body, {**json_type, "Referer": EVIL + "/", "Cookie": cookie}),
        "JSON POST naming no origin": (body, {**json_type, "Cookie": cookie}),
        "JSON POST from another port": (body, {**json_type, "Origin": "http://127.0.0.1:1", "Cookie": cookie}),
    }


def test_no_other_origin_can_allow_list_even_with_the_session_cookie(scan_store, no_credentials, serve, change_log):  # noqa: F811
    url, alert_id = scan_store
    server = serve(url, LOOPBACK)
    body, cookie = _allow_host_body(server, alert_id), _log_in(server)
    for what, (data, headers) in _attacks(server, body, cookie).items():
        status, _, text = _request(server.url + "_dash-update-component", data, **headers)
        assert status == 403, what
        assert text == "Changes are only accepted from the dashboard's own pages.\n", what
        assert _unchanged(url), what
    assert sum("dashboard refused a POST /_dash-update-component from 127.0.0.1" in line for line in change_log) == 8


def test_the_own_origin_needs_the_token_then_changes_and_logs_who(scan_store, no_credentials, serve, change_log):  # noqa: F811
    url, alert_id = scan_store
    server = serve(url, LOOPBACK)
    body = _allow_host_body(server, alert_id)
    own = {"Content-Type": "application/json", "Origin": _origin(server)}

    status, _, text = _request(server.url + "_dash-update-component", body, **own)
    assert status == 200 and _message(text) == access.LOGIN_NEEDED  # reading is open on loopback, changing is not
    assert _unchanged(url)
    status, headers, _ = _request(server.url + "login?token=guessed")
    assert status == 403 and "Set-Cookie" not in headers
    stale = f"nta_token_{server.url.rsplit(':', 1)[1].rstrip('/')}=guessed"
    assert (
        _message(_request(server.url + "_dash-update-component", body, **own, Cookie=stale)[2]) == access.LOGIN_NEEDED
    )
    assert _unchanged(url)

    cookie = _log_in(server)
    status, _, text = _request(server.url + "_dash-update-component", body, **own, Cookie=cookie)
    assert status == 200 and _message(text).startswith(f"Allow-listed all alerts from {SCANNER}:")
    (entry,) = AnnotationStore(url).allow_entries()
    assert (entry.scope, entry.attacker) == ("host", SCANNER)
    token_id = cookie.split("=", 1)[1][: access.TOKEN_ID_CHARS]
    assert any(
        line.startswith(f"dashboard change by token {token_id}… from 127.0.0.1: allow-listed all alerts from {SCANNER}")
        for line in change_log
    ), change_log


def test_the_login_form_takes_the_token_from_the_owner_only_file(scan_store, no_credentials, serve, tmp_path):  # noqa: F811
    url, _ = scan_store
    server = serve(url, LOOPBACK)
    token_file = tmp_path / access.TOKEN_FILE_NAME
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    token = token_file.read_text().strip()
    assert server.login_url.endswith(f"/login?token={token}")

    status, _, page = _request(server.url + "login")
    assert status == 200 and str(token_file) in page and token not in page
    form = urllib.parse.urlencode({"token": token}).encode()
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    assert _request(server.url + "login", form, **form_type, Origin=EVIL)[0] == 403  # no login forgery either
    status, headers, _ = _request(server.url + "login", form, **form_type, Origin=_origin(server))
    assert status == 303 and headers["Set-Cookie"].startswith(f"nta_token_{server.url.rsplit(':', 1)[1].rstrip('/')}=")

    server.stop()
    assert not token_file.exists()  # the token dies with the dashboard


def test_with_basic_auth_the_login_changes_but_only_from_the_own_origin(scan_store, credentials, serve, change_log):  # noqa: F811
    url, alert_id = scan_store
    server = serve(url, LOOPBACK)
    assert server.requires_login
    body = _allow_host_body(server, alert_id, Authorization=_basic(USER, PASSWORD))
    login = {"Content-Type": "application/json", "Authorization": _basic(USER, PASSWORD)}

    for origin in (EVIL, "null"):
        assert _request(server.url + "_dash-update-component", body, **login, Origin=origin)[0] == 403
        assert _unchanged(url)
    assert _request(server.url + "_dash-update-component", body, **login, Origin=_origin(server))[0] == 200
    assert [e.attacker for e in AnnotationStore(url).allow_entries()] == [SCANNER]
    assert any(line.startswith(f"dashboard change by user {USER} from 127.0.0.1: allow-listed") for line in change_log)


def test_a_data_dir_that_cannot_take_the_token_leaves_the_login_url(
    scan_store,
    no_credentials,  # noqa: F811
    serve,  # noqa: F811
    tmp_path,
    change_log,
):
    url, _ = scan_store
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    server = serve(url, LOOPBACK, evidence_dir=not_a_folder / "evidence")
    assert any(line.startswith(f"cannot save the dashboard's token in {not_a_folder}/") for line in change_log)
    assert _log_in(server).startswith("nta_token_")  # the login URL still works
