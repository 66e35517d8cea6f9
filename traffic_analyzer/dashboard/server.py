"""Serve the dashboard from a background thread, or from a process of its own beside the analyzer.

Werkzeug's threaded server is enough for a handful of browser tabs on the local machine. Inside the
analyzer's process, though, every request's Python work takes turns with the analysis for the one GIL:
fifty viewers polling every 2 s left a live capture at 10,000 packets/s analysing one packet in fifty
(``bench/dashboard_load.py``). The analyzer therefore serves it ``apart``: a spawned process that reads
the same store (the dashboard never needs more) and writes the changes made on it to the same log.
:meth:`DashboardServer.start` binds the socket itself and hands it to werkzeug: werkzeug's
own bind prints to stderr and calls ``sys.exit`` when the port is taken, and we want a
one-line :class:`~traffic_analyzer.errors.AnalyzerError` before anything else is set up.
Who may connect is decided in :mod:`~traffic_analyzer.dashboard.auth`, who may change what the
analyzer raises in :mod:`~traffic_analyzer.dashboard.access`.
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import signal
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import dash
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server, select_address_family

from ..errors import AnalyzerError
from . import access, auth, data
from .app import create_app
from .evidence_route import evidence_dir_of

STOP_TIMEOUT_S = 5.0  # how long stop() waits for the serving thread or process to finish
PARENT_CHECK_S = 1.0  # how often the dashboard apart checks that the analyzer still runs
LISTEN_BACKLOG = 128  # pending connections; a browser opens several at once


class _QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without the access-log line per request (the page polls every 2 s)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Skip the per-request line; errors still go through ``log_error``."""


@dataclass(frozen=True)
class TlsFiles:
    """The PEM certificate and private key the dashboard serves HTTPS with."""

    cert: Path
    key: Path

    @classmethod
    def of(cls, cert: str | None, key: str | None) -> TlsFiles | None:
        """From the two settings; None (plain HTTP) when they are not set (the settings check they come in pairs)."""
        return cls(Path(cert), Path(key)) if cert and key else None

    def context(self) -> ssl.SSLContext:
        """A server context with these files; an AnalyzerError in one line if they cannot be loaded."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc.args[-1]
            raise AnalyzerError(
                f"cannot serve the dashboard over HTTPS with {self.cert} and {self.key}: {reason} "
                "(check dashboard_tls_cert / dashboard_tls_key)"
            ) from exc
        return context


class DashboardServer:
    """The dashboard for one result store, served on ``host:port`` until :meth:`stop`.

    Parameters
    ----------
    store_url : str
        SQLAlchemy URL of the result store the dashboard reads.
    host : str
        Address to listen on; the default keeps the dashboard private to this machine. Any
        address but 127.0.0.1, ::1 and localhost needs the login of NTA_DASHBOARD_USER and
        NTA_DASHBOARD_PASSWORD, or ``no_auth``.
    port : int
        TCP port; 0 picks a free one (read it back from :attr:`url`).
    no_auth : bool
        Serve without a login on any address: whoever reaches it can read the results and
        allow-list attackers.
    evidence_dir : Path, optional
        Folder of the alert evidence pcaps served for download; None means DATA_DIR/evidence
        beside a SQLite store.
    tls : TlsFiles, optional
        Serve HTTPS with this certificate and key; None serves plain HTTP.
    apart : bool
        Serve from a spawned process instead of a thread of this one (what the analyzer does); its log
        lines (the changes made on the dashboard) go to ``log_file``.
    log_file : str or Path, optional
        The analyzer's log file, for a dashboard served apart.

    Each start makes a new token that allows acknowledging and allow-listing (see
    :mod:`~traffic_analyzer.dashboard.access`); it is written, mode 0600, to ``dashboard-token``
    in the data directory (the evidence folder's parent) and given in :attr:`login_url`.
    """

    def __init__(
        self,
        store_url: str,
        host: str = "127.0.0.1",
        port: int = 8050,
        no_auth: bool = False,
        evidence_dir: Path | None = None,
        tls: TlsFiles | None = None,
        apart: bool = False,
        log_file: str | Path | None = None,
    ) -> None:
        self.store_url = store_url
        self.apart = apart
        self.log_file = log_file
        self.evidence_dir = evidence_dir
        self.tls = tls
        self.host = host
        self.port = port
        self.no_auth = no_auth
        self._app: dash.Dash | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._bound_port: int | None = None
        self._requires_login = False
        self._token: str | None = None
        self._token_file: Path | None = None

    def start(self) -> None:
        """Bind and serve (in a daemon thread, or the process apart); raises AnalyzerError if the port is unusable
        or a login is missing: the socket is bound here, before anything is handed over."""
        if self._server is not None or self._process is not None:
            raise AnalyzerError(f"the dashboard is already serving at {self.url}")
        credentials = self._credentials()
        ssl_context = self.tls.context() if self.tls is not None else None
        if ssl_context is None and credentials is not None and not auth.is_local(self.host):
            access.log.warning(
                "the dashboard on %s sends its login in the clear over plain HTTP: set dashboard_tls_cert and "
                "dashboard_tls_key (or put it behind TLS)",
                self.host,
            )
        family = select_address_family(self.host, self.port)
        try:
            address = socket.getaddrinfo(self.host, self.port, family, socket.SOCK_STREAM)[0][4]
        except socket.gaierror as exc:
            raise AnalyzerError(f"cannot listen on {self.host}: the name does not resolve (check --host)") from exc
        try:
            listening = socket.create_server(address, family=family, backlog=LISTEN_BACKLOG)
        except OSError as exc:
            raise AnalyzerError(self._bind_error(exc)) from exc
        with listening:  # werkzeug serves on a duplicate of this descriptor (the process apart: on its own)
            token, token_file = access.new_token(), self._token_path()
            if token_file is not None:
                token_file = access.save_token(token_file, token)
            served = (self.store_url, self.evidence_dir, self.host, self.port, credentials, token, token_file)
            if self.apart:
                context = multiprocessing.get_context("spawn")  # the analyzer runs threads a fork would copy
                self._process = context.Process(
                    target=_serve_apart,
                    args=(listening, *served),
                    kwargs={"tls": self.tls, "log_file": self.log_file},
                    name="nta-dashboard",
                    daemon=True,
                )
                self._process.start()
            else:
                app, server = _served(listening, *served, ssl_context)
                self._app, self._server = app, server
                self._thread = threading.Thread(target=server.serve_forever, name="dashboard-server", daemon=True)
                self._thread.start()
            self._bound_port = listening.getsockname()[1]
        self._requires_login = credentials is not None
        self._token, self._token_file = token, token_file

    def _credentials(self) -> auth.Credentials | None:
        """The login to require: from the environment, compulsory off 127.0.0.1 unless no_auth."""
        if self.no_auth:
            return None
        credentials = auth.credentials_from_env()
        if credentials is None and not auth.is_local(self.host):
            raise AnalyzerError(
                f"serving the dashboard on {self.host or 'all addresses'} needs a login: set {auth.USER_ENV} and "
                f"{auth.PASSWORD_ENV} in the environment (HTTP basic auth), or pass --no-auth to let in anyone "
                "who can reach it"
            )
        return credentials

    def _token_path(self) -> Path | None:
        """DATA_DIR/dashboard-token, beside the evidence folder; None when there is no data directory."""
        evidence = self.evidence_dir or evidence_dir_of(self.store_url)
        return Path(evidence).parent / access.TOKEN_FILE_NAME if evidence is not None else None

    @property
    def login_url(self) -> str:
        """Opened once in a browser, it lets that browser acknowledge and allow-list (until the next start)."""
        return f"{self.url}{access.LOGIN_PATH.lstrip('/')}?token={self._token or ''}"

    @property
    def requires_login(self) -> bool:
        """True while serving with HTTP basic auth."""
        return self._requires_login

    def _bind_error(self, exc: OSError) -> str:
        where = f"port {self.port} on {self.host}"
        if exc.errno == errno.EADDRINUSE:
            return f"{where} is already in use: stop the other program or choose another with --port"
        if exc.errno == errno.EACCES:
            return f"no permission to listen on {where}: choose a port above 1023 with --port"
        if exc.errno == errno.EADDRNOTAVAIL:
            return f"cannot listen on {self.host}: it is not an address of this machine (check --host)"
        return f"cannot listen on {where}: {exc.strerror or exc}"

    @property
    def url(self) -> str:
        """The address to open in a browser (with the real port when port 0 was asked for)."""
        port = self._bound_port or self.port
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{host}:{port}/"

    def stop(self) -> None:
        """Stop serving, wait for the thread and close the store connection; safe to call twice."""
        server, thread, app, process = self._server, self._thread, self._app, self._process
        self._server = self._thread = self._app = self._process = None
        if process is not None:
            process.terminate()
            process.join(STOP_TIMEOUT_S)
            if process.is_alive():
                process.kill()
                process.join(STOP_TIMEOUT_S)
        if server is not None:  # shutdown() waits for the serving loop: bounded, so Ctrl-C always ends
            stopper = threading.Thread(target=server.shutdown, name="dashboard-stop", daemon=True)
            stopper.start()
            stopper.join(timeout=STOP_TIMEOUT_S)
        if thread is not None:
            thread.join(timeout=STOP_TIMEOUT_S)
        if server is not None:
            server.server_close()
        if app is not None:
            data.detach_stores(app.server)
        token_file, self._token_file = self._token_file, None
        if token_file is not None and _read(token_file) == self._token:  # not a later dashboard's token
            token_file.unlink(missing_ok=True)


def _served(
    listening: socket.socket,
    store_url: str,
    evidence_dir: Path | None,
    host: str,
    port: int,
    credentials: auth.Credentials | None,
    token: str,
    token_file: Path | None,
    ssl_context: ssl.SSLContext | None,
) -> tuple[dash.Dash, BaseWSGIServer]:
    """The dashboard app with its login and change checks, and a werkzeug server on ``listening``."""
    app = create_app(store_url, evidence_dir)
    if credentials is not None:
        auth.require_basic_auth(app.server, credentials)
    elif auth.is_local(host):
        auth.answer_only_local_names(app.server)
    access.install(app.server, token, listening.getsockname()[1], credentials is not None, token_file)
    server = make_server(
        host,
        port,
        app.server,
        threaded=True,
        request_handler=_QuietRequestHandler,
        ssl_context=ssl_context,
        fd=listening.fileno(),
    )
    return app, server


def _serve_apart(listening: socket.socket, *served, tls: TlsFiles | None, log_file: str | Path | None) -> None:
    """The dashboard process: serve until the analyzer ends it (SIGTERM); Ctrl-C is the analyzer's to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_end_with_parent, args=(os.getppid(),), name="parent-watch", daemon=True).start()
    if log_file is not None:
        from ..alerts.log_channel import setup_logging

        setup_logging(log_file)  # the changes made on the dashboard, in the analyzer's log
    _, server = _served(listening, *served, tls.context() if tls is not None else None)
    server.serve_forever()


def _end_with_parent(parent: int) -> None:
    """End this process when the analyzer that started it is gone (killed, or crashed past its clean-up)."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None
