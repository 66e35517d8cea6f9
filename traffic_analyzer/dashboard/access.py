"""Who may change what the analyzer raises: same-origin writes, by a login or the session's token.

Acknowledging an alert or allow-listing an attacker silences the analyzer, so reaching the
dashboard is not enough to do it. Two guards, on top of :mod:`~traffic_analyzer.dashboard.auth`:

- Every request that is not a read (any method but GET, HEAD and OPTIONS: Dash's callback POSTs,
  the login form) must carry an ``Origin`` (or, lacking one, a ``Referer``) naming the dashboard
  itself, so no other web page or origin-less script can drive it (cross-site request forgery).
- A change needs a login: HTTP basic auth where the dashboard requires it, or else the token made
  at each start, stored in the data directory readable only by its owner, that ``/login`` turns
  into an HttpOnly, SameSite=Strict cookie. Reading stays open on loopback.

Every change is logged with who made it (the user, or the token's first characters) and from where.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import flask
from markupsafe import escape

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # reads; every other method may change something
TOKEN_BYTES = 32  # random bytes in a session token
TOKEN_FILE_NAME = "dashboard-token"  # in the data directory, mode 0600
TOKEN_FILE_MODE = 0o600
TOKEN_ID_CHARS = 6  # how much of the token the change log names
LOGIN_PATH = "/login"
HTTP_SEE_OTHER = 303
HTTP_FORBIDDEN = 403
LOGIN_NEEDED = f"Not saved: log in first (open {LOGIN_PATH} with the token of this dashboard)."
_TOKEN_KEY = "traffic_analyzer.change_token"  # the token of this start, in Flask's app.extensions
_COOKIE_KEY = "traffic_analyzer.token_cookie"  # and the name of its cookie
_BASIC_AUTH_KEY = "traffic_analyzer.basic_auth"  # True when basic auth guards every request

log = logging.getLogger("traffic_analyzer.dashboard")


def new_token() -> str:
    """A fresh token for one start of the dashboard."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def save_token(path: Path, token: str) -> Path | None:
    """Save ``token`` where only this user can read it (mode set even if the file existed); None if it cannot be."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, TOKEN_FILE_MODE)
        with os.fdopen(fd, "w") as file:
            os.fchmod(fd, TOKEN_FILE_MODE)
            file.write(token + "\n")
    except OSError as exc:
        log.warning("cannot save the dashboard's token in %s (%s): only its login URL has it", path, exc.strerror)
        return None
    return path


def _origin(url: str) -> tuple[str, str]:
    """(scheme, host:port) of a URL, the port made explicit so http://a and http://a:80 compare equal."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port or default
    except ValueError:
        return ("", "")
    return (parts.scheme, f"{(parts.hostname or '').lower()}:{port}")


def _same_origin() -> flask.Response | None:
    """Refuse (403) a request that may change something unless the dashboard's own page sent it."""
    if flask.request.method in SAFE_METHODS:
        return None
    source = flask.request.headers.get("Origin") or flask.request.headers.get("Referer") or ""
    if source and source != "null" and _origin(source) == _origin(flask.request.host_url):
        return None
    log.warning(
        "dashboard refused a %s %s from %s: origin %r is not the dashboard's own",
        flask.request.method,
        flask.request.path,
        flask.request.remote_addr,
        source or None,
    )
    return flask.Response(
        "Changes are only accepted from the dashboard's own pages.\n", HTTP_FORBIDDEN, mimetype="text/plain"
    )


def install(server: flask.Flask, token: str, port: int, basic_auth: bool, token_file: Path | None) -> None:
    """Guard ``server``: same-origin writes, and ``/login`` to trade the token for a cookie.

    The cookie name carries the port: cookies are shared by every port of a host, and two
    dashboards on one machine must not log each other out.
    """
    server.extensions[_TOKEN_KEY] = token
    server.extensions[_COOKIE_KEY] = f"nta_token_{port}"
    server.extensions[_BASIC_AUTH_KEY] = basic_auth
    server.before_request(_same_origin)
    where = f"in {token_file}" if token_file is not None else "printed when the dashboard started"

    def login() -> flask.Response:
        given = flask.request.values.get("token")
        if given is not None and _is_token(given):
            response = flask.redirect("/", HTTP_SEE_OTHER)
            response.set_cookie(
                server.extensions[_COOKIE_KEY],
                given,
                httponly=True,
                samesite="Strict",
                secure=flask.request.is_secure,
            )
            log.info("dashboard login with token %s… from %s", given[:TOKEN_ID_CHARS], flask.request.remote_addr)
            return response
        wrong = '<p class="login-error">That is not the token of this dashboard.</p>' if given is not None else ""
        page = (
            "<!doctype html><title>Log in · Network Traffic Analyzer</title>"
            "<h1>Log in to acknowledge and allow-list</h1>"
            f"<p>The token of this dashboard is {escape(where)}; it changes at every start.</p>{wrong}"
            f'<form method="post" action="{LOGIN_PATH}"><input name="token" type="password" autocomplete="off">'
            '<button type="submit">Log in</button></form>'
        )
        return flask.Response(page, HTTP_FORBIDDEN if given is not None else 200, mimetype="text/html")

    server.add_url_rule(LOGIN_PATH, "login", login, methods=["GET", "POST"])


def _is_token(given: str) -> bool:
    return hmac.compare_digest(given.encode(), flask.current_app.extensions[_TOKEN_KEY].encode())


def changer() -> str | None:
    """Who is asking for a change in the current request ('user NAME', 'token ABCDEF…'), or None if nobody logged in."""
    extensions = flask.current_app.extensions
    if extensions.get(_BASIC_AUTH_KEY) and flask.request.authorization is not None:
        return f"user {flask.request.authorization.username}"  # checked by auth before any handler ran
    cookie = flask.request.cookies.get(extensions.get(_COOKIE_KEY, ""), "")
    if _TOKEN_KEY in extensions and cookie and _is_token(cookie):
        return f"token {cookie[:TOKEN_ID_CHARS]}…"
    return None


def log_change(who: str, what: str) -> None:
    """One line in the analyzer's log for every change made from the dashboard."""
    log.info("dashboard change by %s from %s: %s", who, flask.request.remote_addr, what)
