"""Who may open the dashboard: HTTP basic auth off the local machine, local host names only on it.

The dashboard can acknowledge alerts and allow-list attackers, so reaching it is no longer
harmless. On 127.0.0.1, ::1 or localhost it serves without a login but only answers requests
whose Host header names this machine, which stops a web page from driving it through DNS
rebinding. Anywhere else it needs a user name and password, taken from the environment
(:data:`USER_ENV`, :data:`PASSWORD_ENV`) and checked on every request, Dash's own included,
by a Flask ``before_request`` hook; ``no_auth`` opts out explicitly. Basic auth sends the password
in the clear, so across a network serve the dashboard over HTTPS (``dashboard_tls_cert`` and
``dashboard_tls_key``) or behind TLS (a reverse proxy, an SSH tunnel).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import flask

from ..errors import AnalyzerError

USER_ENV = "NTA_DASHBOARD_USER"  # the dashboard's login name
PASSWORD_ENV = "NTA_DASHBOARD_PASSWORD"  # and its password; never on the command line or in a config file
LOCAL_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})  # served without a login
REALM = "Network Traffic Analyzer"
HTTP_UNAUTHORIZED = 401
HTTP_FORBIDDEN = 403


@dataclass(frozen=True)
class Credentials:
    """The one user name and password the dashboard accepts."""

    username: str
    password: str = field(repr=False)


def credentials_from_env(environ: Mapping[str, str] = os.environ) -> Credentials | None:
    """Credentials from NTA_DASHBOARD_USER and NTA_DASHBOARD_PASSWORD; None when neither is set."""
    username, password = environ.get(USER_ENV, ""), environ.get(PASSWORD_ENV, "")
    if not username and not password:
        return None
    if not username or not password:
        missing = USER_ENV if not username else PASSWORD_ENV
        raise AnalyzerError(f"{missing} is not set: set both {USER_ENV} and {PASSWORD_ENV} for the dashboard login")
    return Credentials(username, password)


def is_local(host: str) -> bool:
    """True for the addresses the dashboard serves without a login."""
    return host.strip("[]").lower() in LOCAL_HOSTS


def require_basic_auth(server: flask.Flask, credentials: Credentials) -> None:
    """Answer 401 to every request of ``server`` that lacks these credentials."""
    expected_user = credentials.username.encode()
    expected_password = credentials.password.encode()

    def check() -> flask.Response | None:
        given = flask.request.authorization
        if given is not None and given.type == "basic":
            user_ok = hmac.compare_digest((given.username or "").encode(), expected_user)
            password_ok = hmac.compare_digest((given.password or "").encode(), expected_password)
            if user_ok and password_ok:
                return None
        return flask.Response(
            "Log in to see the Network Traffic Analyzer dashboard.\n",
            HTTP_UNAUTHORIZED,
            {"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'},
            mimetype="text/plain",
        )

    server.before_request(check)


def _names_this_machine(host_header: str) -> bool:
    host = host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header
    host = host.split("]")[0].lstrip("[") if host.startswith("[") else host
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def answer_only_local_names(server: flask.Flask) -> None:
    """Refuse (403) requests whose Host header is not a loopback address or localhost (DNS rebinding)."""

    def check() -> flask.Response | None:
        if _names_this_machine(flask.request.host):
            return None
        return flask.Response(
            "This dashboard only answers to localhost and 127.0.0.1.\n", HTTP_FORBIDDEN, mimetype="text/plain"
        )

    server.before_request(check)
